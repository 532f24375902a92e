import AdminProtocol
import ArgumentParser
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport
import StorageClasses

/// Options every daemon-talking subcommand takes.
struct Common: ParsableArguments {
    @Option(help: "The daemon's admin socket.")
    var socket: String = "/run/berth/admin.sock"

    @Option(help: "table (default) or json.")
    var output: OutputFormat = .table

    var json: Bool { output == .json }
}

enum OutputFormat: String, ExpressibleByArgument, Sendable {
    case table, json
}

/// A failure with the exit code scripts rely on and a one-line message.
struct Failure: Error, CustomStringConvertible {
    var code: Int32
    var description: String

    static func refused(_ message: String) -> Failure { Failure(code: 1, description: message) }
    static func badInput(_ message: String) -> Failure { Failure(code: 2, description: message) }
    static func unreachable(_ socket: String, _ why: String) -> Failure {
        Failure(code: 3, description: "cannot reach the Berth daemon at \(socket) (is VolumeDriver running?): \(why)")
    }
    static let declined = Failure(code: 4, description: "not confirmed; nothing changed")
}

extension ParsableCommand {
    /// Runs `body`, printing failures as one line on stderr and exiting with their code.
    static func guarded(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let failure as Failure {
            let line = failure.description.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }.joined(separator: " ")
            FileHandle.standardError.write(Data("provisionctl: \(line)\n".utf8))
            throw ExitCode(failure.code)
        }
    }
}

enum Daemon {
    /// Calls the admin API; connection problems and refusals become `Failure`s.
    static func call<T: Sendable>(_ common: Common,
                                  _ body: @Sendable (Berth_Admin_V1_Admin.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let path = common.socket
        var st = stat()
        guard stat(path, &st) == 0 else { throw Failure.unreachable(path, "no such socket") }
        guard access(path, R_OK | W_OK) == 0 else { throw Failure.unreachable(path, "permission denied (the admin API is for root)") }
        do {
            return try await withGRPCClient(transport: try Transports.client(path: path)) { client in
                try await body(Berth_Admin_V1_Admin.Client(wrapping: client))
            }
        } catch let error as RPCError {
            switch error.code {
            case .unavailable:
                // The daemon hangs up on callers other than root (peer credentials).
                throw Failure.unreachable(path, getuid() == 0 ? error.message : "\(error.message); the admin API serves root only")
            default: throw Failure.refused(error.message)
            }
        }
    }

    /// Calls and decodes the JSON report.
    static func report(_ common: Common,
                       _ body: @Sendable (Berth_Admin_V1_Admin.Client<HTTP2ClientTransport.Posix>) async throws -> Berth_Admin_V1_Report) async throws -> JSON {
        let report = try await call(common, body)
        return try JSON(text: report.json)
    }
}

/// Asks on a terminal before a destructive step unless `yes`; scripts (no terminal) proceed.
func confirm(_ question: String, yes: Bool) throws {
    if yes || isatty(STDIN_FILENO) == 0 { return }
    FileHandle.standardError.write(Data("\(question) [y/N] ".utf8))
    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else { throw Failure.declined }
}

/// A size flag ("10Gi", bytes, Ki…Pi), or a bad-input failure.
func parseSize(_ text: String) throws -> Int64 {
    guard let bytes = ByteSize.parse(text) else { throw Failure.badInput("\"\(text)\" is not a size (e.g. 500Gi)") }
    return bytes
}
