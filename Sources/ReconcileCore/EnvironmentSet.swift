/// Checks that span several environment files: two environments on one host must not share a
/// container name or a host port.
public enum EnvironmentSet {
    public static func conflicts(_ parsed: [SpecParser.Parsed]) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        for (index, entry) in parsed.enumerated() {
            let spec = entry.spec
            for earlier in parsed[..<index] {
                let other = earlier.spec
                if other.containerName == spec.containerName {
                    issues.append(
                        issue(
                            entry, "environment",
                            "container name \"\(spec.containerName)\" is also used by \(other.file); give each environment its own service/environment"
                        ))
                }
                if other.port == spec.port && Differ.bindsOverlap(other.bind, spec.bind) {
                    issues.append(
                        issue(
                            entry, "port",
                            "host port \(spec.port) is also used by \(other.file) (\(other.environment)); each environment needs its own port"
                        ))
                }
            }
        }
        return issues
    }

    private static func issue(_ entry: SpecParser.Parsed, _ field: String, _ message: String) -> ValidationIssue {
        let location = entry.locations[field] ?? entry.locations["service"] ?? SourceLocation(line: 1, column: 1)
        return ValidationIssue(
            file: entry.spec.file, line: location.line, column: location.column, field: field, message: message)
    }
}
