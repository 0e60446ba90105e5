/// Byte ranges of one header (or trailer) field inside `HTTPHeaderBlock.bytes`.
///
/// Offsets are relative to the block's first byte. `Int32` halves the size of the field array
/// compared with `Int` (16 bytes per field), and heads are bounded far below `Int32.max`.
/// The value range is already trimmed of leading and trailing whitespace (OWS).
public struct HTTPFieldRange: Sendable, Equatable {
    public var nameStart: Int32
    public var nameLength: Int32
    public var valueStart: Int32
    public var valueLength: Int32

    /// Creates a range; callers building blocks by hand must keep it inside the block's bytes.
    @inlinable
    public init(nameStart: Int32, nameLength: Int32, valueStart: Int32, valueLength: Int32) {
        self.nameStart = nameStart
        self.nameLength = nameLength
        self.valueStart = valueStart
        self.valueLength = valueLength
    }

    /// One past the last byte of the name.
    @inlinable
    var nameEnd: Int { Int(nameStart) + Int(nameLength) }

    /// One past the last byte of the (trimmed) value.
    @inlinable
    var valueEnd: Int { Int(valueStart) + Int(valueLength) }
}
