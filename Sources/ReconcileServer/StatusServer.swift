import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP side of `reconcile watch` (Hummingbird): `/metrics` in Prometheus' text format,
/// `/healthz` (200 while the loop runs and the engine answers, else 503), and `/`, a read-only
/// status page. It takes no action and shows no secret value: the page shows what `status` shows.
public struct StatusServer: Sendable {
    public var host: String
    public var port: Int
    public var metrics: @Sendable () -> String
    public var healthy: @Sendable () -> Bool
    public var page: @Sendable () async -> String
    /// Called with the port the server listens on once it does (the port asked for, or the one
    /// the kernel chose for 0).
    public var listening: @Sendable (Int) -> Void

    public init(
        host: String, port: Int, metrics: @escaping @Sendable () -> String, healthy: @escaping @Sendable () -> Bool,
        page: @escaping @Sendable () async -> String, listening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.metrics = metrics
        self.healthy = healthy
        self.page = page
        self.listening = listening
    }

    /// The server as a service for a `ServiceGroup`.
    public func service(logger: Logger) -> some Service {
        let router = Router()
        let metrics = self.metrics
        let healthy = self.healthy
        let page = self.page
        router.get("/metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: metrics())))
        }
        router.get("/healthz") { _, _ -> Response in
            let ok = healthy()
            return Response(
                status: ok ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: ok ? "ok\n" : "engine unreachable or stopping\n")))
        }
        router.get("/") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: await page())))
        }
        let listening = self.listening
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in listening(channel.localAddress?.port ?? 0) }, logger: logger)
    }
}
