/// Many small immutable hash tables from byte strings to `Int32`, stored flat in two arrays
/// so that a lookup takes a borrowed buffer, allocates nothing and touches no reference count
/// (a `[String: Int32]` per trie node would need a `String` key and an ARC'd buffer per node).
///
/// Each table is open addressing with linear probing, at most half full; a table is a
/// `Table` (first slot and mask) into the shared `slots`. With `foldCase`, ASCII letters hash
/// and compare case-insensitively (host names); keys are stored folded.
struct ByteKeyTables {
    struct Slot {
        var keyOffset: Int32
        var keyLength: Int32
        /// -1: empty.
        var value: Int32
    }

    /// One table: `slots[start ... start + mask]`; mask -1 for an empty table. A table of at
    /// most `linearLimit` keys is instead `linear` slots scanned in order: comparing a few
    /// lengths is cheaper than hashing the key (most trie nodes have a handful of children).
    struct Table {
        var start: Int32 = 0
        var mask: Int32 = -1
        var linear: Int32 = 0
        var foldCase = false

        var isEmpty: Bool { mask < 0 && linear == 0 }
    }

    static let linearLimit = 8

    private(set) var slots: [Slot] = []
    private(set) var keyBytes: [UInt8] = []

    /// Adds a table of `entries` (distinct keys, after folding with `foldCase`).
    mutating func add(_ entries: [(key: [UInt8], value: Int32)], foldCase: Bool) -> Table {
        guard !entries.isEmpty else { return Table(foldCase: foldCase) }
        if entries.count <= Self.linearLimit {
            let table = Table(start: Int32(slots.count), linear: Int32(entries.count), foldCase: foldCase)
            for (key, value) in entries {
                slots.append(Slot(keyOffset: Int32(keyBytes.count), keyLength: Int32(key.count), value: value))
                keyBytes += foldCase ? key.map(Self.lower) : key
            }
            return table
        }
        var capacity = 4
        while capacity < entries.count * 2 { capacity *= 2 }
        let table = Table(start: Int32(slots.count), mask: Int32(capacity - 1), foldCase: foldCase)
        slots += Array(repeating: Slot(keyOffset: 0, keyLength: 0, value: -1), count: capacity)
        for (key, value) in entries {
            var slot = Self.hash(key, foldCase: foldCase) & (capacity - 1)
            while slots[Int(table.start) + slot].value >= 0 { slot = (slot + 1) & (capacity - 1) }
            slots[Int(table.start) + slot] = Slot(keyOffset: Int32(keyBytes.count), keyLength: Int32(key.count), value: value)
            keyBytes += foldCase ? key.map(Self.lower) : key
        }
        return table
    }

    /// The value `table` stores for `key`, or nil; `slots` and `keyBytes` are this storage's.
    static func value(
        in table: Table, for key: UnsafeBufferPointer<UInt8>, slots: UnsafePointer<Slot>, keyBytes: UnsafePointer<UInt8>
    ) -> Int32? {
        if table.linear > 0 {
            for index in Int(table.start)..<Int(table.start &+ table.linear) {
                let entry = slots[index]
                if Int(entry.keyLength) == key.count && equal(key, keyBytes + Int(entry.keyOffset), foldCase: table.foldCase) {
                    return entry.value
                }
            }
            return nil
        }
        guard table.mask >= 0 else { return nil }
        let mask = Int(table.mask)
        var slot = hash(key, foldCase: table.foldCase) & mask
        while true {
            let entry = slots[Int(table.start) &+ slot]
            if entry.value < 0 { return nil }
            if Int(entry.keyLength) == key.count && equal(key, keyBytes + Int(entry.keyOffset), foldCase: table.foldCase) {
                return entry.value
            }
            slot = (slot &+ 1) & mask
        }
    }

    /// Compares 8 bytes at a time; `stored` is already folded when `foldCase`.
    private static func equal(_ key: UnsafeBufferPointer<UInt8>, _ stored: UnsafePointer<UInt8>, foldCase: Bool) -> Bool {
        guard let base = key.baseAddress else { return true }
        let raw = UnsafeRawPointer(base), other = UnsafeRawPointer(stored)
        var offset = 0
        while offset &+ 8 <= key.count {
            var word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            if foldCase { word = lowered(word) }
            if word != other.loadUnaligned(fromByteOffset: offset, as: UInt64.self) { return false }
            offset &+= 8
        }
        while offset < key.count {
            let byte = foldCase ? lower(base[offset]) : base[offset]
            if byte != stored[offset] { return false }
            offset &+= 1
        }
        return true
    }

    /// Mixes 8 bytes at a time (a multiply-xorshift per word), folding ASCII case with
    /// `foldCase`: a request's host or segment is hashed once per lookup, so this is most of
    /// a lookup's cost.
    static func hash(_ bytes: UnsafeBufferPointer<UInt8>, foldCase: Bool) -> Int {
        let count = bytes.count
        var hash = UInt64(truncatingIfNeeded: count) &* 0x9E37_79B9_7F4A_7C15
        guard let base = bytes.baseAddress, count > 0 else { return Int(truncatingIfNeeded: hash) }
        let raw = UnsafeRawPointer(base)
        var word: UInt64
        if count >= 8 {
            var offset = 0
            while offset &+ 8 < count {
                hash = fold(hash ^ load(raw, offset, foldCase))
                offset &+= 8
            }
            // The last 8 bytes, overlapping the previous word when the length is not a
            // multiple of 8: one load instead of a byte loop.
            word = load(raw, count &- 8, foldCase)
        } else {
            // Short keys (most path segments) in one word, byte by byte.
            word = 0
            for offset in 0..<count { word = word << 8 | UInt64(base[offset]) }
            if foldCase { word = lowered(word) }
        }
        return Int(truncatingIfNeeded: mix(hash ^ word))
    }

    private static func load(_ raw: UnsafeRawPointer, _ offset: Int, _ foldCase: Bool) -> UInt64 {
        let word = raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        return foldCase ? lowered(word) : word
    }

    private static func hash(_ bytes: [UInt8], foldCase: Bool) -> Int {
        bytes.withUnsafeBufferPointer { hash($0, foldCase: foldCase) }
    }

    /// One multiply, both halves of the 128-bit product folded together: enough mixing
    /// between words, with `mix` once at the end.
    private static func fold(_ value: UInt64) -> UInt64 {
        let product = value.multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
        return product.high ^ product.low
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &* 0xBF58_476D_1CE4_E5B9
        z ^= z >> 31
        z = z &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 29)
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// `lower` on each of 8 bytes at once (bytes ≥ 0x80 are left alone): a byte gets 0x20 set
    /// when it is in `A...Z`, found by two carry-free additions per byte.
    static func lowered(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let low7 = word & ~high
        let atLeastA = (low7 &+ ones &* UInt64(0x80 - 0x41)) & high
        let aboveZ = (low7 &+ ones &* UInt64(0x80 - 0x5B)) & high
        let upper = atLeastA & ~aboveZ & ~word & high
        return word | (upper >> 2)
    }
}
