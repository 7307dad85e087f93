import Yams

/// Reads typed values out of a composed YAML node tree, collecting every problem with its position
/// instead of stopping at the first one.
struct NodeReader {
    let file: String
    private(set) var issues: [ValidationIssue] = []
    /// Where each field was found, by dotted path, for checks that span files.
    private(set) var locations: [String: Mark] = [:]

    init(file: String) { self.file = file }

    mutating func report(_ node: Node?, _ field: String, _ message: String) {
        let line = node?.mark?.line ?? 1
        let column = node?.mark?.column ?? 1
        issues.append(ValidationIssue(file: file, line: line, column: column, field: field, message: message))
    }

    /// Returns the entries of a mapping by key, reporting unknown keys (with a suggestion) and non-text keys.
    mutating func fields(_ node: Node, _ path: String, known: [String]) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            report(
                node, path,
                "expected a mapping of \(known.prefix(3).joined(separator: ", ")), …, got \(Self.describe(node))")
            return nil
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                report(keyNode, path, "keys must be plain words, got \(Self.describe(keyNode))")
                continue
            }
            let field = path.isEmpty ? key.string : "\(path).\(key.string)"
            guard known.contains(key.string) else {
                var message = "unknown key \"\(key.string)\""
                if let guess = Suggestion.closest(to: key.string, in: known) {
                    message += "; did you mean \"\(guess)\"?"
                } else {
                    message += "; expected one of: \(known.sorted().joined(separator: ", "))"
                }
                report(keyNode, field, message)
                continue
            }
            locations[field] = value.mark ?? keyNode.mark
            result[key.string] = value
        }
        return result
    }

    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            report(node, path, "expected text, got \(Self.describe(node))")
            return nil
        }
        return scalar.string
    }

    mutating func int(_ node: Node, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard case .scalar = node, Self.has(node, .int), let value = node.int else {
            report(node, path, "expected a whole number, got \(Self.describe(node))")
            return nil
        }
        guard range.contains(value) else {
            report(node, path, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ path: String, in range: ClosedRange<Double>) -> Double? {
        guard case .scalar(let scalar) = node, Self.has(node, .int) || Self.has(node, .float), let value = node.float
        else {
            report(node, path, "expected a number, got \(Self.describe(node))")
            return nil
        }
        guard value.isFinite, range.contains(value) else {
            report(
                node, path,
                "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), got \(scalar.string)"
            )
            return nil
        }
        return value
    }

    /// Reads a duration within `range` (inclusive); the message names the range.
    mutating func duration(_ node: Node, _ path: String, in range: ClosedRange<Duration>) -> Duration? {
        guard case .scalar(let scalar) = node, Self.has(node, .str) else {
            report(node, path, "expected a duration like \"5s\" or \"500ms\", got \(Self.describe(node))")
            return nil
        }
        guard let value = Quantities.duration(scalar.string) else {
            let plain = scalar.string.trimmingWhitespace()
            let reason =
                Quantities.isDurationSyntax(plain)
                ? "is longer than any duration reconcile accepts (at most \(Quantities.format(range.upperBound)))"
                : "expected a duration like \"5s\" or \"500ms\", got \(Self.describe(node))"
            report(node, path, reason)
            return nil
        }
        guard range.contains(value) else {
            let bounds =
                range.lowerBound == .zero
                ? "at most \(Quantities.format(range.upperBound))"
                : "between \(Quantities.format(range.lowerBound)) and \(Quantities.format(range.upperBound))"
            report(node, path, "must be \(bounds), got \(scalar.string)")
            return nil
        }
        return value
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ node: Node, _ path: String, as _: T.Type) -> T?
    where T.RawValue == String {
        let names = T.allCases.map(\.rawValue)
        guard case .scalar(let scalar) = node, !Self.isNull(node) else {
            report(node, path, "expected one of \(names.joined(separator: " | ")), got \(Self.describe(node))")
            return nil
        }
        // YAML 1.1 reads a bare `no` as false; take the text as written.
        guard let value = T(rawValue: scalar.string) else {
            var message = "expected one of \(names.joined(separator: " | ")), got \"\(scalar.string)\""
            if let guess = Suggestion.closest(to: scalar.string, in: names) {
                message += "; did you mean \"\(guess)\"?"
            }
            report(node, path, message)
            return nil
        }
        return value
    }

    mutating func stringList(_ node: Node, _ path: String) -> [String]? {
        guard case .sequence(let sequence) = node else {
            report(node, path, "expected a list like [\"a\", \"b\"], got \(Self.describe(node))")
            return nil
        }
        var values: [String] = []
        var ok = true
        for (index, item) in sequence.enumerated() {
            if let value = string(item, "\(path)[\(index)]") { values.append(value) } else { ok = false }
        }
        return ok ? values : nil
    }

    /// Reads a mapping of text to scalar values (numbers and booleans are taken as written).
    mutating func stringMap(_ node: Node, _ path: String) -> [(key: String, value: String, node: Node)]? {
        guard case .mapping(let mapping) = node else {
            report(node, path, "expected a mapping like {KEY: value}, got \(Self.describe(node))")
            return nil
        }
        var entries: [(key: String, value: String, node: Node)] = []
        var ok = true
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let key) = keyNode else {
                report(keyNode, path, "keys must be plain words, got \(Self.describe(keyNode))")
                ok = false
                continue
            }
            let field = "\(path).\(key.string)"
            guard case .scalar(let value) = valueNode, !Self.isNull(valueNode) else {
                report(valueNode, field, "expected a text, number or boolean value, got \(Self.describe(valueNode))")
                ok = false
                continue
            }
            entries.append((key.string, value.string, keyNode))
        }
        return ok ? entries : nil
    }

    static func has(_ node: Node, _ tag: Tag.Name) -> Bool {
        node.tag.rawValue == tag.rawValue
    }

    static func isNull(_ node: Node) -> Bool {
        Self.has(node, .null)
    }

    static func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull(node) { return "nothing" }
            let text = scalar.string.count > 40 ? scalar.string.prefix(37) + "…" : Substring(scalar.string)
            return "\"\(text)\""
        }
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(saturating: value)) : String(value)
    }
}
