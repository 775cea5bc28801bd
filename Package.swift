// swift-tools-version: 6.0
import Foundation
import PackageDescription

// The MPI targets need Open MPI (`libopenmpi-dev`, installed by scripts/setup-debian.sh).
// Nothing else depends on them: without MPI, build the other products by name
// (`swift build --product ngrad`) or set NGRAD_WITHOUT_MPI=1 to leave the MPI targets out.
let withMPI = ProcessInfo.processInfo.environment["NGRAD_WITHOUT_MPI"] == nil

let package = Package(
    name: "NaturalGradient",
    products: [
        .library(name: "NaturalGradient", targets: ["NaturalGradient"]),
        .executable(name: "ngrad", targets: ["ngrad"]),
        .library(name: "SVGCharts", targets: ["SVGCharts"]),
        // Float64 references, SplitMix64, error measures, text tables and timing, shared by
        // the tests, `ngrad bench`/`tune` and the benchmark package (Benchmarks/).
        .library(name: "NaturalGradientTestSupport", targets: ["NaturalGradientTestSupport"]),
        // The .npy reader and writer (memory-mapped reading), for the benchmark package's
        // large-input measurement.
        .library(name: "NumPyFormat", targets: ["NumPyFormat"]),
        // The C ABI (include/naturalgradient.h) as a shared library, for C, C++ and Python.
        .library(name: "NaturalGradientC", type: .dynamic, targets: ["NaturalGradientC"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
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

        // MARK: CBLAS (OpenBLAS) for the examples' MLP (its forward and backward passes are
        // batched sgemm calls) and the library's host float64 GEMMs (EKFAC's eigenvalue
        // correction).
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

        // MARK: Writing a file without ever renaming over one that is not regular (no
        // dependencies): the .npy writer, `ngrad`'s output files and the tuning cache.
        .target(name: "FileWriting"),

        // MARK: NumPy .npy files, for `ngrad solve`.
        .target(name: "NumPyFormat", dependencies: ["FileWriting"]),

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
            dependencies: ["OpenCLHost", "NaturalGradientKernels", "CLAPACK", "CBLAS", "FileWriting"]
        ),

        // MARK: SVG line charts for the training, example and benchmark plots (no dependencies).
        .target(name: "SVGCharts"),

        // MARK: What the tests, `ngrad bench`/`tune` and Benchmarks/ check and time with.
        .target(name: "NaturalGradientTestSupport", dependencies: ["NaturalGradient", "OpenCLHost"]),

        // MARK: The examples `ngrad train` and `ngrad example` run: the digits MLP with its
        // first-order optimizers and data loader, and the Gaussian-process model selection.
        .target(
            name: "NaturalGradientExamples",
            dependencies: ["NaturalGradient", "NaturalGradientTestSupport", "OpenCLHost", "SVGCharts", "CZlib", "CBLAS"]
        ),

        // MARK: Layer 4: the command-line tool (parses, calls the targets above, prints).
        // With MPI it also links NaturalGradientDistributed for `ngrad train --distributed`
        // (compiled under NGRAD_MPI); without, that flag is a usage error saying so.
        .executableTarget(
            name: "ngrad",
            dependencies: [
                "NaturalGradient",
                "NaturalGradientExamples",
                "NaturalGradientTestSupport",
                "NumPyFormat",
                "FileWriting",
                // `ngrad devices` lists platforms, `ngrad kernels` builds a caller's source.
                "OpenCLHost",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ] + (withMPI ? ["NaturalGradientDistributed"] : []),
            swiftSettings: withMPI ? [.define("NGRAD_MPI")] : []
        ),

        // MARK: The C ABI: the public header (a C target, so the Swift side compiles against
        // the very struct layouts C callers see) and its `@_cdecl` implementation.
        .target(name: "CNaturalGradient"),
        .target(name: "NaturalGradientC", dependencies: ["CNaturalGradient", "NaturalGradient", "COpenCL"]),

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

if withMPI {
    package.products += [
        .library(name: "NaturalGradientDistributed", targets: ["NaturalGradientDistributed"]),
        .executable(name: "ngrad-mpi-check", targets: ["NaturalGradientMPICheck"]),
    ]
    package.targets += [
        // MARK: MPI (Open MPI's pkg-config name is `ompi`); shim.h turns its handle macros into functions.
        .systemLibrary(
            name: "CMPI",
            pkgConfig: "ompi",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]
        ),

        // MARK: Data-parallel curvature, products, CG and K-FAC over MPI (Docs/Distributed.md).
        .target(name: "NaturalGradientDistributed", dependencies: ["NaturalGradient", "CMPI"]),

        // MARK: The distributed checks, run under mpirun by scripts/test-mpi.sh.
        .executableTarget(
            name: "NaturalGradientMPICheck",
            dependencies: ["NaturalGradientDistributed", "NaturalGradient", "NaturalGradientTestSupport"]
        ),
        .testTarget(name: "NaturalGradientDistributedTests", dependencies: ["NaturalGradientMPICheck", "ngrad"]),
    ]
}
