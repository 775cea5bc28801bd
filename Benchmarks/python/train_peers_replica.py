"""Bit-for-bit replicas of what `ngrad train --seed N` draws: the SplitMix64 generator
(Sources/NaturalGradientTestSupport/SplitMix64.swift), Swift's `shuffle(using:)` (Fisher-Yates
from the front with Lemire's nearly-divisionless `next(upperBound:)`), the digits split
(DigitsData.load), the Glorot initialisation (MLP.initialParameters) and the batch order
(Trainer.run). Plain Python and NumPy, no JAX, so it can be tested on its own."""

import gzip

import numpy as np

MASK = (1 << 64) - 1


class SplitMix64:
    """SplitMix64 (Steele, Lea and Flood 2014), as the Swift struct."""

    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def next_unit(self):
        """`nextUnit()`: the top 24 bits over 2^24, exact in float32."""
        return np.float32((self.next() >> 40) * 2.0**-24)

    def next_below(self, bound):
        """Swift's `RandomNumberGenerator.next(upperBound:)` for UInt64 (Lemire)."""
        random = self.next()
        m = random * bound
        low = m & MASK
        if low < bound:
            t = ((1 << 64) - bound) % bound
            while low < t:
                random = self.next()
                m = random * bound
                low = m & MASK
        return m >> 64

    def shuffle(self, items):
        """Swift's `MutableCollection.shuffle(using:)`, in place."""
        amount = len(items)
        current = 0
        while amount > 1:
            offset = self.next_below(amount)
            amount -= 1
            items[current], items[current + offset] = items[current + offset], items[current]
            current += 1


def load_digits(path, seed, train_fraction=0.8):
    """DigitsData.load: pixels / 16 in float32, a seeded shuffle, the first 80% for training."""
    with gzip.open(path, "rt") if path.endswith(".gz") else open(path) as handle:
        rows = [line.split(",") for line in handle.read().splitlines() if line.strip()]
    inputs = np.array([[np.float32(v) / np.float32(16) for v in row[:64]] for row in rows], dtype=np.float32)
    labels = np.array([int(row[64]) for row in rows], dtype=np.int32)
    order = list(range(len(rows)))
    SplitMix64(seed).shuffle(order)
    # Swift's `rounded()` rounds halves away from zero.
    train_count = int(np.floor(len(rows) * train_fraction + 0.5))
    train, test = order[:train_count], order[train_count:]
    return inputs[train], labels[train], inputs[test], labels[test]


def initial_parameters(sizes, seed):
    """MLP.initialParameters: per layer (W [outputs x inputs], b [outputs]), Glorot-uniform W
    drawn row by row in float32, zero b."""
    generator = SplitMix64(seed)
    layers = []
    for fan_in, outputs in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(np.float32(6) / np.float32(fan_in + outputs), dtype=np.float32)
        weights = np.empty((outputs, fan_in), dtype=np.float32)
        for o in range(outputs):
            for k in range(fan_in):
                weights[o, k] = (np.float32(2) * generator.next_unit() - np.float32(1)) * limit
        layers.append((weights, np.zeros(outputs, dtype=np.float32)))
    return layers


def batch_order(train_count, batch_size, steps, seed):
    """Trainer.run's batches: one generator seeded seed + 1 reshuffles the (already shuffled)
    order whenever the next batch would run past its end. Yields index lists."""
    order = list(range(train_count))
    generator = SplitMix64(seed + 1)
    cursor = train_count
    for _ in range(steps):
        if cursor + batch_size > train_count:
            generator.shuffle(order)
            cursor = 0
        yield order[cursor:cursor + batch_size]
        cursor += batch_size
