import COpenBLAS
import Foundation
import NaturalGradientTestSupport
// The launch plans themselves, timed bare (see the comment on ImplicitProduct).
@_spi(Benchmarks) import NaturalGradient

// The solver rows: `(F + λI) x = b` with F = (1/N) UᵀU, N = M, λ = `Settings.damping`,
// U and b uniform in [-1, 1). With M < P, F has rank M and its non-zero eigenvalues lie
// near P/(3M) (about 65 at (512, 100000)): b's part outside U's row space (all but about
// M/P of it) is divided by λ, so x ≈ b/λ, and the condition number of F + λI is about
// 7.5e4. In float32 that bounds how closely two correct solvers agree (about κ·ε ≈ 1e-3
// for CG); the Woodbury checks also compare x − b/λ, the part that U's rows determine,
// where an error in the Gram matrix or the small solve would not hide behind b/λ.

/// One solver problem: `copies` copies of U (host and device) and one right-hand side b.
final class SolverProblem {
    let rows: Int
    let dimension: Int
    let hosts: [[Float]]
    let factors: [CurvatureFactor<Float>]
    let b: [Float]
    private var reference: (damping: Float, solution: [Double], gram: [Double])?

    init(context: Context, rows m: Int, dimension p: Int, copies: Int) throws {
        rows = m
        dimension = p
        var generator = SplitMix64(seed: UInt64(0x5017_0000 + m * 65_537 + p))
        let hosts = (0..<copies).map { _ in generator.symmetricFloats(count: m * p) }
        self.hosts = hosts
        factors = try hosts.map {
            try CurvatureFactor(matrix: Buffer(context: context, copying: $0), rows: m, dimension: p, samples: m)
        }
        b = generator.symmetricFloats(count: p)
    }

    /// Bytes of U (one pass).
    var matrixBytes: Double { Double(rows) * Double(dimension) * Double(MemoryLayout<Float>.size) }

    /// `‖b − (F + λI) x‖ / ‖b‖` with the product in float64 (U from copy 0).
    func residual(_ x: [Float], damping: Float) -> Double {
        let product = referenceImplicitProduct(
            hosts[0], rows: rows, dim: dimension, samples: rows, xs: [x], damping: Double(damping))[0]
        return relativeError(product, b.map(Double.init))
    }

    /// The float64 solution of `(F + λI) x = b` (U from copy 0) by the Woodbury identity
    /// (`cblas_dsyrk`, `cblas_dgemv`, `LAPACKE_dpotrf/dpotrs`) and the Gram matrix
    /// `(1/N) U Uᵀ` (row-major, upper triangle) on the way; computed once per λ.
    func float64Solution(damping: Float) throws -> (solution: [Double], gram: [Double]) {
        if let reference, reference.damping == damping { return (reference.solution, reference.gram) }
        let (m, p) = (blasint(rows), blasint(dimension))
        let u = hosts[0].map(Double.init)
        var gram = [Double](repeating: 0, count: rows * rows)
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, m, p, 1 / Double(rows), u, p, 0, &gram, m)
        var z = [Double](repeating: 0, count: rows)
        let b = self.b.map(Double.init)
        cblas_dgemv(CblasRowMajor, CblasNoTrans, m, p, 1, u, p, b, 1, 0, &z, 1)
        var matrix = gram
        for row in 0..<rows { matrix[row * rows + row] += Double(damping) }
        let lower = CChar(UInt8(ascii: "L"))
        var info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, lower, m, &matrix, m)
        guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotrf (float64 reference)", info: info) }
        info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, lower, m, 1, matrix, m, &z, m)
        guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotrs (float64 reference)", info: info) }
        var x = b
        let lambda = Double(damping)
        cblas_dgemv(CblasRowMajor, CblasTrans, m, p, -1 / Double(rows) / lambda, u, p, z, 1, 1 / lambda, &x, 1)
        reference = (damping, x, gram)
        return (x, gram)
    }

    /// `x − b/λ` in float64: the part of the solution in U's row space.
    func rowSpacePart(_ x: [Float], damping: Float) -> [Double] {
        let inverse = 1 / Double(damping)
        return (0..<dimension).map { Double(x[$0]) - Double(b[$0]) * inverse }
    }
}

