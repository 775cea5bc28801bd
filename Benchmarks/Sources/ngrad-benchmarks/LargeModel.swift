import ArgumentParser
import COpenBLAS
import Foundation
@_spi(Benchmarks) import NaturalGradient
import NaturalGradientTestSupport

#if canImport(Glibc)
    import Glibc
#endif

// The large-model suite (`--suite large`, issue 15 items 3 and 5), three sections:
//   factor-inversion: one damped K-FAC factor of order n inverted on the host (float64:
//     dpotrf + dpotrs with the n columns of I, the old path, about 2.33 n³ flops; dpotrf +
//     dpotri, the new one, about n³) and on the device (Newton-Schulz, 4n³ flops per
//     iteration): where the device would win.
//   large-kfac: one K-FAC step of 8 dense layers 1024 → 4096 → 1024 at batch 512 (factor
//     accumulation, inversion, preconditioning), ours against OpenBLAS + LAPACK doing the
//     same on the host as kfac-pytorch does on a CPU (ssyrk, dpotrf/dpotri, sgemm).
//   large-factor: the implicit product and the Woodbury solve on a factor beyond one
//     device allocation (512 x 2,500,000 float32, 5.1 GB) against OpenBLAS's two SGEMV
//     passes and its ssyrk + dpotrf Woodbury.
// Predictions and outcomes: NOTES.md, issue 15, "K-FAC inversions" and "The large suite".

/// Host memory for the large-factor section: page-aligned, freed with its owner (a factor
/// whose pieces use it in place keeps the owner alive).
final class HostAllocation<Element> {
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int) throws {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 4096, count * MemoryLayout<Element>.stride) == 0, let raw else {
            throw ValidationError("could not allocate \(formatBytes(UInt64(count * MemoryLayout<Element>.stride)))")
        }
        pointer = raw.bindMemory(to: Element.self, capacity: count)
        self.count = count
    }

    var buffer: UnsafeMutableBufferPointer<Element> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    deinit { free(pointer) }
}

