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
    private var childOptions: [@Sendable (IOStreamChannel) throws -> Void] = []
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
        copy.childOptions.append { try $0.setOption0(option, value: value) }
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
            let fd = try IOSocket.make(for: address)
            let channel = IOServerChannel(fd: fd, loop: loop) { server, client in accept(client, from: server) }
            do {
                for option in serverOptions { try option(channel) }
                try IOSocket.bind(fd, to: address)
                try IOSocket.listen(fd, backlog: backlog)
                channel.localAddress = try IOSocket.localAddress(fd)
                try channel.start()
                return channel
            } catch {
                channel.close(promise: nil)  // its socket, and the pipeline that holds the channel
                throw error
            }
        }
    }

    private func accept(_ fd: Int32, from server: IOServerChannel) {
        let loop = group.next() as! IOEventLoop
        if loop.inEventLoop {
            setUp(fd, on: loop, parent: server)
        } else {
            loop.execute { setUp(fd, on: loop, parent: server) }
        }
    }

    private func setUp(_ fd: Int32, on loop: IOEventLoop, parent: IOServerChannel) {
        let channel = IOStreamChannel(fd: fd, loop: loop, parent: parent)
        do {
            for option in childOptions { try option(channel) }
        } catch {
            channel.close(promise: nil)
            return
        }
        childInitializer(channel).hop(to: loop).whenComplete { result in
            switch result {
            case .success:
                channel.register0(promise: nil)
                channel.activateAccepted()
            case .failure:
                channel.close(promise: nil)
            }
        }
    }
}
#endif
