import Foundation

/// One line of an engine's pull stream: a layer (`id`) and what is happening to it.
public struct PullProgress: Sendable, Equatable {
    public var id: String?
    public var status: String
    public var current: Int64?
    public var total: Int64?

    public init(id: String? = nil, status: String, current: Int64? = nil, total: Int64? = nil) {
        self.id = id
        self.status = status
        self.current = current
        self.total = total
    }
}

/// Folds a pull stream into one line a terminal can redraw:
/// `pulling app:v2: 2/5 layers done, 12.3 MB of 40.1 MB`.
public struct PullTracker: Sendable {
    private struct Layer {
        var current: Int64 = 0
        var total: Int64 = 0
        var done = false
    }

    private var layers: [String: Layer] = [:]
    private var order: [String] = []
    private var note: String?

    public init() {}

    /// Layer states the engine reports once a layer needs no more transfer.
    static let finished: Set<String> = ["Pull complete", "Already exists", "Download complete"]

    /// Records one line; true when it is a milestone worth drawing at once (a layer appeared or
    /// finished), false for byte counts, which a terminal may draw less often.
    @discardableResult
    public mutating func record(_ progress: PullProgress) -> Bool {
        guard let id = progress.id, !id.isEmpty else {
            note = progress.status
            return false
        }
        // `{"id": "<tag>", "status": "Pulling from <repository>"}` names the image, not a layer.
        if progress.status.hasPrefix("Pulling from") { return false }
        var milestone = false
        if layers[id] == nil {
            layers[id] = Layer()
            order.append(id)
            milestone = true
        }
        if Self.finished.contains(progress.status) {
            milestone = milestone || layers[id]?.done == false
            layers[id]?.done = true
            if let total = layers[id]?.total, total > 0 { layers[id]?.current = total }
        } else if progress.status == "Downloading" {
            if let current = progress.current { layers[id]?.current = current }
            if let total = progress.total, total > 0 { layers[id]?.total = total }
        }
        return milestone
    }

    /// One line: layers done of layers seen, and bytes when the engine reports sizes.
    public func summary(of reference: String) -> String {
        guard !order.isEmpty else { return "pulling \(reference)" + (note.map { ": \($0)" } ?? "") }
        let done = order.filter { layers[$0]?.done == true }.count
        var line = "pulling \(reference): \(done)/\(order.count) layers done"
        let total = order.reduce(Int64(0)) { $0 + (layers[$1]?.total ?? 0) }
        if total > 0 {
            let current = order.reduce(Int64(0)) { $0 + (layers[$1]?.current ?? 0) }
            line += ", \(Self.bytes(current)) of \(Self.bytes(total))"
        }
        return line
    }

    public static func bytes(_ count: Int64) -> String {
        let value = Double(count)
        if value >= 1_000_000_000 { return String(format: "%.1f GB", value / 1_000_000_000) }
        if value >= 1_000_000 { return String(format: "%.1f MB", value / 1_000_000) }
        if value >= 1_000 { return String(format: "%.1f kB", value / 1_000) }
        return "\(count) B"
    }
}
