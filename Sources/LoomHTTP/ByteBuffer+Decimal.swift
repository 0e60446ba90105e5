import NIOCore

extension ByteBuffer {
    /// Writes `value` in decimal ASCII without creating a `String` (status codes, lengths and
    /// ports are written on every request).
    @discardableResult
    public mutating func writeDecimal(_ value: Int) -> Int {
        precondition(value >= 0, "negative decimal")
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        var remaining = value
        writeWithUnsafeMutableBytes(minimumWritableBytes: digits) { out in
            var index = digits
            repeat {
                index -= 1
                out[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: remaining % 10)
                remaining /= 10
            } while index > 0
            return digits
        }
        return digits
    }
}
