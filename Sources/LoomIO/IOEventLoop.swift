#if os(Linux)
import CLoomIO
import Dispatch
import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// Something an `IOEventLoop` watches: a socket channel or a listener.
protocol IOSelectable: AnyObject {
    /// epoll reported `events` (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR) for it.
    func ready(_ events: UInt32)
    /// The loop calls it back, as it asked (`IOEventLoop.callAgain`): it goes on with the
    /// input it left. A selectable asks once per turn: an edge that arrives in between (a
    /// turn polls several times) is no reason to ask again.
    func resume()
    /// The loop is shutting down with it still registered: close.
    func closeForShutdown()
}

/// One thread running epoll, as a SwiftNIO `EventLoop`: futures, promises, `execute` and
/// `scheduleTask` work as on NIO's own loops, and `IOStreamChannel`s are NIO `Channel`s, so
/// every `ChannelHandler` (loom's, NIOSSL's, NIOHTTP2's) runs on it unchanged.
///
/// Why it exists: NIO's socket channels cost about 3.3 µs of CPU per proxied small request
/// on top of the four system calls (bench/run's forwarders, docs/BENCHMARKS.md). This loop
/// keeps each socket registered once, edge-triggered, for reading and writing (nginx's
/// scheme), so no request ever changes its registration, and it does no locking on its own
/// thread: other threads' tasks arrive through an eventfd.
///
/// Order within one turn, as on NIO's loops: the ready sockets, then those with work left
/// (`callAgain`), then the due timers, then the tasks queued so far; tasks queued by those
/// tasks wait for the next turn (which then does not sleep). Unlike NIO's loops, a turn that
/// found sockets ready, and began with no work waiting, polls again without waiting, until a
/// poll finds none (or the turn has handled one full poll's worth), before it runs its tasks:
/// the request path holds its flushes to the end of the turn (`LoopTick` in LoomProxy), so
/// each peer is written, and woken, once per time the proxy catches up with its sockets
/// rather than once per poll (docs/BENCHMARKS.md, "A turn that runs until it has caught up").
public final class IOEventLoop: EventLoop, @unchecked Sendable {
    private let epollFD: Int32
    private let wakeFD: Int32
    /// The loop's thread: set by `run` before `IOEventLoopGroup` hands the loop to anyone
    /// (it waits for that), never changed after, so reading it needs no lock.
    private var thread: pthread_t?

    // The loop's own state: touched on its thread only.
    private var tasks: [() -> Void] = []
    private var timers = IOTimerQueue()
    /// Registered descriptors by number, with a generation so that an event already fetched
    /// for a descriptor closed and reused within one epoll batch is recognized and dropped.
    private var selectables: [IOSelectable?] = []
    private var generations: [UInt32] = []
    /// Selectables that have more to do without a new edge (bytes left to read, accepts left).
    private var pending: [IOSelectable] = []
    /// The arrays being run, swapped with `tasks` and `pending` so that both keep their
    /// storage from tick to tick (emptying a copied array would allocate a new one).
    private var runningTasks: [() -> Void] = []
    private var runningPending: [IOSelectable] = []
    /// How many selectables wait to be resumed this turn (tests).
    var pendingCount: Int { pending.count }
    private var stopping = false
    /// Scratch space for `writev`, shared by the loop's channels.
    let vectors = IOVectors()
    /// The loop's receive buffers, shared by its channels. 64 slots cover a busy tick's
    /// reads; at most 64 buffers of at most the largest read size (64 KiB) stay stored.
    var receiveBuffers = IOReceiveBuffers(slots: 64)

    /// Other threads' tasks, and whether the eventfd was already written for them.
    private let remote = NIOLockedValueBox(Remote())
    private struct Remote {
        var tasks: [() -> Void] = []
        var woken = false
        /// The loop has finished: tasks are no longer taken.
        var closed = false
        var shutdownCallbacks: [@Sendable () -> Void] = []
    }

    private static let wakeToken: UInt64 = UInt64.max

