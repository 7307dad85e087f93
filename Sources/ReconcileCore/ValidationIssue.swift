/// One problem found in an environment file, located by file, line, column and field path.
///
/// Its description is the text a person reads: `staging.yml:12:3: health.interval: expected a
/// duration like "5s", got "five"`.
public struct ValidationIssue: Sendable, Equatable, CustomStringConvertible, Codable {
    public var file: String
    public var line: Int
    public var column: Int
    /// The dotted field path (`health.interval`, `smoke[1].path`); empty for the whole file.
    public var field: String
    public var message: String

    public init(file: String, line: Int, column: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    public var description: String {
        field.isEmpty ? "\(file):\(line):\(column): \(message)" : "\(file):\(line):\(column): \(field): \(message)"
    }
}

/// The problems that make a set of environment files unusable; nothing was touched.
public struct ValidationFailure: Error, Sendable, CustomStringConvertible {
    public var issues: [ValidationIssue]

    public init(issues: [ValidationIssue]) { self.issues = issues }

    public var description: String { issues.map(\.description).joined(separator: "\n") }
}

/// Suggests the closest known word for a misspelt one (edit distance at most 2, or a prefix).
public enum Suggestion {
    public static func closest(to word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, distance(word.lowercased(), $0)) }.sorted {
            $0.1 < $1.1 || $0.1 == $1.1 && $0.0 < $1.0
        }
        guard let best = scored.first else { return nil }
        let limit = max(1, min(2, word.count / 3))
        return best.1 <= limit ? best.0 : nil
    }

    /// Optimal string alignment distance: edits and swaps of neighbours each cost one.
    static func distance(_ lhs: String, _ rhs: String) -> Int {
        let a = Array(lhs)
        let b = Array(rhs)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var table = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { table[i][0] = i }
        for j in 0...b.count { table[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1, table[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    table[i][j] = min(table[i][j], table[i - 2][j - 2] + 1)
                }
            }
        }
        return table[a.count][b.count]
    }
}
