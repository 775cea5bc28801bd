// Times the bridge benchmark's operations through the Swift API and prints one JSON object
// per case: {"case": ..., "median_us": ..., "min_us": ..., "repetitions": ...}.
//
// Usage: swift-baseline [repetitions] [--device cpu]
import Foundation
import NaturalGradient

struct Row: Encodable {
    let `case`: String
    let median_us: Double
    let min_us: Double
    let repetitions: Int
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
}

/// Median and minimum of `repetitions` timed runs after 3 warm-up runs, in microseconds.
func time(_ repetitions: Int, _ body: () throws -> Void) rethrows -> (median: Double, min: Double) {
    for _ in 0..<3 { try body() }
    let clock = ContinuousClock()
    var samples: [Double] = []
    for _ in 0..<repetitions {
        let start = clock.now
        try body()
        samples.append(seconds(clock.now - start) * 1e6)
    }
    samples.sort()
    return (samples[samples.count / 2], samples[0])
}

/// Deterministic pseudo-random floats in [-1, 1) (SplitMix64), cheap to make in bulk.
func values(_ count: Int, seed: UInt64) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }
}

let arguments = CommandLine.arguments.dropFirst()
let repetitions = arguments.first.flatMap { Int($0) } ?? 20
let selector = arguments.firstIndex(of: "--device").map { arguments[$0 + 1] } ?? "cpu"
let context = try Context(selector: DeviceSelector(parsing: selector))
var rows: [Row] = []

@MainActor func record(_ name: String, _ timing: (median: Double, min: Double)) {
    rows.append(Row(case: name, median_us: timing.median, min_us: timing.min, repetitions: repetitions))
}

/// y = (F + λI) x with host x and y: upload, product, download.
@MainActor func productCase<Op: CurvatureOperator<Float>>(_ name: String, _ curvature: Op, damping: Float) throws {
    let p = curvature.dimension
    let x = values(p, seed: 7)
    let xb = try VectorBatch<Float>(context: context, dimension: p)
    let yb = try VectorBatch<Float>(context: context, dimension: p)
    var y = [Float](repeating: 0, count: p)
    record(name, try time(repetitions) {
        try xb.buffer.upload(x)
        try curvature.apply(xb, damping: damping, into: yb)
        try yb.buffer.download(0..<p, into: &y)
    })
}

for (m, p, label) in [(1024, 65536, "implicit-product (1024, 65536)"), (7, 33, "implicit-product (7, 33)")] {
    let factor = try CurvatureFactor<Float>(context: context, matrix: values(m * p, seed: 1), rows: m, dimension: p, samples: m)
    try productCase(label, ImplicitCurvature(factor: factor), damping: 1e-3)
}

do {
    let (m, p) = (256, 65536)
    let factor = try CurvatureFactor<Float>(context: context, matrix: values(m * p, seed: 2), rows: m, dimension: p, samples: m)
    let implicit = try ImplicitCurvature(factor: factor)
    let g = values(p, seed: 3)
    let gb = try VectorBatch<Float>(context: context, dimension: p)
    var x = [Float](repeating: 0, count: p)
    record("woodbury-solve (256, 65536)", try time(repetitions) {
        try gb.buffer.upload(g)
        let solution = try NaturalGradientSolver.solve(implicit, gb, damping: 1e-3, method: .woodbury)
        try solution.x.buffer.download(0..<p, into: &x)
    })
}

do {
    let n = 512
    let shapes = [(256, 513), (128, 257), (10, 129)]
    let layers = try shapes.enumerated().map { index, shape in
        KFACLayer<Float>(
            activations: try Buffer(context: context, copying: values(n * shape.1, seed: UInt64(10 + index))),
            outputGradients: try Buffer(context: context, copying: values(n * shape.0, seed: UInt64(20 + index))),
            inputs: shape.1, outputs: shape.0)
    }
    try productCase("kfac-apply 256x513,128x257,10x129", KroneckerCurvature(layers: layers, samples: n), damping: 1e-3)
}

let encoder = JSONEncoder()
for row in rows { print(String(decoding: try encoder.encode(row), as: UTF8.self)) }
