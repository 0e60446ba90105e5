#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The WASI preview1 functions SDK builds import (wasi-libc, Rust std, TinyGo), as a plugin
/// host offers them: standard output and error go to loom's log, clocks and randomness are
/// real, the environment is the plugin's own (`environment`), there are no arguments, no
/// files and no sockets. Everything else answers `ENOTSUP`. Registered under both
/// `wasi_snapshot_preview1` and `wasi_unstable`.
extension PluginVM {
    enum Errno: UInt64 {
        case success = 0
        case badf = 8
        case fault = 21
        case inval = 28
        case notsup = 58
    }

    /// `proc_exit`: the guest ends itself; the call traps with this.
    struct ProcessExit: Error, CustomStringConvertible {
        let code: UInt32
        var description: String { "proc_exit(\(code))" }
    }

    /// `fd_write` to 1 (info) or 2 (error): each call is one log message.
    func fdWrite(_ a: HostArguments) throws -> Errno {
        let fd = a.u32(0)
        guard fd == 1 || fd == 2 else { return .badf }
        guard a.u32(2) <= 1024 else { return .inval }  // IOV_MAX
        charge(bytes: Int(a.u32(2)) * 64)
        var text: [UInt8] = []
        for index in 0..<a.u32(2) {
            guard let vector = memory.bytes(at: a.u32(1) &+ index &* 8, count: 8) else { return .fault }
            let pointer = vector.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)) }
            let length = vector.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
            guard let chunk = memory.bytes(at: pointer, count: length) else { return .fault }
            text += chunk
            guard text.count <= 1 << 20 else { return .inval }
        }
        charge(bytes: text.count)
        guard memory.writeU32(UInt32(text.count), at: a.u32(3)) else { return .fault }
        if text.last == UInt8(ascii: "\n") { text.removeLast() }
        if !text.isEmpty { plugin.log(fd == 1 ? .info : .error, String(decoding: text, as: UTF8.self)) }
        return .success
    }

    /// `fd_fdstat_get` for the standard descriptors (a character device, as a terminal-less
    /// stdout is); others do not exist.
    func fdFdstatGet(_ a: HostArguments) throws -> Errno {
        guard a.u32(0) <= 2 else { return .badf }
        var stat = [UInt8](repeating: 0, count: 24)
        stat[0] = 2  // filetype: character device
        for index in 8..<24 { stat[index] = 0xFF }  // rights: whatever the guest asks
        return memory.writeBytes(stat, at: a.u32(1)) ? .success : .fault
    }

    /// No preopened directories: wasi-libc stops looking at the first `EBADF`.
    func fdPrestatGet(_ a: HostArguments) throws -> Errno { .badf }

    func clockTimeGet(_ a: HostArguments) throws -> Errno {
        let clock: clockid_t
        switch a.u32(0) {
        case 0: clock = CLOCK_REALTIME
        case 1, 2, 3: clock = CLOCK_MONOTONIC
        default: return .inval
        }
        return memory.writeU64(WASIClock.nanoseconds(clock), at: a.u32(2)) ? .success : .fault
    }

    func clockResGet(_ a: HostArguments) throws -> Errno {
        guard a.u32(0) <= 3 else { return .inval }
        return memory.writeU64(1, at: a.u32(1)) ? .success : .fault
    }

    func randomGet(_ a: HostArguments) throws -> Errno {
        var generator = SystemRandomNumberGenerator()
        charge(bytes: Int(a.u32(1)))
        let filled = memory.withMutableBytes(at: a.u32(0), count: a.u32(1)) { target in
            // Eight bytes per draw: one draw per byte made a large request slow.
            var index = 0
            while index < target.count {
                var word = generator.next()
                let count = min(8, target.count - index)
                withUnsafeBytes(of: &word) { target.baseAddress!.advanced(by: index).copyMemory(from: $0.baseAddress!, byteCount: count) }
                index += count
            }
        }
        return filled ? .success : .fault
    }

    func environSizesGet(_ a: HostArguments) throws -> Errno {
        let size = plugin.environment.reduce(0) { $0 + $1.utf8.count + 1 }
        guard memory.writeU32(UInt32(plugin.environment.count), at: a.u32(0)), memory.writeU32(UInt32(size), at: a.u32(1)) else { return .fault }
        return .success
    }

    func environGet(_ a: HostArguments) throws -> Errno {
        var pointers = a.u32(0), buffer = a.u32(1)
        for entry in plugin.environment {
            let bytes = Array(entry.utf8) + [0]
            guard memory.writeU32(buffer, at: pointers), memory.writeBytes(bytes, at: buffer) else { return .fault }
            pointers &+= 4
            buffer &+= UInt32(bytes.count)
        }
        return .success
    }

    func argsSizesGet(_ a: HostArguments) throws -> Errno {
        memory.writeU32(0, at: a.u32(0)) && memory.writeU32(0, at: a.u32(1)) ? .success : .fault
    }

    func argsGet(_ a: HostArguments) throws -> Errno { .success }

    func procExit(_ a: HostArguments) throws -> Errno {
        throw ProcessExit(code: a.u32(0))
    }

    func schedYield(_ a: HostArguments) throws -> Errno { .success }

    /// `poll_oneoff`: clock subscriptions are reported due at once (an event loop does not
    /// sleep for a guest); descriptor subscriptions get `EBADF`, there being no descriptors.
    func pollOneoff(_ a: HostArguments) throws -> Errno {
        let count = a.u32(2)
        guard count > 0, count <= 1024 else { return .inval }
        charge(bytes: Int(count) * 64)
        for index in 0..<count {
            guard let subscription = memory.bytes(at: a.u32(0) &+ index &* 48, count: 48) else { return .fault }
            var event = [UInt8](repeating: 0, count: 32)
            event.replaceSubrange(0..<8, with: subscription[0..<8])  // userdata
            let tag = subscription[8]
            event[10] = tag  // type
            if tag != 0 { event[8] = UInt8(Errno.badf.rawValue) }
            guard memory.writeBytes(event, at: a.u32(1) &+ index &* 32) else { return .fault }
        }
        return memory.writeU32(count, at: a.u32(3)) ? .success : .fault
    }
}

enum WASIClock {
    static func nanoseconds(_ clock: clockid_t) -> UInt64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}