/// A check that a CG solve ran exactly `expected` iterations and stopped at the cap: its
/// value counts the iterations missing or extra, plus 1 for another stop reason.
func iterationCheck(_ report: ColumnReport, expected: Int, _ what: String) -> Check {
    Check(
        name: "\(what): ran \(report.iterations) iterations, stopped by \(report.status.rawValue)",
        value: Double(abs(report.iterations - expected)) + (report.status == .iterationCap ? 0 : 1), tolerance: 0)
}

/// One iteration of our CG against one implicit product, both ours: a CG iteration's
/// time is `(t(cap 51) − t(cap 1)) / 50`, from solves with iteration caps 51 and 1 whose
/// runs are paired (product, cap 1, cap 51 in turn within each run), so set-up, the
/// first product and the final residual product cancel. Counted as M·P·4 bytes (U read
/// once) per iteration and per product.
func benchmarkCGIteration(context: Context, problem: SolverProblem, settings: Settings) throws -> CaseResult {
    let (m, p) = (problem.rows, problem.dimension)
    let damping = settings.damping
    let copies = problem.factors.count
    let curvatures = try problem.factors.map { try ImplicitCurvature(factor: $0) }
    let cg = try ConjugateGradient<Float>(context: context)
    let product = try ImplicitProduct<Float>(context: context)
    let b = try VectorBatch<Float>(context: context, vectors: [problem.b])
    let y = try VectorBatch<Float>(context: context, dimension: p, count: 1)
    let (long, short) = (51, 1)
    let longOptions = ConjugateGradientOptions(tolerance: 0, maxIterations: long)
    let shortOptions = ConjugateGradientOptions(tolerance: 0, maxIterations: short)

    // One run of each on copy 0, checked before anything is timed.
    try product.apply(problem.factors[0], b, damping: damping, into: y)
    try context.finish()
    let productResult = try y.buffer.download(0..<p)
    let reference = referenceImplicitProduct(
        problem.hosts[0], rows: m, dim: p, samples: m, xs: [problem.b], damping: Double(damping))[0]
    let shortReports = try cg.solve(curvatures[0], b, damping: damping, options: shortOptions).reports
    let longReports = try cg.solve(curvatures[0], b, damping: damping, options: longOptions).reports
    let checks = [
        Check(
            name: "ours product vs float64",
            value: relativeError(Array(productResult.prefix(p)), reference),
            tolerance: settings.tolerance),
        iterationCheck(shortReports[0], expected: short, "ours CG cap \(short)"),
        iterationCheck(longReports[0], expected: long, "ours CG cap \(long)"),
    ]

    // The product is short and noisier, so it runs `productsPerRun` times in each run.
    let productsPerRun = 4
    let timings = try measureInterleaved(
        warmup: settings.solverWarmup, repetitions: settings.solverRepetitions,
        [
            (
                productsPerRun,
                { run in
                    try product.apply(problem.factors[run % copies], b, damping: damping, into: y)
                    try context.finish()
                }
            ),
            (1, { run in _ = try cg.solve(curvatures[run % copies], b, damping: damping, options: shortOptions) }),
            (1, { run in _ = try cg.solve(curvatures[run % copies], b, damping: damping, options: longOptions) }),
        ])
    let (productTiming, shortTiming, longTiming) = (timings[0], timings[1], timings[2])
    let iterations = Double(long - short)
    let iterationTiming = Timing(
        seconds: zip(longTiming.seconds, shortTiming.seconds).map { ($0 - $1) / iterations },
        interference: longTiming.interference)

    // A solve with cap k does k + 1 products: the first direction's, k − 1 iterations' (the
    // last pass needs no product), and the final true residual's.
    let bytes = problem.matrixBytes
    var result = CaseResult(
        operation: .cgIteration, rows: m, dimension: p, work: bytes,
        contestants: [
            ContestantResult(
                .ours, label: "ours CG iteration",
                routine: "ConjugateGradient.solve per iteration: (t(cap \(long)) - t(cap \(short)))/\(long - short)",
                timing: iterationTiming, work: bytes),
            ContestantResult(
                .oursProduct, routine: "ImplicitProduct.apply (k = 1)", timing: productTiming, work: bytes),
            ContestantResult(
                .oursPart, label: "ours CG cap \(long)",
                routine: "ConjugateGradient.solve, tolerance 0, maxIterations \(long)", timing: longTiming,
                work: Double(long + 1) * bytes),
            ContestantResult(
                .oursPart, label: "ours CG cap \(short)",
                routine: "ConjugateGradient.solve, tolerance 0, maxIterations \(short)", timing: shortTiming,
                work: Double(short + 1) * bytes),
        ],
        checks: checks)
    result.notes = [
        "'ours CG iteration' = (t(cap \(long)) - t(cap \(short)))/\(long - short) per paired run, median over runs "
            + "(\(productsPerRun) products per run); "
            + String(
                format: "time of 1 iteration / 1 product = %.3f (target <= 1.15)", result.timeRatio(over: .oursProduct))
    ]
    return result
}

