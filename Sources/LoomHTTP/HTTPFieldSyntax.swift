/// Checks for field names and values that come from outside the wire parser (a plugin, a
/// claim copied into a header), so that nothing loom writes can split a head.
public enum HTTPFieldSyntax {
    /// A token (RFC 9110 §5.6.2), as a field name must be.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy(HTTPSyntax.isToken)
    }

    /// No CR, LF, NUL or other control character (HTAB allowed), and no leading or trailing
    /// whitespace (RFC 9110 §5.5).
    public static func isValidValue(_ value: String) -> Bool {
        let bytes = value.utf8
        guard bytes.allSatisfy(HTTPSyntax.isFieldValueChar) else { return false }
        guard let first = bytes.first, let last = bytes.last else { return true }
        return !HTTPSyntax.isWhitespace(first) && !HTTPSyntax.isWhitespace(last)
    }

    /// An origin-form request target (`/path?query`): visible ASCII only, no spaces, so it
    /// cannot change the request line it is written into.
    public static func isValidOriginTarget(_ target: String) -> Bool {
        target.utf8.first == UInt8(ascii: "/") && target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
    }

    /// A `Host` value (`:authority`): a non-empty run of the characters a URI's host and
    /// port may hold, no userinfo (RFC 9110 §4.2.4, §7.2), as the request parser accepts in
    /// an absolute-form target.
    public static func isValidAuthority(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.allSatisfy(HTTPSyntax.isHostChar)
    }
}
