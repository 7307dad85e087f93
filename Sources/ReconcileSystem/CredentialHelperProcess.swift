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
        let (status, output): (TerminationStatus, String)
        // A group of its own, killed whole at the deadline: a helper script's children must not outlive it.
        var options = PlatformOptions()
        options.processGroupID = 0
        options.teardownSequence = [
            .gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .milliseconds(300))
        ]
        let platform = options
        do {
            let input = try ProcessInput.file(server)
            (status, output) = try await Deadline.run(timeout) {
                let result = try await run(
                    .name(program), arguments: ["get"], environment: environment, platformOptions: platform,
                    input: .fileDescriptor(.init(rawValue: input), closeAfterSpawningProcess: true),
                    output: .string(limit: 1 << 20), error: .discarded)
                return (result.terminationStatus, result.standardOutput)
            }
        } catch is DeadlineExceeded {
            throw HelperError("\(program) did not answer within \(Quantities.format(timeout))")
        } catch let error as SubprocessError where error.code == .outputLimitExceeded {
            throw HelperError("\(program) get printed more than 1 MiB; a helper answers with a short JSON object")
        } catch let error as SubprocessError where error.code == .executableNotFound {
            throw HelperError(
                "cannot run \(program): it is not on PATH (install it, or remove it from the docker config)")
        } catch {
            throw HelperError("cannot run \(program) (is it installed and executable?)")
        }
        guard case .exited(0) = status else {
            // Every helper says this when it has no login for the server: not an error.
            if output.contains("credentials not found") { return nil }
            // What a helper prints is never shown: it may hold the very secret it could not hand over.
            let how: String
            if case .exited(let code) = status {
                how = "exited with code \(code)"
            } else {
                how = "was killed (\(status))"
            }
            throw HelperError(
                "\(program) get \(how) (its output is not shown, as it may hold a secret; run "
                    + "`echo SERVER | \(program) get` to see it)")
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
