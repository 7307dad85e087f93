/// Text from outside (a file, a remote host, an environment variable) made safe to print: a
/// control character is shown as `\u{1b}`, so that it cannot clear the screen, colour what
/// follows or forge a line.
public enum Printable {
    /// `\u{…}` for a control character (C0, DEL, C1), nil for one that prints as itself.
    public static func escape(_ scalar: Unicode.Scalar) -> String? {
        scalar.value < 0x20 || (0x7F..<0xA0).contains(scalar.value) ? "\\u{\(String(scalar.value, radix: 16))}" : nil
    }

    /// `text` with every control character escaped.
    public static func escapingControls(_ text: String) -> String {
        text.unicodeScalars.map { escape($0) ?? String($0) }.joined()
    }
}
