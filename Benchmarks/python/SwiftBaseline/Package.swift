// swift-tools-version: 6.0
// The Swift side of the bridge-overhead benchmark: the same operations as
// bridge_overhead.py, through the Swift API (host arrays uploaded and downloaded, as a Swift
// caller with host data does). Its own package, so the library's package stays free of it.
import PackageDescription

let package = Package(
    name: "SwiftBaseline",
    dependencies: [.package(name: "NaturalGradient", path: "../../..")],
    targets: [
        .executableTarget(
            name: "swift-baseline",
            dependencies: [.product(name: "NaturalGradient", package: "NaturalGradient")]
        )
    ],
    swiftLanguageModes: [.v6]
)
