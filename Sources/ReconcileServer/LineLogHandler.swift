import Foundation
import Logging
import ReconcileCore

/// swift-log's handler for `watch`: one line per message, as text
/// (`2026-11-27T21:00:00Z info  staging: converged …`) or as JSON (`--log-format json`: time,
/// level, message and the metadata as fields), written whole with one call.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case text, json
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let format: Format
    private let write: @Sendable (String) -> Void
    private let now: @Sendable () -> Date

    public init(
        format: Format, now: @escaping @Sendable () -> Date = { Date() }, write: @escaping @Sendable (String) -> Void
    ) {
        self.format = format
        self.write = write
        self.now = now
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let time = Self.timestamp(now())
        let fields = metadata.merging(event.metadata ?? [:]) { $1 }
        switch format {
        case .text:
            let extra =
                fields.isEmpty
                ? "" : " " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            // A file name with a newline or an escape code cannot forge a line or draw on a terminal.
            let message = Printable.escapingControls("\(event.message)\(extra)")
            let level = event.level.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
            write("\(time) \(level) \(message)\n")
        case .json:
            var object: [String: String] = ["time": time, "level": event.level.rawValue, "message": "\(event.message)"]
            for (key, value) in fields where object[key] == nil { object[key] = "\(value)" }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let data = (try? encoder.encode(object)) ?? Data()
            write(String(decoding: data, as: UTF8.self) + "\n")
        }
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
