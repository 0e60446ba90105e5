/// An immutable hash table from byte strings to small integers, looked up with a borrowed
/// buffer so that a lookup never allocates (a `[String: Int]` would need a `String` key).
///
/// Open addressing with linear probing at a load factor of at most 1/2; all keys live in one
/// byte array. With `foldCase`, ASCII letters compare and hash case-insensitively (host names).
struct ByteKeyTable: Sendable {
    /// Per slot: offset of the key in `keyBytes`, its length, and the value (-1: empty slot).
    private var slotOffset: [Int32] = []
    private var slotLength: [Int32] = []
    private var slotValue: [Int32] = []
    private var keyBytes: [UInt8] = []
    private let foldCase: Bool

    var isEmpty: Bool { slotValue.isEmpty }

    /// `entries` must have distinct keys (after case folding, with `foldCase`).
    init(_ entries: [(key: [UInt8], value: Int32)], foldCase: Bool) {
        self.foldCase = foldCase
        guard !entries.isEmpty else { return }
        var capacity = 4
        while capacity < entries.count * 2 { capacity *= 2 }
        slotOffset = Array(repeating: 0, count: capacity)
        slotLength = Array(repeating: 0, count: capacity)
        slotValue = Array(repeating: -1, count: capacity)
        for (key, value) in entries {
            var slot = Self.hash(key, foldCase: foldCase) & (capacity - 1)
            while slotValue[slot] >= 0 { slot = (slot + 1) & (capacity - 1) }
            slotOffset[slot] = Int32(keyBytes.count)
            slotLength[slot] = Int32(key.count)
            slotValue[slot] = value
            keyBytes += foldCase ? key.map(Self.lower) : key
        }
    }

    /// The value stored for `key`, or nil.
    func value(for key: UnsafeBufferPointer<UInt8>) -> Int32? {
        guard !slotValue.isEmpty else { return nil }
        let mask = slotValue.count - 1
        var slot = Self.hash(key, foldCase: foldCase) & mask
        return keyBytes.withUnsafeBufferPointer { stored in
            while true {
                let value = slotValue[slot]
                if value < 0 { return nil }
                if Int(slotLength[slot]) == key.count && equal(key, stored, from: Int(slotOffset[slot])) { return value }
                slot = (slot + 1) & mask
            }
        }
    }

    private func equal(_ key: UnsafeBufferPointer<UInt8>, _ stored: UnsafeBufferPointer<UInt8>, from offset: Int) -> Bool {
        for i in 0..<key.count {
            let byte = foldCase ? Self.lower(key[i]) : key[i]
            if byte != stored[offset + i] { return false }
        }
        return true
    }

    /// FNV-1a over the (folded) bytes.
    private static func hash<Bytes: Sequence<UInt8>>(_ bytes: Bytes, foldCase: Bool) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(foldCase ? lower(byte) : byte)) &* 0x100_0000_01b3
        }
        return Int(truncatingIfNeeded: hash ^ (hash >> 32))
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }
}
