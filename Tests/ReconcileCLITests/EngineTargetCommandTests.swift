import Foundation
import ReconcileCore
import ReconcileTestSupport
import Testing

/// Files that name their engine (`engine:`): each engine is asked about its own environments
/// only, and the output keeps the files' order and names the engine.
struct EngineTargetCommandTests {
    func files() throws -> (folder: String, paths: [String]) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("engines-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var paths: [String] = []
        for (name, engine) in [("a", "tcp://web1:2376"), ("b", nil), ("c", "tcp://web1:2376"), ("d", "web-2")] {
            let path = "\(folder)/\(name).yml"
            let yaml = """
                service: app
                environment: \(name)
                image: acme/app:v1
                port: \(18100 + paths.count)
                \(engine.map { "engine: \($0)" } ?? "")

                """
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            paths.append(path)
        }
        return (folder, paths)
    }

    @Test func diffAsksEachEngineAboutItsOwnEnvironmentsInTheFilesOrder() async throws {
        let (folder, paths) = try files()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let image = ImageSnapshot(id: "sha256:1111")
        let engines = [
            "tcp://web1:2376": FakeEngine(images: ["acme/app:v1": image]),
            "default": FakeEngine(images: ["acme/app:v1": image]),
            "context web-2": FakeEngine(images: ["acme/app:v1": image]),
        ]
        let asked = Locked([String]())
        let run = await runReconcile(["diff", folder]) { target in
            let name = target?.description ?? "default"
            asked.withLock { $0.append(name) }
            return try #require(engines[name])
        }
        #expect(run.code == 2, "\(run.stdout)\(run.stderr)")
        #expect(asked.withLock { $0 } == ["tcp://web1:2376", "default", "context web-2"], "one connection per engine")
        let headers = run.stdout.split(separator: "\n").filter { $0.contains("→ container") }
        #expect(
            headers.map { String($0.split(separator: " ").first ?? "") } == ["a", "b", "c", "d"], "\(run.stdout)")
        #expect(run.stdout.contains("→ container app-a on tcp://web1:2376"))
        #expect(run.stdout.contains("→ container app-d on context web-2"))
        #expect(!run.stdout.contains("→ container app-b on"))
        // Each engine was asked about its own environments' images only once per look, and d's
        // engine never about a.
        for (_, engine) in engines { #expect(await engine.calls.filter { $0 == "containers" }.count == 1) }

        let down = await runReconcile(["diff", folder]) { target in
            guard target?.context != "web-2" else {
                throw EngineError.unreachable(
                    endpoint: "tcp://10.0.0.9:2376 (docker context web-2)", reason: "connection refused")
            }
            return try #require(engines[target?.description ?? "default"])
        }
        #expect(down.code == 1)
        #expect(down.stderr.contains("docker context web-2"), "\(down.stderr)")
    }

    @Test func parallelIsBounded() async {
        let run = await runReconcile(["apply", "x.yml", "--parallel", "0"])
        #expect(run.code == 64)
        #expect(run.stderr.contains("--parallel expects a number from 1 to 64"), "\(run.stderr)")
    }
}
