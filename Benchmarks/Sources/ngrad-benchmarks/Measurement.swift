import Foundation

/// Wall times of the repeated runs of one operation by one contestant.
struct Timing {
    /// Seconds per timed run, in the order they ran (warm-up runs excluded).
    var seconds: [Double]
    /// What else the machine did while the timed runs ran (nil where /proc is unreadable).
    var interference: Interference?

    var median: Double {
        let sorted = seconds.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    var min: Double { seconds.min() ?? .nan }
    var max: Double { seconds.max() ?? .nan }
}

/// Runs `body` `warmup` times untimed, then `repetitions` times timed, and returns the
/// wall times. `body` gets the run's index (warm-up runs first, counting from 0), so it can
/// rotate between input copies. Device work must end with `context.finish()` inside
/// `body`, so each timed run covers the whole operation.
func measure(warmup: Int, repetitions: Int, _ body: (Int) throws -> Void) throws -> Timing {
    for run in 0..<warmup { try body(run) }
    let clock = ContinuousClock()
    var seconds: [Double] = []
    seconds.reserveCapacity(repetitions)
    let before = CPUCounters.read()
    let start = clock.now
    for run in 0..<repetitions {
        let elapsed = try clock.measure { try body(warmup + run) }
        seconds.append(elapsed.seconds)
    }
    let wall = (clock.now - start).seconds
    let after = CPUCounters.read()
    return Timing(seconds: seconds, interference: Interference(from: before, to: after, wall: wall))
}

/// Like `measure`, for several bodies timed in turn within each run (body 0, body 1, ...,
/// then the next run), so a slow drift of the machine affects them alike and their times
/// can be compared run by run. Body i runs `times` times per run, each timed on its own
/// (a short operation can so gather more samples beside long ones); it gets a running
/// index (warm-up runs first) for rotating input copies. Returns one `Timing` per body;
/// they share the interference of the whole timed span.
func measureInterleaved(warmup: Int, repetitions: Int, _ bodies: [(times: Int, body: (Int) throws -> Void)]) throws
    -> [Timing]
{
    for run in 0..<warmup {
        for entry in bodies {
            for k in 0..<entry.times { try entry.body(run * entry.times + k) }
        }
    }
    let clock = ContinuousClock()
    var seconds = [[Double]](repeating: [], count: bodies.count)
    let before = CPUCounters.read()
    let start = clock.now
    for run in warmup..<(warmup + repetitions) {
        for (index, entry) in bodies.enumerated() {
            for k in 0..<entry.times {
                let elapsed = try clock.measure { try entry.body(run * entry.times + k) }
                seconds[index].append(elapsed.seconds)
            }
        }
    }
    let wall = (clock.now - start).seconds
    let interference = Interference(from: before, to: CPUCounters.read(), wall: wall)
    return seconds.map { Timing(seconds: $0, interference: interference) }
}

extension Duration {
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) * 1e-18
    }
}

/// CPU time on the whole machine (/proc/stat) and in this process (getrusage), to tell
/// how much other work competed with a measurement on this shared machine.
struct CPUCounters {
    /// Busy seconds of every CPU together (user, nice, system, irq, softirq).
    var machineBusy: Double
    /// Seconds the hypervisor ran someone else while a CPU of ours wanted to run.
    var steal: Double
    /// This process's user + system seconds (all its threads: PoCL's and OpenBLAS's too).
    var process: Double

    static func read() -> CPUCounters? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 8 else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard ticks > 0 else { return nil }
        var usage = rusage()
        #if canImport(Glibc)
            let who = __rusage_who_t(RUSAGE_SELF.rawValue)
        #else
            let who = RUSAGE_SELF
        #endif
        guard getrusage(who, &usage) == 0 else { return nil }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) * 1e-6 }
        return CPUCounters(
            machineBusy: (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / ticks,
            steal: fields[7] / ticks,
            process: seconds(usage.ru_utime) + seconds(usage.ru_stime))
    }
}

/// Competing work during a measurement, as fractions of the machine's capacity
/// (wall time x CPUs). /proc/stat counts in clock ticks (10 ms), so short measurements
/// read coarsely.
struct Interference: Encodable {
    /// CPU time of other processes / capacity.
    let otherProcesses: Double
    /// Hypervisor steal time / capacity.
    let steal: Double
    /// Wall time x CPUs in seconds; below about half a second the tick-granular
    /// /proc/stat counters say little.
    let capacitySeconds: Double

