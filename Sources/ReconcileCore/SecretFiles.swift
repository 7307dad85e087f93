/// How secret values reach the container.
public enum SecretsMode: String, Sendable, CaseIterable, Codable {
    /// As environment variables (the default). Anyone who may run `docker inspect` on the host
    /// reads them there.
    case env
    /// Each secret a read-only file mounted at `/run/secrets/<NAME>`, its path in `<NAME>_FILE`
    /// (the convention of the official images); the host file lives on tmpfs, in a folder only
    /// reconcile's user can enter.
    case file
}

/// Where `secrets_mode: file` keeps the host side of secret files. `TmpfsSecretFiles` is the live one.
public protocol SecretFileStore: Sendable {
    /// Places each value in a file of its own in a new private folder for `container`, readable
    /// inside the container by `user` (the image's user; nil for root).
    func place(_ values: [String: String], for container: String, user: String?) throws -> SecretFolder
    /// Writes the values into `folder` again when it is gone (tmpfs is empty after a reboot).
    func restore(_ values: [String: String], in folder: String, user: String?) throws
    /// Removes a folder `write` made; anything else is left alone.
    func remove(_ folder: String)
    /// True when the folder and its files are there.
    func exists(_ folder: String) -> Bool
    /// The folders `write` made for containers whose name starts with `prefix`.
    func folders(prefix: String) -> [String]
}

/// A folder of secret files: its path and the file of each secret.
public struct SecretFolder: Sendable, Equatable {
    public var path: String
    public var files: [String: String]

    public init(path: String, files: [String: String]) {
        self.path = path
        self.files = files
    }

    /// Where the container sees each secret.
    public static func target(_ name: String) -> String { "/run/secrets/\(name)" }
}
