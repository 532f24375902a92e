import Foundation
import Logging
import Metadata
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// A few connections to PostgreSQL, used from blocking code (the engine's calls run on
/// threads of their own, never on Swift concurrency's cooperative pool or an event loop):
/// each call takes a free connection, waits on its futures, and gives it back.
///
/// - A write runs in a SERIALIZABLE transaction and is retried, whole, when the server
///   aborts it for a serialization failure or a deadlock (the same answer SQLite's single
///   writer gives, without a lock held across the cluster).
/// - A connection that broke (the server restarted, the network failed) is replaced at its
///   next use: the call in flight fails (its transaction is rolled back by the server —
///   never half applied) and the next one reconnects.
final class PostgresPool: @unchecked Sendable {
    let settings: MetadataLocation.PostgresSettings
    private let tls: PostgresConnection.Configuration.TLS
    private let condition = NSCondition()
    private var free: [PostgresConnection?]
    private static let logger = Logger(label: "berth.metadata.postgres")
    private static let ids = Atomic()

    /// Connections kept (at most).
    static let size = 4
    /// Retries of a write aborted by a serialization failure or a deadlock.
    static let retries = 20

    init(settings: MetadataLocation.PostgresSettings) throws {
        self.settings = settings
        switch settings.sslMode {
        case .disable:
            tls = .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = .require(try NIOSSLContext(configuration: configuration))
        case .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .file(settings.sslRootCertificate ?? "")
            configuration.certificateVerification = .fullVerification
            tls = .require(try NIOSSLContext(configuration: configuration))
        }
        free = Array(repeating: nil, count: Self.size)
        // Fails now, with the server's reason, if the database cannot be reached.
        try withConnection { _ in }
    }

    deinit {
        // A connection must be closed before it goes (the driver asserts it).
        for case let connection? in free { try? (connection.close() as EventLoopFuture<Void>).wait() }
    }

    /// One statement's rows.
    typealias Rows = [PostgresRow]

    /// What a call runs its statements with.
    struct Session {
        let connection: PostgresConnection

        @discardableResult
        func query(_ sql: String, _ values: [any PostgresThrowingDynamicTypeEncodable & Sendable]? = nil) throws -> Rows {
            var binds = PostgresBindings()
            for value in values ?? [] { try binds.append(value) }
            return try connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: PostgresPool.logger).wait().rows
        }

        /// A statement with binds that may be NULL.
        @discardableResult
        func query(_ sql: String, binding: (inout PostgresBindings) throws -> Void) throws -> Rows {
            var binds = PostgresBindings()
            try binding(&binds)
            return try connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: PostgresPool.logger).wait().rows
        }

        /// The number of rows the statement changed.
        func execute(_ sql: String, binding: (inout PostgresBindings) throws -> Void) throws -> Int {
            var binds = PostgresBindings()
            try binding(&binds)
            let result = try connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: PostgresPool.logger).wait()
            return result.metadata.rows ?? 0
        }
    }

    /// Reads: one statement is its own snapshot; several run in a REPEATABLE READ read-only
    /// transaction, so they see one state.
    func read<T>(_ body: (Session) throws -> T) throws -> T {
        try withConnection { session in
            try session.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            do {
                let result = try body(session)
                try session.query("COMMIT")
                return result
            } catch {
                _ = try? session.query("ROLLBACK")
                throw error
            }
        }
    }

    /// A write transaction, all or nothing, retried on a serialization failure.
    func write<T>(_ body: (Session) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try withConnection { session in
                    try session.query("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    do {
                        let result = try body(session)
                        try session.query("COMMIT")
                        return result
                    } catch {
                        _ = try? session.query("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as MetadataError {
                throw error
            } catch {
                let state = (error as? PSQLError)?.serverInfo?[.sqlState]
                attempt += 1
                if (state == "40001" || state == "40P01") && attempt < Self.retries {
                    usleep(UInt32.random(in: 200...2_000) * UInt32(min(attempt, 8)))
                    continue
                }
                throw error
            }
        }
    }

    /// Runs `body` on a free connection (connecting it if needed); errors of the server or
    /// the connection become `MetadataError.database` with the server's message.
    private func withConnection<T>(_ body: (Session) throws -> T) throws -> T {
        let slot: Int = condition.withLock {
            while taken.count == free.count { condition.wait() }
            let candidates = free.indices.filter { !taken.contains($0) }
            let index = candidates.first { free[$0] != nil } ?? candidates[0]  // a connected one first
            taken.insert(index)
            return index
        }
        defer { condition.withLock { taken.remove(slot); condition.signal() } }
        var connection = condition.withLock { free[slot] }
        if connection == nil || connection!.isClosed {
            if let broken = connection { try? (broken.close() as EventLoopFuture<Void>).wait() }
            do {
                connection = try connect()
            } catch {
                condition.withLock { free[slot] = nil }
                throw Self.described(error, "cannot connect to \(MetadataLocation.postgres(settings))")
            }
            condition.withLock { free[slot] = connection }
        }
        do {
            return try body(Session(connection: connection!))
        } catch let error as MetadataError {
            throw error
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "40001" || error.serverInfo?[.sqlState] == "40P01" {
            throw error  // `write` retries these
        } catch {
            if connection!.isClosed { condition.withLock { free[slot] = nil } }
            throw Self.described(error, "postgres")
        }
    }

    private var taken: Set<Int> = []

    private func connect() throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.database, tls: tls)
        return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration,
                                              id: Self.ids.next(), logger: Self.logger).wait()
    }

    /// The server's message and SQLSTATE, or the connection's failure.
    static func described(_ error: any Error, _ context: String) -> MetadataError {
        if let error = error as? PSQLError, let info = error.serverInfo {
            let message = info[.message] ?? "\(error.code)"
            let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return .database("\(context): \(message)\(state)")
        }
        if let error = error as? PSQLError { return .database("\(context): \(error.code)") }
        return .database("\(context): \(error)")
    }

    /// Connection ids for the driver's logs.
    private final class Atomic: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.withLock { value += 1; return value } }
    }
}
