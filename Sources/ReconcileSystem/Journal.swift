import Foundation

/// One apply of one environment, as a line of `journal.jsonl`. Holds no secret values.
public struct JournalEntry: Sendable, Codable, Equatable {
    public var time: String
    public var environment: String
    public var file: String
    public var revision: String?
    public var oldImage: String?
    public var oldImageID: String?
    public var newImage: String
    public var newImageID: String?
    public var action: String
    public var result: String
    public var exitCode: Int32
    public var seconds: Double
    public var failedCheck: String?

    public init(
        time: String, environment: String, file: String, revision: String?, oldImage: String?, oldImageID: String?,
        newImage: String, newImageID: String?, action: String, result: String, exitCode: Int32, seconds: Double,
        failedCheck: String?
    ) {
        self.time = time
        self.environment = environment
        self.file = file
        self.revision = revision
        self.oldImage = oldImage
        self.oldImageID = oldImageID
        self.newImage = newImage
        self.newImageID = newImageID
        self.action = action
        self.result = result
        self.exitCode = exitCode
        self.seconds = seconds
        self.failedCheck = failedCheck
    }
}

/// Appends journal entries, one JSON object per line, to `<state-dir>/journal.jsonl`.
public struct Journal: Sendable {
    public let path: String

    public init(directory: String) { path = (directory as NSString).appendingPathComponent("journal.jsonl") }

    /// Appends one line. A failure is returned for the caller to report; it never blocks a deploy or rollback.
    public func append(_ entry: JournalEntry) -> String? {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(entry) else { return "cannot encode the journal entry" }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot write the journal \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let line = data + Data("\n".utf8)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return written == line.count ? nil : "cannot write the journal \(path): short write"
    }
}
