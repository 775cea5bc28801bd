// What a user of the library writes with `import NaturalGradient` alone: every name here
// must resolve (scripts/check-public-surface.sh type-checks this file).
import NaturalGradient

func useThePublicSurface() throws {
    let selector: DeviceSelector = try DeviceSelector.resolve(explicit: "cpu", environment: [:])
    let context = try Context(selector: selector, binaryCachePolicy: BinaryCachePolicy.automatic)
    let device: Device = context.device
    _ = device.name
    let u = try Buffer<Float>(context: context, copying: [1, 2, 3, 4, 5, 6])
    let factor = try CurvatureFactor(matrix: u, rows: 2, dimension: 3, samples: 2)
    let curvature: any CurvatureOperator<Float> = try ImplicitCurvature(factor: factor)
    let gradients = try VectorBatch(Buffer<Float>(context: context, copying: [1, 0, 0]), dimension: 3)
    _ = try NaturalGradientSolver.solve(curvature, gradients, damping: 0.1)
    _ = try CurvatureFactor<Double>.formalMetric(
        outputJacobians: Buffer(context: context, copying: [1.0, 0, 0, 1]),
        outputs: Buffer(context: context, copying: [0.5, -0.5]), samples: 1, dimension: 2, family: .categorical(classes: 2), measure: .kullbackLeibler)
    do {
        _ = try Buffer<Float>(context: context, count: -1)
    } catch let error as OpenCLError {
        _ = error.description
    } catch let error as NaturalGradientError {
        _ = error.description
    }
}

/// Generic code over the element types.
func sum<Element: DeviceScalar>(_ buffer: Buffer<Element>) throws -> Double {
    try buffer.downloadFloat64().reduce(0, +)
}

/// README.md's "Using the library", as written there.
func readmeExample() throws {
    let context = try Context(selector: .automatic)
    let u = try Buffer<Float>(context: context, copying: [1, 2, 3, 4, 5, 6])
    let factor = try CurvatureFactor(matrix: u, rows: 2, dimension: 3, samples: 2)
    let curvature = try ImplicitCurvature(factor: factor)
    let g = try VectorBatch(Buffer<Float>(context: context, copying: [1, 0, 0]), dimension: 3)
    let solution = try NaturalGradientSolver.solve(curvature, g, damping: 0.1)
    _ = solution
    _ = try Context(selector: DeviceSelector(parsing: "gpu"))
}
