import NaturalGradient
import NaturalGradientDistributed
import OpenCLHost
import NaturalGradientTestSupport

extension CheckRunner {
    /// Dense, block-diagonal and diagonal accumulation (with weights, then a moving average)
    /// against one process accumulating all rows.
    func checkAccumulation<T: CommunicableScalar>(_: T.Type, context: Context) throws {
        let p = communicator.size
        let label = "\(T.self) p=\(p)"
        let first = GlobalData<T>(rows: 13, dimension: 33, seed: 11, rank: communicator.rank, size: p)
        let second = GlobalData<T>(rows: 7, dimension: 33, seed: 12, rank: communicator.rank, size: p)
        let decay = 0.75
        let sizes = [7, 1, 25]

        func check<Base: SummableCurvature & FactorAccumulatingCurvature>(
            _ name: String, distributed base: Base, reference: Base, contents: (Base) throws -> [T]
        ) throws where Base.Element == T {
            let distributed = DistributedCurvature(base, communicator: communicator)
            try distributed.accumulate(first.localFactor(context, weighted: true), alpha: nil, beta: 0)
            try reference.accumulate(first.globalFactor(context, weighted: true), alpha: nil, beta: 0)
            try expectClose(
                "\(name) accumulation \(label)", contents(base), T.widened(contents(reference)),
                bound: tolerance(for: T.self))
            try expect("\(name) global sample count \(label)", distributed.globalSamples == first.rows)
            try expectIdentical("\(name) accumulation \(label)", contents(base))
            // The optimizer's moving average: α = (1 − β)/N_r per rank's mean.
            let local = try second.localFactor(context, weighted: false)
            try distributed.accumulate(
                local, alpha: T(float64: (1 - decay) / Double(local.samples)), beta: T(float64: decay))
            try reference.accumulate(
                second.globalFactor(context, weighted: false), alpha: T(float64: (1 - decay) / Double(second.rows)),
                beta: T(float64: decay))
            try expectClose(
                "\(name) moving average \(label)", contents(base), T.widened(contents(reference)),
                bound: tolerance(for: T.self))
            try expectIdentical("\(name) moving average \(label)", contents(base))
        }
        try check(
            "dense", distributed: DenseCurvature<T>(context: context, dimension: 33),
            reference: DenseCurvature<T>(context: context, dimension: 33), contents: { try $0.download() })
        try check(
            "block-diagonal", distributed: BlockDiagonalCurvature<T>(context: context, blockSizes: sizes),
            reference: BlockDiagonalCurvature<T>(context: context, blockSizes: sizes),
            contents: { try $0.matrices.download() })
        try check(
            "diagonal",
            distributed: DiagonalCurvature<T>(
                values: Buffer(context: context, copying: [T](repeating: 0, count: 33)), dimension: 33),
            reference: DiagonalCurvature<T>(
                values: Buffer(context: context, copying: [T](repeating: 0, count: 33)), dimension: 33),
            contents: { try $0.values.download() })

        // What goes over the wire: upper triangles only.
        try expect(
            "dense layout packs 33·34/2 values \(label)",
            try DenseCurvature<T>(context: context, dimension: 33).statisticsLayout.packedCount == 33 * 34 / 2)

        // Ranks that disagree: rank 0 passes a factor of another dimension. Every rank must
        // throw (none may be left waiting), and the next collective must still work.
        let wrong =
            communicator.rank == 0
            ? try CurvatureFactor<T>(context: context, matrix: randomValues(2 * 34, seed: 3), rows: 2, dimension: 34, samples: 2)
            : try first.localFactor(context, weighted: false)
        let distributed = DistributedCurvature(try DenseCurvature<T>(context: context, dimension: 33), communicator: communicator)
        var message = ""
        do {
            try distributed.accumulate(wrong, alpha: nil, beta: 0)
        } catch {
            message = "\(error)"
        }
        try expect(
            "a rank's bad factor throws on every rank \(label)",
            communicator.rank == 0 ? message.contains("'factor'") : message.contains("rank(s) [0] failed"), message)
    }