/// A 50-iteration CG solve (tolerance 0, x0 = 0): ours (`ConjugateGradient.solve`, 51
/// products: the first direction's, 49 iterations' (the 50th pass needs none), the final
/// residual's) against plain CG
/// in CBLAS calls over OpenBLAS (50 products, two SGEMV each). Counted as 50·M·P·4 bytes
/// (U read once per iteration).
func benchmarkCGSolve(
    context: Context, problem: SolverProblem, settings: Settings, iterations: Int = 50
) throws
    -> CaseResult
{
    let (m, p) = (problem.rows, problem.dimension)
    let damping = settings.damping
    let alpha = 1 / Float(m)
    let copies = problem.factors.count
    let curvatures = try problem.factors.map { try ImplicitCurvature(factor: $0) }
    let cg = try ConjugateGradient<Float>(context: context)
    let b = try VectorBatch<Float>(context: context, vectors: [problem.b])
    let options = ConjugateGradientOptions(tolerance: 0, maxIterations: iterations)
    let workspace = HostWorkspace(rows: m, dimension: p)
    var host = [Float](repeating: 0, count: p)
    var hostIterations = 0

    func runOpenBLAS(_ copy: Int) throws {
        try problem.hosts[copy].withBase { u in
            try problem.b.withBase { b in
                try host.withMutableBase { x in
                    hostIterations = OpenBLAS.conjugateGradient(
                        u, alpha: alpha, damping: damping, b: b, iterations: iterations, workspace: workspace, into: x)
                }
            }
        }
    }

    // One run of each on copy 0, checked before anything is timed.
    let (solution, reports) = try cg.solve(curvatures[0], b, damping: damping, options: options)
    let ours = try solution.buffer.download(0..<p)
    try runOpenBLAS(0)
    let exact = try problem.float64Solution(damping: damping).solution
    // Two float32 CGs agree to about κ·ε here (1e-3 measured), not to 1e-4: see the top.
    let loose = 1e-2
    let checks = [
        iterationCheck(reports[0], expected: iterations, "ours"),
        Check(
            name: "OpenBLAS CG: ran \(hostIterations) iterations", value: Double(abs(hostIterations - iterations)),
            tolerance: 0),
        Check(name: "ours vs OpenBLAS CG: x", value: relativeError(ours, host, over: 0..<p), tolerance: loose),
        Check(
            name: "ours vs float64 Woodbury solution: x", value: relativeError(ours.map(Double.init), exact),
            tolerance: loose),
        Check(
            name: "OpenBLAS CG vs float64 Woodbury solution: x",
            value: relativeError(host.map(Double.init), exact), tolerance: loose),
        .info("ours: |b - (F+λI)x|/|b| (float64 product)", problem.residual(ours, damping: damping)),
        .info("OpenBLAS CG: |b - (F+λI)x|/|b| (float64 product)", problem.residual(host, damping: damping)),
    ]

    // Interleaved (ours, OpenBLAS, ours, ...): on a shared machine the load moves within
    // seconds; timing all of ours before all of OpenBLAS's once gave 0.50x (others 50%
    // during ours, 25% during OpenBLAS's) where interleaved runs give 0.92-0.95x.
    let timings = try measureInterleaved(
        warmup: settings.solverWarmup, repetitions: settings.solverRepetitions,
        [
            (1, { run in _ = try cg.solve(curvatures[run % copies], b, damping: damping, options: options) }),
            (1, { run in try runOpenBLAS(run % copies) }),
        ])
    let (oursTiming, openBLASTiming) = (timings[0], timings[1])

    let bytes = Double(iterations) * problem.matrixBytes
    return CaseResult(
        operation: .cgSolve, rows: m, dimension: p, work: bytes,
        contestants: [
            ContestantResult(
                .ours, routine: "ConjugateGradient.solve, tolerance 0, maxIterations \(iterations)", timing: oursTiming,
                work: bytes),
            ContestantResult(
                .openBLAS, label: "OpenBLAS CG",
                routine: "CG in CBLAS: per iteration cblas_sgemv x2 + scopy, sdot x2, saxpy x3, sscal",
                timing: openBLASTiming, work: bytes),
        ],
        checks: checks,
        notes: [
            "\(iterations) iterations from x0 = 0, tolerance 0; ours does \(iterations + 1) products "
                + "(first direction, \(iterations - 1) iterations (the last pass needs none), final true residual), "
                + "OpenBLAS CG \(iterations)"
        ])
}

