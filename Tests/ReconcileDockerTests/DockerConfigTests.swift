import Crypto
import Foundation
import ReconcileCore
import Testing

@testable import ReconcileDocker

/// Issue 10: the docker CLI's config read the docker CLI's way: logins, credential helpers,
/// contexts; the registry an image comes from; what a pull failure asks the user to do.
struct DockerConfigTests {
    /// A helper that answers from a table and records what it was asked.
    final class TableHelper: CredentialHelper, @unchecked Sendable {
        let answers: [String: (String, String)]
        let lock = NSLock()
        var asked: [String] = []
        init(_ answers: [String: (String, String)]) { self.answers = answers }
        func get(helper: String, server: String) async throws -> (username: String, secret: String)? {
            lock.withLock { asked.append("\(helper) \(server)") }
            return answers["\(helper) \(server)"].map { (username: $0.0, secret: $0.1) }
        }
    }

    static func config(_ json: String) throws -> DockerConfig {
        try DockerConfig.parse(Data(json.utf8), directory: "/home/u/.docker")
    }

    @Test(arguments: [
        ("acme/app", ImageReference.dockerHubServer), ("app", ImageReference.dockerHubServer),
        ("docker.io/acme/app", ImageReference.dockerHubServer), ("ghcr.io/acme/app", "ghcr.io"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000"), ("localhost/app", "localhost"),
        ("registry.example.com:443/team/app", "registry.example.com:443"),
    ])
    func theRegistryOfAnImage(_ repository: String, _ registry: String) {
        #expect(ImageReference(repository: repository, tag: "v1").registry == registry)
    }

    @Test func loginsFromAuthsWithTheDockerCLIsKeyMatching() async throws {
        let auth = Data("alice:pa:ss".utf8).base64EncodedString()
        let config = try Self.config(
            """
            {"auths": {"https://index.docker.io/v1/": {"auth": "\(auth)"},
                       "https://ghcr.io/v2/": {"identitytoken": "tok-123"},
                       "127.0.0.1:5000": {"username": "bob", "password": "pw"}}}
            """)
        let credentials = DockerConfigCredentials(config: config, helper: TableHelper([:]))
        let hub = try #require(try await credentials.credential(forRegistry: ImageReference.dockerHubServer))
        #expect(hub.username == "alice" && hub.password == "pa:ss")
        let ghcr = try #require(try await credentials.credential(forRegistry: "ghcr.io"))
        #expect(ghcr.identityToken == "tok-123")
        let local = try #require(try await credentials.credential(forRegistry: "127.0.0.1:5000"))
        #expect(local.username == "bob" && local.password == "pw")
        #expect(try await credentials.credential(forRegistry: "quay.io") == nil)
        // What a person or a log may see names the user, never the secret.
        #expect(hub.description == "user alice at https://index.docker.io/v1/")
        #expect(!ghcr.description.contains("tok-123"))
    }

    @Test func helpersWinOverAuthsAndATokenUserIsAnIdentityToken() async throws {
        let config = try Self.config(
            """
            {"auths": {"ghcr.io": {}, "quay.io": {"auth": "\(Data("x:y".utf8).base64EncodedString())"}},
             "credsStore": "pass", "credHelpers": {"ghcr.io": "gh", "ecr.example.com": "ecr-login"}}
            """)
        let helper = TableHelper(["gh ghcr.io": ("<token>", "oauth-1"), "pass quay.io": ("carol", "s")])
        let credentials = DockerConfigCredentials(config: config, helper: helper)
        #expect(try await credentials.credential(forRegistry: "ghcr.io")?.identityToken == "oauth-1")
        #expect(try await credentials.credential(forRegistry: "quay.io")?.username == "carol")
        #expect(try await credentials.credential(forRegistry: "ecr.example.com") == nil)
        #expect(helper.asked == ["gh ghcr.io", "pass quay.io", "ecr-login ecr.example.com"])
    }

    @Test func aBrokenConfigNamesTheFileAndNeverTheSecret() async throws {
        #expect(throws: DockerConfigError.self) { try Self.config("{not json") }
        // One unreadable login fails that registry's pulls only, naming the file; never the secret.
        let broken = try Self.config(
            #"{"auths": {"r.example": {"auth": "bm90LWEtcGFpcg=="}, "ok.example": {"username": "a", "password": "b"}}}"#
        )
        let credentials = DockerConfigCredentials(config: broken, helper: TableHelper([:]))
        #expect(try await credentials.credential(forRegistry: "ok.example")?.username == "a")
        await #expect {
            _ = try await credentials.credential(forRegistry: "r.example")
        } throws: { error in
            "\(error)"
                == "cannot read the login for r.example: its entry in /home/u/.docker/config.json is not a valid login; run `docker login r.example`"
        }
        // A FIFO where config.json should be is refused at once, not read forever.
        let folder = NSTemporaryDirectory() + "reconcile-fifo-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(mkfifo("\(folder)/config.json", 0o600) == 0)
        #expect(
            throws: DockerConfigError(
                path: "\(folder)/config.json",
                reason: "is not a regular file; point DOCKER_CONFIG at the docker CLI's folder")
        ) {
            try DockerConfig.load(environment: ["DOCKER_CONFIG": folder])
        }
        // No config.json: no logins, as for the docker CLI.
        #expect(try DockerConfig.load(environment: ["DOCKER_CONFIG": folder + "/none"]).auths.isEmpty)
        // An empty file is an empty config, as for the docker CLI.
        #expect(try Self.config("  \n") == DockerConfig(directory: "/home/u/.docker"))
        #expect(DockerConfig.directory(environment: ["DOCKER_CONFIG": "/c", "HOME": "/h"]) == "/c")
        #expect(DockerConfig.directory(environment: ["HOME": "/h"]) == "/h/.docker")
    }

    @Test func theRegistryAuthHeaderIsURLSafeBase64JSON() throws {
        let header = DockerEngine.registryAuth(
            RegistryCredential(username: "alice", password: "p+/?", serverAddress: "127.0.0.1:5000"))
        #expect(!header.contains("+") && !header.contains("/"))
        let standard = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let decoded = try #require(Data(base64Encoded: standard))
        let fields = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: String])
        #expect(fields == ["username": "alice", "password": "p+/?", "serveraddress": "127.0.0.1:5000"])
        let token = DockerEngine.registryAuth(
            RegistryCredential(username: "", password: "", identityToken: "t", serverAddress: "ghcr.io"))
        let tokenFields = try JSONSerialization.jsonObject(with: try #require(Data(base64Encoded: token)))
        #expect(tokenFields as? [String: String] == ["identitytoken": "t", "serveraddress": "ghcr.io"])
    }

    @Test(arguments: [
        ("Head \"http://r/v2/a/manifests/v1\": no basic auth credentials", PullFailure.notLoggedIn),
        ("pull access denied for acme/app, repository does not exist or may require 'docker login'", .notLoggedIn),
        ("unauthorized: authentication required", .refused),
        ("manifest for r/a:v9 not found: manifest unknown: manifest unknown", .notFound),
        ("Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused", .unreachable),
        ("something else", .other),
    ])
    func pullFailuresSayWhatToDo(_ message: String, _ kind: PullFailure) {
        #expect(PullFailure.classify(message) == kind)
        let error = EngineError.pullFailed(reference: "ghcr.io/acme/app:v1", message: message)
        switch kind {
        case .notLoggedIn: #expect(error.description.contains("run `docker login ghcr.io`"))
        case .refused: #expect(error.description.contains("run `docker login ghcr.io`"))
        case .notFound:
            #expect(error.description.hasSuffix("the registry has no such image or tag; check the image name and tag"))
        case .unreachable: #expect(error.description.contains("the registry ghcr.io cannot be reached"))
        case .other: #expect(error.description.hasSuffix("check the image name and tag, and registry access"))
        }
        let sent = EngineError.pullFailed(reference: "acme/app", message: message, login: "user a at x")
        if kind == .refused || kind == .notLoggedIn {
            #expect(sent.description.contains("run `docker login docker.io` again"))
        }
    }

    // MARK: - Contexts

    /// A docker config folder with one context, written as `docker context create` writes it.
    static func folder(context: String, host: String, skipTLS: Bool = false, tls: Bool = false, current: String?)
        throws -> String
    {
        let root = NSTemporaryDirectory() + "reconcile-ctx-\(UUID().uuidString.prefix(8))"
        let digest = SHA256.hash(data: Data(context.utf8)).map { String(format: "%02x", $0) }.joined()
        try FileManager.default.createDirectory(
            atPath: "\(root)/contexts/meta/\(digest)", withIntermediateDirectories: true)
        try """
        {"Name":"\(context)","Metadata":{},"Endpoints":{"docker":{"Host":"\(host)","SkipTLSVerify":\(skipTLS)}}}
        """.write(toFile: "\(root)/contexts/meta/\(digest)/meta.json", atomically: true, encoding: .utf8)
        if tls {
            let folder = "\(root)/contexts/tls/\(digest)/docker"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            for file in ["ca.pem", "cert.pem", "key.pem"] {
                try "x".write(toFile: "\(folder)/\(file)", atomically: true, encoding: .utf8)
            }
        }
        let currentJSON = current.map { #"{"currentContext": "\#($0)"}"# } ?? "{}"
        try currentJSON.write(toFile: "\(root)/config.json", atomically: true, encoding: .utf8)
        return root
    }

    @Test func contextsAreFoundAsTheDockerCLIFindsThem() throws {
        let root = try Self.folder(context: "prod", host: "tcp://10.0.0.5:2376", tls: true, current: "prod")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try DockerConfig.load(environment: ["DOCKER_CONFIG": root])

        // currentContext (docker context use prod).
        let current = try DockerEndpoint.resolve(environment: ["DOCKER_CONFIG": root], config: config)
        #expect(current.transport == .tcp(host: "10.0.0.5", port: 2376))
        #expect(current.context == "prod")
        #expect(current.tls?.cert?.hasSuffix("/docker/cert.pem") == true && current.tls?.verify == true)
        #expect(current.description == "tcp://10.0.0.5:2376 (docker context prod)")

        // DOCKER_HOST wins over every context; DOCKER_CONTEXT=default is the local engine.
        let host = try DockerEndpoint.resolve(
            environment: ["DOCKER_HOST": "unix:///run/other.sock", "DOCKER_CONTEXT": "prod"], config: config)
        #expect(host.transport == .unix(path: "/run/other.sock") && host.context == nil)
        let local = try DockerEndpoint.resolve(environment: ["DOCKER_CONTEXT": "default"], config: config)
        #expect(local.transport == .unix(path: DockerEndpoint.defaultSocket))

        // DOCKER_CONTEXT naming one that does not exist is an error, never the local engine.
        do {
            _ = try DockerEndpoint.resolve(environment: ["DOCKER_CONTEXT": "staging"], config: config)
            Issue.record("a missing context fell back to another engine")
        } catch let error as ContextError {
            #expect(error.description.hasPrefix("docker context \"staging\" does not exist (named by DOCKER_CONTEXT)"))
        }
    }

    @Test func aFilesEngineWinsOverDockerHostAndCarriesItsTLSFiles() throws {
        let root = try Self.folder(context: "prod", host: "tcp://10.0.0.5:2376", tls: true, current: nil)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try DockerConfig.load(environment: ["DOCKER_CONFIG": root])
        let environment = ["DOCKER_HOST": "unix:///run/other.sock", "DOCKER_CONFIG": root]

        let tls = EngineTarget.TLSPaths(ca: "/c/ca.pem", cert: "/c/cert.pem", key: "/c/key.pem")
        let host = try DockerEndpoint.resolve(
            EngineTarget(host: "tcp://web1:2376", tls: tls), environment: environment, config: config)
        #expect(host.transport == .tcp(host: "web1", port: 2376))
        #expect(host.tls == DockerEndpoint.TLSFiles(ca: "/c/ca.pem", cert: "/c/cert.pem", key: "/c/key.pem"))
        #expect(host.description == "tcp://web1:2376 (engine: in the file)")
        // Without TLS files: DOCKER_CERT_PATH when set (as docker --tlsverify), else plain TCP.
        let plain = try DockerEndpoint.resolve(
            EngineTarget(host: "tcp://web1:2375"), environment: environment, config: config)
        #expect(plain.tls == nil)
        let certPath = try DockerEndpoint.resolve(
            EngineTarget(host: "tcp://web1:2376"),
            environment: environment.merging(["DOCKER_CERT_PATH": "/certs"]) { $1 },
            config: config)
        #expect(certPath.tls?.cert == "/certs/cert.pem")
        // A context named by the file, though DOCKER_HOST is set.
        let context = try DockerEndpoint.resolve(
            EngineTarget(context: "prod"), environment: environment, config: config)
        #expect(context.transport == .tcp(host: "10.0.0.5", port: 2376) && context.context == "prod")
        #expect(context.description == "tcp://10.0.0.5:2376 (docker context prod) (engine: in the file)")
        #expect {
            _ = try DockerEndpoint.resolve(EngineTarget(context: "web-9"), environment: environment, config: config)
        } throws: { error in
            "\(error)".hasPrefix("docker context \"web-9\" does not exist (named by engine: in the file)")
        }
        // No engine in the file: the docker CLI's choice, as before.
        let chosen = try DockerEndpoint.resolve(nil, environment: environment, config: config)
        #expect(chosen.transport == .unix(path: "/run/other.sock"))
    }

    @Test func aContextsNameIsShownEscapedAndABrokenMetaFileIsSaidSo() throws {
        let root = try Self.folder(context: "prod", host: "tcp://10.0.0.5:2376", current: nil)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let config = try DockerConfig.load(environment: ["DOCKER_CONFIG": root])
        #expect {
            _ = try DockerEndpoint.resolve(environment: ["DOCKER_CONTEXT": "x\u{1B}[2Jy"], config: config)
        } throws: { error in
            "\(error)".hasPrefix("docker context \"x\\u{1b}[2Jy\" does not exist") && !"\(error)".contains("\u{1B}")
        }
        // meta.json a folder (or a FIFO): said so, not "does not exist", and not read.
        let digest = SHA256.hash(data: Data("odd".utf8)).map { String(format: "%02x", $0) }.joined()
        try FileManager.default.createDirectory(
            atPath: "\(root)/contexts/meta/\(digest)/meta.json", withIntermediateDirectories: true)
        #expect {
            _ = try DockerEndpoint.resolve(environment: ["DOCKER_CONTEXT": "odd"], config: config)
        } throws: { error in
            "\(error)".hasPrefix("docker context \"odd\" has a meta.json that is not a regular file")
        }
    }

    @Test func skipTLSVerifyAndSSHContexts() throws {
        let skip = try Self.folder(context: "lab", host: "tcp://lab:2376", skipTLS: true, current: "lab")
        defer { try? FileManager.default.removeItem(atPath: skip) }
        let endpoint = try DockerEndpoint.resolve(
            environment: [:], config: try DockerConfig.load(environment: ["DOCKER_CONFIG": skip]))
        #expect(endpoint.tls == DockerEndpoint.TLSFiles(ca: nil, cert: nil, key: nil, verify: false))

        // A context may point at an ssh engine, as with `docker context create --docker host=ssh://…`.
        let ssh = try Self.folder(context: "remote", host: "ssh://deploy@web1", current: "remote")
        defer { try? FileManager.default.removeItem(atPath: ssh) }
        let remote = try DockerEndpoint.resolve(
            environment: [:], config: try DockerConfig.load(environment: ["DOCKER_CONFIG": ssh]))
        #expect(remote.transport == .ssh(user: "deploy", host: "web1", port: nil))
        #expect(remote.description == "ssh://deploy@web1 (docker context remote)")
    }

    @Test func aSocketThisUserMayNotOpenNamesTheGroupToJoin() throws {
        let path = NSTemporaryDirectory() + "reconcile-sock-\(UUID().uuidString.prefix(8))"
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var info = stat()
        #expect(stat(path, &info) == 0)
        let group = getgrgid(info.st_gid).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? "?"
        let advice = DockerEngine.permissionAdvice(DockerEndpoint(transport: .unix(path: path)))
        #expect(
            advice
                == "permission denied on \(path), which only root and the group \(group) may use; run reconcile as "
                + "root, or add this user to the group (`sudo usermod -aG \(group) $USER`, then log in again)")
        // Not "is dockerd running?": the engine may well run; this user may not talk to it.
        #expect(
            EngineError.unreachable(endpoint: "unix://\(path)", reason: advice).description
                == "cannot reach the Docker engine at unix://\(path): \(advice)")
    }

    @Test(arguments: [
        (
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435703 error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER at /work/x/tls_record.cc:127]))",
            "TLS handshake failed: the engine there does not speak TLS (drop DOCKER_TLS_VERIFY, or use its TLS port)"
        ),
        (
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268435581 error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED]))",
            "TLS handshake failed: the engine's certificate is not signed by the CA given (ca.pem)"
        ),
        (
            "handshakeFailed(NIOSSL.BoringSSLError.sslError([Error: 268436496 error:10000410:SSL routines:OPENSSL_internal:SSLV3_ALERT_HANDSHAKE_FAILURE]))",
            "TLS handshake failed: the engine refused this client's certificate (cert.pem, key.pem)"
        ),
    ])
    func tlsFailuresInWordsWithoutABuildPath(_ raw: String, _ said: String) {
        #expect(DockerEngine.tlsReason(raw) == said)
        #expect(DockerEngine.tlsReason("connection refused") == nil)
    }
}
