// Benchmark harness (make bench): stages N environments that are in sync on the local engine,
// then times whole `reconcile diff` processes over them. Not a test; numbers go to docs/benchmarks.md.
import Foundation
import ReconcileCore
import ReconcileDocker

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: reconcile-bench PATH-TO-RECONCILE [ENVIRONMENTS] [RUNS]\n".utf8))
    exit(1)
}
let binary = arguments[1]
let count = arguments.count > 2 ? Int(arguments[2]) ?? 20 : 20
let runs = arguments.count > 3 ? Int(arguments[3]) ?? 30 : 30
let label = "io.reconcile.test"
let runID = "bench\(UUID().uuidString.prefix(6).lowercased())"

let engine = try await DockerEngine.connect(try DockerEndpoint.from(environment: ProcessInfo.processInfo.environment))
let folder = FileManager.default.temporaryDirectory.appendingPathComponent(runID)
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

func cleanUp() async {
    for container in (try? await engine.containers()) ?? [] where container.labels[label] == runID {
        try? await engine.removeContainer(container.id, force: true)
    }
    try? FileManager.default.removeItem(at: folder)
}

/// Runs the binary with `args`, returns (exit code, wall seconds).
func time(_ args: [String]) throws -> (Int32, Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = args
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    let start = DispatchTime.now().uptimeNanoseconds
    try process.run()
    process.waitUntilExit()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    return (process.terminationStatus, seconds)
}

func report(_ name: String, _ samples: [Double]) {
    let sorted = samples.sorted()
    let pick = { (q: Double) in sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * q))] * 1000 }
    print(
        String(
            format: "%-40@ runs %3d  min %6.1f ms  median %6.1f ms  p95 %6.1f ms  max %6.1f ms",
            name as NSString, samples.count, pick(0), pick(0.5), pick(0.95), pick(1)))
}

do {
    for index in 0..<count {
        let yaml = """
            service: \(runID)-\(index)
            environment: bench
            image: reconcile-fixture:v1
            port: \(31000 + index)
            container_port: 8080
            stop_timeout: 1s
            env: {INDEX: "\(index)"}
            health: {path: /health, expect_json: {status: healthy}}
            smoke: [{path: /items}]

            """
        let file = folder.appendingPathComponent("env\(index).yml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let spec = try SpecParser.parse(Array(yaml.utf8), file: file.path, defaultEnvironment: "bench").get().spec
        var creation = ContainerCreation(desired: DesiredEnvironment(spec: spec), deployedAt: Date())
        creation.labels[label] = runID
        let id = try await engine.createContainer(creation)
        try await engine.startContainer(id)
    }
    print("staged \(count) environments in sync (\(runID)); engine API \(engine.apiVersion)")

    let (code, _) = try time(["diff", folder.path])
    guard code == 0 else {
        throw NSError(
            domain: "bench", code: Int(code),
            userInfo: [NSLocalizedDescriptionKey: "diff exited \(code), expected 0 (in sync)"])
    }
    var diff: [Double] = []
    var validate: [Double] = []
    var version: [Double] = []
    for _ in 0..<runs {
        diff.append(try time(["diff", folder.path]).1)
        validate.append(try time(["validate", folder.path]).1)
        version.append(try time(["version"]).1)
    }
    report("reconcile diff (\(count) envs, in sync)", diff)
    report("reconcile validate (\(count) envs)", validate)
    report("reconcile version (process start)", version)
} catch {
    FileHandle.standardError.write(Data("bench failed: \(error)\n".utf8))
    await cleanUp()
    await engine.shutdown()
    exit(1)
}
await cleanUp()
await engine.shutdown()
