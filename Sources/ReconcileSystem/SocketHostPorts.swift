import Foundation
import ReconcileCore

/// Finds out whether a host port is free the way the engine's proxy would: by binding it (with
/// SO_REUSEADDR, as the proxy does, so connections in TIME_WAIT do not count) and closing the
/// socket at once. Nothing listens and nothing is sent.
public struct SocketHostPorts: HostPorts {
    public init() {}

    public func inUse(_ address: HostAddress) -> Bool {
        guard (1...65535).contains(address.port) else { return false }
        let port = in_port_t(UInt16(address.port).bigEndian)
        if address.bind.contains(":") {
            var socketAddress = sockaddr_in6()
            socketAddress.sin6_family = sa_family_t(AF_INET6)
            socketAddress.sin6_port = port
            guard inet_pton(AF_INET6, address.bind, &socketAddress.sin6_addr) == 1 else { return false }
            return Self.bindFails(family: AF_INET6, &socketAddress, MemoryLayout<sockaddr_in6>.size)
        }
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port
        guard inet_pton(AF_INET, address.bind, &socketAddress.sin_addr) == 1 else { return false }
        return Self.bindFails(family: AF_INET, &socketAddress, MemoryLayout<sockaddr_in>.size)
    }

    /// True only for EADDRINUSE; any other failure (no permission, address not here) means
    /// "cannot tell", and the engine gives its own answer at start.
    private static func bindFails<Address>(family: Int32, _ address: inout Address, _ length: Int) -> Bool {
        let descriptor = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(length)) }
        }
        return result != 0 && errno == EADDRINUSE
    }

    /// Why a server could not listen on `host:port`, in words, or nil when it could (`watch
    /// --listen`, checked before anything runs). Binds and closes at once.
    public static func bindProblem(host: String, port: Int) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            return "\(host) does not resolve to an address"
        }
        defer { freeaddrinfo(result) }
        let descriptor = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 else { return nil }
        switch errno {
        case EADDRINUSE: return "the address is in use (another process listens there; `ss -ltnp` names it)"
        case EADDRNOTAVAIL: return "\(host) is not an address of this host"
        case EACCES: return "permission denied (ports under 1024 need root)"
        default: return String(cString: strerror(errno))
        }
    }
}
