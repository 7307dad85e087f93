// swift-tools-version:6.0
import Foundation
import PackageDescription

/// The commit stamped into `reconcile version`: RECONCILE_COMMIT (the Makefile sets it), else the
/// checkout's HEAD read from .git without running git.
let buildCommit: String = {
    if let commit = ProcessInfo.processInfo.environment["RECONCILE_COMMIT"], !commit.isEmpty { return commit }
    let git = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(".git")
    guard let head = try? String(contentsOf: git.appendingPathComponent("HEAD"), encoding: .utf8) else {
        return "unknown"
    }
    let trimmed = head.trimmingCharacters(in: .whitespacesAndNewlines)
    guard trimmed.hasPrefix("ref: ") else { return String(trimmed.prefix(12)) }
    let ref = String(trimmed.dropFirst(5))
    if let value = try? String(contentsOf: git.appendingPathComponent(ref), encoding: .utf8) {
        return String(value.prefix(12))
    }
    let packed = (try? String(contentsOf: git.appendingPathComponent("packed-refs"), encoding: .utf8)) ?? ""
    let line = packed.split(separator: "\n").first { $0.hasSuffix(" " + ref) }
    return line.map { String($0.prefix(12)) } ?? "unknown"
}()

let package = Package(
    name: "reconcile",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "reconcile", targets: ["reconcile"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.100.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        .executableTarget(
            name: "reconcile",
            dependencies: ["ReconcileCLI"]
        ),
        .executableTarget(
            name: "reconcile-bench",
            dependencies: ["ReconcileCore", "ReconcileDocker"]
        ),
        .target(
            name: "ReconcileCore",
            dependencies: [
                "Yams",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "ReconcileDocker",
            dependencies: [
                "ReconcileCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .target(
            name: "ReconcileSystem",
            dependencies: [
                "ReconcileCore",
                "ReconcileDocker",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        .target(
            name: "ReconcileServer",
            dependencies: [
                "ReconcileCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CReconcileBuildInfo",
            cSettings: [.define("RECONCILE_COMMIT", to: "\"\(buildCommit)\"")]
        ),
        .target(
            name: "ReconcileCLI",
            dependencies: [
                "CReconcileBuildInfo",
                "ReconcileCore",
                "ReconcileDocker",
                "ReconcileSystem",
                "ReconcileServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "ReconcileTestSupport",
            dependencies: ["ReconcileCore", "ReconcileCLI"]
        ),
        .testTarget(
            name: "ReconcileCoreTests",
            dependencies: ["ReconcileCore", "ReconcileTestSupport"]
        ),
        .testTarget(
            name: "ReconcileDockerTests",
            dependencies: [
                "ReconcileDocker", "ReconcileCore", "ReconcileTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "ReconcileSystemTests",
            dependencies: ["ReconcileSystem", "ReconcileCore", "ReconcileDocker", "ReconcileTestSupport"]
        ),
        .testTarget(
            name: "ReconcileCLITests",
            dependencies: [
                "ReconcileCLI", "ReconcileCore", "ReconcileSystem", "ReconcileServer", "ReconcileTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "ReconcileCLI", "ReconcileCore", "ReconcileDocker", "ReconcileSystem", "ReconcileTestSupport",
            ]
        ),
    ]
)
