/// The request headers as routing reads them. The proxy's parsed header block conforms
/// without copying; tests use `HeaderList`.
public protocol RouteHeaders {
    /// Calls `body` with the bytes of each value of the fields named `lowercasedName` (name
    /// compared case-insensitively, value without surrounding whitespace), in order, until it
    /// returns true; returns whether it did.
    func contains(named lowercasedName: String, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool
}

/// Headers as a list of name/value pairs.
public struct HeaderList: RouteHeaders, Sendable {
    public var fields: [(name: String, value: String)]

    public init(_ fields: [(name: String, value: String)] = []) {
        self.fields = fields
    }

    public func contains(named lowercasedName: String, where body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        fields.contains { field in
            guard field.name.lowercased() == lowercasedName else { return false }
            var value = field.value
            return value.withUTF8 { body(UnsafeRawBufferPointer($0)) }
        }
    }
}
