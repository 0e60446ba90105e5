import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Renders log records as one JSON object per line (default) or as `key=value` text.
///
/// JSON lines: `{"time":"2026-11-28T03:49:04.123Z","level":"info","logger":"loom.access",
/// "msg":"request","request_id":"…",…}`. Well-known access-log keys come first in a fixed order
/// so lines are easy to read; other metadata follows sorted by key. Access logs go to stdout,
/// everything else to stderr (like nginx's access and error logs).
public struct LoomLogHandler: LogHandler {
    public enum Format: String, Sendable { case json, text }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let format: Format
    private let toStdout: Bool

    public init(label: String, format: Format, level: Logger.Level) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.toStdout = label == "loom.access"
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let leadingKeys = [
        "request_id", "client", "method", "path", "status", "bytes_in", "bytes_out", "duration_ms",
        "route", "upstream", "endpoint",
    ]

    public func log(event: LogEvent) {
        var merged = self.metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        let keys = Self.leadingKeys.filter { merged[$0] != nil }
            + merged.keys.filter { !Self.leadingKeys.contains($0) }.sorted()
        var line = ""
        switch format {
        case .json:
            line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(event.level)\",\"logger\":"
            Self.quote(label, into: &line)
            line += ",\"msg\":"
            Self.quote(event.message.description, into: &line)
            for key in keys {
                line += ","
                Self.quote(key, into: &line)
                line += ":"
                Self.appendJSON(merged[key]!, into: &line)
            }
            line += "}\n"
        case .text:
            line = "\(Self.timestamp()) \(event.level) \(label): \(event.message)"
            for key in keys { line += " \(key)=\(merged[key]!)" }
            line += "\n"
        }
        // One write(2) per line: lines from different threads never interleave (each is far
        // below PIPE_BUF for pipes, and appends are atomic for files opened with O_APPEND).
        var bytes = Array(line.utf8)
        let fd: Int32 = toStdout ? 1 : 2
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { raw in
                write(fd, raw.baseAddress! + offset, raw.count - offset)
            }
            if written <= 0 { break }
            offset += written
        }
    }

    private static func appendJSON(_ value: Logger.Metadata.Value, into line: inout String) {
        switch value {
        case .string(let string): quote(string, into: &line)
        case .stringConvertible(let convertible):
            // Numbers stay numbers in JSON; anything else becomes a string.
            let text = convertible.description
            if convertible is any BinaryInteger || convertible is Milliseconds { line += text } else { quote(text, into: &line) }
        case .array(let values):
            line += "["
            for (index, element) in values.enumerated() {
                if index > 0 { line += "," }
                appendJSON(element, into: &line)
            }
            line += "]"
        case .dictionary(let dictionary):
            line += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { line += "," }
                quote(key, into: &line)
                line += ":"
                appendJSON(dictionary[key]!, into: &line)
            }
            line += "}"
        }
    }

    private static func quote(_ text: String, into line: inout String) {
        JSONText.appendQuoted(text, to: &line)
    }

    /// RFC 3339 UTC with milliseconds, computed without Foundation's formatters.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return format(epochSeconds: Int64(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
    }

    static func format(epochSeconds: Int64, milliseconds: Int) -> String {
        let days = epochSeconds >= 0 ? epochSeconds / 86_400 : (epochSeconds - 86_399) / 86_400
        let secondsOfDay = Int(epochSeconds - days * 86_400)
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(Int64(secondsOfDay / 3600), 2)):"
            + "\(pad(Int64(secondsOfDay / 60 % 60), 2)):\(pad(Int64(secondsOfDay % 60), 2)).\(pad(Int64(milliseconds), 3))Z"
    }
}
