import Crypto
import Foundation
import Yams

/// Turns the bytes of one environment file into an `EnvironmentSpec`, or into every problem found.
///
/// The work is bounded: files over `maxBytes`, documents that expand (through aliases) to more than
/// `maxNodes` nodes, aliases used as keys and collections nested too deeply are refused by a linear
/// pass over the parser's events, before anything is composed.
public enum SpecParser {
    public static let maxBytes = 1 << 20
    public static let maxNodes = 20_000

    static let topKeys = [
        "service", "environment", "image", "pull", "port", "container_port", "bind", "env", "secrets",
        "secrets_file", "secrets_mode", "command", "restart", "resources", "stop_timeout", "docker_healthcheck",
        "health",
        "smoke", "performance", "backups", "approval", "strategy", "proxy", "notify", "engine", "platform", "replicas",
        "update", "placement", "publish",
    ]

    /// A parsed spec with the position of each field, for checks across files.
    public struct Parsed: Sendable {
        public var spec: EnvironmentSpec
        /// Line and column of each field by dotted path (`port`, `health.path`).
        public var locations: [String: SourceLocation]
    }

    /// Parses `bytes` read from `file`; `defaultEnvironment` is used when the file names none.
    public static func parse(_ bytes: [UInt8], file: String, defaultEnvironment: String) -> Result<
        Parsed, ValidationFailure
    > {
        func fail(_ message: String, line: Int = 1, column: Int = 1) -> Result<Parsed, ValidationFailure> {
            .failure(
                ValidationFailure(issues: [
                    ValidationIssue(file: file, line: line, column: column, field: "", message: message)
                ]))
        }
        guard bytes.count <= maxBytes else {
            return fail("file is \(bytes.count) bytes; environment files are limited to \(maxBytes) bytes")
        }
        if let offset = bytes.firstIndex(of: 0) {
            return fail("not a text file (NUL byte at offset \(offset)); is this the right file?")
        }
        // A byte order mark at the start is not content (editors on Windows write one).
        let bytes = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return fail("not a text file (invalid UTF-8); environment files are UTF-8 YAML")
        }
        if let refusal = YAMLBounds.check(text, maxNodes: maxNodes) {
            return fail(refusal.message, line: refusal.line, column: refusal.column)
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            var (line, column, message) = describe(error)
            // A tab where indentation goes fails as "cannot start any token"; say what it is.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if line >= 1, line <= lines.count, lines[line - 1].prefix(max(column, 1)).contains("\t") {
                message = "YAML does not allow tabs for indentation; use spaces"
            }
            return fail(message, line: line, column: column)
        } catch {
            return fail("cannot read YAML: \(error)")
        }
        guard let root, !NodeReader.isNull(root) else {
            return fail("file is empty; an environment needs at least service, image and port")
        }
        var reader = NodeReader(file: file)
        let spec = read(root, reader: &reader, file: file, defaultEnvironment: defaultEnvironment)
        if var spec, reader.issues.isEmpty {
            spec.contentDigest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            let locations = reader.locations.mapValues { SourceLocation(line: $0.line, column: $0.column) }
            return .success(Parsed(spec: spec, locations: locations))
        }
        let ordered = reader.issues.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }
        return .failure(ValidationFailure(issues: ordered.map(\.element)))
    }

    static func describe(_ error: YamlError) -> (Int, Int, String) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            if problem.contains("tab character") {
                return (mark.line, mark.column, "YAML does not allow tabs for indentation; use spaces")
            }
            return (mark.line, mark.column, "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return (context.mark.line, context.mark.column, "duplicate key \(keys); each key may appear once")
        case .reader(let problem, _, _, _):
            return (1, 1, "cannot read the file: \(problem)")
        default:
            return (1, 1, "invalid YAML: \(error)")
        }
    }

    private static func read(_ root: Node, reader: inout NodeReader, file: String, defaultEnvironment: String)
        -> EnvironmentSpec?
    {
        guard let fields = reader.fields(root, "", known: topKeys) else { return nil }
        func required(_ key: String) -> Node? {
            if let node = fields[key] { return node }
            reader.report(root, key, "required; add `\(key): …` to the file")
            return nil
        }
        let service = required("service").flatMap { name($0, "service", &reader) }
        let environment = fields["environment"].map { name($0, "environment", &reader) } ?? defaultEnvironment
        let image = required("image").flatMap { node -> ImageReference? in
            guard let text = reader.string(node, "image") else { return nil }
            switch ImageReference.parse(text) {
            case .success(let reference): return reference
            case .failure(let error):
                reader.report(node, "image", "\"\(text)\" is not an image reference: \(error.reason)")
                return nil
            }
        }
        let port = required("port").flatMap { reader.int($0, "port", in: 1...65535) }
        var spec = EnvironmentSpec(
            file: file, service: service ?? "", environment: environment ?? "",
            image: image ?? ImageReference(repository: "", tag: nil), port: port ?? 0)
        readOptional(fields, into: &spec, reader: &reader)
        if spec.platform == .swarm && fields["docker_healthcheck"] == nil {
            // Swarm gates each task by its healthcheck while it rolls them: the file's health policy.
            spec.dockerHealthcheck = .fromPolicy(spec.health, containerPort: spec.containerPort)
            spec.healthcheckFromPolicy = true
        }
        if let service, let environment {
            // Names reconcile gives other roles: the environment's containers could never be told apart.
            let name = "\(service)-\(environment)"
            let reserved =
                name.hasSuffix("-candidate")
                ? "-candidate (new versions)"
                : name.hasSuffix(".lock")
                    ? ".lock (the lock)"
                    : name.contains("-backup-")
                        ? "-backup- (backups)" : name.hasSuffix("-proxy") ? "-proxy (the blue-green proxy)" : nil
            // Problems of the name are reported at the environment's line, or the service's without one.
            let (nameNode, nameField) =
                fields["environment"].map { (Optional($0), "environment") } ?? (fields["service"], "service")
            if spec.platform == .swarm, name.count > 63 {
                reader.report(
                    nameNode, nameField,
                    "the service name \(name) is \(name.count) characters; Swarm allows 63. Choose a shorter service or "
                        + "environment")
            }
            if let reserved {
                reader.report(
                    nameNode, nameField,
                    "the container name \(name) uses \(reserved), which reconcile keeps for its own containers; choose another name"
                )
            }
        }
        guard service != nil, environment != nil, image != nil, port != nil else { return nil }
        return spec
    }

    private static func name(_ node: Node, _ path: String, _ reader: inout NodeReader) -> String? {
        guard let text = reader.string(node, path) else { return nil }
        let valid =
            text.first.map { $0.isASCII && ($0.isLetter || $0.isNumber) } == true
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }
        guard valid, text.count <= 100 else {
            reader.report(
                node, path, "\"\(text)\" must start with a letter or digit and hold only letters, digits, _ . -")
            return nil
        }
        return text
    }
}

/// A line and column in a file, both counted from 1.
public struct SourceLocation: Sendable, Equatable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}