/// A Woodbury solve from a fresh factor, as an optimiser would call it once per step:
/// ours (`WoodburySolver(factor:)`, which forms the M x M Gram matrix on the device, then
/// `solve`) against the same mathematics in CBLAS + LAPACKE over OpenBLAS (ssyrk, sgemv,
/// dpotrf/dpotrs in float64, sgemv). Counted as M·(M+1)·P + 4·M·P + M³/3 flops (Gram
/// matrix, two matrix-vector products, Cholesky).
func benchmarkWoodbury(context: Context, problem: SolverProblem, settings: Settings) throws -> CaseResult {
    let (m, p) = (problem.rows, problem.dimension)
    let damping = settings.damping
    let alpha = 1 / Float(m)
    let copies = problem.factors.count
    let b = try VectorBatch<Float>(context: context, vectors: [problem.b])
    let workspace = HostWorkspace(rows: m, dimension: p)
    var host = [Float](repeating: 0, count: p)

    func runOurs(_ copy: Int) throws -> (VectorBatch<Float>, WoodburySolver<Float>) {
        let solver = try WoodburySolver(factor: problem.factors[copy])
        let x = try solver.solve(b, damping: damping)
        try context.finish()
        return (x, solver)
    }
    func runOpenBLAS(_ copy: Int) throws {
        try problem.hosts[copy].withBase { u in
            try problem.b.withBase { b in
                try host.withMutableBase { x in
                    try OpenBLAS.woodbury(u, alpha: alpha, damping: damping, b: b, workspace: workspace, into: x)
                }
            }
        }
    }

    // One run of each on copy 0, checked before anything is timed.
    let (solution, solver) = try runOurs(0)
    let ours = try solution.buffer.download(0..<p)
    let path = solver.lastFactorization.map { "\($0.path)" } ?? "none"
    try runOpenBLAS(0)
    let (exact, exactGram) = try problem.float64Solution(damping: damping)
    let upper = Array(upperTriangle(m))
    let exactUpper = upper.map { exactGram[$0] }
    let tolerance = settings.tolerance
    let exactPart = exact.indices.map { exact[$0] - Double(problem.b[$0]) / Double(damping) }
    let checks = [
        Check(name: "ours vs OpenBLAS: x", value: relativeError(ours, host, over: 0..<p), tolerance: tolerance),
        Check(
            name: "ours vs OpenBLAS: x - b/λ (row-space part)",
            value: relativeError(
                problem.rowSpacePart(ours, damping: damping), problem.rowSpacePart(host, damping: damping)),
            tolerance: tolerance),
        Check(
            name: "ours vs float64: x", value: relativeError(ours.map(Double.init), exact), tolerance: tolerance),
        Check(
            name: "OpenBLAS vs float64: x", value: relativeError(host.map(Double.init), exact),
            tolerance: tolerance),
        Check(
            name: "ours vs float64: x - b/λ",
            value: relativeError(problem.rowSpacePart(ours, damping: damping), exactPart), tolerance: tolerance),
        Check(
            name: "OpenBLAS vs float64: x - b/λ",
            value: relativeError(problem.rowSpacePart(host, damping: damping), exactPart), tolerance: tolerance),
        Check(
            name: "ours Gram matrix (1/N)UUᵀ vs float64 (upper triangle)",
            value: relativeError(upper.map { solver.gram[$0] }, exactUpper), tolerance: tolerance),
        Check(
            name: "OpenBLAS ssyrk Gram matrix vs float64 (upper triangle)",
            value: relativeError(upper.map { Double(workspace.gram[$0]) }, exactUpper), tolerance: tolerance),
        .info("ours (\(path)): |b - (F+λI)x|/|b| (float64 product)", problem.residual(ours, damping: damping)),
        .info("OpenBLAS: |b - (F+λI)x|/|b| (float64 product)", problem.residual(host, damping: damping)),
        .info(
            "float64 solution rounded to float32: |b - (F+λI)x|/|b|",
            problem.residual(exact.map { Float($0) }, damping: damping)),
    ]

    let oursTiming = try measure(warmup: settings.solverWarmup, repetitions: settings.solverRepetitions) { run in
        _ = try runOurs(run % copies)
    }
    let openBLASTiming = try measure(warmup: settings.solverWarmup, repetitions: settings.solverRepetitions) { run in
        try runOpenBLAS(run % copies)
    }
    // Ours in two parts: the set-up alone (init downloads the Gram matrix, so it ends
    // synchronised), then solves with the set-up kept (one solver per input copy).
    let setUpTiming = try measure(warmup: settings.solverWarmup, repetitions: settings.solverRepetitions) { run in
        _ = try WoodburySolver(factor: problem.factors[run % copies])
    }
    let solvers = try problem.factors.map { try WoodburySolver(factor: $0) }
    let solveTiming = try measure(warmup: settings.solverWarmup, repetitions: settings.solverRepetitions) { run in
        _ = try solvers[run % copies].solve(b, damping: damping)
        try context.finish()
    }

    let (mm, pp) = (Double(m), Double(p))
    let flops = mm * (mm + 1) * pp + 4 * mm * pp + mm * mm * mm / 3
    return CaseResult(
        operation: .woodbury, rows: m, dimension: p, work: flops,
        contestants: [
            ContestantResult(
                .ours, routine: "WoodburySolver(factor:) + solve (Gram matrix on the device, Cholesky on the host)",
                timing: oursTiming, work: flops),
            ContestantResult(
                .openBLAS, routine: "cblas_ssyrk + cblas_sgemv + LAPACKE_dpotrf/dpotrs (float64) + cblas_sgemv",
                timing: openBLASTiming, work: flops),
            ContestantResult(
                .oursPart, label: "ours set-up only",
                routine: "WoodburySolver(factor:): chunked Gram accumulation from U in place, float64 sum",
                timing: setUpTiming, work: mm * (mm + 1) * pp),
            ContestantResult(
                .oursPart, label: "ours solve only",
                routine: "WoodburySolver.solve with the set-up kept: row dots over U and Uᵀ, float64 Cholesky",
                timing: solveTiming, work: 4 * mm * pp + mm * mm * mm / 3),
        ],
        checks: checks,
        notes: [
            "from a fresh factor each run: ours includes the chunked Gram accumulation (U read in place), "
                + "its download and the float64 Cholesky; OpenBLAS the ssyrk and the Cholesky; "
                + "'set-up only' and 'solve only' time ours' two halves on their own (rates: Gram flops; "
                + "matrix-vector + Cholesky flops)"
        ])
}