enum LargeModel {
    /// Seconds as milliseconds with 1 decimal.
    static func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1e3) }

    // MARK: - factor-inversion

    /// A damped K-FAC-like factor: `A = (1/m) UᵀU` of `m` uniform rows (rank min(m, n)),
    /// full symmetric, float64; the damping `γ = 1e-3 tr(A)/n`.
    static func factor(order n: Int, samples m: Int, seed: UInt64) -> (matrix: [Double], damping: Double) {
        var u: [Float] = randomValues(m * n, seed: seed)
        var c = [Float](repeating: 0, count: n * n)
        cblas_ssyrk(
            CblasRowMajor, CblasUpper, CblasTrans, blasint(n), blasint(m), 1 / Float(m), &u, blasint(n), 0, &c, blasint(n))
        u = []
        var matrix = [Double](repeating: 0, count: n * n)
        var trace = 0.0
        for i in 0..<n {
            trace += Double(c[i * n + i])
            for j in i..<n {
                matrix[i * n + j] = Double(c[i * n + j])
                matrix[j * n + i] = Double(c[i * n + j])
            }
        }
        return (matrix, 1e-3 * trace / Double(n))
    }

    /// The crossover table: host old, host new, device Newton-Schulz per order. Orders of at
    /// least `projectedFrom` run capped device runs (1 and 2 iterations) and project the
    /// whole from the per-iteration time and the predicted count.
    static func factorInversion(context: Context, orders: [Int], samples: Int, projectedFrom: Int) throws -> String {
        var table = TextTable([
            "n", "host dpotrf+dpotrs(I)", "host dpotrf+dpotri", "new/old", "device NS iterations", "residual",
            "device ms/iteration", "device total", "device/host",
        ])
        var crossover: Int?
        for n in orders {
            progress("factor inversion n=\(n)")
            let (matrix, damping) = factor(order: n, samples: samples, seed: UInt64(n))
            let big = n >= 2048
            let repetitions = big ? 2 : 5
            let identity = (0..<(n * n)).map { $0 / n == $0 % n ? 1.0 : 0.0 }
            var old: [Float] = []
            let oldTiming = try measure(warmup: big ? 0 : 1, repetitions: repetitions) { _ in
                old = Float.narrowed(
                    try DenseSymmetricFactorization(matrix: matrix, dimension: n, damping: damping).solve(identity, count: n))
            }
            var new: [Float] = []
            let newTiming = try measure(warmup: big ? 0 : 1, repetitions: repetitions) { _ in
                new = Float.narrowed(try DenseSymmetricFactorization(matrix: matrix, dimension: n, damping: damping).inverse())
            }
            let agreement = relativeError(new, old.map(Double.init))
            guard agreement < 1e-5 else { throw MismatchError(checks: ["inverse n=\(n): new vs old \(agreement)"]) }

            let inversion = try NewtonSchulzInversion<Float>(context: context, orders: [n])
            let damped = (0..<(n * n)).map { matrix[$0] + ($0 / n == $0 % n ? damping : 0) }
            func run(_ cap: Int) throws -> (seconds: Double, outcome: NewtonSchulzInversion<Float>.Outcome) {
                let policy = FactorInversionPolicy(deviceMinimumOrder: 1, residualTolerance: 1e-3, maximumIterations: cap)
                let start = ContinuousClock.now
                let outcome = try inversion.invert([damped], lowerBounds: [damping], policy: policy)[0]
                try context.finish()
                return ((ContinuousClock.now - start).seconds, outcome)
            }
            let predicted = NewtonSchulzInversion<Float>.predictedIterations(damped, order: n, lowerBound: damping, maximum: 60)
            var iterations: String, residual: String, total: Double, perIteration: Double
            if n < projectedFrom {
                _ = try run(60) // warm-up: builds and first-launch compiles
                let full = try run(60)
                let one = try run(1)
                total = full.seconds
                perIteration = (full.seconds - one.seconds) / Double(max(1, full.outcome.iterations - 1))
                iterations = "\(full.outcome.iterations) (predicted \(predicted))"
                residual = String(format: "%.1e", full.outcome.residual)
            } else {
                _ = try run(1)
                let one = try run(1)
                let two = try run(2)
                perIteration = two.seconds - one.seconds
                total = one.seconds + perIteration * Double(predicted - 1)
                iterations = "\(predicted) predicted (ran 1 and 2)"
                residual = "-"
            }
            let host = newTiming.median
            // A per-iteration time at or below zero is the machine's noise (tiny orders): no total.
            let resolved = perIteration > 0 || n < projectedFrom
            if crossover == nil, resolved, total < host { crossover = n }
            table.append([
                "\(n)", ms(oldTiming.median), ms(host), String(format: "%.2fx", host / oldTiming.median), iterations, residual,
                perIteration > 0 ? ms(perIteration) : "below noise",
                resolved ? ms(total) + (n < projectedFrom ? "" : " (projected)") : "-",
                resolved ? String(format: "%.1fx", total / host) : "-",
            ])
        }
        var text = "factor inversion: one damped factor (1/\(samples)) UᵀU + γI, γ = 1e-3 tr/n; host float64, device float32\n"
        text += table.render()
        text += "\ncrossover (device faster than host dpotrf+dpotri): \(crossover.map { "n = \($0)" } ?? "none at these sizes")\n"
        return text
    }

    // MARK: - large-kfac

    /// The layers: `count` dense layers alternating `narrow → wide` and `wide → narrow`, the
    /// bias counted in the inputs.
    static func shapes(narrow: Int, wide: Int, count: Int) -> [(outputs: Int, inputs: Int)] {
        (0..<count).map { $0 % 2 == 0 ? (wide, narrow + 1) : (narrow, wide + 1) }
    }

    /// One K-FAC step, ours against the host peer, with the breakdown.
    static func kfacStep(
        context: Context, shapes: [(outputs: Int, inputs: Int)], batch: Int, refreshEvery: Int, repetitions: Int
    ) throws -> String {
        let damping: Float = 1e-3
        let beta: Float = 0.95
        let alpha = (1 - beta) / Float(batch)
        let parameters = shapes.reduce(0) { $0 + $1.outputs * $1.inputs }
        progress("K-FAC step: \(shapes.count) layers, \(parameters) parameters, batch \(batch): inputs")
        let (layers, host) = try randomKFACLayers(Float.self, context: context, shapes: shapes, samples: batch, seed: 500)
        let gradient: [Float] = randomValues(parameters, seed: 501)

        // Ours: factors on the device, inversion by the solver's policy, the product on the device.
        let curvature = try KroneckerCurvature<Float>(context: context, shapes: shapes)
        try curvature.accumulate(layers, samples: batch, beta: 0)
        let solver = try KroneckerSolver(curvature: curvature)
        let g = try VectorBatch<Float>(context: context, vectors: [gradient])
        progress("K-FAC step: ours")
        let oursAccumulate = try measure(warmup: 1, repetitions: repetitions) { _ in
            try curvature.accumulate(layers, samples: batch, alpha: alpha, beta: beta)
            try context.finish()
        }
        let oursInvert = try measure(warmup: 1, repetitions: repetitions) { _ in try solver.refresh(damping: damping) }
        var oursResult: [Float] = []
        let oursPrecondition = try measure(warmup: 1, repetitions: repetitions) { _ in
            let x = try solver.solve(g)
            try context.finish()
            oursResult = try x.buffer.download()
        }
        let oursFactors = try curvature.factors.download()
        let paths = Set(solver.lastRefresh.map { "\($0.path)".hasPrefix("host") ? "host" : "device" }).sorted()

        // The peer: the same factors (the ones ours holds now), the same damping split.
        progress("K-FAC step: OpenBLAS + LAPACK")
        let peer = HostKFAC(shapes: shapes, factors: oursFactors, layers: curvature.layers)
        let peerAccumulate = try measure(warmup: 1, repetitions: repetitions) { _ in
            peer.accumulate(host, batch: batch, alpha: alpha, beta: beta)
        }
        peer.factors = oursFactors // Both contestants invert the factors of the same step.
        let dampings = try curvature.factoredDampings(damping)
        let peerInvert = try measure(warmup: 1, repetitions: repetitions) { _ in try peer.invert(dampings: dampings) }
        var peerResult: [Float] = []
        let peerPrecondition = try measure(warmup: 1, repetitions: repetitions) { _ in
            peerResult = peer.precondition(gradient)
        }
        let agreement = relativeError(oursResult, peerResult.map(Double.init))

        var table = TextTable(["stage", "FLOP", "ours", "OpenBLAS + LAPACK", "ours speed-up"])
        let accumulationFlops = shapes.reduce(0.0) { sum, s in
            sum + Double(batch) * (Double(s.inputs) * Double(s.inputs + 1) + Double(s.outputs) * Double(s.outputs + 1))
        }
        let inversionFlops = shapes.reduce(0.0) { $0 + pow(Double($1.inputs), 3) + pow(Double($1.outputs), 3) }
        let preconditionFlops = shapes.reduce(0.0) { sum, s in
            sum + 2 * Double(s.outputs) * Double(s.inputs) * Double(s.outputs + s.inputs)
        }
        func row(_ name: String, _ flops: Double?, _ ours: Double, _ theirs: Double) {
            table.append([
                name, flops.map { String(format: "%.1f G", $0 / 1e9) } ?? "-",
                ms(ours) + (flops.map { String(format: " (%.0f GFLOP/s)", $0 / ours / 1e9) } ?? ""),
                ms(theirs) + (flops.map { String(format: " (%.0f GFLOP/s)", $0 / theirs / 1e9) } ?? ""),
                String(format: "%.2fx", theirs / ours),
            ])
        }
        let (oa, oi, op) = (oursAccumulate.median, oursInvert.median, oursPrecondition.median)
        let (pa, pi, pp) = (peerAccumulate.median, peerInvert.median, peerPrecondition.median)
        row("factor accumulation (EMA, ssyrk)", accumulationFlops, oa, pa)
        row("inversion (float64 dpotrf + dpotri)", inversionFlops, oi, pi)
        row("preconditioning G⁻¹ V A⁻¹ (sgemm x2)", preconditionFlops, op, pp)
        row("step, inverting every step", nil, oa + oi + op, pa + pi + pp)
        let k = Double(refreshEvery)
        row("step, inverting every \(refreshEvery) steps (amortised)", nil, oa + op + oi / k, pa + pp + pi / k)
        var text = "K-FAC step: \(shapes.count) layers \(shapes.map { "\($0.outputs)x\($0.inputs)" }.joined(separator: ", ")), "
        text += "\(parameters) parameters, batch \(batch), λ = \(damping); ours inverts on the \(paths.joined(separator: "+"))\n"
        text += table.render()
        text += String(format: "\ncheck: ours vs OpenBLAS preconditioned gradient, relative difference %.2e", agreement)
        text += "\ntarget: K-FAC step ≥ 1.5x the host peer (amortised: "
        text += String(
            format: "%.2fx; every step: %.2fx)\n", (pa + pp + pi / k) / (oa + op + oi / k), (pa + pi + pp) / (oa + oi + op))
        guard agreement < 1e-3 else {
            throw MismatchError(checks: ["K-FAC step: ours vs OpenBLAS preconditioned gradient \(agreement)"])
        }
        return text
    }

    // MARK: - large-factor

    /// The implicit product and the Woodbury solve on one `rows x columns` float32 factor,
    /// held once in host memory that the CPU device uses in place (pieces by rows where it
    /// exceeds the largest allocation), against OpenBLAS on the same memory.
    static func largeFactor(context: Context, rows m: Int, columns p: Int, repetitions: Int) throws -> String {
        let bytes = m * p * MemoryLayout<Float>.stride
        progress("large factor \(m) x \(p) (\(formatBytes(UInt64(bytes)))): filling")
        let storage = try HostAllocation<Float>(count: m * p)
        var generator = SplitMix64(seed: 700)
        for index in 0..<(m * p) { storage.pointer[index] = generator.nextSymmetricFloat() }
        let factor = try CurvatureFactor<Float>(
            context: context, usingHostMemory: storage.buffer, owner: storage, rows: m, dimension: p, samples: m)
        let damping: Float = 1e-3
        let alpha = 1 / Float(m)
        let xHost: [Float] = randomValues(p, seed: 701)
        let x = try VectorBatch<Float>(context: context, vectors: [xHost])
        let y = try VectorBatch<Float>(context: context, dimension: p, count: 1)
        let product = try ImplicitProduct<Float>(context: context)

        progress("large factor: implicit product")
        var ours: [Float] = []
        let oursProduct = try measure(warmup: 1, repetitions: repetitions) { _ in
            try product.apply(factor, x, damping: damping, into: y)
            try context.finish()
        }
        ours = try y.buffer.download()
        var t = [Float](repeating: 0, count: m)
        var theirs = [Float](repeating: 0, count: p)
        let peerProduct = try measure(warmup: 1, repetitions: repetitions) { _ in
            OpenBLAS.implicitProduct(
                storage.pointer, rows: m, dimension: p, alpha: alpha, damping: damping, x: xHost, scratch: &t, into: &theirs)
        }
        let productAgreement = relativeError(ours, theirs.map(Double.init))

        progress("large factor: Woodbury solve")
        var oursSolution: [Float] = []
        let oursWoodbury = try measure(warmup: 0, repetitions: max(1, min(repetitions, 2))) { _ in
            let solver = try WoodburySolver(factor: factor, damping: damping)
            let solution = try solver.solve(x)
            try context.finish()
            oursSolution = try solution.buffer.download()
        }
        let workspace = HostWorkspace(rows: m, dimension: p)
        var peerSolution = [Float](repeating: 0, count: p)
        let peerWoodbury = try measure(warmup: 0, repetitions: max(1, min(repetitions, 2))) { _ in
            try OpenBLAS.woodbury(
                storage.pointer, alpha: alpha, damping: damping, b: xHost, workspace: workspace, into: &peerSolution)
        }
        let woodburyAgreement = relativeError(oursSolution, peerSolution.map(Double.init))

        var table = TextTable(["operation", "ours", "OpenBLAS", "ours speed-up"])
        let gb = Double(bytes) / 1e9
        table.append([
            "implicit product (1/N)Uᵀ(Ux) + λx", ms(oursProduct.median) + String(format: " (%.1f GB/s)", gb / oursProduct.median),
            ms(peerProduct.median) + String(format: " (%.1f GB/s, two SGEMV passes)", 2 * gb / peerProduct.median),
            String(format: "%.2fx (target ≥ 1.5x)", peerProduct.median / oursProduct.median),
        ])
        let woodburyFlops = Double(m) * Double(m + 1) * Double(p) + 4 * Double(m) * Double(p)
        table.append([
            "Woodbury solve (fresh factor)",
            ms(oursWoodbury.median) + String(format: " (%.0f GFLOP/s)", woodburyFlops / oursWoodbury.median / 1e9),
            ms(peerWoodbury.median) + String(format: " (%.0f GFLOP/s)", woodburyFlops / peerWoodbury.median / 1e9),
            String(format: "%.2fx", peerWoodbury.median / oursWoodbury.median),
        ])
        var text = "large factor: \(m) x \(p) float32 = \(formatBytes(UInt64(bytes))) in \(factor.pieces.count) device piece(s) "
        text += "(largest allocation \(formatBytes(context.maxAllocationBytes))), used in place by the CPU device\n"
        text += table.render()
        text += String(
            format: "\nchecks: product ours vs OpenBLAS %.2e, Woodbury ours vs OpenBLAS %.2e", productAgreement, woodburyAgreement
        )
        text += "\npeak resident memory so far: \(formatBytes(UInt64(peakResidentBytes())))\n"
        guard productAgreement < 1e-4, woodburyAgreement < 1e-3 else {
            throw MismatchError(checks: ["large factor: product \(productAgreement), Woodbury \(woodburyAgreement)"])
        }
        return text
    }
}

