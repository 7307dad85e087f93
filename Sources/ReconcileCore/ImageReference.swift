/// An image reference as written in an environment file: `repo[:tag]` or `repo@sha256:<digest>`.
public struct ImageReference: Sendable, Hashable, CustomStringConvertible {
    /// The repository, with registry and path: `acme/devops-fastapi`, `registry:5000/app`.
    public var repository: String
    /// The tag, when the reference names one (`latest` when it names neither tag nor digest).
    public var tag: String?
    /// The digest, `sha256:<64 hex>`, when the reference pins one.
    public var digest: String?

    /// Parses a reference; returns nil with a reason for anything Docker would refuse.
    public static func parse(_ text: String) -> Result<ImageReference, ImageReferenceError> {
        guard !text.isEmpty, !text.contains(where: \.isWhitespace) else {
            return .failure(.init(reason: "must not be empty or contain spaces"))
        }
        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let value = String(rest[rest.index(after: at)...])
            guard value.hasPrefix("sha256:"), value.count == 71,
                value.dropFirst(7).allSatisfy({ $0.isHexDigit && !$0.isUppercase })
            else {
                return .failure(.init(reason: "digest must be sha256: followed by 64 lowercase hex digits"))
            }
            digest = value
            rest = rest[..<at]
        }
        var tag: String?
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let value = String(rest[rest.index(after: colon)...])
            let allowed = value.allSatisfy { $0.isLetter || $0.isNumber || "_.-".contains($0) }
            guard !value.isEmpty, value.count <= 128, allowed, value.first != "." && value.first != "-" else {
                return .failure(.init(reason: "tag \"\(value)\" is not a valid tag"))
            }
            tag = value
            rest = rest[..<colon]
        }
        let repository = String(rest)
        let repoAllowed = repository.allSatisfy {
            ($0.isLetter && $0.isLowercase) || $0.isNumber || "._-/:".contains($0)
        }
        guard !repository.isEmpty, repoAllowed, !repository.hasPrefix("/"), !repository.hasSuffix("/") else {
            return .failure(
                .init(reason: "repository \"\(repository)\" must be lowercase letters, digits, . _ - and /"))
        }
        if tag == nil && digest == nil { tag = "latest" }
        return .success(ImageReference(repository: repository, tag: tag, digest: digest))
    }

    public init(repository: String, tag: String?, digest: String? = nil) {
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// The reference as Docker takes it: `repo:tag`, `repo@digest` or `repo:tag@digest`.
    public var description: String {
        var text = repository
        if let tag { text += ":\(tag)" }
        if let digest { text += "@\(digest)" }
        return text
    }
}

/// Why a text is not an image reference.
public struct ImageReferenceError: Error, Sendable, Equatable {
    public var reason: String
}
