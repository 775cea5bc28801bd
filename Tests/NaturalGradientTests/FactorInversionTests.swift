import Foundation
import NaturalGradientTestSupport
import Testing

@testable import NaturalGradient
@testable import OpenCLHost

/// K-FAC's factor inversions by policy: Newton-Schulz on the device (forced on the PoCL
/// device, and on it presented as a GPU so the Kronecker kernels take their local-tile
/// path), the residual check's fallback to the float64 host path, the split by order, and
/// the defaults per device kind. Each solve is checked by applying the forward operator
/// (`KroneckerCurvature.apply`, tested against float64 elsewhere) to the solution.
@Suite("K-FAC factor inversion")
struct FactorInversionTests {
    /// Factor orders 2, 7, 33, 34 and 130 (A counts the bias column): awkward for every tile.
    static let shapes = [(outputs: 7, inputs: 34), (outputs: 130, inputs: 1 + 1), (outputs: 33, inputs: 130)]

    private func curvature<T: DeviceScalar>(_: T.Type, context: Context, samples: Int = 300) throws -> KroneckerCurvature<T> {
        let (layers, _) = try randomKFACLayers(T.self, context: context, shapes: Self.shapes, samples: samples, seed: 150)
        return try KroneckerCurvature(layers: layers, samples: samples)
    }

    /// `‖(K + λ)x − b‖ / ‖b‖` for the solver's x.
    private func relativeResidual<T: DeviceScalar>(
        _ solver: KroneckerSolver<T>, _ curvature: KroneckerCurvature<T>, damping: T, seed: UInt64
    ) throws -> Double {
        let b = try VectorBatch<T>(context: curvature.context, vectors: [randomValues(curvature.dimension, seed: seed)])
        let x = try solver.solve(b)
        return relativeError(
            Self.widened(try curvature.apply(x, damping: damping).download()[0]), Self.widened(try b.download()[0]))
    }

    private static func widened<T: DeviceScalar>(_ values: [T]) -> [Double] { values.map(\.float64) }

    private static func forced(tolerance: Double, maximumIterations: Int = 60) -> FactorInversionPolicy {
        FactorInversionPolicy(deviceMinimumOrder: 1, residualTolerance: tolerance, maximumIterations: maximumIterations)
    }

    @Test func deviceInversionSolvesTheDampedSystemInFloat() throws {
        let context = try TestDevice.context()
        let curvature = try curvature(Float.self, context: context)
        let solver = try KroneckerSolver(curvature: curvature, policy: Self.forced(tolerance: 1e-3))
        // Two refreshes: the second reuses the device buffers and must overwrite every inverse.
        for damping: Float in [0.5, 0.05] {
            try solver.refresh(damping: damping)
            #expect(solver.lastRefresh.count == 2 * Self.shapes.count)
            for report in solver.lastRefresh {
                guard case let .device(iterations, residual) = report.path else {
                    Issue.record("\(report.side) of layer \(report.layer) took \(report.path)")
                    continue
                }
                #expect(iterations >= 1 && iterations <= 60)
                #expect(residual <= 1e-3)
            }
            #expect(try relativeResidual(solver, curvature, damping: damping, seed: 151) < 2e-3)
        }
        // The same system on the host path, for comparison.
        let host = try KroneckerSolver(curvature: curvature, damping: 0.05, policy: .host)
        #expect(host.lastRefresh.allSatisfy { if case .host = $0.path { true } else { false } })
        #expect(try relativeResidual(host, curvature, damping: 0.05, seed: 151) < 1e-5)
    }

    @Test func deviceInversionInDoubleReachesDoubleAccuracy() throws {
        try #require(deviceSupports(Double.self))
        let context = try TestDevice.context()
        let curvature = try curvature(Double.self, context: context)
        let solver = try KroneckerSolver(curvature: curvature, damping: 0.05, policy: Self.forced(tolerance: 1e-9))
        #expect(solver.lastRefresh.allSatisfy { if case .device = $0.path { true } else { false } })
        #expect(try relativeResidual(solver, curvature, damping: 0.05, seed: 152) < 1e-9)
    }

