import Foundation
import ReconcileCore

/// Expands the paths given on the command line into environment files and parses them all,
/// collecting every problem across every file.
enum EnvironmentLoader {
    static let defaultPath = "environments"

    struct Loaded {
        var parsed: [SpecParser.Parsed]
        var specs: [EnvironmentSpec] { parsed.map(\.spec) }
    }

    /// Files named directly are taken as they are; folders contribute their `*.yml` and `*.yaml`
    /// files, sorted. A bare name (`staging`) that is no file or folder names an environment, as
    /// Kamal's destinations do: `environments/staging.yml`, or the file in the folders given (else
    /// `environments/`) whose `environment` is that name.
    static func files(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        let given = paths.isEmpty ? [defaultPath] : paths
        for argument in given {
            var path = argument
            var info = stat()
            if stat(path, &info) != 0 && errno == ENOENT && isBareName(path) {
                path = try environmentFile(named: path, folders: given)
            }
            guard stat(path, &info) == 0 else {
                if errno == EACCES {
                    // In a container this is usually a mount the non-root user cannot enter.
                    throw UsageError(
                        "\(path): permission denied for uid \(getuid()); make it and its parent folders readable (chmod a+rx)"
                    )
                }
                throw UsageError("\(path): no such file or folder")
            }
            if info.st_mode & S_IFMT == S_IFDIR {
                guard let all = try? manager.contentsOfDirectory(atPath: path) else {
                    throw UsageError(
                        "\(path): cannot list this folder as uid \(getuid()); make it readable (chmod a+rx)")
                }
                let names = all.filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted()
                if names.isEmpty { throw UsageError("\(path): no environment files (*.yml, *.yaml) in this folder") }
                let base = path.hasSuffix("/") ? String(path.dropLast()) : path
                files += names.map { "\(base)/\($0)" }
            } else {
                files.append(path)
            }
        }
        var seen = Set<String>()
        return files.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
    }

    /// A name with no folder and no extension: `staging`, `eu-prod`.
    static func isBareName(_ text: String) -> Bool {
        !text.isEmpty && !text.contains("/") && !text.hasSuffix(".yml") && !text.hasSuffix(".yaml")
            && text.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
    }

    /// The file of the environment `name`: `<folder>/<name>.yml` (or `.yaml`), else the file in
    /// one of the folders whose `environment` is `name`.
    static func environmentFile(named name: String, folders: [String]) throws -> String {
        var isFolder: ObjCBool = false
        var searched = folders.filter {
            FileManager.default.fileExists(atPath: $0, isDirectory: &isFolder) && isFolder.boolValue
        }
        if searched.isEmpty { searched = [defaultPath] }
        for folder in searched {
            let base = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
            for candidate in ["\(base)/\(name).yml", "\(base)/\(name).yaml"]
            where FileManager.default.fileExists(atPath: candidate) {
                return candidate
            }
        }
        for folder in searched {
            let base = folder.hasSuffix("/") ? String(folder.dropLast()) : folder
            let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            for file in names.sorted() where file.hasSuffix(".yml") || file.hasSuffix(".yaml") {
                let path = "\(base)/\(file)"
                guard let data = FileManager.default.contents(atPath: path),
                    case .success(let parsed) = SpecParser.parse(
                        [UInt8](data), file: path,
                        defaultEnvironment: URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent)
                else { continue }
                if parsed.spec.environment == name { return path }
            }
        }
        let searchedText = searched.joined(separator: ", ")
        throw UsageError(
            "\(name): no such file or folder, and no environment named \(name) in \(searchedText); "
                + "create \(searched[0].hasSuffix("/") ? String(searched[0].dropLast()) : searched[0])/\(name).yml, "
                + "or name a file or folder")
    }

    static func load(_ paths: [String]) throws -> Loaded {
        var parsed: [SpecParser.Parsed] = []
        var issues: [ValidationIssue] = []
        for file in try files(paths) {
            guard let data = FileManager.default.contents(atPath: file) else {
                issues.append(
                    ValidationIssue(file: file, line: 1, column: 1, field: "", message: "cannot read the file"))
                continue
            }
            let name = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
            switch SpecParser.parse([UInt8](data), file: file, defaultEnvironment: name) {
            case .success(let entry): parsed.append(entry)
            case .failure(let failure): issues += failure.issues
            }
        }
        issues += EnvironmentSet.conflicts(parsed)
        if !issues.isEmpty { throw ValidationFailure(issues: issues) }
        return Loaded(parsed: parsed)
    }
}

/// A mistake in how reconcile was called; the text says what to do instead.
struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
