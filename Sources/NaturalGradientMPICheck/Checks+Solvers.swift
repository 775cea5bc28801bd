import NaturalGradient
import NaturalGradientDistributed
import OpenCLHost
import NaturalGradientTestSupport

extension CheckRunner {
    /// The implicit product over spread rows, its diagonal and trace, and CG / PCG on it,
    /// against one process holding all rows.
    func checkImplicit<T: CommunicableScalar>(_: T.Type, context: Context) throws {
        let p = communicator.size
        let label = "\(T.self) p=\(p)"
        let data = GlobalData<T>(rows: 13, dimension: 33, seed: 21, rank: communicator.rank, size: p)
        let distributed = try DistributedImplicitCurvature(
            factor: data.localFactor(context, weighted: true), communicator: communicator)
        let reference = try ImplicitCurvature(factor: data.globalFactor(context, weighted: true))
        try expect("implicit: the factor's samples are the global N \(label)", distributed.factor.samples == data.rows)

        let x = try VectorBatch<T>(context: context, vectors: (0..<3).map { randomValues(33, seed: UInt64(30 + $0)) })
        let damping = T(float64: 0.3)
        let y = try VectorBatch<T>(context: context, dimension: 33, count: 3)
        try y.buffer.fill(.nan)
        try distributed.apply(x, damping: damping, into: y)
        let expected = try reference.apply(x, damping: damping)
        try expectClose(
            "implicit product, 3 vectors \(label)", try y.buffer.download(), try expected.buffer.downloadFloat64(),
            bound: tolerance(for: T.self))
        try expectIdentical("implicit product \(label)", try y.buffer.download())
        try expectClose(
            "implicit diagonal \(label)", try distributed.diagonal().download(), try reference.diagonal().downloadFloat64(),
            bound: tolerance(for: T.self))
        let traces = (try distributed.trace(), try reference.trace())
        try expect(
            "implicit trace \(label)", abs(traces.0 - traces.1) <= tolerance(for: T.self) * abs(traces.1),
            "\(traces.0) vs \(traces.1)")

        // CG and PCG through NaturalGradientSolver, unchanged. Reference: the float64
        // Cholesky solve of the same F formed by one process.
        let dense = try DenseCurvature(factor: data.globalFactor(context, weighted: true))
        let g = try VectorBatch<T>(context: context, vectors: (0..<2).map { randomValues(33, seed: UInt64(50 + $0)) })
        let lambda = T(float64: 0.5)
        let exact = try NaturalGradientSolver.solve(dense, g, damping: lambda, method: .cholesky)
        let cgTolerance = T.self == Double.self ? 1e-12 : 1e-5
        for method in [SolveMethod.cg, .pcg] {
            let options = ConjugateGradientOptions(tolerance: cgTolerance, maxIterations: 200)
            let solution = try NaturalGradientSolver.solve(distributed, g, damping: lambda, method: method, options: options)
            let single = try NaturalGradientSolver.solve(reference, g, damping: lambda, method: method, options: options)
            let values = try solution.x.buffer.download()
            // The same iterations as one process, so equal to rounding; against the exact
            // solve, CG's residual tolerance times a condition number (≤ 100 here).
            try expectClose(
                "\(method.rawValue) distributed vs single-process \(method.rawValue) \(label)", values,
                try single.x.buffer.downloadFloat64(), bound: tolerance(for: T.self))
            try expectClose(
                "\(method.rawValue) on the distributed implicit curvature vs Cholesky \(label)", values,
                try exact.x.buffer.downloadFloat64(), bound: 100 * cgTolerance)
            try expect(
                "\(method.rawValue) converged on every column \(label)",
                solution.reports.allSatisfy { $0.status == .converged }, "\(solution.reports.map { $0.status })")
            try expect(
                "\(method.rawValue) takes one process's iteration counts \(label)",
                solution.reports.map { $0.iterations } == single.reports.map { $0.iterations },
                "\(solution.reports.map { $0.iterations }) vs \(single.reports.map { $0.iterations })")
            try expectIdentical("\(method.rawValue) solution \(label)", values)
            try expectIdentical(
                "\(method.rawValue) iteration counts \(label)", solution.reports.map { T(float64: Double($0.iterations)) })
        }
    }

