import Foundation
import NaturalGradient
import NaturalGradientTestSupport

/// One point of a training curve.
public struct TrainRecord: Sendable {
    /// Steps taken.
    public var step: Int
    /// Training time so far in seconds (the steps only, not the loss evaluations).
    public var seconds: Double
    /// Mean cross-entropy over the whole training set.
    public var trainLoss: Double
}

/// One run of one method with one setting.
public struct TrainRun: Sendable {
    /// The method trained with.
    public var method: TrainMethod
    /// The setting ("lr=0.1"), empty for methods without a grid.
    public var variant: String
    /// The loss after every step, step 0 (the initial parameters) first.
    public var records: [TrainRecord]
    /// The share of the test set classified correctly at the end.
    public var testAccuracy: Double
    /// Seconds of the untimed warm-up before the timed steps: building the programs and
    /// (on PoCL) compiling each launch shape, plus the warm-up steps' own work (0 for the
    /// host-only first-order methods).
    public var warmupSeconds: Double = 0
    /// Programs compiled or loaded from the disk cache during the timed steps: 0 when the
    /// warm-up built every program the steps use (a launch plan a step makes from a program
    /// already in the context's memory cache is not a build).
    public var programBuildsInTimedSteps = 0
    /// Bytes this rank received in collectives during the timed steps (0 in one process;
    /// the warm-up's collectives are not counted).
    public var bytesReceivedInTimedSteps = 0
    /// The first record at or below the threshold, if any.
    public func firstBelow(_ threshold: Double) -> TrainRecord? { records.first { $0.trainLoss <= threshold } }
    /// The last record's training loss.
    public var finalLoss: Double { records.last?.trainLoss ?? .nan }
    /// Whether the loss went down from the first record to the last.
    public var improved: Bool { finalLoss < (records.first?.trainLoss ?? .nan) }
}

/// Trains the MLP with each method on the same data, initial parameters and batch order.
public struct Trainer {
    let model: MLP
    let data: DigitsData
    let steps: Int
    let batchSize: Int
    let seed: UInt64
    let context: Context
    /// A run stops early once the training loss is below this (nothing left to see), or
    /// when it diverges (non-finite, or ten times the initial loss).
    let stopBelow: Double
    let progress: ProgressBar
    /// The data-parallel job this rank is part of, nil in one process.
    let parallel: (any DataParallel)?

    /// A trainer of `model` on `data`: `steps` steps of `batchSize` samples (at most the
    /// training set), the initial parameters and batch order from `seed`. With `parallel`,
    /// this rank trains on its share of every global batch of `batchSize` (at least one
    /// sample per rank) and every rank takes the same steps.
    public init(
        model: MLP, data: DigitsData, steps: Int, batchSize: Int, seed: UInt64, context: Context, stopBelow: Double,
        progress: ProgressBar, parallel: (any DataParallel)? = nil
    ) {
        self.model = model
        self.data = data
        self.steps = steps
        self.batchSize = batchSize
        self.seed = seed
        self.context = context
        self.stopBelow = stopBelow
        self.progress = progress
        self.parallel = parallel
    }

    /// Runs one method with one learning rate (ignored by natural-gradient methods).
    public func run(_ method: TrainMethod, learningRate: Double, label: String) throws -> TrainRun {
        var parameters = model.initialParameters(seed: seed)
        if let parallel, batchSize < parallel.size {
            throw NaturalGradientError.invalidArgument(
                name: "batchSize", reason: "\(batchSize) is fewer samples than the \(parallel.size) ranks (each needs one)")
        }
        let warmupSeconds = try warmUp(method, learningRate: learningRate, parameters: parameters)
        var rule = try makeRule(method, learningRate: learningRate)
        let buildsBefore = context.programCacheStatistics
        let bytesBefore = parallel?.bytesReceived ?? 0
        var order = Array(0..<data.trainCount)
        var generator = SplitMix64(seed: seed &+ 1)
        var cursor = order.count
        let features = DigitsData.features
        let clock = ContinuousClock()
        var seconds = 0.0
        var records = [TrainRecord(step: 0, seconds: 0, trainLoss: trainLoss(parameters))]
        progress.start(label, total: steps)
        for step in 1...steps {
            if cursor + batchSize > order.count {
                order.shuffle(using: &generator)
                cursor = 0
            }
            // Every rank draws the same global batch; each takes its share.
            let share = parallel?.share(of: batchSize) ?? 0..<batchSize
            let indices = order[(cursor + share.lowerBound)..<(cursor + share.upperBound)]
            cursor += batchSize
            let batch = Batch(
                inputs: indices.flatMap { data.trainInputs[($0 * features)..<(($0 + 1) * features)] },
                labels: indices.map { data.trainLabels[$0] }, drawsAround: (share.lowerBound, batchSize - share.upperBound))
            let start = clock.now
            try rule.step(&parameters, batch: batch)
            seconds += (clock.now - start).seconds
            try parallel?.requireIdentical(parameters, step: step)
            let loss = trainLoss(parameters)
            records.append(TrainRecord(step: step, seconds: seconds, trainLoss: loss))
            progress.update(step, loss: loss)
            if !loss.isFinite || loss > 10 * records[0].trainLoss || loss < stopBelow { break }
        }
        progress.finish(records.last?.trainLoss ?? .nan, seconds: seconds)
        let builds = context.programCacheStatistics
        let accuracy = model.accuracy(parameters, inputs: data.testInputs, labels: data.testLabels)
        return TrainRun(
            method: method, variant: method.learningRates.count > 1 ? "lr=\(learningRate)" : "", records: records,
            testAccuracy: accuracy, warmupSeconds: warmupSeconds,
            programBuildsInTimedSteps: (builds.diskHits + builds.compiles) - (buildsBefore.diskHits + buildsBefore.compiles),
            bytesReceivedInTimedSteps: (parallel?.bytesReceived ?? 0) - bytesBefore)
    }

