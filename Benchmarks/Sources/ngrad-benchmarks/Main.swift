import ArgumentParser
import Foundation
import NaturalGradient

/// `ngrad-benchmarks`: our kernels against OpenBLAS (host CPU) and CLBlast (the same
/// OpenCL device and queue), side by side in one run.
@main
struct Benchmarks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ngrad-benchmarks",
        abstract: "Times NaturalGradient's kernels against OpenBLAS and CLBlast in one run.",
        discussion: """
            Dense Fisher accumulation F = (1/N) UᵀU at (M, P) = (256, 1024), (1024, 4096): ours vs \
            cblas_ssyrk vs CLBlastSsyrk, in GFLOP/s of M·P·(P+1) flops. Implicit product \
            y = (1/N) Uᵀ(Ux) + λx at (M, P) = (256, 16384), (1024, 65536): ours vs two SGEMV \
            (OpenBLAS, CLBlast), in GB/s of M·P·4 bytes (U read once). Solvers, λ = 1e-3: one \
            iteration of our CG, (t(cap 51) - t(cap 1))/50, against one implicit product at \
            (1024, 65536) and (512, 100000); a 50-iteration CG at (512, 100000), ours vs plain CG \
            in CBLAS calls; a Woodbury solve from a fresh factor at (512, 100000), ours vs \
            ssyrk + sgemv + LAPACKE dpotrf/dpotrs. Ratios are speed ratios: > 1 means ours is \
            faster; the CG-iteration target is a time ratio (iteration/product). Every \
            contestant's result is checked against the others and \
            a float64 reference before timing; a disagreement exits 1. Host reference points \
            (SGEMM, one SGEMV, a copy) are timed at the end for context.
            """,
        version: NaturalGradientVersion.string
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "OpenCL device for ours and CLBlast: an index from 'ngrad devices', 'gpu', 'cpu', or part of the name.",
            discussion: "Defaults to $NGRAD_DEVICE, else the first GPU, else the first CPU device."))
    var device: String?

    @Option(name: .long, help: "Timed runs per operation, size and contestant.")
    var repetitions = 10

    @Option(name: .long, help: "Untimed warm-up runs before the timed ones.")
    var warmup = 2

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Timed runs of the solver rows (cg-iteration, cg-50, woodbury-solve).",
            discussion: "Fewer than --repetitions by default, as a run takes up to 2.5 s; "
                + "they get min(--warmup, 1) warm-up runs."))
    var solverRepetitions = 7

    @Option(name: .long, help: ArgumentHelp("Also write every measurement to this file as JSON.", valueName: "file"))
    var json: String?

    mutating func validate() throws {
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1, got \(repetitions)") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        guard solverRepetitions >= 1 else {
            throw ValidationError("--solver-repetitions must be at least 1, got \(solverRepetitions)")
        }
    }

    func run() throws {
        let selector = try DeviceSelector.resolve(explicit: device, environment: ProcessInfo.processInfo.environment)
        let context = try Context(selector: selector)
        var settings = Settings(warmup: warmup, repetitions: repetitions)
        settings.solverWarmup = min(warmup, 1)
        settings.solverRepetitions = solverRepetitions
        let cpu = hostCPUName()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let initialLoad = loadAverage()

        let device = context.device
        print("device:   \(device.name) (\(device.kind.rawValue), \(device.computeUnits) compute units)")
        print("platform: \(context.device.platform.version), driver \(context.device.driverVersion)")
        print("host:     \(cpu), \(cores) cores")
        print("OpenBLAS: \(OpenBLAS.configuration) (core \(OpenBLAS.coreName), \(OpenBLAS.threads) threads)")
        print("load:     \(initialLoad) (1, 5, 15 min) at start")
        print(
            "runs:     \(warmup) warm-up + \(repetitions) timed per contestant, "
                + "\(settings.copies) input copies rotated")
        print(
            "          solver rows: \(settings.solverWarmup) warm-up + \(settings.solverRepetitions) timed runs "
                + "(fewer, as a run takes up to 2.5 s; cg-iteration times 4 products per run)")
        print("")

        var cases: [CaseResult] = []
        for (m, p) in [(256, 1024), (1024, 4096)] {
            progress("accumulation M=\(m) P=\(p)")
            cases.append(try benchmarkAccumulation(context: context, rows: m, dimension: p, settings: settings))
        }
        for (m, p) in [(256, 16384), (1024, 65536)] {
            progress("implicit product M=\(m) P=\(p)")
            cases.append(try benchmarkImplicitProduct(context: context, rows: m, dimension: p, settings: settings))
        }

        do {
            progress("CG iteration vs implicit product M=1024 P=65536")
            let problem = try SolverProblem(context: context, rows: 1024, dimension: 65536, copies: settings.copies)
            cases.append(try benchmarkCGIteration(context: context, problem: problem, settings: settings))
        }
        do {
            let problem = try SolverProblem(context: context, rows: 512, dimension: 100_000, copies: settings.copies)
            progress("CG iteration vs implicit product M=512 P=100000")
            cases.append(try benchmarkCGIteration(context: context, problem: problem, settings: settings))
            progress("50-iteration CG M=512 P=100000")
            cases.append(try benchmarkCGSolve(context: context, problem: problem, settings: settings))
            progress("Woodbury solve M=512 P=100000")
            cases.append(try benchmarkWoodbury(context: context, problem: problem, settings: settings))
        }

        progress("host reference points (OpenBLAS alone)")
        let ceilings = try measureHostCeilings(settings: settings)

        var targets = Target.all
        for index in targets.indices {
            targets[index].measured = targets[index].evaluate(in: cases)
        }

        let finalLoad = loadAverage()
        print("load:     \(finalLoad) (1, 5, 15 min) at end")
        print("")
        print(renderTable(cases))
        print("")
        print(renderChecks(cases))
        print("")
        print(renderTargets(targets))
        print("")
        print(renderCeilings(ceilings))

        if let json {
            let report = Report(
                date: ISO8601DateFormatter().string(from: Date()), device: context.device.name,
                loadAverageAtStart: initialLoad, loadAverageAtEnd: finalLoad,
                platform: context.device.platform.version, driverVersion: context.device.driverVersion,
                computeUnits: context.device.computeUnits, hostCPU: cpu, hostCores: cores,
                openBLAS: OpenBLAS.configuration, openBLASCore: OpenBLAS.coreName, openBLASThreads: OpenBLAS.threads,
                warmup: warmup, repetitions: repetitions, solverWarmup: settings.solverWarmup,
                solverRepetitions: settings.solverRepetitions, inputCopies: settings.copies, cases: cases,
                targets: targets, hostCeilings: ceilings)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(
                positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            try encoder.encode(report).write(to: URL(fileURLWithPath: json))
            print("\nwrote \(json)")
        }

        let failed = cases.flatMap { result in
            result.checks.filter { !$0.passed }.map {
                "\(result.operation.rawValue) \(result.rows)x\(result.dimension): \($0.name)"
            }
        }
        if !failed.isEmpty {
            throw MismatchError(checks: failed)
        }
    }
}

/// Contestants disagreed: a broken peer call or a broken kernel; the timings mean nothing.
struct MismatchError: Error, CustomStringConvertible {
    let checks: [String]
    var description: String { "results disagree: " + checks.joined(separator: "; ") }
}

/// A progress line on standard error, so the table on standard output stays clean.
func progress(_ message: String) {
    FileHandle.standardError.write(Data("running \(message)...\n".utf8))
}

/// The host CPU's model name from /proc/cpuinfo, or "unknown CPU".
func hostCPUName() -> String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
    for line in text.split(separator: "\n") where line.hasPrefix("model name") {
        if let colon = line.firstIndex(of: ":") {
            return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
    }
    return "unknown CPU"
}

/// The first three fields of /proc/loadavg (the machine is shared: a high load means the
/// timings are noisy), or "unknown".
func loadAverage() -> String {
    guard let text = try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8) else { return "unknown" }
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}
