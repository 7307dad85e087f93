import Foundation
import ReconcileCore

/// Finds the values of an environment's secrets: the process environment first, then `secrets_file`
/// (`NAME=value` lines, `#` comments, optional quotes), a relative path being taken from the
/// environment file's folder. Values are returned, never printed.
public struct SecretResolver: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public struct Resolved: Sendable {
        public var values: [String: String]
        /// Problems reading `secrets_file`, one sentence each (the file's contents are never quoted).
        public var problems: [String]
    }

    public func resolve(_ spec: EnvironmentSpec) -> Resolved {
        var values: [String: String] = [:]
        var problems: [String] = []
        var fileValues: [String: String] = [:]
        if let path = spec.secretsFile, spec.secrets.contains(where: { environment[$0] == nil }) {
            let resolved = Self.path(path, relativeTo: spec.file)
            do {
                let text = try String(contentsOfFile: resolved, encoding: .utf8)
                fileValues = Self.parse(text)
            } catch {
                problems.append("cannot read secrets_file \(resolved): \(Self.reason(error))")
            }
        }
        for name in spec.secrets {
            if let value = environment[name] ?? fileValues[name] { values[name] = value }
        }
        return Resolved(values: values, problems: problems)
    }

    static func path(_ path: String, relativeTo file: String) -> String {
        if path.hasPrefix("/") { return path }
        return URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).path
    }

    /// Parses `NAME=value` lines; `export ` prefixes, blank lines and `#` comments are ignored.
    static func parse(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export ") { line = String(line.dropFirst(7)) }
            guard let equals = line.firstIndex(of: "=") else { continue }
            let name = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
                value = String(value.dropFirst().dropLast())
            }
            values[name] = value
        }
        return values
    }

    static func reason(_ error: Error) -> String {
        let nsError = error as NSError
        if nsError.domain == NSCocoaErrorDomain {
            switch nsError.code {
            case NSFileReadNoSuchFileError: return "no such file"
            case NSFileReadNoPermissionError: return "permission denied"
            default: break
            }
        }
        return "unreadable"
    }
}
