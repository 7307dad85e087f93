import Foundation
import ReconcileCore
import ReconcileDocker
import Subprocess

/// Runs `docker-credential-<name> get` as the docker CLI does: found on `PATH`, the server on its
/// standard input, JSON (`ServerURL`, `Username`, `Secret`) on its standard output. No shell is
/// involved; the helper's name comes from the docker config and may hold only name characters.
public struct CredentialHelperProcess: CredentialHelper {
    /// How long a helper may take: a keychain that waits for a person would otherwise hold a cron apply.
    public let timeout: Duration
    let searchPath: String?

    public init(timeout: Duration = .seconds(30), searchPath: String? = nil) {
        self.timeout = timeout
        self.searchPath = searchPath
    }

    public func get(helper: String, server: String) async throws -> (username: String, secret: String)? {
        guard !helper.isEmpty, helper.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw HelperError("the name \"\(helper)\" is not a credential helper's name")
        }
        let program = "docker-credential-\(helper)"
        let environment = searchPath.map { Environment.inherit.updating(["PATH": $0]) } ?? .inherit
        let (status, output, errors): (TerminationStatus, String, String)
        do {
            let input = try ProcessInput.file(server)
            (status, output, errors) = try await Deadline.run(timeout) {
                let result = try await run(
                    .name(program), arguments: ["get"], environment: environment,
                    input: .fileDescriptor(.init(rawValue: input), closeAfterSpawningProcess: true),
                    output: .string(limit: 1 << 20), error: .string(limit: 1 << 16))
                return (result.terminationStatus, result.standardOutput, result.standardError)
            }
        } catch is DeadlineExceeded {
            throw HelperError("\(program) did not answer within \(Quantities.format(timeout))")
        } catch {
            throw HelperError("cannot run \(program) (is it installed and on PATH?)")
        }
        guard case .exited(0) = status else {
            let said = (output + errors).trimmingCharacters(in: .whitespacesAndNewlines)
            // Every helper says this when it has no login for the server: not an error.
            if said.contains("credentials not found") { return nil }
            // What a helper prints on failure is its own message, never the secret it could not read.
            let how: String
            if case .exited(let code) = status {
                how = "exited with code \(code)"
            } else {
                how = "was killed (\(status))"
            }
            throw HelperError("\(program) get \(how): \(said.prefix(200))")
        }
        struct Answer: Decodable {
            var username: String?
            var secret: String?
            enum CodingKeys: String, CodingKey {
                case username = "Username"
                case secret = "Secret"
            }
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(output.utf8)) else {
            throw HelperError("\(program) get did not answer with JSON")
        }
        return (answer.username ?? "", answer.secret ?? "")
    }

    struct HelperError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}
