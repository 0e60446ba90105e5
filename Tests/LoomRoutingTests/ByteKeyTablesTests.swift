import Testing

@testable import LoomRouting

@Suite struct ByteKeyTablesTests {
    /// The 8-bytes-at-once case folding agrees with folding each byte, for every byte value
    /// in every lane.
    @Test func wordFoldingMatchesByteFolding() {
        for byte in UInt8.min...UInt8.max {
            for lane in 0..<8 {
                let filler = UInt8(ascii: "Q")
                var bytes = [UInt8](repeating: filler, count: 8)
                bytes[lane] = byte
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let expected = bytes.map { $0 >= 65 && $0 <= 90 ? $0 | 0x20 : $0 }.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                #expect(ByteKeyTables.lowered(word) == expected, "byte \(byte) in lane \(lane)")
            }
        }
    }

    @Test func findsEveryKeyAndNothingElse() {
        var tables = ByteKeyTables()
        let keys = (0..<300).map { "k\($0)-" + String(repeating: "x", count: $0 % 19) }
        let exact = tables.add(keys.enumerated().map { (Array($1.utf8), Int32($0)) }, foldCase: false)
        let folded = tables.add([(Array("api.example.com".utf8), 7), (Array("a".utf8), 8), (Array("".utf8), 9)], foldCase: true)
        let empty = tables.add([], foldCase: false)
        func lookup(_ table: ByteKeyTables.Table, _ key: String) -> Int32? {
            tables.slots.withUnsafeBufferPointer { slots in
                tables.keyBytes.withUnsafeBufferPointer { bytes in
                    Array(key.utf8).withUnsafeBufferPointer {
                        // An empty key array has no base address: any valid pointer will do.
                        ByteKeyTables.value(in: table, for: $0, slots: slots.baseAddress!, keyBytes: bytes.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                    }
                }
            }
        }
        for (index, key) in keys.enumerated() {
            #expect(lookup(exact, key) == Int32(index))
            #expect(lookup(exact, key.uppercased()) == nil)
            #expect(lookup(exact, key + "y") == nil)
        }
        #expect(lookup(folded, "API.Example.COM") == 7)
        #expect(lookup(folded, "api.example.co") == nil)
        #expect(lookup(folded, "A") == 8)
        #expect(lookup(folded, "") == 9)
        #expect(lookup(empty, "a") == nil)
    }
}
