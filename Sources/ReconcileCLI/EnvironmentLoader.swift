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
    /// Kamal's destinations do: `environments/staging.yml`, or the file whose `environment` is that
    /// name. Given with names, folders are where to look (`apply ops/envs staging`), not what to apply.
    static func files(_ paths: [String]) throws -> [String] {
        var files: [String] = []
        let manager = FileManager.default
        let given = paths.isEmpty ? [defaultPath] : paths
        let names = Set(given.filter { isBareName($0) && !manager.fileExists(atPath: $0) })
        let folders = given.filter { !names.contains($0) && isFolder($0) }
        for argument in given {
            if !names.isEmpty && folders.contains(argument) { continue }
            var path = argument
            var info = stat()
            if names.contains(path) {
                path = try environmentFile(named: path, folders: folders)
            }
            guard stat(path, &info) == 0 else {
                if errno == EACCES {
                    // In a container this is usually a mount the non-root user cannot enter.
                    throw UsageError(
                        "\(path): permission denied for uid \(getuid()); make it and its parent folders readable (chmod a+rx)",
                        exitCode: ExitCodes.failure)
                }
                throw UsageError("\(path): no such file or folder")
            }
            if info.st_mode & S_IFMT == S_IFDIR {
                guard let all = try? manager.contentsOfDirectory(atPath: path) else {
                    throw UsageError(
                        "\(path): cannot list this folder as uid \(getuid()); make it readable (chmod a+rx)",
                        exitCode: ExitCodes.failure)
                }
                let names = all.filter { $0.hasSuffix(".yml") || $0.hasSuffix(".yaml") }.sorted()
                if names.isEmpty {
                    // `staging` may be a stray folder of that name: the environment is what was meant.
                    if isBareName(argument),
                        let file = try? environmentFile(named: argument, folders: folders.filter { $0 != argument })
                    {
                        files.append(file)
                        continue
                    }
                    throw UsageError("\(path): no environment files (*.yml, *.yaml) in this folder")
                }
                let base = path.hasSuffix("/") ? String(path.dropLast()) : path
                files += names.map { "\(base)/\($0)" }
            } else {
                files.append(path)
            }
        }
        var seen = Set<String>()
        return files.filter { seen.insert(URL(fileURLWithPath: $0).standardizedFileURL.path).inserted }
    }

    /// The one environment file `argument` names (a file or a bare environment name), for the
    /// commands that work on one: history, rollback.
    static func single(_ argument: String) throws -> String {
        let found = try files([argument])
        guard found.count == 1, let file = found.first else {
            throw UsageError("\(argument): name one environment (its file or its name), not a folder of \(found.count)")
        }
        return file
    }

    static func isFolder(_ path: String) -> Bool {
        var folder: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &folder) && folder.boolValue
    }

    /// A name with no folder and no extension: `staging`, `eu-prod`.
    static func isBareName(_ text: String) -> Bool {
        !text.isEmpty && !text.contains("/") && !text.hasSuffix(".yml") && !text.hasSuffix(".yaml")
            && text.allSatisfy { $0.isLetter || $0.isNumber || "-_.".contains($0) }
    }

    /// The file of the environment `name`: `<folder>/<name>.yml` (or `.yaml`), or the file in one
    /// of the folders whose `environment` is `name`. More than one is an error naming them all:
    /// picking one of two would deploy something the user did not mean.
    static func environmentFile(named name: String, folders: [String]) throws -> String {
        let searched = (folders.isEmpty ? [defaultPath] : folders).map {
            $0.hasSuffix("/") ? String($0.dropLast()) : $0
        }
        var matches: [String] = []
        var known: [String] = []
        for base in searched {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            for file in names.sorted() where file.hasSuffix(".yml") || file.hasSuffix(".yaml") {
                let path = "\(base)/\(file)"
                let stem = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
                var environment: String?
                // Regular files only: a FIFO among them must not hold the lookup.
                var info = stat()
                if stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG,
                    let data = FileManager.default.contents(atPath: path),
                    case .success(let parsed) = SpecParser.parse([UInt8](data), file: path, defaultEnvironment: stem)
                {
                    environment = parsed.spec.environment
                }
                known += [stem] + (environment.map { [$0] } ?? [])
                if stem == name || environment == name { matches.append(path) }
            }
        }
        if matches.count == 1, let only = matches.first { return only }
        if matches.count > 1 {
            throw UsageError(
                "\(name) names \(matches.count) environment files (\(matches.joined(separator: ", "))); "
                    + "name the file you mean")
        }
        let guess = Suggestion.closest(to: name, in: Array(Set(known))).map { "did you mean \($0)? Or " } ?? ""
        throw UsageError(
            "\(name): no such file or folder, and no environment named \(name) in \(searched.joined(separator: ", ")); "
                + "\(guess)create \(searched[0])/\(name).yml, or name a file or folder")
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

/// A mistake in how reconcile was called; the text says what to do instead. Exits 64 (EX_USAGE),
/// or 1 for a path that exists but this user may not read (the command line was right).
struct UsageError: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32
    init(_ description: String, exitCode: Int32 = ExitCodes.usage) {
        self.description = description
        self.exitCode = exitCode
    }
}
