/// An aligned text table, as `status` and `history` print them: columns padded to their widest
/// cell and two spaces apart; the last column is not padded.
enum TextTable {
    /// One line per row, the header first.
    static func lines(_ header: [String], _ body: [[String]]) -> [String] {
        let rows = [header] + body
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { cells in
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
    }
}
