import NIOCore

/// The channel options an `IOStreamChannel` honours, with NIO's defaults. An option it does
/// not implement is refused (`ChannelError.operationUnsupported`), never accepted and ignored.
/// Socket options (`.socketOption`, `.tcpOption`) go to the socket itself.
struct IOStreamOptions {
    var autoRead = true
    var allowRemoteHalfClosure = false
    var maxMessagesPerRead = 4
    var writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 32 * 1024, high: 64 * 1024)
    var connectTimeout: TimeAmount? = .seconds(10)
    /// The `.recvAllocator` option. NIO's adaptive allocator, the default, is kept as its own
    /// type: behind the protocol it sits in a heap box (it is larger than an existential's
    /// inline room), which every read's `record` copied. Any other is kept as given.
    private var adaptive: AdaptiveRecvByteBufferAllocator? = AdaptiveRecvByteBufferAllocator()
    private var otherAllocator: RecvByteBufferAllocator?

    /// How many bytes the next read asks for. Mutating only so that a channel calls it on
    /// its options in place: a non-mutating call on a class's stored struct copies it first.
    mutating func nextReadSize() -> Int {
        (adaptive?.nextBufferSize() ?? otherAllocator?.nextBufferSize()) ?? 2048
    }

    /// Tells the allocator how many bytes a read brought, for the next one's size.
    mutating func record(readBytes: Int) {
        if adaptive != nil {
            _ = adaptive!.record(actualReadBytes: readBytes)
        } else {
            _ = otherAllocator?.record(actualReadBytes: readBytes)
        }
    }

    mutating func set<Option: ChannelOption>(_ option: Option, value: Option.Value) throws {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            autoRead = value as! Bool
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            allowRemoteHalfClosure = value as! Bool
        case is ChannelOptions.Types.MaxMessagesPerReadOption:
            maxMessagesPerRead = max(1, Int(value as! UInt))
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            writeBufferWaterMark = value as! ChannelOptions.Types.WriteBufferWaterMark
        case is ChannelOptions.Types.RecvAllocatorOption:
            adaptive = value as? AdaptiveRecvByteBufferAllocator
            otherAllocator = adaptive == nil ? value as? RecvByteBufferAllocator : nil
        case is ChannelOptions.Types.ConnectTimeoutOption:
            connectTimeout = value as? TimeAmount
        default:
            throw ChannelError.operationUnsupported
        }
    }

    func get<Option: ChannelOption>(_ option: Option) throws -> Option.Value {
        switch option {
        case is ChannelOptions.Types.AutoReadOption:
            return autoRead as! Option.Value
        case is ChannelOptions.Types.AllowRemoteHalfClosureOption:
            return allowRemoteHalfClosure as! Option.Value
        case is ChannelOptions.Types.MaxMessagesPerReadOption:
            return UInt(maxMessagesPerRead) as! Option.Value
        case is ChannelOptions.Types.WriteBufferWaterMarkOption:
            return writeBufferWaterMark as! Option.Value
        case is ChannelOptions.Types.RecvAllocatorOption:
            return (adaptive ?? otherAllocator) as! Option.Value
        case is ChannelOptions.Types.ConnectTimeoutOption:
            return connectTimeout as! Option.Value
        default:
            throw ChannelError.operationUnsupported
        }
    }
}
