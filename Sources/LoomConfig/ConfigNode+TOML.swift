import TOMLKit

/// Building a `ConfigNode` tree from WarpDrive TOML text.
///
/// TOMLKit does the parsing (and reports syntax errors with a position); positions and the
/// file order of keys come from `TOMLPositionIndex`, because TOMLKit exposes neither.
extension ConfigNode {
    static func parseTOML(_ text: String, file: String) -> Result<ConfigNode, ConfigSyntaxError> {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let begin = error.source.begin
            let location = SourceLocation(file: file, line: max(begin.line, 0), column: max(begin.column, 0))
            return .failure(ConfigSyntaxError(diagnostic: Diagnostic(.error, at: location, path: "", "invalid TOML: \(error.description)")))
        } catch {
            return .failure(ConfigSyntaxError(diagnostic: Diagnostic(.error, at: SourceLocation(file: file), path: "", "invalid TOML: \(error)")))
        }
        let index = TOMLPositionIndex(source: text, file: file)
        return .success(ConfigNode(toml: table, path: "", index: index, at: SourceLocation(file: file, line: 1, column: 1)))
    }

    private init(toml value: TOMLValueConvertible, path: String, index: TOMLPositionIndex, at location: SourceLocation?) {
        switch value.type {
        case .table:
            guard let table = value.table else {
                self.init(.map([]), at: location)
                return
            }
            let entries = table.keys.enumerated().compactMap { offset, key -> (Int, Entry)? in
                guard let child = table[key] else { return nil }
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                let entry = Entry(
                    key: key,
                    keyLocation: index.keys[childPath],
                    value: ConfigNode(toml: child, path: childPath, index: index, at: index.values[childPath] ?? index.keys[childPath])
                )
                return (offset, entry)
            }
            // TOMLKit returns keys sorted; restore file order. Keys the index did not see
            // (should not happen) keep their relative order after the located ones.
            let ordered = entries.sorted { lhs, rhs in
                let l = lhs.1.keyLocation.map { ($0.line, $0.column) } ?? (Int.max, lhs.0)
                let r = rhs.1.keyLocation.map { ($0.line, $0.column) } ?? (Int.max, rhs.0)
                return l < r
            }.map(\.1)
            self.init(.map(ordered), at: location)
        case .array:
            let elements = (value.array.map { Array($0) } ?? []).enumerated().map { offset, element in
                let elementPath = "\(path)[\(offset)]"
                return ConfigNode(toml: element, path: elementPath, index: index, at: index.values[elementPath] ?? location)
            }
            self.init(.sequence(elements), at: location)
        case .string:
            self.init(.scalar(ConfigScalar(kind: .string, text: value.string ?? "")), at: location)
        case .int:
            let number = value.int ?? 0
            self.init(.scalar(ConfigScalar(kind: .integer(number), text: String(number))), at: location)
        case .double:
            let number = value.double ?? 0
            self.init(.scalar(ConfigScalar(kind: .float(number), text: String(number))), at: location)
        case .bool:
            let flag = value.bool ?? false
            self.init(.scalar(ConfigScalar(kind: .boolean(flag), text: String(flag))), at: location)
        case .date, .time, .dateTime:
            self.init(.scalar(ConfigScalar(kind: .dateTime, text: "\(value.tomlValue)")), at: location)
        }
    }
}