// MARK: - CG to a tolerance

/// A full CG solve to a relative residual `tolerance` from x0 = 0 (λ = 1, so it converges
/// in a few iterations): ours against the CBLAS CG with the same stopping rule (a claim of
/// the recurrence is confirmed from x by one product; a miss replaces r and restarts the
/// direction; 4 misses stop). Both report, side by side, iterations, products, the residual
/// their own confirmation measured (float32 product, float64 sums) and the true residual
/// `‖b − (F + λI)x‖/‖b‖` with a float64 product.
///
/// At (512, 100000) a float32 product of the solution is off by about 1.8e-6 ‖b‖ (t = U x
/// carries a relative rounding of about 3e-5), so no float32 CG reaches a float64 residual
/// of 1e-6 there: both floor at 1.6-2.8e-6, and how many iterations a 1e-6 run takes is
/// where the recurrence's noise lands. Tolerance 1e-5 is above that floor, where equal
/// tolerances mean equal true residuals.
func sweepCGTolerance(
    context: Context, problem: SolverProblem, settings: Settings, tolerance: Double, operation: Operation
) throws -> CaseResult {
    let (m, p) = (problem.rows, problem.dimension)
    let damping: Float = 1
    let alpha = 1 / Float(m)
    let copies = problem.factors.count
    let curvatures = try problem.factors.map { try ImplicitCurvature(factor: $0) }
    let cg = try ConjugateGradient<Float>(context: context)
    let b = try VectorBatch<Float>(context: context, vectors: [problem.b])
    let cap = 500
    let options = ConjugateGradientOptions(tolerance: tolerance, maxIterations: cap)
    let workspace = HostWorkspace(rows: m, dimension: p)
    var host = [Float](repeating: 0, count: p)
    var hostRun = OpenBLAS.ConjugateGradientRun()
    func runHost(_ copy: Int) throws {
        try problem.hosts[copy].withBase { u in
            try problem.b.withBase { b in
                try host.withMutableBase { x in
                    hostRun = OpenBLAS.conjugateGradient(
                        u, alpha: alpha, damping: damping, b: b, iterations: cap, tolerance: tolerance,
                        workspace: workspace, into: x)
                }
            }
        }
    }
    let counted = CountingCurvature(curvatures[0])
    let (solution, reports) = try cg.solve(counted, b, damping: damping, options: options)
    let ours = try solution.buffer.download(0..<p)
    try runHost(0)
    let hostTrue = problem.residual(host, damping: damping)
    let oursTrue = problem.residual(ours, damping: damping)
    let label = operation.rawValue.replacingOccurrences(of: "cg-solve-", with: "") // "1e-6"
    func scientific(_ value: Double?) -> String { value.map { String(format: "%.2e", $0) } ?? "none" }
    let sideBySide =
        "same rule (confirm from x, replace r and restart on a miss): "
        + "ours \(reports[0].iterations) iterations, \(counted.products) products, \(reports[0].status.rawValue), "
        + "own residual \(scientific(reports[0].relativeResidual)), true (float64) \(scientific(oursTrue)); "
        + "OpenBLAS CG \(hostRun.iterations) iterations, \(hostRun.products) products, "
        + "\(hostRun.converged ? "converged" : "not converged") after \(hostRun.replacements) replacements, "
        + "own residual \(scientific(hostRun.measuredResidual)), true (float64) \(scientific(hostTrue))"
    print("\(operation.rawValue) M=\(m) P=\(p): \(sideBySide)")
    // Below the float32 floor (1e-6 here) a claim may be met by the float32 confirmation
    // while the float64 residual stays near 2e-6: the true-residual checks allow 1e-5 there.
    let trueLimit = max(1e-5, 2 * tolerance)
    let checks = [
        Check(
            name: "ours converged (own confirmation)",
            value: reports[0].status == .converged ? reports[0].relativeResidual : .infinity, tolerance: tolerance),
        Check(
            name: "OpenBLAS CG converged (own confirmation)",
            value: hostRun.converged ? hostRun.measuredResidual ?? .infinity : .infinity, tolerance: tolerance),
        Check(name: "OpenBLAS CG: |b - (F+λI)x|/|b| (float64 product)", value: hostTrue, tolerance: trueLimit),
        Check(name: "ours: |b - (F+λI)x|/|b| (float64 product)", value: oursTrue, tolerance: trueLimit),
        Check(name: "ours vs OpenBLAS CG: x", value: relativeError(ours, host, over: 0..<p), tolerance: 1e-4),
        .info("ours iterations", Double(reports[0].iterations)),
        .info("ours products", Double(counted.products)),
        .info("ours own residual (float32 product)", reports[0].relativeResidual),
        .info("ours true residual (float64 product)", oursTrue),
        .info("OpenBLAS CG iterations", Double(hostRun.iterations)),
        .info("OpenBLAS CG products", Double(hostRun.products)),
        .info("OpenBLAS CG replacements", Double(hostRun.replacements)),
        .info("OpenBLAS CG own residual (float32 product)", hostRun.measuredResidual ?? .nan),
        .info("OpenBLAS CG true residual (float64 product)", hostTrue),
    ]
    let bytes = problem.matrixBytes
    return try sweepCase(
        operation, element: "float", rows: m, dimension: p, flops: 4 * Double(m) * Double(p), bytes: bytes,
        work: bytes, checks: checks,
        contenders: [
            .host(.ours, "ConjugateGradient.solve, tolerance \(label)") { run in
                _ = try cg.solve(curvatures[run % copies], b, damping: damping, options: options)
            },
            .host(.openBLAS, "CG in CBLAS to tolerance \(label), ours' confirmation rule", label: "OpenBLAS CG") {
                run in try runHost(run % copies)
            },
        ], context: context, settings: settings,
        notes: [
            "λ = 1 (condition number about 75); rates count one pass over U per solve, so they compare like for like "
                + "only through the time ratio",
            sideBySide,
        ])
}