    /// K-FAC factors accumulated over the ranks, and the KAISA inverse against
    /// `KroneckerSolver` on all samples.
    func checkKFAC<T: CommunicableScalar>(_: T.Type, context: Context) throws {
        let p = communicator.size
        let label = "\(T.self) p=\(p)"
        let shapes = [(outputs: 5, inputs: 8), (outputs: 3, inputs: 6), (outputs: 7, inputs: 4)]
        let samples = 13
        let share = (communicator.rank * samples / p)..<((communicator.rank + 1) * samples / p)
        var global: [KFACLayer<T>] = []
        var local: [KFACLayer<T>] = []
        for (index, shape) in shapes.enumerated() {
            let a: [T] = randomValues(samples * shape.inputs, seed: UInt64(40 + index))
            let g: [T] = randomValues(samples * shape.outputs, seed: UInt64(60 + index))
            global.append(
                KFACLayer(
                    activations: try Buffer(context: context, copying: a),
                    outputGradients: try Buffer(context: context, copying: g),
                    inputs: shape.inputs, outputs: shape.outputs))
            local.append(
                KFACLayer(
                    activations: try Buffer(
                        context: context, copying: Array(a[(share.lowerBound * shape.inputs)..<(share.upperBound * shape.inputs)])
                    ),
                    outputGradients: try Buffer(
                        context: context,
                        copying: Array(g[(share.lowerBound * shape.outputs)..<(share.upperBound * shape.outputs)])),
                    inputs: shape.inputs, outputs: shape.outputs))
        }
        let reference = try KroneckerCurvature(layers: global, samples: samples)
        let distributed = DistributedCurvature(
            try KroneckerCurvature<T>(context: context, shapes: shapes), communicator: communicator)
        try distributed.accumulate(local, samples: share.count, weights: nil, alpha: nil, beta: 0)
        try expectClose(
            "K-FAC factors \(label)", try distributed.base.factors.download(),
            try reference.factors.downloadFloat64(), bound: tolerance(for: T.self))
        try expectIdentical("K-FAC factors \(label)", try distributed.base.factors.download())

        let damping = T(float64: 0.1)
        let inverse = try distributed.makeInverse(damping: damping)
        let kaisa = inverse as? DistributedKroneckerSolver<T>
        try expect("K-FAC's distributed inverse is KAISA's \(label)", kaisa != nil, "\(type(of: inverse))")
        try expect(
            "every layer has an owner rank \(label)", kaisa?.owners.allSatisfy { (0..<p).contains($0) } ?? false)
        let b = try VectorBatch<T>(
            context: context, vectors: (0..<3).map { randomValues(distributed.dimension, seed: UInt64(80 + $0)) })
        let x = try inverse.solve(b)
        let expected = try KroneckerSolver(curvature: reference, damping: damping).solve(b)
        try expectClose(
            "KAISA solve \(label)", try x.buffer.download(), try expected.buffer.downloadFloat64(),
            bound: tolerance(for: T.self))
        try expectIdentical("KAISA solve \(label)", try x.buffer.download())

        // Gradient workers = owners (KAISA's fraction 1/p): each rank keeps its own layers'
        // inverses only, and the solve gathers the preconditioned segments.
        let owners = try DistributedKroneckerSolver(
            curvature: distributed.base, communicator: communicator, damping: damping, gradientWorkers: .owners)
        let ownersX = try owners.solve(b)
        try expectClose(
            "KAISA solve with gradient workers = owners \(label)", try ownersX.buffer.download(),
            try expected.buffer.downloadFloat64(), bound: tolerance(for: T.self))
        try expectIdentical("KAISA solve with gradient workers = owners \(label)", try ownersX.buffer.download())
        let held = shapes.indices.filter { owners.owners[$0] == communicator.rank }.reduce(0) {
            $0 + shapes[$1].inputs * shapes[$1].inputs + shapes[$1].outputs * shapes[$1].outputs
        }
        try expect(
            "gradient workers = owners holds only this rank's inverses \(label)", owners.heldInverseValues == held,
            "\(owners.heldInverseValues) vs \(held)")

        // The assignment rule on known costs: largest first, to the least-loaded rank.
        try expect(
            "balanced assignment of costs [1, 5, 3, 3] over 2 ranks is [0, 0, 1, 1]",
            DistributedKroneckerSolver<T>.balancedAssignment(costs: [1, 5, 3, 3], ranks: 2) == [0, 0, 1, 1])
    }
}
