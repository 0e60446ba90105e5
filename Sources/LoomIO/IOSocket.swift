#if os(Linux)
import CLoomIO
import Glibc
import NIOCore

/// The system calls on sockets LoomIO makes, each turning a failure into NIO's `IOError`
/// (errno and the call), which is what handlers see from NIO's own channels.
enum IOSocket {
    /// A new non-blocking, close-on-exec stream socket for `address`'s family.
    static func make(for address: SocketAddress) throws -> Int32 {
        let family: Int32 =
            switch address {
            case .v4: AF_INET
            case .v6: AF_INET6
            case .unixDomainSocket: AF_UNIX
            }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        return fd
    }

    static func bind(_ fd: Int32, to address: SocketAddress) throws {
        let result = address.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: "bind") }
    }

    static func listen(_ fd: Int32, backlog: Int32) throws {
        guard Glibc.listen(fd, backlog) == 0 else { throw IOError(errnoCode: errno, reason: "listen") }
    }

    /// Starts connecting; true when the connection is already made (unix sockets, often),
    /// false when it is in progress and EPOLLOUT will tell.
    static func connect(_ fd: Int32, to address: SocketAddress) throws -> Bool {
        let result = address.withSockAddr { pointer, size in Glibc.connect(fd, pointer, socklen_t(size)) }
        if result == 0 { return true }
        guard errno == EINPROGRESS else { throw IOError(errnoCode: errno, reason: "connect") }
        return false
    }

    /// The outcome of a connect in progress (SO_ERROR), once EPOLLOUT said it ended.
    static func connectResult(_ fd: Int32) -> IOError? {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else {
            return IOError(errnoCode: errno, reason: "getsockopt")
        }
        return code == 0 ? nil : IOError(errnoCode: code, reason: "connect")
    }

    /// A channel's `.socketOption`/`.tcpOption`, set on its socket.
    static func setOption(_ fd: Int32, _ option: ChannelOptions.Types.SocketOption, value: ChannelOptions.Types.SocketOption.Value) throws {
        try setOption(fd, level: option.optionLevel.rawValue, name: option.optionName.rawValue, value: Int32(truncatingIfNeeded: value))
    }

    static func option(_ fd: Int32, _ option: ChannelOptions.Types.SocketOption) throws -> ChannelOptions.Types.SocketOption.Value {
        ChannelOptions.Types.SocketOption.Value(try self.option(fd, level: option.optionLevel.rawValue, name: option.optionName.rawValue))
    }

    static func setOption(_ fd: Int32, level: Int32, name: Int32, value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IOError(errnoCode: errno, reason: "setsockopt")
        }
    }

    static func option(_ fd: Int32, level: Int32, name: Int32) throws -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, level, name, &value, &length) == 0 else {
            throw IOError(errnoCode: errno, reason: "getsockopt")
        }
        return value
    }

    /// A host name's stream addresses, in the resolver's order. Blocks: never on a loop.
    static func resolve(host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let result = getaddrinfo(host, String(port), &hints, &list)
        guard result == 0 else {
            throw IOError(errnoCode: EADDRNOTAVAIL, reason: "getaddrinfo(\(host)): \(String(cString: gai_strerror(result)))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let info = entry?.pointee {
            if let address = info.ai_addr {
                switch info.ai_family {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
                default:
                    break
                }
            }
            entry = info.ai_next
        }
        guard !addresses.isEmpty else { throw IOError(errnoCode: EADDRNOTAVAIL, reason: "getaddrinfo(\(host))") }
        return addresses
    }

    /// Whether `address` is the any-address (`0.0.0.0`, `::`) a listener binds to accept on
    /// every local address; its accepted sockets' own local addresses differ from it.
    static func isWildcard(_ address: SocketAddress) -> Bool {
        switch address {
        case .v4(let v4): v4.address.sin_addr.s_addr == 0
        case .v6(let v6): withUnsafeBytes(of: v6.address.sin6_addr) { $0.allSatisfy { $0 == 0 } }
        case .unixDomainSocket: false
        }
    }

    static func localAddress(_ fd: Int32) throws -> SocketAddress {
        try address(fd, call: "getsockname", getsockname)
    }

    static func remoteAddress(_ fd: Int32) throws -> SocketAddress {
        try address(fd, call: "getpeername", getpeername)
    }

    private static func address(
        _ fd: Int32, call: String, _ get: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { get(fd, $0, &length) }
        }
        guard result == 0 else { throw IOError(errnoCode: errno, reason: call) }
        guard let address = address(storage) else { throw IOError(errnoCode: EAFNOSUPPORT, reason: call) }
        return address
    }

    /// The address a system call filled in (`accept4`, `getsockname`, `getpeername`); nil
    /// for a family NIO has no `SocketAddress` for.
    static func address(_ storage: sockaddr_storage) -> SocketAddress? {
        withUnsafePointer(to: storage) { pointer in
            switch Int32(storage.ss_family) {
            case AF_INET:
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee) }
            case AF_INET6:
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee) }
            case AF_UNIX:
                pointer.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { SocketAddress($0.pointee) }
            default:
                nil
            }
        }
    }
}
#endif
