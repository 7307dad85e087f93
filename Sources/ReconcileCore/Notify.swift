import Foundation

/// A webhook URL as the file gives it: `https://hooks.example.com/T0/B0/secret`, or `$NAME` for one
/// read from the process environment when a deploy ends (so that the token stays out of git).
/// Such URLs hold tokens: only `redacted` is ever printed.
public enum WebhookURL {
    /// Why `text` is not a usable webhook, without repeating it; nil when it is.
    public static func problem(_ text: String) -> String? {
        if text.hasPrefix("$") {
            let name = text.dropFirst()
            let valid =
                name.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } == true
                && name.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
            return valid ? nil : "expected $NAME of an environment variable (letters, digits, _)"
        }
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else { return "expected an http:// or https:// URL with a host, or $NAME of an environment variable" }
        return nil
    }

    /// The URL with everything after the host hidden: `https://hooks.example.com/…`.
    public static func redacted(_ text: String) -> String {
        if text.hasPrefix("$") { return text }
        guard let url = URL(string: text), let scheme = url.scheme, let host = url.host else { return "(webhook)" }
        let port = url.port.map { ":\($0)" } ?? ""
        return "\(scheme)://\(host)\(port)/…"
    }

    /// The URL to post to: `text`, or the variable it names; nil when that variable is not set.
    public static func resolve(_ text: String, environment: [String: String]) -> String? {
        guard text.hasPrefix("$") else { return text }
        guard let value = environment[String(text.dropFirst())], problem(value) == nil, !value.hasPrefix("$") else {
            return nil
        }
        return value
    }
}

/// What a webhook receives when a deploy ends: a Slack-compatible `text`, and the same facts as fields.
public struct DeployNotification: Sendable, Equatable, Codable {
    public var text: String
    public var environment: String
    public var service: String
    public var file: String
    /// `converged`, `drift-corrected`, `rolled-back`, `rollback-failed`, `skipped-known-bad`.
    public var result: String
    public var revision: String?
    public var oldImage: String?
    public var newImage: String
    public var failedCheck: String?
    public var seconds: Double

    public init(
        environment: String, service: String, file: String, result: String, revision: String?, oldImage: String?,
        newImage: String, failedCheck: String?, seconds: Double
    ) {
        self.environment = environment
        self.service = service
        self.file = file
        self.result = result
        self.revision = revision
        self.oldImage = oldImage
        self.newImage = newImage
        self.failedCheck = failedCheck
        self.seconds = seconds
        let revisionText = revision.map { " (revision \($0.prefix(12)))" } ?? ""
        let change = oldImage.map { $0 == newImage ? newImage : "\($0) → \(newImage)" } ?? newImage
        let headline: String
        switch result {
        case "converged": headline = "deployed \(change)"
        case "drift-corrected": headline = "corrected drift: \(newImage) serves again"
        case "rolled-back": headline = "deploy of \(newImage) failed and was rolled back"
        case "rollback-failed": headline = "deploy of \(newImage) failed and so did the rollback: a person must look"
        case "skipped-known-bad": headline = "skipped \(newImage): it failed before"
        default: headline = "\(result): \(newImage)"
        }
        let failure = failedCheck.map { " — \($0)" } ?? ""
        text = "reconcile \(service) \(environment): \(headline)\(revisionText) in \(Self.format(seconds))\(failure)"
    }

    /// Seconds as people read them: `0.4 s`, `12 s`.
    public static func format(_ seconds: Double) -> String {
        seconds < 10 ? "\((seconds * 10).rounded() / 10) s" : "\(Int(saturating: seconds.rounded())) s"
    }

    /// The results a webhook hears about.
    public static let results: Set<String> = [
        "converged", "drift-corrected", "rolled-back", "rollback-failed", "skipped-known-bad",
    ]
}

/// Sends a notification; never throws and never takes longer than its own timeout. A failure is
/// reported through `warn`, once per URL until one succeeds again.
public protocol Notifier: Sendable {
    func send(_ notification: DeployNotification, to url: String) async
}