    /// `NaturalGradientOptimizer`, unchanged, with a distributed dense curvature from a
    /// `CurvatureBuilder` and the gradient averaged over the ranks: three steps with a
    /// moving average equal one process's steps on the global batch.
    func checkOptimizer<T: CommunicableScalar>(_: T.Type, context: Context) throws {
        let p = communicator.size
        let label = "\(T.self) p=\(p)"
        let dimension = 33
        var options = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        options.representation = .dense
        options.damping = .fixed(0.2)
        options.curvatureDecay = 0.5
        options.stepSize = .learningRate(0.5)
        let communicator = self.communicator
        let builder = CurvatureBuilder<T>(build: { factor in
            let curvature = DistributedCurvature(
                try DenseCurvature<T>(context: context, dimension: factor.dimension), communicator: communicator)
            try curvature.accumulate(factor, alpha: nil, beta: 0)
            return curvature
        })
        let distributed = try NaturalGradientOptimizer<T>(
            context: context, dimension: dimension, options: options, curvature: builder)
        let single = try NaturalGradientOptimizer<T>(context: context, dimension: dimension, options: options)
        var parameters: [T] = randomValues(dimension, seed: 70)
        var reference = parameters
        for step in 0..<3 {
            let data = GlobalData<T>(
                rows: 13 + step, dimension: dimension, seed: UInt64(200 + step), rank: communicator.rank, size: p)
            let local = data.localRows(data.matrix, width: dimension)
            let localMean = (0..<dimension).map { j in
                T(
                    float64: (0..<data.share.count).reduce(0.0) { $0 + local[$1 * dimension + j].float64 }
                        / Double(data.share.count))
            }
            let globalMean = (0..<dimension).map { j in
                T(float64: (0..<data.rows).reduce(0.0) { $0 + data.matrix[$1 * dimension + j].float64 } / Double(data.rows))
            }
            let gradient = try communicator.averageGradient(localMean, samples: data.share.count)
            try distributed.step(
                parameters: &parameters, gradient: gradient,
                curvature: .perSampleGradients(local, samples: data.share.count))
            try single.step(
                parameters: &reference, gradient: globalMean, curvature: .perSampleGradients(data.matrix, samples: data.rows))
        }
        try expectClose(
            "optimizer, 3 steps, distributed dense curvature \(label)", parameters, T.widened(reference),
            bound: tolerance(for: T.self))
        try expectIdentical("optimizer parameters after 3 steps \(label)", parameters)
    }
}

extension CheckRunner {
    /// `NaturalGradientOptimizer` with K-FAC summed over the ranks (a
    /// `CurvatureBuilder(buildFromLayers:)`) and KAISA's inverses: three steps with a moving
    /// average equal one process's built-in K-FAC on the global batch.
    func checkKFACOptimizer<T: CommunicableScalar>(_: T.Type, context: Context, gradientWorkers: GradientWorkers) throws {
        let p = communicator.size
        let label = "\(T.self) p=\(p) gradient workers \(gradientWorkers)"
        let shapes = [LayerShape(outputs: 5, inputs: 9), LayerShape(outputs: 3, inputs: 6), LayerShape(outputs: 1, inputs: 4)]
        let dimension = shapes.reduce(0) { $0 + $1.outputs * $1.inputs }
        var options = NaturalGradientOptimizerOptions(curvature: .kfac(layers: shapes))
        options.damping = .fixed(0.05)
        options.curvatureDecay = 0.5
        options.stepSize = .learningRate(0.3)
        options.momentum = 0.5
        let communicator = self.communicator
        let builder = CurvatureBuilder<T>(buildFromLayers: { layers, samples in
            let curvature = DistributedCurvature(
                try KroneckerCurvature<T>(context: context, shapes: shapes.map { ($0.outputs, $0.inputs) }),
                communicator: communicator, gradientWorkers: gradientWorkers)
            try curvature.accumulate(layers, samples: samples, weights: nil, alpha: nil, beta: 0)
            return curvature
        })
        let distributed = try NaturalGradientOptimizer<T>(
            context: context, dimension: dimension, options: options, curvature: builder)
        let single = try NaturalGradientOptimizer<T>(context: context, dimension: dimension, options: options)
        var parameters: [T] = randomValues(dimension, seed: 71)
        var reference = parameters
        var methods: [SolveMethod] = []
        for step in 0..<3 {
            let samples = 13 + step
            let share = (communicator.rank * samples / p)..<((communicator.rank + 1) * samples / p)
            var global: [LayerStatistics<T>] = []
            var local: [LayerStatistics<T>] = []
            for (index, shape) in shapes.enumerated() {
                let a: [T] = randomValues(samples * shape.inputs, seed: UInt64(300 + 10 * step + index))
                let g: [T] = randomValues(samples * shape.outputs, seed: UInt64(400 + 10 * step + index))
                global.append(LayerStatistics(activations: a, outputGradients: g))
                local.append(
                    LayerStatistics(
                        activations: Array(a[(share.lowerBound * shape.inputs)..<(share.upperBound * shape.inputs)]),
                        outputGradients: Array(g[(share.lowerBound * shape.outputs)..<(share.upperBound * shape.outputs)])))
            }
            let gradient: [T] = randomValues(dimension, seed: UInt64(500 + step))
            let report = try distributed.step(
                parameters: &parameters, gradient: gradient, curvature: .layers(local, samples: share.count))
            methods.append(report.method)
            try single.step(parameters: &reference, gradient: gradient, curvature: .layers(global, samples: samples))
        }
        try expect("the K-FAC optimizer solved with kfac (KAISA) \(label)", methods.allSatisfy { $0 == .kfac }, "\(methods)")
        try expectClose(
            "optimizer, 3 K-FAC steps, factors summed over the ranks \(label)", parameters, T.widened(reference),
            bound: tolerance(for: T.self))
        try expectIdentical("K-FAC optimizer parameters after 3 steps \(label)", parameters)

        // A layer builder with a factor-based configuration is refused by name.
        var factorOptions = NaturalGradientOptimizerOptions(curvature: .empiricalFisher)
        factorOptions.representation = .dense
        var refusal = ""
        do {
            _ = try NaturalGradientOptimizer<T>(
                context: context, dimension: dimension, options: factorOptions, curvature: builder)
        } catch { refusal = "\(error)" }
        try expect("a layer builder without K-FAC is refused \(label)", refusal.contains("'curvature'"), refusal)
    }
}
