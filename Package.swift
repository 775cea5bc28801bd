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

        // MARK: Layer 4: the command-line tool.
        .executableTarget(
            name: "ngrad",
            dependencies: [
                "NaturalGradient",
                "NumPyFormat",
                "SVGCharts",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["OpenCLHost"], path: "Tests/TestSupport"),
        .testTarget(name: "OpenCLHostTests", dependencies: ["OpenCLHost", "TestSupport"]),
        .testTarget(name: "NaturalGradientTests", dependencies: ["NaturalGradient", "TestSupport"]),
        .testTarget(name: "NumPyFormatTests", dependencies: ["NumPyFormat"]),
        .testTarget(name: "SVGChartsTests", dependencies: ["SVGCharts"]),
        .testTarget(name: "ngradTests", dependencies: ["ngrad", "NumPyFormat", "TestSupport"]),
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
            dependencies: ["NaturalGradientDistributed", "NaturalGradient", "TestSupport"]
        ),
        .testTarget(name: "NaturalGradientDistributedTests", dependencies: ["NaturalGradientMPICheck"]),
    ]
}
