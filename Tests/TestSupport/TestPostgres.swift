import Foundation

/// A real PostgreSQL server of the test process's own: Debian's binaries
/// (`/usr/lib/postgresql/N/bin`, package `postgresql`, which scripts/setup.sh installs), a
/// data directory under /tmp, a port of its own on 127.0.0.1, trust authentication, fsync
/// off (tests need its semantics, not its durability). Started at first use, stopped when
/// the process exits; every test asks for a database of its own (`database()`).
public enum TestPostgres {
    /// The shared server's URL for a new, empty database.
    public static func database() throws -> String { try shared.get().database() }

    /// A server (the shared one, or one of a test's own that it may restart or stop).
    public final class Server: @unchecked Sendable {
        let directory: String
        public private(set) var port: Int
        let bin: String

        /// The URL of a new, empty database.
        public func database() throws -> String {
            let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(20)
            try psql("CREATE DATABASE \(name)")
            return "postgres://berth@127.0.0.1:\(port)/\(name)?sslmode=disable"
        }

        /// Stops the server and starts it again on the same port and data (connections drop).
        public func restart() throws { try pgctl(["restart", "-m", "fast", "-w"]) }

        /// Stops it for good and removes its data.
        public func stop() {
            _ = try? pgctl(["stop", "-m", "immediate", "-w"])
            try? FileManager.default.removeItem(atPath: directory)
        }

        public init() throws {
            let root = "/usr/lib/postgresql"
            let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
            guard let version = versions.last(where: { FileManager.default.isExecutableFile(atPath: "\(root)/\($0)/bin/initdb") }) else {
                throw Failure("PostgreSQL is not installed (no \(root)/N/bin/initdb): apt-get install postgresql (scripts/setup.sh does)")
            }
            bin = "\(root)/\(version)/bin"
            directory = "/tmp/berth-test-pg-\(getpid())-\(UUID().uuidString.prefix(8))"
            port = Self.freePort()
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if getuid() == 0 {
                // PostgreSQL does not run as root: its own user owns the directory.
                try Self.run("/bin/chown", ["postgres:postgres", directory])
            }
            try run(bin + "/initdb", ["-D", directory + "/data", "-U", "berth", "-A", "trust", "-E", "UTF8", "--no-sync"])
            // The port was free when chosen; another socket may take it before the server
            // binds it: then another port.
            var attempt = 0
            while true {
                let options = "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200"
                do {
                    try run(bin + "/pg_ctl", ["-D", directory + "/data", "-o", options, "-l", directory + "/log", "-w", "start"])
                    break
                } catch {
                    attempt += 1
                    if attempt >= 5 { throw error }
                    port = Self.freePort()
                }
            }
            Server.lock.withLock {
                if Server.running.isEmpty {
                    atexit { for server in Server.lock.withLock({ Server.running }) { server.stop() } }
                }
                Server.running.append(self)
            }
        }

        deinit { stop() }

        static let lock = NSLock()
        nonisolated(unsafe) static var running: [Server] = []

        func pgctl(_ arguments: [String]) throws {
            try run(bin + "/pg_ctl", ["-D", directory + "/data", "-l", directory + "/log"] + arguments)
        }

        func psql(_ sql: String) throws {
            try run(bin + "/psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "berth", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        }

        /// Runs a PostgreSQL program as the `postgres` user when this process is root.
        func run(_ program: String, _ arguments: [String]) throws {
            if getuid() == 0 {
                try Self.run("/sbin/runuser", ["-u", "postgres", "--", program] + arguments)
            } else {
                try Self.run(program, arguments)
            }
        }

        /// Runs `program` and waits for it (`Spawned`: the server it starts lives on).
        static func run(_ program: String, _ arguments: [String]) throws {
            let finished = try Spawned.run([program] + arguments, mergeErrors: true)
            guard finished.code == 0 else {
                throw Failure("\(program) \(arguments.joined(separator: " ")) failed (exit \(finished.code)): \(finished.output)")
            }
        }

        /// A TCP port nothing listens on now.
        static func freePort() -> Int {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            return Int(UInt16(bigEndian: address.sin_port))
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Started once per process, by whichever test asks first.
    final class Lazy: @unchecked Sendable {
        private let lock = NSLock()
        private var server: Result<Server, any Error>?
        func get() throws -> Server {
            try lock.withLock {
                if server == nil { server = Result { try Server() } }
                return try server!.get()
            }
        }
    }

    static let shared = Lazy()
}