    init?(from before: CPUCounters?, to after: CPUCounters?, wall: Double) {
        guard let before, let after, wall > 0 else { return nil }
        let capacity = wall * Double(ProcessInfo.processInfo.activeProcessorCount)
        let others = (after.machineBusy - before.machineBusy) - (after.process - before.process)
        capacitySeconds = capacity
        otherProcesses = Swift.max(0, others) / capacity
        steal = Swift.max(0, after.steal - before.steal) / capacity
    }

    /// The share of the machine that other work took (processes and steal).
    var total: Double { otherProcesses + steal }
}

/// Deterministic pseudo-random inputs (SplitMix64), fast enough for 10^8 values.
struct InputGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    private mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// `count` values uniform in [-1, 1).
    mutating func uniform(count: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                // The top 24 bits give every float in [0, 1) on a 2^-24 grid.
                let unit = Float(next() >> 40) * 0x1p-24
                buffer[index] = 2 * unit - 1
            }
            initialized = count
        }
    }
}

/// `‖a − b‖₂ / ‖b‖₂` over the elements `indices` yields (accumulated in Double); infinite
/// when `b` is zero there and `a` is not, NaN when either holds a NaN.
func relativeDifference<S: Sequence<Int>>(_ a: [Float], _ b: [Float], over indices: S) -> Double {
    var difference = 0.0
    var reference = 0.0
    for index in indices {
        let delta = Double(a[index]) - Double(b[index])
        difference += delta * delta
        reference += Double(b[index]) * Double(b[index])
    }
    if difference == 0 { return 0 }
    return (difference / reference).squareRoot()
}

/// Indices of the upper triangle (diagonal included) of a row-major n x n matrix.
func upperTriangle(_ n: Int) -> some Sequence<Int> {
    (0..<n).lazy.flatMap { row in (row..<n).lazy.map { row * n + $0 } }
}

/// The largest `|F[i][j] − F[j][i]|` of a row-major n x n matrix (0 for a symmetric one).
func asymmetry(_ matrix: [Float], _ n: Int) -> Float {
    var worst: Float = 0
    for row in 0..<n {
        for column in (row + 1)..<n {
            let delta = abs(matrix[row * n + column] - matrix[column * n + row])
            if delta.isNaN { return .nan }
            worst = max(worst, delta)
        }
    }
    return worst
}

// MARK: - Float64 references (an independent check on all three contestants)

/// Entries of `F = (1/N) Uᵀ U` in Float64 at `entries` (row-major indices into the P x P
/// matrix), N = M. U is row-major M x P.
func referenceAccumulation(_ u: [Float], rows m: Int, dimension p: Int, entries: [Int]) -> [Double] {
    entries.map { entry in
        let (i, j) = (entry / p, entry % p)
        var sum = 0.0
        for row in 0..<m { sum += Double(u[row * p + i]) * Double(u[row * p + j]) }
        return sum / Double(m)
    }
}

/// A spread of upper-triangle entries of a P x P matrix: the corners, the diagonal's ends
/// and `count` pseudo-random ones.
func sampledUpperEntries(_ p: Int, count: Int = 256) -> [Int] {
    var generator = InputGenerator(seed: UInt64(p))
    let corners = [0, p - 1, (p - 1) * p + p - 1, (p / 2) * p + p / 2]
    let random = generator.uniform(count: 2 * count)
    let pairs = (0..<count).map { k -> Int in
        let a = min(p - 1, Int((random[2 * k] + 1) / 2 * Float(p)))
        let b = min(p - 1, Int((random[2 * k + 1] + 1) / 2 * Float(p)))
        return min(a, b) * p + max(a, b)
    }
    return corners + pairs
}

/// `y = (1/N) Uᵀ (U x) + λx` in Float64, N = M.
func referenceImplicitProduct(_ u: [Float], rows m: Int, dimension p: Int, x: [Float], damping: Float) -> [Double] {
    var y = x.map { Double(damping) * Double($0) }
    let scale = 1 / Double(m)
    for row in 0..<m {
        var t = 0.0
        for column in 0..<p { t += Double(u[row * p + column]) * Double(x[column]) }
        t *= scale
        for column in 0..<p { y[column] += Double(u[row * p + column]) * t }
    }
    return y
}

/// `‖a − b‖₂ / ‖b‖₂` of float results `a[indices[k]]` against Float64 values `b[k]`.
func relativeDifference(_ a: [Float], at indices: [Int], from b: [Double]) -> Double {
    var difference = 0.0
    var reference = 0.0
    for (k, index) in indices.enumerated() {
        let delta = Double(a[index]) - b[k]
        difference += delta * delta
        reference += b[k] * b[k]
    }
    if difference == 0 { return 0 }
    return (difference / reference).squareRoot()
}
