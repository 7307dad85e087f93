import Foundation
import NIOCore
import ReconcileCore
import Testing

@testable import ReconcileDocker

struct CreateContainerBodyTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var fixture: String
        var request: ContainerCreation
        var testDescription: String { fixture }
    }

    static let cases: [Case] = [
        Case(
            fixture: "create-full",
            request: ContainerCreation(
                name: "devops-fastapi-staging", image: "acme/devops-fastapi:latest",
                environment: [("LOG_LEVEL", "info"), ("API_TOKEN", "s3cret")], command: ["uvicorn", "app:main"],
                labels: [Labels.managed: "true"],
                port: PublishedPort(hostIP: "127.0.0.1", hostPort: 8001, containerPort: 8000), restart: .unlessStopped,
                memory: 512 << 20, cpus: 1.5, stopTimeout: .milliseconds(1500),
                healthcheck: {
                    var check = DockerHealthcheck(test: ["CMD", "curl", "-f", "http://localhost:8000/health"])
                    check.startPeriod = .seconds(5)
                    return check
                }())),
        Case(
            fixture: "create-minimal",
            request: ContainerCreation(
                name: "t", image: "reconcile-fixture:v1", environment: [], command: nil, labels: [:],
                port: PublishedPort(hostIP: "0.0.0.0", hostPort: 18001, containerPort: 8080), restart: .no, memory: nil,
                cpus: nil, stopTimeout: .seconds(10), healthcheck: nil)),
    ]

    @Test(arguments: cases)
    func bodyMatchesGolden(_ testCase: Case) throws {
        let url = try #require(
            Bundle.module.url(forResource: testCase.fixture, withExtension: "json", subdirectory: "Fixtures"))
        let expected = try String(contentsOf: url, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let actual = String(decoding: try CreateContainerBody(testCase.request).json(), as: UTF8.self)
        #expect(actual == expected)
    }
}

struct DockerEndpointTests {
    @Test(arguments: [
        ("ssh://web1", DockerEndpoint.Transport.ssh(user: nil, host: "web1", port: nil), "ssh://web1"),
        ("SSH://web1", .ssh(user: nil, host: "web1", port: nil), "ssh://web1"),
        ("ssh://deploy@web1:2222/", .ssh(user: "deploy", host: "web1", port: 2222), "ssh://deploy@web1:2222"),
        ("ssh://root@[::1]:22", .ssh(user: "root", host: "::1", port: 22), "ssh://root@[::1]:22"),
    ])
    func readsSSHAsTheDockerCLIDoes(_ host: String, _ transport: DockerEndpoint.Transport, _ shown: String) throws {
        let endpoint = try DockerEndpoint.from(environment: ["DOCKER_HOST": host])
        #expect(endpoint.transport == transport)
        #expect(endpoint.description == shown)
        #expect(
            EngineError.unreachable(endpoint: "ssh://deploy@web1:2222", reason: "x").description.contains(
                "check that `ssh -o BatchMode=yes -p 2222 deploy@web1 docker version` works"))
    }

    @Test func defaultsToTheLocalSocket() throws {
        let endpoint = try DockerEndpoint.from(environment: [:])
        #expect(endpoint.transport == .unix(path: "/var/run/docker.sock"))
        #expect(endpoint.description == "unix:///var/run/docker.sock")
        #expect(endpoint.url("/v1.41/_ping") == "http+unix://%2Fvar%2Frun%2Fdocker%2Esock/v1.41/_ping")
    }

    @Test func readsTCPAndTLS() throws {
        let endpoint = try DockerEndpoint.from(environment: [
            "DOCKER_HOST": "tcp://10.0.0.5:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs",
        ])
        #expect(endpoint.transport == .tcp(host: "10.0.0.5", port: 2376))
        #expect(
            endpoint.tls == DockerEndpoint.TLSFiles(ca: "/certs/ca.pem", cert: "/certs/cert.pem", key: "/certs/key.pem")
        )
        #expect(endpoint.url("/_ping") == "https://10.0.0.5:2376/_ping")
        let plain = try DockerEndpoint.from(environment: ["DOCKER_HOST": "tcp://[::1]:2375"])
        #expect(plain.description == "tcp://[::1]:2375")
        #expect(plain.url("/_ping") == "http://[::1]:2375/_ping")
    }

    @Test(arguments: [
        ("ssh://", "DOCKER_HOST=ssh:// is not usable: expected ssh://[USER@]HOST[:PORT] with no path"),
        (
            "ssh://host/path",
            "DOCKER_HOST=ssh://host/path is not usable: expected ssh://[USER@]HOST[:PORT] with no path"
        ),
        (
            "ssh://u:pw@host",
            // The password itself is never shown: it would reach cron mail and CI logs.
            "DOCKER_HOST=ssh://u:***@host is not usable: a password in the URL is not supported; use a key (ssh-agent) instead"
        ),
        (
            "ssh://-oProxyCommand=x",
            "DOCKER_HOST=ssh://-oProxyCommand=x is not usable: \"-oProxyCommand=x\" is not a host name"
        ),
        ("ssh://host:99999", "DOCKER_HOST=ssh://host:99999 is not usable: the port must be a number from 1 to 65535"),
        ("ssh://host:+22", "DOCKER_HOST=ssh://host:+22 is not usable: the port must be a number from 1 to 65535"),
        (
            "ssh://@host",
            "DOCKER_HOST=ssh://@host is not usable: the user name before @ must be letters, digits, . _ or -"
        ),
        (
            "ssh://u@::1",
            "DOCKER_HOST=ssh://u@::1 is not usable: write an IPv6 address in brackets: ssh://user@[::1]:22"
        ),
        (
            "ssh://u@h:22:22",
            "DOCKER_HOST=ssh://u@h:22:22 is not usable: write an IPv6 address in brackets: ssh://user@[::1]:22"
        ),
        ("ssh://u@[::1", "DOCKER_HOST=ssh://u@[::1 is not usable: an IPv6 address needs its closing bracket: [::1]"),
        (
            "npipe:////./pipe/docker_engine",
            "DOCKER_HOST=npipe:////./pipe/docker_engine is not usable: only unix:// and tcp:// are supported"
        ),
        ("tcp://host", "DOCKER_HOST=tcp://host is not usable: expected tcp://HOST:PORT"),
        ("tcp://[::1", "DOCKER_HOST=tcp://[::1 is not usable: expected tcp://HOST:PORT (an IPv6 address as [::1])"),
        ("unix://relative.sock", "DOCKER_HOST=unix://relative.sock is not usable: the socket path must be absolute"),
    ])
    func refusesWhatItCannotSpeak(_ host: String, _ message: String) {
        #expect(throws: EndpointError.self) { try DockerEndpoint.from(environment: ["DOCKER_HOST": host]) }
        do {
            _ = try DockerEndpoint.from(environment: ["DOCKER_HOST": host])
        } catch {
            #expect("\(error)" == message)
        }
    }
}