/// K-FAC on the host as kfac-pytorch runs it on a CPU: float32 factors by `cblas_ssyrk`
/// (moving average through its beta), float64 inverses by `LAPACKE_dpotrf` + `dpotri` of
/// the damped factors, the preconditioned gradient `G⁻¹ V A⁻¹` by two `cblas_sgemm` per layer.
final class HostKFAC {
    let shapes: [(outputs: Int, inputs: Int)]
    let layers: [KroneckerCurvature<Float>.Layer]
    /// Packed like `KroneckerCurvature.factors` (A_l, G_l per layer), full symmetric.
    var factors: [Float]
    var inverses: [Float]
    private var scratch: [Float]

    init(shapes: [(outputs: Int, inputs: Int)], factors: [Float], layers: [KroneckerCurvature<Float>.Layer]) {
        self.shapes = shapes
        self.layers = layers
        self.factors = factors
        inverses = [Float](repeating: 0, count: factors.count)
        scratch = [Float](repeating: 0, count: shapes.map { $0.outputs * $0.inputs }.max() ?? 0)
    }

    /// `A ← βA + α aᵀa`, `G ← βG + α gᵀg` (upper triangles) per layer.
    func accumulate(_ host: [(a: [Float], g: [Float])], batch: Int, alpha: Float, beta: Float) {
        factors.withUnsafeMutableBufferPointer { f in
            for (layer, values) in zip(layers, host) {
                for (data, size, offset) in [(values.a, layer.inputs, layer.aOffset), (values.g, layer.outputs, layer.gOffset)] {
                    data.withUnsafeBufferPointer { d in
                        cblas_ssyrk(
                            CblasRowMajor, CblasUpper, CblasTrans, blasint(size), blasint(batch), alpha, d.baseAddress,
                            blasint(size), beta, f.baseAddress! + offset, blasint(size))
                    }
                }
            }
        }
    }

