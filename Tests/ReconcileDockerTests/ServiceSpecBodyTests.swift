import Foundation
import ReconcileCore
import Testing

@testable import ReconcileDocker

/// The service spec sent to `POST /services/create` and `/update`: what the file says, in the
/// Engine API's words and units.
struct ServiceSpecBodyTests {
    @Test func theFilesSwarmSettingsBecomeTheServiceSpec() throws {
        var check = DockerHealthcheck(test: ["CMD", "curl", "-f", "http://localhost:8000/health"])
        check.interval = .seconds(30)
        let request = ContainerCreation(
            name: "app-production", image: "acme/app:v2", environment: [("LOG_LEVEL", "info")], command: ["serve"],
            labels: [Labels.managed: "true"], port: PublishedPort(hostIP: "", hostPort: 8000, containerPort: 8080),
            restart: .unlessStopped, memory: 256 << 20, cpus: 0.5, stopTimeout: .seconds(10), healthcheck: check)
        var swarm = SwarmSettings()
        swarm.replicas = 3
        swarm.parallelism = 2
        swarm.delay = .seconds(5)
        swarm.order = .startFirst
        swarm.failureAction = .pause
        swarm.constraints = ["node.role==worker"]
        swarm.publishMode = .host
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(ServiceSpecBody(request, swarm: swarm)))
        let body = try #require(json as? [String: Any])
        #expect(body["Name"] as? String == "app-production")
        #expect((body["Labels"] as? [String: String])?[Labels.managed] == "true")
        let template = try #require(body["TaskTemplate"] as? [String: Any])
        let container = try #require(template["ContainerSpec"] as? [String: Any])
        #expect(container["Image"] as? String == "acme/app:v2")
        #expect(container["Env"] as? [String] == ["LOG_LEVEL=info"])
        #expect(container["Args"] as? [String] == ["serve"])
        #expect(container["StopGracePeriod"] as? Int64 == 10_000_000_000)
        #expect((container["Healthcheck"] as? [String: Any])?["Interval"] as? Int64 == 30_000_000_000)
        let limits = (template["Resources"] as? [String: Any])?["Limits"] as? [String: Any]
        #expect(limits?["NanoCPUs"] as? Int64 == 500_000_000 && limits?["MemoryBytes"] as? Int64 == 256 << 20)
        #expect((template["Placement"] as? [String: Any])?["Constraints"] as? [String] == ["node.role==worker"])
        #expect(((body["Mode"] as? [String: Any])?["Replicated"] as? [String: Any])?["Replicas"] as? Int == 3)
        let update = try #require(body["UpdateConfig"] as? [String: Any])
        #expect(update["Parallelism"] as? Int == 2 && update["Delay"] as? Int64 == 5_000_000_000)
        #expect(update["Order"] as? String == "start-first" && update["FailureAction"] as? String == "pause")
        #expect((body["RollbackConfig"] as? [String: Any])?["FailureAction"] as? String == "pause")
        let ports = try #require((body["EndpointSpec"] as? [String: Any])?["Ports"] as? [[String: Any]])
        #expect(ports.first?["PublishedPort"] as? Int == 8000 && ports.first?["TargetPort"] as? Int == 8080)
        #expect(ports.first?["PublishMode"] as? String == "host")
        #expect(container["Secrets"] == nil)
    }

    @Test func swarmSecretsAreFilesInTheTasksAndNeverValues() throws {
        var request = ContainerCreation(
            name: "app-production", image: "acme/app:v2", environment: [("API_TOKEN_FILE", "/run/secrets/API_TOKEN")],
            command: nil, labels: [:], port: nil, restart: .unlessStopped, memory: nil, cpus: nil,
            stopTimeout: .seconds(10), healthcheck: nil)
        request.swarmSecrets = [SwarmSecretMount(id: "s1", name: "app-production-API_TOKEN-0a1b", target: "API_TOKEN")]
        let json = try JSONSerialization.jsonObject(
            with: JSONEncoder().encode(ServiceSpecBody(request, swarm: SwarmSettings())))
        let template = try #require((json as? [String: Any])?["TaskTemplate"] as? [String: Any])
        let container = try #require(template["ContainerSpec"] as? [String: Any])
        let secrets = try #require(container["Secrets"] as? [[String: Any]])
        #expect(secrets.count == 1)
        #expect(secrets[0]["SecretID"] as? String == "s1")
        #expect(secrets[0]["SecretName"] as? String == "app-production-API_TOKEN-0a1b")
        let file = try #require(secrets[0]["File"] as? [String: Any])
        #expect(
            file["Name"] as? String == "API_TOKEN" && file["Mode"] as? Int == 0o444 && file["UID"] as? String == "0")
    }

    @Test func combinationsThatCanNeverConvergeAreNamed() {
        var swarm = SwarmSettings()
        swarm.publishMode = .host
        swarm.replicas = 3
        #expect(swarm.neverConverges(nodes: 2, port: 8000)?.contains("needs 3 nodes") == true)
        #expect(swarm.neverConverges(nodes: 3, port: 8000) == nil)
        // Swarm starts a slot's new task on its old task's node, whatever other node is free.
        swarm.order = .startFirst
        #expect(swarm.neverConverges(nodes: 4, port: 8000)?.contains("where port 8000 is taken") == true)
        swarm.publishMode = .ingress
        #expect(swarm.neverConverges(nodes: 1, port: 8000) == nil)
        // The wait for a rolling update: per batch its delay, monitor and the health budget, plus a margin.
        var policy = HealthPolicy()
        policy.startup = .seconds(1)
        policy.attempts = 1
        policy.interval = .seconds(1)
        swarm.parallelism = 2
        swarm.delay = .seconds(3)
        swarm.monitor = .seconds(5)
        #expect(swarm.updateBound(health: policy) == .seconds(2 * (3 + 5 + 2) + 30))
    }
}