struct WireFormatTests {
    @Test func logsAreDemultiplexed() {
        let frames: [UInt8] =
            [1, 0, 0, 0, 0, 0, 0, 6] + Array("hello\n".utf8) + [2, 0, 0, 0, 0, 0, 0, 5] + Array("oops\n".utf8)
        #expect(DockerEngine.demultiplex(ByteBuffer(bytes: frames)) == "hello\noops\n")
        #expect(DockerEngine.demultiplex(ByteBuffer(bytes: Array("tty output\n".utf8))) == "tty output\n")
    }

    @Test func dockerTimesAreParsed() throws {
        let date = try #require(DockerDTO.date("2026-11-26T18:20:01.123456789Z"))
        #expect(abs(date.timeIntervalSince1970 - 1_795_717_201.123) < 0.001)
        #expect(DockerDTO.date("2026-11-26T18:20:01Z") != nil)
        #expect(DockerDTO.date("0001-01-01T00:00:00Z") == nil)
    }

    @Test func versionsCompareNumerically() {
        #expect(DockerEngine.compare("1.41", "1.41") == 0)
        #expect(DockerEngine.compare("1.9", "1.41") < 0)
        #expect(DockerEngine.compare("1.47", "1.41") > 0)
    }

    @Test func pullErrorsInsideTheStreamAreThrown() {
        let line = Data(#"{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}"#.utf8)
        #expect(throws: EngineError.pullFailed(reference: "a:b", message: "manifest unknown")) {
            try DockerEngine.pullLine(line, reference: "a:b", progress: { _ in })
        }
        let progress = Data(#"{"status":"Downloading","id":"abc","progress":"[==>  ]"}"#.utf8)
        #expect(throws: Never.self) { try DockerEngine.pullLine(progress, reference: "a:b", progress: { _ in }) }
    }

    @Test func eventsAreDecoded() throws {
        let line = Data(
            #"{"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"web"}},"time":1,"timeNano":1500000000}"#
                .utf8)
        let event = try #require(DockerEngine.event(from: line))
        #expect(event.action == "start")
        #expect(event.name == "web")
        #expect(event.time.timeIntervalSince1970 == 1.5)
        #expect(DockerEngine.event(from: Data(#"{"Type":"image","Action":"pull"}"#.utf8)) == nil)
    }
}
