/// The ABI's serialization of a header map (pairs for `proxy_get/set_header_map_pairs`, local
/// responses and HTTP calls): a little-endian u32 count, then each pair's key and value
/// lengths (u32 each, without the terminator), then each key and value followed by a NUL.
///
/// Decoding accepts what SDKs send for an empty map (no bytes, or a single NUL) and refuses
/// anything whose lengths run past the data.
enum HeaderMapCodec {
    static func encode(_ pairs: [(name: String, value: String)]) -> [UInt8] {
        var size = 4
        for pair in pairs { size += 8 + pair.name.utf8.count + pair.value.utf8.count + 2 }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        append(UInt32(pairs.count), to: &out)
        for pair in pairs {
            append(UInt32(pair.name.utf8.count), to: &out)
            append(UInt32(pair.value.utf8.count), to: &out)
        }
        for pair in pairs {
            out.append(contentsOf: pair.name.utf8)
            out.append(0)
            out.append(contentsOf: pair.value.utf8)
            out.append(0)
        }
        return out
    }

    /// The pairs in `bytes`, or nil when they are malformed.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> [(name: String, value: String)]? {
        if bytes.count == 0 || (bytes.count == 1 && bytes[0] == 0) { return [] }
        guard bytes.count >= 4 else { return nil }
        let count = Int(u32(bytes, 0))
        // Each pair needs 8 bytes of lengths and 2 terminators: a count the data cannot hold
        // is refused before anything is allocated for it.
        guard count <= (bytes.count - 4) / 10 else { return nil }
        var lengths: [(Int, Int)] = []
        lengths.reserveCapacity(count)
        for index in 0..<count {
            lengths.append((Int(u32(bytes, 4 + index * 8)), Int(u32(bytes, 8 + index * 8))))
        }
        var at = 4 + count * 8
        var pairs: [(name: String, value: String)] = []
        pairs.reserveCapacity(count)
        for (nameLength, valueLength) in lengths {
            guard let name = text(bytes, at, nameLength) else { return nil }
            at += nameLength + 1
            guard let value = text(bytes, at, valueLength) else { return nil }
            at += valueLength + 1
            pairs.append((name, value))
        }
        return pairs
    }

    static func decode(_ bytes: [UInt8]) -> [(name: String, value: String)]? {
        bytes.withUnsafeBytes { decode($0) }
    }

    /// `length` bytes at `at` followed by a NUL, as text.
    private static func text(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ length: Int) -> String? {
        guard length >= 0, at + length < bytes.count, bytes[at + length] == 0 else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[at..<(at + length)]), as: UTF8.self)
    }

    private static func u32(_ bytes: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self))
    }

    private static func append(_ value: UInt32, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
}
