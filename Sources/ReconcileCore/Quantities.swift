import Foundation

/// Parsing and formatting of the quantities an environment file holds: durations like `1m30s`
/// and byte sizes like `512m`.
public enum Quantities {
    /// The longest duration `duration(_:)` reads: anything longer is refused as not a duration a
    /// person means (it also keeps every later sum and product of durations far from overflow).
    public static let longestDuration: Duration = .seconds(100 * 365 * 86400)

    /// Parses a Go-style duration: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`
    /// (`500ms`, `5s`, `1m30s`, `1.5s`). Returns nil for anything else, including a bare number and
    /// anything longer than `longestDuration`.
    public static func duration(_ text: String) -> Duration? {
        var rest = Substring(text.trimmingWhitespace())
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += value / 1000
            case "s": total += value
            case "m": total += value * 60
            case "h": total += value * 3600
            default: return nil
            }
        }
        guard total.isFinite, total <= longestDuration.seconds else { return nil }
        return .milliseconds(Int64(saturating: (total * 1000).rounded()))
    }

    /// True for text shaped like a duration (`<number><unit>` parts), whatever its size.
    static func isDurationSyntax(_ text: String) -> Bool {
        var rest = Substring(text)
        guard !rest.isEmpty else { return false }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            let unit = rest.dropFirst(number.count).prefix { $0.isLetter }
            guard !number.isEmpty, ["ms", "s", "m", "h"].contains(unit) else { return false }
            rest = rest.dropFirst(number.count + unit.count)
        }
        return true
    }

    /// Formats a duration the way the environment file writes it: `500ms`, `5s`, `1m30s`.
    public static func format(_ duration: Duration) -> String {
        let millis = duration.milliseconds
        if millis == 0 { return "0s" }
        if millis % 1000 != 0 {
            return millis < 1000 ? "\(millis)ms" : String(format: "%.3gs", Double(millis) / 1000)
        }
        var seconds = millis / 1000
        var text = ""
        if seconds >= 3600 {
            text += "\(seconds / 3600)h"
            seconds %= 3600
        }
        if seconds >= 60 {
            text += "\(seconds / 60)m"
            seconds %= 60
        }
        if seconds > 0 { text += "\(seconds)s" }
        return text
    }

    /// Parses a Docker-style byte size: a whole number with an optional unit `b`, `k`, `m`, `g`
    /// (binary multiples, also written `kb`, `mib`…). Returns nil for anything else.
    public static func bytes(_ text: String) -> Int64? {
        let lower = text.trimmingWhitespace().lowercased()
        let digits = lower.prefix { $0.isNumber }
        guard !digits.isEmpty, let value = Int64(digits) else { return nil }
        let multipliers: [String: Int64] = [
            "": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
            "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
        ]
        guard let multiplier = multipliers[String(lower.dropFirst(digits.count))] else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// Formats a byte size with the largest unit that divides it: `512m`, `1g`, `1536k`.
    public static func format(bytes: Int64) -> String {
        for (unit, size) in [("g", Int64(1) << 30), ("m", Int64(1) << 20), ("k", Int64(1) << 10)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)b"
    }
}

extension Duration {
    /// The duration in whole milliseconds (truncated; saturating at the ends of Int64).
    public var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflowed) = product.addingReportingOverflow(attoseconds / 1_000_000_000_000_000)
        return overflowed ? .max : sum
    }

    /// The duration in whole nanoseconds (truncated; saturating at the ends of Int64).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflowed) = product.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowed ? .max : sum
    }

    /// Whole seconds, rounded up so that a timeout is never cut shorter than asked (saturating).
    public var wholeSecondsRoundedUp: Int { Int(saturating: seconds.rounded(.up)) }

    /// The duration in seconds as a floating-point number.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}

extension Int64 {
    /// The nearest representable value: NaN becomes 0, values beyond the ends become `min`/`max`.
    /// Every conversion from floating point in reconcile goes through this or `init(exactly:)`.
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 0x1p63 {
            self = .max
        } else if value < -0x1p63 {
            self = .min
        } else {
            self.init(value)
        }
    }
}

extension Int {
    /// The nearest representable value: NaN becomes 0, values beyond the ends become `min`/`max`.
    public init(saturating value: Double) { self.init(Int64(saturating: value)) }
}
