#if os(Linux)
import Dispatch
import Glibc
import NIOCore

/// Connects an `IOStreamChannel` on one `IOEventLoop`, as NIO's `ClientBootstrap` does: the
/// options and the initializer first, then the connect; the future gives the channel once it
/// is active. A host name is resolved off the loop (getaddrinfo blocks) and its addresses are
/// tried in the order the resolver gives them, each after the one before failed (no racing
/// of IPv4 against IPv6).
public struct IOClientBootstrap: Sendable {
    private let loop: IOEventLoop
    private var options: [@Sendable (IOStreamChannel) throws -> Void] = []
    private var initializer: @Sendable (Channel) -> EventLoopFuture<Void> = { $0.eventLoop.makeSucceededVoidFuture() }

    /// `loop` must be an `IOEventLoop`: the channel's socket is watched by its epoll.
    public init(group loop: EventLoop) {
        guard let loop = loop as? IOEventLoop else {
            preconditionFailure("IOClientBootstrap needs an IOEventLoop, not \(type(of: loop))")
        }
        self.loop = loop
    }

    public func channelOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> Self where Option.Value: Sendable {
        var copy = self
        copy.options.append { try $0.setOption0(option, value: value) }
        return copy
    }

    public func connectTimeout(_ timeout: TimeAmount) -> Self {
        channelOption(.connectTimeout, value: timeout)
    }

    public func channelInitializer(_ initializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> Self {
        var copy = self
        copy.initializer = initializer
        return copy
    }

    public func connect(host: String, port: Int) -> EventLoopFuture<Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) {
            return connect(to: address)
        }
        let resolved = loop.makePromise(of: [SocketAddress].self)
        DispatchQueue.global().async {
            resolved.completeWith(Result { try IOSocket.resolve(host: host, port: port) })
        }
        return resolved.futureResult.flatMap { [self] addresses in connect(toFirstOf: addresses[...]) }
    }

    public func connect(unixDomainSocketPath path: String) -> EventLoopFuture<Channel> {
        do {
            return connect(to: try SocketAddress(unixDomainSocketPath: path))
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    private func connect(toFirstOf addresses: ArraySlice<SocketAddress>) -> EventLoopFuture<Channel> {
        guard let first = addresses.first else {
            return loop.makeFailedFuture(IOError(errnoCode: EADDRNOTAVAIL, reason: "getaddrinfo"))
        }
        let attempt = connect(to: first)
        guard addresses.count > 1 else { return attempt }
        return attempt.flatMapError { [self] _ in connect(toFirstOf: addresses.dropFirst()) }
    }

    public func connect(to address: SocketAddress) -> EventLoopFuture<Channel> {
        if loop.inEventLoop { return connectOnLoop(to: address) }
        return loop.flatSubmit { [self] in connectOnLoop(to: address) }
    }

    private func connectOnLoop(to address: SocketAddress) -> EventLoopFuture<Channel> {
        let channel: IOStreamChannel
        do {
            channel = IOStreamChannel(fd: try IOSocket.make(for: address), loop: loop, parent: nil)
        } catch {
            return loop.makeFailedFuture(error)
        }
        do {
            for option in options { try option(channel) }
        } catch {
            channel.close(promise: nil)  // its socket, and the pipeline that holds the channel
            return loop.makeFailedFuture(error)
        }
        let connected = loop.makePromise(of: Void.self)
        initializer(channel).hop(to: loop).whenComplete { result in
            switch result {
            case .success:
                channel.register0(promise: nil)
                channel.connect0(to: address, promise: connected)
            case .failure(let error):
                connected.fail(error)
                channel.close(promise: nil)
            }
        }
        return connected.futureResult.map { channel }
    }
}
#endif
