#if os(Linux)
import Glibc
import NIOCore

/// Listens on an address and gives each accepted connection an `IOStreamChannel` on a loop of
/// the group (round robin), set up as NIO's `ServerBootstrap` does: the child options, then
/// the initializer, then registration and `channelActive`.
public struct IOServerBootstrap: Sendable {
    private let group: IOEventLoopGroup
    private var backlog: Int32 = 256
    private var serverOptions: [@Sendable (IOServerChannel) throws -> Void] = []
    /// The child options a channel keeps (auto-read, allocator, …), set once here and copied
    /// into each accepted channel; the first one refused, if any, fails `bind`.
    private var childOptions = IOStreamOptions()
    private var childOptionError: Error?
    /// The child socket options (`.socketOption`, `.tcpOption`), set once on the listening
    /// socket: Linux makes each accepted socket as a copy of the listener, options included,
    /// so none costs a system call per connection. `IOAcceptTests` checks this for
    /// `TCP_NODELAY`, the one loom sets; another option would need its own check.
    private var childSocketOptions: [@Sendable (Int32) throws -> Void] = []
    private var childInitializer: @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }

    public init(group: IOEventLoopGroup) {
        self.group = group
    }

    public func serverChannelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self where Option.Value: Sendable {
        var copy = self
        if option is ChannelOptions.Types.BacklogOption {
            copy.backlog = Int32(value as! ChannelOptions.Types.BacklogOption.Value)
        } else {
            copy.serverOptions.append { try $0.setOption0(option, value: value) }
        }
        return copy
    }

    public func childChannelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self where Option.Value: Sendable {
        var copy = self
        if let socketOption = option as? ChannelOptions.Types.SocketOption {
            let value = value as! ChannelOptions.Types.SocketOption.Value
            copy.childSocketOptions.append { try IOSocket.setOption($0, socketOption, value: value) }
        } else {
            do { try copy.childOptions.set(option, value: value) } catch { copy.childOptionError = copy.childOptionError ?? error }
        }
        return copy
    }

    public func childChannelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.childInitializer = initializer
        return copy
    }

    public func bind(host: String, port: Int) -> EventLoopFuture<Channel> {
        let loop = group.next()
        do {
            return bind(to: try SocketAddress.makeAddressResolvingHost(host, port: port))
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    public func bind(unixDomainSocketPath path: String) -> EventLoopFuture<Channel> {
        do {
            return bind(to: try SocketAddress(unixDomainSocketPath: path))
        } catch {
            return group.next().makeFailedFuture(error)
        }
    }

    public func bind(to address: SocketAddress) -> EventLoopFuture<Channel> {
        let loop = group.next() as! IOEventLoop
        return loop.submit { [self] in
            if let childOptionError { throw childOptionError }
            let fd = try IOSocket.make(for: address)
            let channel = IOServerChannel(fd: fd, loop: loop) { server, client, peer in accept(client, from: server, peer: peer) }
            do {
                for option in serverOptions { try option(channel) }
                for option in childSocketOptions { try option(fd) }
                try IOSocket.bind(fd, to: address)
                try IOSocket.listen(fd, backlog: backlog)
                let local = try IOSocket.localAddress(fd)
                channel.localAddress = local
                channel.acceptedLocalAddress = IOSocket.isWildcard(local) ? nil : local
                try channel.start()
                return channel
            } catch {
                channel.close(promise: nil)  // its socket, and the pipeline that holds the channel
                throw error
            }
        }
    }

    private func accept(_ fd: Int32, from server: IOServerChannel, peer: SocketAddress?) {
        let loop = group.next() as! IOEventLoop
        if loop.inEventLoop {
            setUp(fd, on: loop, parent: server, peer: peer)
        } else {
            loop.execute { setUp(fd, on: loop, parent: server, peer: peer) }
        }
    }

    private func setUp(_ fd: Int32, on loop: IOEventLoop, parent: IOServerChannel, peer: SocketAddress?) {
        let channel = IOStreamChannel(fd: fd, loop: loop, parent: parent, options: childOptions)
        // A listener bound to one address accepts on that address: no `getsockname` for it.
        let local = parent.acceptedLocalAddress
        childInitializer(channel).hop(to: loop).whenComplete { result in
            switch result {
            case .success:
                channel.register0(promise: nil)
                channel.activateAccepted(local: local, remote: peer)
            case .failure:
                channel.close(promise: nil)
            }
        }
    }
}
#endif
