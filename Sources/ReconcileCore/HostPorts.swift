/// A host address as an environment publishes it: `bind` (an IP or a wildcard) and `port`.
public struct HostAddress: Sendable, Hashable {
    public var bind: String
    public var port: Int

    public init(bind: String, port: Int) {
        self.bind = bind
        self.port = port
    }
}

extension EnvironmentSpec {
    /// Where this environment publishes its port on the host.
    public var hostAddress: HostAddress { HostAddress(bind: bind, port: port) }
}

extension PublishedPort {
    /// Whether this published port holds `address`: the same port on the same or a wildcard address.
    public func holds(_ address: HostAddress) -> Bool {
        hostPort == address.port && Differ.bindsOverlap(hostIP, address.bind)
    }
}

/// Tells whether something outside the engine (a process listening on the host) holds a host
/// port, so a plan can refuse before anything changes instead of failing at `docker start` after
/// the running version was stopped. `SocketHostPorts` is the live one.
public protocol HostPorts: Sendable {
    /// True only when binding `address` on this host fails because it is in use; false when it is
    /// free or this process cannot tell (another network namespace, an address not on this host).
    func inUse(_ address: HostAddress) -> Bool
}
