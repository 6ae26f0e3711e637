// swift-tools-version:5.9
// The iOS shell's Swift package: the generated bindings (mobile/generate-bindings.sh, copied in
// by build-xcframework.sh) over the node core's static library in an XCFramework, and the
// shell's implementations of the node's foreign traits. The app target (App/) depends on it.
import PackageDescription

let package = Package(
    name: "OpenClawShell",
    platforms: [.iOS(.v16)],
    products: [
        .library(name: "OpenClawShell", targets: ["OpenClawShell"]),
    ],
    targets: [
        // libopenclaw_node.a for device and simulator, with the generated C header and
        // modulemap (module OpenClawNodeFFI); made by build-xcframework.sh on a Mac.
        .binaryTarget(name: "OpenClawNodeFFI", path: "build/OpenClawNodeFFI.xcframework"),
        .target(
            name: "OpenClawShell",
            dependencies: ["OpenClawNodeFFI"],
            path: "Sources/OpenClawShell"
        ),
    ]
)
