#if os(Linux)
import CLoomIO
import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// `IOEventLoop`s, one thread each, handed out round robin as NIO's
/// `MultiThreadedEventLoopGroup` does. Each loop's thread is running before the group's
/// initializer returns.
public final class IOEventLoopGroup: EventLoopGroup, @unchecked Sendable {
    private let loops: [IOEventLoop]
    private let index = NIOLockedValueBox(0)

    public init(numberOfThreads: Int) throws {
        precondition(numberOfThreads > 0, "an event loop group needs a thread")
        // A write to a connection the peer has closed (its FIN, then a reset for our data) fails
        // with EPIPE, and raises SIGPIPE, which ends the process by default: one client that
        // sends a request and leaves would stop the proxy. The error is handled where the write
        // is made; the signal is ignored for the whole process, as SwiftNIO does on Linux
        // (`sendfile` has no per-call flag to avoid it).
        signal(SIGPIPE, SIG_IGN)
        var loops: [IOEventLoop] = []
        for number in 1...numberOfThreads {
            let loop = try IOEventLoop()
            try Self.start(loop, name: "loom-io-\(number)")
            loops.append(loop)
        }
        self.loops = loops
    }

    /// Starts `loop` on a new thread and waits until the loop knows its thread.
    private static func start(_ loop: IOEventLoop, name: String) throws {
        let started = ConditionLock(value: false)
        let context = Unmanaged.passRetained(ThreadStart(loop: loop, name: name, started: started))
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue()
            _ = start.name.withCString { pthread_setname_np(pthread_self(), $0) }
            start.loop.run {
                start.started.lock()
                start.started.unlock(withValue: true)
            }
            return nil
        }, context.toOpaque())
        guard result == 0 else {
            context.release()
            throw IOError(errnoCode: result, reason: "pthread_create")
        }
        pthread_detach(thread)
        started.lock(whenValue: true)
        started.unlock()
    }

    private final class ThreadStart {
        let loop: IOEventLoop
        let name: String
        let started: ConditionLock<Bool>

        init(loop: IOEventLoop, name: String, started: ConditionLock<Bool>) {
            self.loop = loop
            self.name = name
            self.started = started
        }
    }

    public func next() -> EventLoop {
        let position = index.withLockedValue { index in
            defer { index = (index + 1) % loops.count }
            return index
        }
        return loops[position]
    }

    /// The loop the caller runs on, when it runs on one of the group's: what NIO's
    /// `MultiThreadedEventLoopGroup.any()` does, so work stays on its own thread.
    public func any() -> EventLoop {
        loops.first(where: \.inEventLoop) ?? next()
    }

    public func makeIterator() -> EventLoopIterator { EventLoopIterator(loops) }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let remaining = NIOLockedValueBox(loops.count)
        for loop in loops {
            loop.shutdownGracefully(queue: queue) { _ in
                let last = remaining.withLockedValue { count in
                    count -= 1
                    return count == 0
                }
                if last { callback(nil) }
            }
        }
    }
}
#endif
