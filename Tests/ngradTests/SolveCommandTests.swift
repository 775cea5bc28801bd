import Foundation
import NumPyFormat
import Testing
import NaturalGradientTestSupport

@testable import ngrad

/// `ngrad solve` end to end: files in, files out, and its errors through the real binary.
@Suite("ngrad solve")
struct SolveCommandTests {
    /// A scratch directory with U (M x P), g and w written as .npy.
    final class Files {
        let directory: String
        let (rows, dimension) = (40, 25)
        let u: [Double]
        init() throws {
            directory = NSTemporaryDirectory() + "ngrad-solve-\(UInt64.random(in: 0...UInt64.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            u = randomValues(rows * dimension, seed: 1)
            try NumPyArray(shape: [rows, dimension], elementType: .float64, values: u).write(to: path("U.npy"))
            try NumPyArray(
                shape: [dimension], elementType: .float32,
                values: (randomValues(dimension, seed: 2) as [Float]).map { Double($0) }
            )
            .write(to: path("g.npy"))
            try NumPyArray(shape: [dimension, 2], elementType: .float64, values: randomValues(dimension * 2, seed: 3))
                .write(to: path("G.npy"))
            try NumPyArray(shape: [rows], elementType: .float64, values: randomValues(rows, seed: 4).map { abs($0) })
                .write(to: path("w.npy"))
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
    }

    /// `(1/N) Uᵀ diag(w) U + λI` in float64.
    private func system(_ files: Files, weights: [Double]?, damping: Double) -> [Double] {
        let (m, p) = (files.rows, files.dimension)
        var f = [Double](repeating: 0, count: p * p)
        for row in 0..<m {
            let w = weights?[row] ?? 1
            for i in 0..<p {
                for j in 0..<p { f[i * p + j] += w * files.u[row * p + i] * files.u[row * p + j] / Double(m) }
            }
        }
        for i in 0..<p { f[i * p + i] += damping }
        return f
    }

    @Test(arguments: ["auto", "cg", "pcg", "woodbury", "cholesky"])
    func solvesInEveryMethod(method: String) throws {
        let files = try Files()
        let command = try #require(
            try Ngrad.parseAsRoot([
                "solve", "--factor", files.path("U.npy"), "--gradient", files.path("G.npy"), "--weights",
                files.path("w.npy"), "--damping", "0.05", "--method", method, "--precision", "double", "--tolerance",
                "1e-12", "--output", files.path("x.npy"), "--json",
            ]) as? SolveCommand)
        try command.run()
        let x = try NumPyArray.read(contentsOf: files.path("x.npy"))
        #expect(x.shape == [files.dimension, 2])
        #expect(x.elementType == .float64)
        let weights = try NumPyArray.read(contentsOf: files.path("w.npy")).values
        let f = system(files, weights: weights, damping: 0.05)
        let g = try NumPyArray.read(contentsOf: files.path("G.npy")).values
        for column in 0..<2 {
            let xColumn = (0..<files.dimension).map { x.values[$0 * 2 + column] }
            let residual = (0..<files.dimension).map { i in
                (0..<files.dimension).reduce(-g[i * 2 + column]) { $0 + f[i * files.dimension + $1] * xColumn[$1] }
            }
            let norm = (0..<files.dimension).reduce(0.0) { $0 + g[$1 * 2 + column] * g[$1 * 2 + column] }.squareRoot()
            #expect(residual.reduce(0) { $0 + $1 * $1 }.squareRoot() / norm < 1e-9, "\(method) column \(column)")
        }
    }

    @Test func floatOutputForAOneDimensionalGradient() throws {
        let files = try Files()
        let command = try #require(
            try Ngrad.parseAsRoot([
                "solve", "--factor", files.path("U.npy"), "--gradient", files.path("g.npy"), "--damping", "0.1",
                "--output", files.path("x.npy"),
            ]) as? SolveCommand)
        try command.run()
        let x = try NumPyArray.read(contentsOf: files.path("x.npy"))
        #expect(x.shape == [files.dimension] && x.elementType == .float32)
        #expect(x.nonFiniteCount == 0)
    }

    // MARK: - Errors through the binary: one line, naming the file, exit code 2

    @Test func badInputGetsAOneLineErrorAndExitCodeTwo() throws {
        let files = try Files()
        try Data("\u{93}NUMPY\u{01}\u{00}garbage".utf8).write(to: URL(fileURLWithPath: files.path("corrupt.npy")))
        try NumPyArray(shape: [7], elementType: .float64, values: randomValues(7, seed: 9)).write(to: files.path("short.npy"))
        var nonFinite: [Double] = randomValues(files.dimension, seed: 10)
        nonFinite[3] = .nan
        try NumPyArray(shape: [files.dimension], elementType: .float64, values: nonFinite).write(to: files.path("nan.npy"))
        try NumPyArray(shape: [files.rows], elementType: .float64, values: Array(repeating: -1, count: files.rows))
            .write(to: files.path("negative.npy"))

        let base = ["solve", "--factor", files.path("U.npy"), "--output", files.path("x.npy")]
        let cases: [(arguments: [String], mention: String)] = [
            (base + ["--gradient", files.path("missing.npy"), "--damping", "1"], "missing.npy"),
            (base + ["--gradient", files.path("corrupt.npy"), "--damping", "1"], "corrupt.npy"),
            (base + ["--gradient", files.path("short.npy"), "--damping", "1"], "short.npy"),
            (base + ["--gradient", files.path("nan.npy"), "--damping", "1"], "non-finite"),
            (
                base + ["--gradient", files.path("g.npy"), "--weights", files.path("negative.npy"), "--damping", "1"],
                "negative.npy"
            ),
            (base + ["--gradient", files.path("g.npy"), "--damping", "-1"], "--damping"),
            (base + ["--gradient", files.path("g.npy"), "--damping", "nan"], "--damping"),
            (base + ["--gradient", files.path("g.npy"), "--damping", "1", "--method", "magic"], "magic"),
            (base + ["--gradient", files.path("g.npy"), "--damping", "1", "--device", "no-such-device"], "no-such-device"),
        ]
        for (arguments, mention) in cases {
            let (status, _, stderr) = try runNgrad(arguments)
            #expect(status == 2, "\(mention): \(stderr)")
            #expect(stderr.contains(mention), "\(stderr)")
            #expect(stderr.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "\(stderr)")
        }
        #expect(try runNgrad(["--version"]).status == 0)
        #expect(try runNgrad(["solve", "--help"]).status == 0)
    }
}
