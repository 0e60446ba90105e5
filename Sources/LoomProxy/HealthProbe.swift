import LoomConfig
import NIOCore
import LoomIO

/// One active health check of one endpoint: connect (a `tcp` check passes there), send
/// `GET path` with `Connection: close`, and read only the status line.
///
/// The whole probe, connect included, is bounded by the check's timeout, and the connection
/// is closed afterwards whatever happened. What results mean over time (the thresholds) is
/// `HealthCheckCounter`'s business. Runs on `eventLoop`; its state is touched only there.
final class HealthProbe: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    /// A check's result; `failed` says why, for the log.
    enum Result: Equatable {
        case passed
        case failed(String)
    }

    private let settings: HealthCheckSettings
    private let promise: EventLoopPromise<Result>
    private var received: [UInt8] = []
    private var channel: Channel?
    private var finished = false

    private init(settings: HealthCheckSettings, promise: EventLoopPromise<Result>) {
        self.settings = settings
        self.promise = promise
    }

    /// Runs one check of `endpoint` (`authority` is its `Host`).
    /// HTTP checks of a TLS upstream go through `tls` (TCP checks only connect).
    static func run(
        _ settings: HealthCheckSettings, endpoint: Endpoint, authority: String, tls: Swift.Result<UpstreamTLSClient, ListenerTLS.LoadError>? = nil,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<Result> {
        let client: UpstreamTLSClient?
        switch tls {
        case .failure(let error)?: return eventLoop.makeSucceededFuture(.failed("TLS: \(error)"))
        case .success(let loaded)?: client = settings.kind == .tcp ? nil : loaded
        case nil: client = nil
        }
        let probe = HealthProbe(settings: settings, promise: eventLoop.makePromise())
        let timeout = eventLoop.scheduleTask(in: TimeAmount(settings.timeout)) { probe.finish(.failed("timed out after \(settings.timeout)")) }
        let bootstrap = IOClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(settings.timeout))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addUpstreamTLS(client, for: endpoint)
                    try channel.pipeline.syncOperations.addHandler(probe)
                }
            }
        let connected = bootstrap.connect(to: endpoint)
        connected.whenComplete { result in
            switch result {
            case .failure(let error):
                probe.finish(.failed("connect failed: \(error)"))
            case .success(let channel):
                probe.channel = channel
                if probe.finished {
                    channel.close(promise: nil)
                } else if settings.kind == .tcp {
                    probe.finish(.passed)
                } else {
                    channel.writeAndFlush(ByteBuffer(string: Self.request(path: settings.path, authority: authority)), promise: nil)
                }
            }
        }
        return probe.promise.futureResult.always { _ in timeout.cancel() }
    }

    static func request(path: String, authority: String) -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: loom-health-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    }

    /// The status of the status line (`HTTP/1.1 200 OK`) at the start of `bytes`: nil while
    /// the line is incomplete, -1 when it is not a valid HTTP/1.x status line.
    static func status(in bytes: [UInt8]) -> Int? {
        guard let end = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return bytes.count > 8 * 1024 ? -1 : nil }
        let line = Array(bytes[..<end])
        func digit(_ byte: UInt8) -> Int? { (48...57).contains(byte) ? Int(byte - 48) : nil }
        guard line.count >= 12, line.starts(with: Array("HTTP/1.".utf8)), digit(line[7]) != nil, line[8] == UInt8(ascii: " "),
            let hundreds = digit(line[9]), let tens = digit(line[10]), let ones = digit(line[11]),
            line.count == 12 || line[12] == UInt8(ascii: " ") || line[12] == UInt8(ascii: "\r")
        else { return -1 }
        return hundreds * 100 + tens * 10 + ones
    }

    /// What a status line means for the check.
    static func result(status: Int, expected: [ClosedRange<Int>]) -> Result {
        guard status >= 0 else { return .failed("invalid response") }
        return expected.contains { $0.contains(status) } ? .passed : .failed("status \(status)")
    }

    private func finish(_ result: Result) {
        guard !finished else { return }
        finished = true
        channel?.close(promise: nil)
        promise.succeed(result)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
        guard let status = Self.status(in: received) else { return }
        finish(Self.result(status: status, expected: settings.expectedStatuses))
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failed("connection closed before a status line"))
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        finish(.failed("\(error)"))
    }
}
