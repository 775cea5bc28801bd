// swift-tools-version: 6.0
import PackageDescription

// The benchmark suite is its own package so that the library never links its peers:
// OpenBLAS (host CPU) and CLBlast (the same OpenCL device), both from Debian's packages
// (`bash scripts/setup-debian.sh --benchmarks`).
let package = Package(
    name: "NaturalGradientBenchmarks",
    dependencies: [
        .package(name: "NaturalGradient", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // OpenBLAS's CBLAS interface (cblas.h, libopenblas).
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // CLBlast's C interface (clblast_c.h, libclblast) over the OpenCL 1.2 API.
        .systemLibrary(
            name: "CCLBlast",
            pkgConfig: "clblast",
            providers: [.apt(["libclblast-dev"])]
        ),
        .executableTarget(
            name: "ngrad-benchmarks",
            dependencies: [
                "COpenBLAS",
                "CCLBlast",
                .product(name: "NaturalGradient", package: "NaturalGradient"),
                .product(name: "SVGCharts", package: "NaturalGradient"),
                .product(name: "NaturalGradientTestSupport", package: "NaturalGradient"),
                .product(name: "NumPyFormat", package: "NaturalGradient"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