    init() throws {
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw IOError(errnoCode: errno, reason: "epoll_create1") }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            Glibc.close(epollFD)
            throw IOError(errnoCode: errno, reason: "eventfd")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeToken
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0 else {
            let code = errno
            Glibc.close(wakeFD)
            Glibc.close(epollFD)
            throw IOError(errnoCode: code, reason: "epoll_ctl")
        }
    }

    // MARK: EventLoop

    public var inEventLoop: Bool {
        guard let thread else { return false }
        return pthread_equal(pthread_self(), thread) != 0
    }

    public func execute(_ task: @escaping @Sendable () -> Void) {
        if inEventLoop {
            tasks.append(task)
        } else {
            executeFromOtherThread(task)
        }
    }

    public func _executeIsolatedUnsafeUnchecked(_ task: @escaping () -> Void) {
        precondition(inEventLoop, "_executeIsolatedUnsafeUnchecked called off the loop")
        tasks.append(task)
    }

    private func executeFromOtherThread(_ task: @escaping () -> Void) {
        let wake = remote.withLockedValue { remote in
            guard !remote.closed else { return false }
            remote.tasks.append(task)
            defer { remote.woken = true }
            return !remote.woken
        }
        if wake { writeWake() }
    }

    public func scheduleTask<T>(deadline: NIODeadline, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        if inEventLoop { return scheduleOnLoop(deadline: deadline, task) }
        // From another thread: the timer is made on the loop. A box carries it to the
        // cancellation, which may run on either side of that hop.
        let promise = makePromise(of: T.self)
        let timerBox = NIOLockedValueBox<IOTimer?>(nil)
        let cancelled = NIOLockedValueBox(false)
        execute { [self] in
            guard !cancelled.withLockedValue({ $0 }) else { return }
            let timer = timers.schedule(at: deadline) {
                do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
            } dropped: {
                promise.fail(EventLoopError.shutdown)
            }
            timerBox.withLockedValue { $0 = timer }
        }
        return Scheduled(promise: promise) { [self] in
            let cancel: @Sendable () -> Void = { [self] in
                cancelled.withLockedValue { $0 = true }
                if let timer = timerBox.withLockedValue({ $0 }) {
                    if timers.cancel(timer) { promise.fail(EventLoopError.cancelled) }
                } else {
                    promise.fail(EventLoopError.cancelled)
                }
            }
            // On the loop, at once: a timer due this turn must not run after `cancel()` returned.
            if inEventLoop { cancel() } else { execute(cancel) }
        }
    }

    public func scheduleTask<T>(in delay: TimeAmount, _ task: @escaping @Sendable () throws -> T) -> Scheduled<T> {
        scheduleTask(deadline: .now() + delay, task)
    }

    public func _scheduleTaskIsolatedUnsafeUnchecked<T>(deadline: NIODeadline, _ task: @escaping () throws -> T) -> Scheduled<T> {
        precondition(inEventLoop, "_scheduleTaskIsolatedUnsafeUnchecked called off the loop")
        return scheduleOnLoop(deadline: deadline, task)
    }

    public func _scheduleTaskIsolatedUnsafeUnchecked<T>(in delay: TimeAmount, _ task: @escaping () throws -> T) -> Scheduled<T> {
        _scheduleTaskIsolatedUnsafeUnchecked(deadline: .now() + delay, task)
    }

    private func scheduleOnLoop<T>(deadline: NIODeadline, _ task: @escaping () throws -> T) -> Scheduled<T> {
        let promise = makePromise(of: T.self)
        let timer = timers.schedule(at: deadline) {
            do { promise.assumeIsolatedUnsafeUnchecked().succeed(try task()) } catch { promise.fail(error) }
        } dropped: {
            promise.fail(EventLoopError.shutdown)
        }
        return Scheduled(promise: promise) { [self] in cancel(timer, promise) }
    }

    private func cancel<T>(_ timer: IOTimer, _ promise: EventLoopPromise<T>) {
        if inEventLoop {
            if timers.cancel(timer) { promise.fail(EventLoopError.cancelled) }
        } else {
            execute { [self] in cancel(timer, promise) }
        }
    }

    public var now: NIODeadline { .now() }

    public func next() -> EventLoop { self }
    public func any() -> EventLoop { self }
    public func makeIterator() -> EventLoopIterator { EventLoopIterator([self]) }

    public func shutdownGracefully(queue: DispatchQueue, _ callback: @escaping @Sendable (Error?) -> Void) {
        let finished = remote.withLockedValue { remote in
            if !remote.closed { remote.shutdownCallbacks.append { queue.async { callback(nil) } } }
            return remote.closed
        }
        if finished {
            queue.async { callback(EventLoopError.shutdown) }
        } else {
            execute { [self] in stopping = true }
        }
    }

    public func preconditionInEventLoop(file: StaticString, line: UInt) {
        precondition(inEventLoop, "not on the IOEventLoop's thread", file: file, line: line)
    }

    public func preconditionNotInEventLoop(file: StaticString, line: UInt) {
        precondition(!inEventLoop, "on the IOEventLoop's thread", file: file, line: line)
    }

    // MARK: Registration (loop thread only)

    /// Watches `fd` for input, output and the peer's FIN, edge-triggered, for its whole life:
    /// there is no call to change what is watched.
    func register(_ selectable: IOSelectable, fd: Int32) throws {
        let index = Int(fd)
        if index >= selectables.count {
            let count = max(index + 1, selectables.count * 2, 64)
            selectables.append(contentsOf: repeatElement(nil, count: count - selectables.count))
            generations.append(contentsOf: repeatElement(0, count: count - generations.count))
        }
        generations[index] &+= 1
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        event.data.u64 = UInt64(generations[index]) << 32 | UInt64(UInt32(bitPattern: fd))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event) == 0 else {
            throw IOError(errnoCode: errno, reason: "epoll_ctl")
        }
        selectables[index] = selectable
    }

    /// Forgets `fd` before it is closed (closing removes it from epoll itself).
    func deregister(fd: Int32) {
        let index = Int(fd)
        guard index < selectables.count else { return }
        selectables[index] = nil
        generations[index] &+= 1
    }

    /// `selectable` has work left that no new edge will announce: it is resumed after this
    /// turn's events, before the loop sleeps. Once per turn is its own to keep.
    func callAgain(_ selectable: IOSelectable) {
        pending.append(selectable)
    }

    // MARK: Running

    /// Runs the loop on the calling thread until it is shut down; `started` runs once the
    /// loop knows its thread.
    func run(started: () -> Void) {
        thread = pthread_self()
        started()
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !stopping {
            let timeout = tasks.isEmpty && pending.isEmpty ? timers.timeoutMilliseconds(now: .now()) : 0
            var count = epoll_wait(epollFD, events, Int32(capacity), timeout)
            if count < 0 {
                guard errno == EINTR else { fatalError("epoll_wait: \(IOError(errnoCode: errno, reason: "epoll_wait"))") }
                continue
            }
            // The turn polls again, without waiting, until it finds nothing ready: its tasks
            // (the held flushes among them) run once it has caught up. Bounded by `capacity`
            // events, one full poll's worth, as a single poll bounds them. A turn that began
            // with work waiting (a zero timeout: a task queued by a task, such as a flush a
            // resumed filter asked for, a socket to call again, a due timer) polls once, so
            // that work waits for no more than one poll's events.
            let repoll = timeout != 0
            var handled = 0
            while count > 0 {
                dispatch(events, count: Int(count))
                handled += Int(count)
                guard repoll, handled < capacity else { break }
                count = epoll_wait(epollFD, events, Int32(capacity - handled), 0)
            }
            if !pending.isEmpty {
                swap(&pending, &runningPending)
                for selectable in runningPending { selectable.resume() }
                runningPending.removeAll(keepingCapacity: true)
            }
            if !timers.isEmpty {
                let now = NIODeadline.now()
                while let timer = timers.popDue(now: now) { timer.task() }
            }
            if !tasks.isEmpty {
                swap(&tasks, &runningTasks)
                for task in runningTasks { task() }
                runningTasks.removeAll(keepingCapacity: true)
            }
        }
        finish()
    }

    /// Hands each event to its selectable; the eventfd's event brings other threads' tasks in.
    private func dispatch(_ events: UnsafeMutablePointer<epoll_event>, count: Int) {
        for i in 0..<count {
            let token = events[i].data.u64
            if token == Self.wakeToken {
                takeRemoteTasks()
                continue
            }
            let fd = Int(UInt32(truncatingIfNeeded: token))
            guard fd < selectables.count, UInt64(generations[fd]) == token >> 32, let selectable = selectables[fd] else { continue }
            selectable.ready(events[i].events)
        }
    }

    private func takeRemoteTasks() {
        var counter: UInt64 = 0
        _ = read(wakeFD, &counter, MemoryLayout<UInt64>.size)
        let taken = remote.withLockedValue { remote in
            remote.woken = false
            defer { remote.tasks.removeAll(keepingCapacity: true) }
            return remote.tasks
        }
        tasks.append(contentsOf: taken)
    }

    private func writeWake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, MemoryLayout<UInt64>.size)
    }

    /// The loop stops: the selectables registered still are closed (their handlers see
    /// `channelInactive`), the tasks queued so far run, timers are dropped with their promises
    /// failed (`EventLoopError.shutdown`), and the shutdown callbacks run. A task queued from
    /// another thread after this is dropped, as on NIO's loops.
    private func finish() {
        for selectable in selectables.compactMap({ $0 }) {
            selectable.closeForShutdown()
        }
        repeat {
            takeRemoteTasks()
            while !tasks.isEmpty {
                let batch = tasks
                tasks.removeAll()
                for task in batch { task() }
            }
        } while remote.withLockedValue({ !$0.tasks.isEmpty })
        for timer in timers.removeAll() { timer.dropped() }
        let callbacks = remote.withLockedValue { remote in
            remote.closed = true
            defer { remote.shutdownCallbacks.removeAll() }
            return remote.shutdownCallbacks
        }
        Glibc.close(wakeFD)
        Glibc.close(epollFD)
        for callback in callbacks { callback() }
    }
}
#endif
