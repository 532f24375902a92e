import Foundation

/// Runs a program and waits for it with posix_spawn and waitpid (Foundation's Process can
/// miss the exit of a child whose own children — a daemon, a database server — live on),
/// its standard input /dev/null and its output through files, so that nothing it leaves
/// running holds a pipe open that the caller would read to its end.
public enum Spawned {
    public struct Finished: Sendable {
        /// The exit code, or 128 + the signal that ended it.
        public var code: Int32
        public var output: String
        /// Standard error (empty when it went to `output`: `mergeErrors`).
        public var errors: String
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// `environment`: the whole environment (nil: this process's); `timeoutSeconds`: killed
    /// (SIGKILL) and a `Failure` past it.
    public static func run(_ arguments: [String], environment: [String: String]? = nil, mergeErrors: Bool = false,
                           timeoutSeconds: Double? = nil) throws -> Finished {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("berth-spawn-\(UUID().uuidString)").path
        let (outPath, errPath) = (base + ".out", base + ".err")
        defer { unlink(outPath); unlink(errPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if mergeErrors {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for p in argv + (envp ?? []) { free(p) } }
        var pid: pid_t = 0
        let spawned = envp.map { posix_spawn(&pid, arguments[0], &actions, nil, argv, $0) }
            ?? posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw Failure(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        let deadline = timeoutSeconds.map { Date().addingTimeInterval($0) }
        while true {
            let waited = waitpid(pid, &status, deadline == nil ? 0 : WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { break }
            if let deadline, Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                throw Failure(description: "\(arguments.joined(separator: " ")) did not finish in \(timeoutSeconds!) s")
            }
            if deadline != nil { usleep(20_000) }
        }
        let exited = (status & 0x7f) == 0
        return Finished(code: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f),
                        output: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                        errors: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}