    /// Steps of the untimed warm-up: the first step (factors, inverses, the first solve)
    /// and a second (momentum, and the steps between refreshes) use every kernel and launch
    /// shape the later steps use.
    static let warmupSteps = 2

    private func makeRule(_ method: TrainMethod, learningRate: Double) throws -> any StepRule {
        switch method {
        case .sgd: MomentumSGD(model: model, learningRate: learningRate, parallel: parallel)
        case .adam: Adam(model: model, learningRate: learningRate, parallel: parallel)
        default: try NaturalGradientRule(model: model, method: method, context: context, seed: seed, parallel: parallel)
        }
    }

    /// The one-time cost kept out of the timed steps: `warmupSteps` steps of a throwaway
    /// rule on a copy of the parameters, on the first batch of the unshuffled order, so
    /// every program is built and every launch shape compiled (PoCL compiles per shape at
    /// first launch: 3.2 s of a 3.7 s first K-FAC step on a fresh machine) before the clock
    /// starts. The timed run gets a fresh rule, so the warm-up leaves no state behind and
    /// the trajectory is the same as without it. Returns its seconds (0 for host-only rules).
    private func warmUp(_ method: TrainMethod, learningRate: Double, parameters: [Float]) throws -> Double {
        guard method != .sgd, method != .adam else { return 0 }
        let clock = ContinuousClock()
        let start = clock.now
        var rule = try makeRule(method, learningRate: learningRate)
        var copy = parameters
        let features = DigitsData.features
        // In a data-parallel job every rank warms up on its share (the steps' collectives
        // pair up across the ranks as the timed steps' do).
        let share = parallel?.share(of: batchSize) ?? 0..<batchSize
        let batch = Batch(
            inputs: Array(data.trainInputs[(share.lowerBound * features)..<(share.upperBound * features)]),
            labels: Array(data.trainLabels[share]), drawsAround: (share.lowerBound, batchSize - share.upperBound))
        for _ in 0..<Self.warmupSteps { try rule.step(&copy, batch: batch) }
        try context.finish()
        return (clock.now - start).seconds
    }

    private func trainLoss(_ parameters: [Float]) -> Double {
        model.loss(parameters, inputs: data.trainInputs, labels: data.trainLabels)
    }
}

/// A one-line progress bar on standard error: redrawn in place on a terminal, one line per
/// run otherwise (so logs stay readable).
public final class ProgressBar {
    /// Whether lines are redrawn in place (standard error is a terminal).
    public let interactive: Bool
    private var label = ""
    private var total = 1
    private var lastDrawn = -1

    /// Whether anything is written (off on the ranks after the first of a data-parallel job).
    public let enabled: Bool

    /// A progress bar, redrawn in place when `interactive`; silent unless `enabled`.
    public init(interactive: Bool = isatty(STDERR_FILENO) != 0, enabled: Bool = true) {
        self.interactive = interactive
        self.enabled = enabled
    }

    func start(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
        lastDrawn = -1
        if interactive { draw(0, loss: .nan) }
    }

    func update(_ step: Int, loss: Double) {
        guard interactive else { return }
        let cell = step * 30 / total
        if cell != lastDrawn || step == total { draw(step, loss: loss) }
    }

    func finish(_ loss: Double, seconds: Double) {
        let line = String(format: "%@ done: train loss %.4f, %.2f s", label, loss, seconds)
        write(interactive ? "\r\u{1B}[K" + line + "\n" : line + "\n")
    }

    private func draw(_ step: Int, loss: Double) {
        let filled = step * 30 / total
        lastDrawn = filled
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        let lossText = loss.isFinite ? String(format: "%.4f", loss) : "-"
        write("\r\u{1B}[K\(label) [\(bar)] \(step)/\(total) loss \(lossText)")
    }

    private func write(_ text: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(text.utf8))
    }
}