    @Test func aLongRunAtSmallDampingConvergesAndStaysThere() throws {
        let context = try TestDevice.context()
        let curvature = try curvature(Float.self, context: context, samples: 40)
        // λ = 1e-6 on factors of rank ≤ 40: condition numbers in the thousands, 15+ iterations,
        // then extra ones. Without the per-iteration symmetrisation X's antisymmetric rounding
        // doubled every iteration and the residual passed 1 by the 20th; with it the residual
        // stays at float32's floor for these condition numbers (about κε√n, 1e-2 here).
        let policy = Self.forced(tolerance: 5e-2)
        let solver = try KroneckerSolver(curvature: curvature, damping: 1e-6, policy: policy)
        var longest = 0
        for report in solver.lastRefresh {
            guard case let .device(iterations, residual) = report.path else {
                Issue.record("\(report.side) of layer \(report.layer) (order \(report.order)) took \(report.path)")
                continue
            }
            longest = max(longest, iterations)
            #expect(residual <= 5e-2)
        }
        #expect(longest >= 15)
        let more = try KroneckerSolver(
            curvature: curvature, damping: 1e-6,
            policy: FactorInversionPolicy(deviceMinimumOrder: 1, residualTolerance: 0, maximumIterations: longest + 8))
        for report in more.lastRefresh where report.order > 40 {
            guard case let .deviceRejected(_, residual, _) = report.path else { continue }
            #expect(residual <= 5e-2, "order \(report.order) after up to \(longest + 8) iterations")
        }
    }

    @Test func aFailedResidualFallsBackToTheHostPath() throws {
        let context = try TestDevice.context()
        let curvature = try curvature(Float.self, context: context)
        // No float32 inverse has a residual of 0: every factor is rejected and redone on the host.
        let solver = try KroneckerSolver(curvature: curvature, damping: 0.05, policy: Self.forced(tolerance: 0))
        for report in solver.lastRefresh {
            guard case let .deviceRejected(_, residual, host) = report.path else {
                Issue.record("\(report.side) of layer \(report.layer) took \(report.path)")
                continue
            }
            #expect(residual > 0 && host == .cholesky)
        }
        #expect(try relativeResidual(solver, curvature, damping: 0.05, seed: 153) < 1e-5)
    }

    @Test func aSingularFactorWithoutDampingIsRejectedAndJittered() throws {
        let context = try TestDevice.context()
        // 20 samples for factors of order 34, 130, 130 and 33: singular, and λ = 0 adds nothing.
        let curvature = try curvature(Float.self, context: context, samples: 20)
        let solver = try KroneckerSolver(
            curvature: curvature, damping: 0, policy: Self.forced(tolerance: 1e-3, maximumIterations: 12))
        let large = solver.lastRefresh.filter { $0.order > 20 }
        #expect(large.count == 4)
        for report in large {
            guard case let .deviceRejected(iterations, _, host) = report.path else {
                Issue.record("\(report.side) of layer \(report.layer) took \(report.path)")
                continue
            }
            #expect(iterations == 12)
            #expect(host != .cholesky)
        }
    }

    @Test func theOrderSplitsTheFactorsBetweenDeviceAndHost() throws {
        let context = try TestDevice.context()
        let curvature = try curvature(Float.self, context: context)
        let policy = FactorInversionPolicy(deviceMinimumOrder: 34, residualTolerance: 1e-3)
        let solver = try KroneckerSolver(curvature: curvature, damping: 0.1, policy: policy)
        for report in solver.lastRefresh {
            switch report.path {
            case .device: #expect(report.order >= 34)
            case .host: #expect(report.order < 34)
            case .deviceRejected: Issue.record("\(report.side) of layer \(report.layer) was rejected")
            }
        }
        #expect(solver.lastRefresh.map(\.order) == [34, 7, 2, 130, 130, 33])
        #expect(try relativeResidual(solver, curvature, damping: 0.1, seed: 154) < 2e-3)
    }

