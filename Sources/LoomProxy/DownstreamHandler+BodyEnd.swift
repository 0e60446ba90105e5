import LoomConfig
import LoomFilters
import LoomHTTP
import NIOCore

/// The body filters' part of an exchange: chunks through the transforms, and the end of a
/// transformed body (trailers, the last bytes), which a filter may hold.
extension DownstreamHandler {
    // MARK: The end of a transformed body, which a filter may hold

    enum BodyDirection { case request, response }

    /// The end of a body with transforms: its trailer section as they left it (nil: none,
    /// or an empty one), then their end-of-stream call, then the end goes out. A transform
    /// may hold either step (`TrailersHold`, `BodyEndHold`); the end then goes on in
    /// `trailersResumed` or `bodyEndResumed`.
    func endTransformedBody(_ direction: BodyDirection, trailers: Result<[HeaderPair], BodyTransforms.Stop>?, _ exchange: Exchange) {
        guard let transforms = direction == .request ? exchange.requestTransforms : exchange.responseTransforms else { return }
        var fields: [HeaderPair]?
        switch trailers {
        case .failure(.trailersHeld(let index, let hold)):
            exchange.bodyEndHeld = BodyEndHeld(direction: direction, index: index, stage: .trailers)
            let serial = exchangeSerial
            hold.start(onLoopOnce { handler, produce in handler.trailersResumed(serial: serial, produce) })
            return
        case let result?:
            guard let filtered = stopped(result) else { return }
            fields = filtered
        case nil:
            break
        }
        guard let rest = bodyEnd(transforms.run(ByteBuffer(), endOfStream: true), direction: direction, trailers: fields) else { return }
        sendBodyEnd(rest, direction: direction, trailers: fields, exchange)
    }

    /// The last bytes of a transformed body and its end: upstream (trailers dropped), or to
    /// the client with the trailers the filters left, which ends the exchange.
    private func sendBodyEnd(_ rest: ByteBuffer, direction: BodyDirection, trailers: [HeaderPair]?, _ exchange: Exchange) {
        switch direction {
        case .request:
            guard let connection = exchange.connection else { return }
            sendRequestBody(rest, to: connection, exchange)
            endRequestBody(to: connection, exchange)
        case .response:
            endResponse(rest, trailers: trailers, exchange)
        }
    }

    /// The last bytes of a body from its transforms, or nil: the exchange failed, or a
    /// transform holds the end (`BodyEndHold`), which then goes on in `bodyEndResumed`.
    private func bodyEnd(_ result: Result<ByteBuffer, BodyTransforms.Stop>, direction: BodyDirection, trailers: [HeaderPair]? = nil) -> ByteBuffer? {
        guard case .failure(.held(let index, let hold)) = result, let exchange else { return stopped(result) }
        exchange.bodyEndHeld = BodyEndHeld(direction: direction, index: index, stage: .body(trailers: trailers))
        let serial = exchangeSerial
        hold.start(onLoopOnce { handler, result in handler.bodyEndResumed(serial: serial, result) })
        return nil
    }

    /// A held trailer section finished (`produce` gives its fields): the transforms after
    /// the one that held it, then the end of the body.
    private func trailersResumed(serial: Int, _ produce: @Sendable () throws -> [HeaderPair]) {
        guard exchangeSerial == serial, let exchange, let held = exchange.bodyEndHeld, case .trailers = held.stage,
              let transforms = held.direction == .request ? exchange.requestTransforms : exchange.responseTransforms
        else { return }
        exchange.bodyEndHeld = nil
        endTransformedBody(held.direction, trailers: transforms.resume(trailersAt: held.index, with: Result { try produce() }), exchange)
        // Not in a read batch: nothing else flushes what this wrote.
        flushClient()
    }

    /// A held body end finished (`produce` gives its bytes): the rest of the transforms, then
    /// the end is sent.
    private func bodyEndResumed(serial: Int, _ produce: @Sendable () throws -> ByteBuffer) {
        guard exchangeSerial == serial, let exchange, let held = exchange.bodyEndHeld, case .body(let trailers) = held.stage,
              let transforms = held.direction == .request ? exchange.requestTransforms : exchange.responseTransforms
        else { return }
        exchange.bodyEndHeld = nil
        if let rest = bodyEnd(transforms.resume(at: held.index, with: Result { try produce() }), direction: held.direction, trailers: trailers) {
            sendBodyEnd(rest, direction: held.direction, trailers: trailers, exchange)
        }
        // Not in a read batch: nothing else flushes what this wrote.
        flushClient()
    }

    /// `data` through `transforms` (as it is without any), or nil after failing the exchange with their verdict: an
    /// answer while the response has not started, a cut connection once it has.
    func transformed(_ data: ByteBuffer, endOfStream: Bool, by transforms: BodyTransforms?) -> ByteBuffer? {
        guard let transforms else { return data }
        return stopped(transforms.run(data, endOfStream: endOfStream))
    }

    /// What the transforms produced, or nil once a filter's refusal or failure has ended the
    /// exchange.
    func stopped<Value>(_ result: Result<Value, BodyTransforms.Stop>) -> Value? {
        switch result {
        case .success(let output):
            return output
        case .failure(.rejected(let rejection)):
            failExchange(GatewayError(.filterRejected(rejection)))
        case .failure(.failed(let failure)):
            failExchange(GatewayError(.filterFailed(failure)))
        case .failure(.held(let index, _)), .failure(.trailersHeld(let index, _)):
            // Only the end of a body may be held (`bodyEnd`, `endTransformedBody`).
            failExchange(GatewayError(.filterFailed(FilterFailure(filter: "body transform \(index)", phase: "body", error: "held a body before its end"))))
        }
        return nil
    }

    /// A received trailer section as fields for the filters (only when a body transform
    /// runs: the plain path writes the received bytes); nil when there are none.
    static func fields(_ block: HTTPHeaderBlock?) -> [HeaderPair]? {
        guard let block, block.count > 0 else { return nil }
        return (0..<block.count).map { HeaderPair(name: block.name(at: $0), value: block.value(at: $0)) }
    }
}
