import Foundation

// The measurement code `ngrad bench` and the benchmark suite share: warm-up then timed
// runs, median and spread, and what else the (shared, noisy) machine did meanwhile.

/// Wall times of the repeated runs of one operation by one contestant.
public struct Timing: Sendable {
    /// Seconds per timed run, in the order they ran (warm-up runs excluded).
    public var seconds: [Double]
    /// What else the machine did while the timed runs ran (nil where /proc is unreadable).
    public var interference: Interference?

    /// Wraps measured seconds and their interference.
    public init(seconds: [Double], interference: Interference?) {
        self.seconds = seconds
        self.interference = interference
    }

    /// The median of `seconds` (the mean of the middle two for an even count); NaN if empty.
    public var median: Double {
        let sorted = seconds.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
    /// The fastest run; NaN if empty.
    public var min: Double { seconds.min() ?? .nan }
    /// The slowest run; NaN if empty.
    public var max: Double { seconds.max() ?? .nan }
}

/// Runs `body` `warmup` times untimed, then `repetitions` times timed, and returns the
/// wall times. `body` gets the run's index (warm-up runs first, counting from 0), so it can
/// rotate between input copies. Device work must end with `context.finish()` inside
/// `body`, so each timed run covers the whole operation.
public func measure(warmup: Int, repetitions: Int, _ body: (Int) throws -> Void) throws -> Timing {
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
public func measureInterleaved(
    warmup: Int, repetitions: Int, _ bodies: [(times: Int, body: (Int) throws -> Void)]
) throws -> [Timing] {
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
    /// The duration in seconds, as a Double.
    public var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) * 1e-18
    }
}

/// CPU time on the whole machine (/proc/stat) and in this process (getrusage), to tell
/// how much other work competed with a measurement on this shared machine.
public struct CPUCounters: Sendable {
    /// Busy seconds of every CPU together (user, nice, system, irq, softirq).
    public var machineBusy: Double
    /// Seconds the hypervisor ran someone else while a CPU of ours wanted to run.
    public var steal: Double
    /// This process's user + system seconds (all its threads: PoCL's and OpenBLAS's too).
    public var process: Double

    /// The counters now; nil where /proc/stat or getrusage cannot be read.
    public static func read() -> CPUCounters? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 8 else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard ticks > 0, let usage = resourceUsage() else { return nil }
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
public struct Interference: Encodable, Sendable {
    /// CPU time of other processes / capacity.
    public let otherProcesses: Double
    /// Hypervisor steal time / capacity.
    public let steal: Double
    /// Wall time x CPUs in seconds; below about half a second the tick-granular
    /// /proc/stat counters say little.
    public let capacitySeconds: Double

    /// The interference between two readings `wall` seconds apart; nil without both.
    public init?(from before: CPUCounters?, to after: CPUCounters?, wall: Double) {
        guard let before, let after, wall > 0 else { return nil }
        let capacity = wall * Double(ProcessInfo.processInfo.activeProcessorCount)
        let others = (after.machineBusy - before.machineBusy) - (after.process - before.process)
        capacitySeconds = capacity
        otherProcesses = Swift.max(0, others) / capacity
        steal = Swift.max(0, after.steal - before.steal) / capacity
    }

    /// The share of the machine that other work took (processes and steal).
    public var total: Double { otherProcesses + steal }
}

/// The process's peak resident set size in bytes (getrusage; PoCL's buffers live here
/// too); 0 where it cannot be read.
public func peakResidentBytes() -> Int {
    guard let usage = resourceUsage() else { return 0 }
    return usage.ru_maxrss * 1024
}

/// `getrusage(RUSAGE_SELF)`, nil on failure.
private func resourceUsage() -> rusage? {
    var usage = rusage()
    #if canImport(Glibc)
        let who = __rusage_who_t(RUSAGE_SELF.rawValue)
    #else
        let who = RUSAGE_SELF
    #endif
    return getrusage(who, &usage) == 0 ? usage : nil
}