    @Test func theGPUPathRunsTheKroneckerLocalTiles() throws {
        let device = try TestDevice.context().device
        let context = try Context(
            device: device.presenting(
                as: .gpu, name: "\(device.name) presented as NVIDIA", maxWorkGroupSize: 1024, localMemoryBytes: 48 << 10))
        #expect(FactorInversionPolicy.defaults(for: context.device, element: Float.self).deviceMinimumOrder == 1024)
        #expect(KroneckerTunables.defaults(for: context.device, element: Float.self).localTiles == 1)
        let curvature = try curvature(Float.self, context: context)
        let solver = try KroneckerSolver(curvature: curvature, damping: 0.05, policy: Self.forced(tolerance: 1e-3))
        #expect(solver.lastRefresh.allSatisfy { if case .device = $0.path { true } else { false } })
        #expect(try relativeResidual(solver, curvature, damping: 0.05, seed: 155) < 2e-3)
    }

    /// `refresh(from:damping:)` re-factors in place only for the solver's own curvature, and
    /// gives bitwise the solution a new solver for that λ gives; the optimizer keeps one
    /// inverse object across its refreshes (making the solver anew cost most of a refresh).
    @Test func aRefreshInPlaceEqualsANewSolverAndTheOptimizerKeepsIt() throws {
        let context = try TestDevice.context()
        let curvature = try curvature(Float.self, context: context)
        let solver = try KroneckerSolver(curvature: curvature, damping: 0.05, policy: .host)
        let other = try self.curvature(Float.self, context: context, samples: 17)
        #expect(try solver.refresh(from: other, damping: 0.2) == false)
        #expect(solver.refreshedDamping == 0.05)
        #expect(try solver.refresh(from: curvature, damping: 0.2))
        #expect(solver.refreshedDamping == 0.2)
        let b = try VectorBatch<Float>(context: context, vectors: [randomValues(curvature.dimension, seed: 151)])
        let fresh = try KroneckerSolver(curvature: curvature, damping: 0.2, policy: .host)
        #expect(try solver.solve(b).download()[0] == fresh.solve(b).download()[0])

        let shapes = [LayerShape(outputs: 4, inputs: 6), LayerShape(outputs: 3, inputs: 5)]
        var options = NaturalGradientOptimizerOptions(curvature: .kfac(layers: shapes))
        options.inverseRefreshPeriod = 1
        let p = shapes.reduce(0) { $0 + $1.outputs * $1.inputs }
        let optimizer = try NaturalGradientOptimizer<Float>(context: context, dimension: p, options: options)
        var parameters: [Float] = randomValues(p, seed: 152)
        var inverses: [ObjectIdentifier] = []
        for step in 0..<3 {
            let statistics = shapes.enumerated().map { index, shape in
                LayerStatistics<Float>(
                    activations: randomValues(9 * shape.inputs, seed: UInt64(160 + 10 * step + index)),
                    outputGradients: randomValues(9 * shape.outputs, seed: UInt64(165 + 10 * step + index)))
            }
            let report = try optimizer.step(
                parameters: &parameters, gradient: randomValues(p, seed: UInt64(170 + step)),
                curvature: .layers(statistics, samples: 9))
            #expect(report.refreshedInverse)
            inverses.append(ObjectIdentifier(try #require(optimizer.inverse)))
        }
        #expect(Set(inverses).count == 1)
    }

    @Test func defaultsAndValidation() throws {
        let context = try TestDevice.context()
        if context.device.kind == .cpu {
            #expect(FactorInversionPolicy.defaults(for: context.device, element: Float.self) == .host)
        }
        let curvature = try KroneckerCurvature<Float>(context: context, shapes: [(2, 3)])
        for (policy, name) in [
            (FactorInversionPolicy(deviceMinimumOrder: 0, residualTolerance: 1e-3), "policy.deviceMinimumOrder"),
            (FactorInversionPolicy(deviceMinimumOrder: 1, residualTolerance: .nan), "policy.residualTolerance"),
            (
                FactorInversionPolicy(deviceMinimumOrder: 1, residualTolerance: 1e-3, maximumIterations: 0),
                "policy.maximumIterations"
            ),
            (FactorInversionPolicy(deviceMinimumOrder: 1, residualTolerance: 1e-3, probes: 0), "policy.probes"),
        ] {
            do {
                _ = try KroneckerSolver(curvature: curvature, policy: policy)
                Issue.record("\(policy) was accepted")
            } catch let NaturalGradientError.invalidArgument(argument, _) {
                #expect(argument == name)
            }
        }
    }
}
