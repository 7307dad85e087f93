import CYaml

/// Checks a YAML text at the level of parser events, before anything is composed: how many nodes
/// it expands to once every alias is replaced by what it names, whether an alias is used as a
/// mapping key, and how many documents it holds. Composing an alias bomb (or hashing aliased keys,
/// which Yams does during composition) takes time exponential in the file's size; this pass takes
/// time linear in it, so every file is answered in bounded time and memory.
enum YAMLBounds {
    /// A reason to refuse the text, with where it was found (lines and columns from 1).
    struct Refusal: Equatable {
        var line: Int
        var column: Int
        var message: String
    }

    /// Nil when the text may be composed; syntax errors are left for the composer to report.
    static func check(_ text: String, maxNodes: Int) -> Refusal? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { buffer -> Refusal? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var scan = Scan(maxNodes: maxNodes)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return nil }
                if let refusal = scan.feed(event) { return refusal }
            }
        }
    }

    /// The running count: one frame per open collection.
    private struct Scan {
        struct Frame {
            var isMapping: Bool
            var anchor: String?
            /// `expanded` when the collection opened, itself already counted.
            var openedAt: Int
            /// `expandedBytes` when the collection opened.
            var openedBytes: Int
            /// Children seen so far (in a mapping, even positions are keys).
            var children: Int = 0
            /// A mapping's scalar keys so far and the line each was first seen on.
            var keys: [String: Int] = [:]
        }

        /// Collections nested deeper than this are refused: composing them recurses once per level.
        static let maxDepth = 64

        let maxNodes: Int
        var frames: [Frame] = []
        /// Expanded size of each anchored node, in nodes and in bytes of text.
        var sizes: [String: Int] = [:]
        var byteSizes: [String: Int] = [:]
        /// Nodes so far, every alias counted as the nodes it names.
        var expanded = 0
        /// Bytes of scalar text so far, every alias counted as the text it names: a small file of
        /// aliases to one long value would otherwise print gigabytes in a diff.
        var expandedBytes = 0
        static let maxBytes = 4 << 20
        var documents = 0

        init(maxNodes: Int) { self.maxNodes = maxNodes }

        mutating func feed(_ event: yaml_event_t) -> Refusal? {
            let line = Int(event.start_mark.line) + 1
            let column = Int(event.start_mark.column) + 1
            switch event.type {
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 {
                    return Refusal(
                        line: line, column: column,
                        message: "a second YAML document starts here; an environment file holds exactly one "
                            + "(remove the `---` line and what follows, or move it to a file of its own)")
                }
            case YAML_SCALAR_EVENT:
                let length = Int(event.data.scalar.length)
                if let frame = frames.last, frame.isMapping, frame.children % 2 == 0,
                    let key = event.data.scalar.value.map({ String(cString: $0) })
                {
                    // Point at the duplicate, not at the mapping (Yams reports only the mapping's start).
                    if let first = frame.keys[key] {
                        return Refusal(
                            line: line, column: column,
                            message: "duplicate key \"\(key)\" (first on line \(first)); each key may appear once")
                    }
                    frames[frames.count - 1].keys[key] = line
                }
                if let anchor = Self.text(event.data.scalar.anchor) {
                    sizes[anchor] = 1
                    byteSizes[anchor] = length
                }
                return count(1, bytes: length, line: line, column: column)
            case YAML_ALIAS_EVENT:
                let name = Self.text(event.data.alias.anchor) ?? ""
                if let frame = frames.last, frame.isMapping, frame.children % 2 == 0 {
                    return Refusal(
                        line: line, column: column,
                        message: "the alias *\(name) is used as a mapping key; reconcile does not accept aliases as "
                            + "keys (write the key out)")
                }
                return count(sizes[name] ?? 1, bytes: byteSizes[name] ?? 0, line: line, column: column)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                let anchor = Self.text(isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor)
                if let refusal = count(1, bytes: 0, line: line, column: column) { return refusal }
                guard frames.count < Self.maxDepth else {
                    return Refusal(
                        line: line, column: column,
                        message:
                            "collections are nested more than \(Self.maxDepth) levels deep here; refusing to read it")
                }
                frames.append(
                    Frame(isMapping: isMapping, anchor: anchor, openedAt: expanded - 1, openedBytes: expandedBytes))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let frame = frames.popLast() else { return nil }
                if let anchor = frame.anchor {
                    sizes[anchor] = expanded - frame.openedAt
                    byteSizes[anchor] = expandedBytes - frame.openedBytes
                }
            default:
                break
            }
            return nil
        }

        /// Counts a node of `size` expanded nodes as a child of the open collection.
        private mutating func count(_ size: Int, bytes: Int, line: Int, column: Int) -> Refusal? {
            if !frames.isEmpty { frames[frames.count - 1].children += 1 }
            let (sum, overflow) = expanded.addingReportingOverflow(size)
            guard !overflow, sum <= maxNodes else {
                return Refusal(
                    line: line, column: column,
                    message: "the document has more than \(maxNodes) values once aliases are expanded; "
                        + "refusing to read it")
            }
            let (total, overflowed) = expandedBytes.addingReportingOverflow(bytes)
            guard !overflowed, total <= Self.maxBytes else {
                return Refusal(
                    line: line, column: column,
                    message: "the document's text is more than \(Self.maxBytes >> 20) MiB once aliases are expanded; "
                        + "refusing to read it")
            }
            expanded = sum
            expandedBytes = total
            return nil
        }

        static func text(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: $0) }
        }
    }
}