// MARK: - CG against Jacobi PCG on an empirical-Fisher-like spectrum

/// Plain CG against Jacobi PCG (`(diag F + λ)^−0.75`, the library's default exponent) on a
/// factor built like a network's per-sample gradients: columns in blocks of very different
/// scales (log-uniform over 1e-3...1) and a block of zero columns (the weights of inputs
/// that are always 0, a digits image's blank border), b the mean row (the gradient, in U's
/// row space), λ = 1e-5, float64, both to 1e-6. CG stays in U's row space and needs at most
/// rank(U) iterations; any non-constant diagonal preconditioner mixes in the null space,
/// where the eigenvalues are λ times the preconditioner's spread (NOTES.md, issue 17), so
/// PCG needs several times more. The notes say what the automatic policy picks (it never
/// picks PCG for a factor). Counted as M·P·8 bytes per product.
func benchmarkPCGOnFisherSpectrum(
    context: Context, settings: Settings, rows m: Int, dimension p: Int
) throws
    -> CaseResult
{
    let damping = 1e-5
    var generator = SplitMix64(seed: 0x5017_0017)
    let blank = p / 8
    // One scale per block of 16 columns past the blank ones: layers and units of different size.
    var scales = [Double](repeating: 0, count: p)
    var column = blank
    while column < p {
        let scale = pow(10, Double.random(in: -3..<0, using: &generator))
        for j in column..<min(p, column + 16) { scales[j] = scale }
        column += 16
    }
    var u = [Double](repeating: 0, count: m * p)
    for i in 0..<m {
        for j in blank..<p { u[i * p + j] = scales[j] * Double.random(in: -1..<1, using: &generator) }
    }
    let b = (0..<p).map { j in (0..<m).reduce(0.0) { $0 + u[$1 * p + j] } / Double(m) }
    let factor = try CurvatureFactor<Double>(context: context, matrix: u, rows: m, dimension: p, samples: m)
    let curvature = try ImplicitCurvature(factor: factor)
    let cg = try ConjugateGradient<Double>(context: context)
    let rhs = try VectorBatch<Double>(context: context, vectors: [b])
    let plain = ConjugateGradientOptions(tolerance: 1e-6, maxIterations: 20 * m)
    var preconditioned = plain
    preconditioned.preconditioner = .jacobi(exponent: 0.75)

    let (xCG, cgReports) = try cg.solve(curvature, rhs, damping: damping, options: plain)
    let cgSolution = try xCG.buffer.download(0..<p)
    let (xPCG, pcgReports) = try cg.solve(curvature, rhs, damping: damping, options: preconditioned)
    let pcgSolution = try xPCG.buffer.download(0..<p)
    let product = referenceImplicitProduct(u, rows: m, dim: p, samples: m, xs: [cgSolution, pcgSolution], damping: damping)
    let automatic = NaturalGradientSolver.automaticMethod(for: curvature, damping: damping)
    let checks = [
        Check(
            name: "CG converged: ran \(cgReports[0].iterations) iterations (rank \(m))",
            value: cgReports[0].status == .converged ? cgReports[0].relativeResidual : .infinity, tolerance: 1e-6),
        Check(
            name: "PCG converged: ran \(pcgReports[0].iterations) iterations",
            value: pcgReports[0].status == .converged ? pcgReports[0].relativeResidual : .infinity, tolerance: 1e-6),
        Check(name: "CG: |b - (F+λI)x|/|b| (float64 host product)", value: relativeError(product[0], b), tolerance: 2e-6),
        Check(name: "PCG: |b - (F+λI)x|/|b| (float64 host product)", value: relativeError(product[1], b), tolerance: 2e-6),
        Check(
            name: "automatic method is not PCG (\(automatic.rawValue))", value: automatic == .pcg ? 1 : 0, tolerance: 0),
        .info("CG iterations", Double(cgReports[0].iterations)),
        .info("PCG (Jacobi 0.75) iterations", Double(pcgReports[0].iterations)),
    ]
    let timings = try measureInterleaved(
        warmup: settings.solverWarmup, repetitions: settings.solverRepetitions,
        [
            (1, { _ in _ = try cg.solve(curvature, rhs, damping: damping, options: plain) }),
            (1, { _ in _ = try cg.solve(curvature, rhs, damping: damping, options: preconditioned) }),
        ])
    let bytes = Double(m) * Double(p) * Double(MemoryLayout<Double>.size)
    var result = CaseResult(
        operation: .pcgFisherSpectrum, rows: m, dimension: p, work: bytes,
        contestants: [
            ContestantResult(
                .ours, label: "ours CG", routine: "ConjugateGradient.solve, tolerance 1e-6, no preconditioner",
                timing: timings[0], work: Double(cgReports[0].iterations + 1) * bytes),
            ContestantResult(
                .oursPart, label: "ours PCG (Jacobi 0.75)",
                routine: "ConjugateGradient.solve, tolerance 1e-6, .jacobi(exponent: 0.75)", timing: timings[1],
                work: Double(pcgReports[0].iterations + 1) * bytes),
        ],
        checks: checks)
    result.element = "double"
    result.notes = [
        "empirical-Fisher-like factor (\(blank) zero columns, column scales 1e-3...1 in blocks of 16), b = mean row, "
            + "λ = 1e-5: CG \(cgReports[0].iterations) iterations, PCG \(pcgReports[0].iterations); "
            + String(format: "PCG time / CG time = %.2f", 1 / result.timeRatio(over: .oursPart))
            + "; the automatic method for this factor: \(automatic.rawValue)"
    ]
    return result
}
