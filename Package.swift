// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "NaturalGradient",
    products: [
        .library(name: "NaturalGradient", targets: ["NaturalGradient"]),
        .executable(name: "ngrad", targets: ["ngrad"]),
        .library(name: "SVGCharts", targets: ["SVGCharts"]),
        // Float64 references, SplitMix64, error measures, text tables and timing, shared by
        // the tests, `ngrad bench`/`tune` and the benchmark package (Benchmarks/).
        .library(name: "NaturalGradientTestSupport", targets: ["NaturalGradientTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: Layer 1: the OpenCL C API (OpenCL 1.2 headers, any ICD).
        .systemLibrary(
            name: "COpenCL",
            pkgConfig: "OpenCL",
            providers: [.apt(["ocl-icd-opencl-dev"])]
        ),

        // MARK: LAPACK for the float64 dense factorisations on the host.
        .systemLibrary(
            name: "CLAPACK",
            pkgConfig: "lapacke",
            providers: [.apt(["liblapacke-dev", "libopenblas-dev"])]
        ),

        // MARK: CBLAS (OpenBLAS) for the examples' MLP: its forward and backward passes are
        // batched sgemm calls.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),

        // MARK: zlib, to read gzipped data files and streams (`ngrad train --data`).
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // MARK: NumPy .npy files, for `ngrad solve` (no dependencies).
        .target(name: "NumPyFormat"),

        // MARK: Layer 2: host layer: devices, contexts, buffers, programs, kernels.
        .target(name: "OpenCLHost", dependencies: ["COpenCL"]),

        // MARK: Kernels/*.cl embedded as string constants (implementation detail).
        // The target lives in Kernels/ so that the .cl files are its inputs: SwiftPM re-runs
        // the plugin when one is added, removed or edited.
        .executableTarget(name: "KernelEmbedder", path: "Sources/KernelEmbedder"),
        .plugin(
            name: "EmbedKernels",
            capability: .buildTool(),
            dependencies: ["KernelEmbedder"]
        ),
        .target(
            name: "NaturalGradientKernels",
            path: "Kernels",
            plugins: ["EmbedKernels"]
        ),

        // MARK: Layer 3: the library.
        .target(
            name: "NaturalGradient",
            dependencies: ["OpenCLHost", "NaturalGradientKernels", "CLAPACK"]
        ),

        // MARK: SVG line charts for the training, example and benchmark plots (no dependencies).
        .target(name: "SVGCharts"),

        // MARK: What the tests, `ngrad bench`/`tune` and Benchmarks/ check and time with.
        .target(name: "NaturalGradientTestSupport", dependencies: ["OpenCLHost"]),

        // MARK: The examples `ngrad train` and `ngrad example` run: the digits MLP with its
        // first-order optimizers and data loader, and the Gaussian-process model selection.
        .target(
            name: "NaturalGradientExamples",
            dependencies: ["NaturalGradient", "NaturalGradientTestSupport", "SVGCharts", "CZlib", "CBLAS"]
        ),

        // MARK: Layer 4: the command-line tool (parses, calls the targets above, prints).
        .executableTarget(
            name: "ngrad",
            dependencies: [
                "NaturalGradient",
                "NaturalGradientExamples",
                "NaturalGradientTestSupport",
                "NumPyFormat",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .testTarget(name: "OpenCLHostTests", dependencies: ["OpenCLHost", "NaturalGradientTestSupport"]),
        .testTarget(name: "NaturalGradientTests", dependencies: ["NaturalGradient", "NaturalGradientTestSupport"]),
        .testTarget(name: "NumPyFormatTests", dependencies: ["NumPyFormat", "NaturalGradientTestSupport"]),
        .testTarget(name: "SVGChartsTests", dependencies: ["SVGCharts"]),
        .testTarget(name: "NaturalGradientTestSupportTests", dependencies: ["NaturalGradientTestSupport"]),
        .testTarget(
            name: "ngradTests",
            dependencies: ["ngrad", "NaturalGradientExamples", "NumPyFormat", "NaturalGradientTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