    /// Every damped factor inverted in float64 (upper triangle read), stored full in float32.
    func invert(dampings: [(g: Double, a: Double)]) throws {
        for (index, layer) in layers.enumerated() {
            for (size, offset, shift) in [
                (layer.inputs, layer.aOffset, dampings[index].a), (layer.outputs, layer.gOffset, dampings[index].g),
            ] {
                var matrix = [Double](repeating: 0, count: size * size)
                for i in 0..<size {
                    for j in i..<size { matrix[i * size + j] = Double(factors[offset + i * size + j]) }
                    matrix[i * size + i] += shift
                }
                let lower = CChar(UInt8(ascii: "L"))
                var info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, lower, blasint(size), &matrix, blasint(size))
                guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotrf", info: info) }
                info = LAPACKE_dpotri(LAPACK_COL_MAJOR, lower, blasint(size), &matrix, blasint(size))
                guard info == 0 else { throw LAPACKError(routine: "LAPACKE_dpotri", info: info) }
                for i in 0..<size {
                    for j in i..<size {
                        let value = Float(matrix[i * size + j])
                        inverses[offset + i * size + j] = value
                        inverses[offset + j * size + i] = value
                    }
                }
            }
        }
    }

    /// `G⁻¹ V A⁻¹` per layer: T = V A⁻¹, then Y = G⁻¹ T.
    func precondition(_ gradient: [Float]) -> [Float] {
        var result = [Float](repeating: 0, count: gradient.count)
        gradient.withUnsafeBufferPointer { v in
            inverses.withUnsafeBufferPointer { inv in
                scratch.withUnsafeMutableBufferPointer { t in
                    result.withUnsafeMutableBufferPointer { y in
                        for layer in layers {
                            let (o, i) = (blasint(layer.outputs), blasint(layer.inputs))
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasNoTrans, o, i, i, 1, v.baseAddress! + layer.parameterOffset, i,
                                inv.baseAddress! + layer.aOffset, i, 0, t.baseAddress, i)
                            cblas_sgemm(
                                CblasRowMajor, CblasNoTrans, CblasNoTrans, o, i, o, 1, inv.baseAddress! + layer.gOffset, o,
                                t.baseAddress, i, 0, y.baseAddress! + layer.parameterOffset, i)
                        }
                    }
                }
            }
        }
        return result
    }
}
