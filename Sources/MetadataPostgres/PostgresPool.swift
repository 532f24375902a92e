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
///   writer gives, without a lock held across the cluster). `beforeWrite` runs first (the
///   store checks that it still holds the controller lock).
/// - A read is one statement: its own snapshot, one round trip.
/// - A connection that broke (the server restarted, the network failed) is replaced at its
///   next use: the call in flight fails (its transaction is rolled back by the server —
///   never half applied) and the next one reconnects. A statement not answered within
///   `statementDeadline` (a silent network, a connection that died under it) fails and its
///   connection is given up, so no call waits forever and the pool never runs dry.
final class PostgresPool: @unchecked Sendable {
    let settings: MetadataLocation.PostgresSettings
    private let tls: PostgresConnection.Configuration.TLS
    private let condition = NSCondition()
    private var free: [PostgresConnection?]
    private var taken: Set<Int> = []
    static let logger = Logger(label: "berth.metadata.postgres")
    private static let ids = Counter()
    /// Checks run before each write transaction (nil: none).
    var beforeWrite: (() throws -> Void)?

    /// Connections kept (at most).
    static let size = 4
    /// Retries of a write aborted by a serialization failure or a deadlock.
    static let retries = 20
    /// The longest a statement may take before its connection is given up.
    static let statementDeadline: TimeAmount = .seconds(30)

    init(settings: MetadataLocation.PostgresSettings) throws {
        self.settings = settings
        tls = try Self.tls(settings)
        free = Array(repeating: nil, count: Self.size)
        // Fails now, with the server's reason, if the database cannot be reached.
        try withConnection { _ in }
    }

    deinit {
        // A connection must be closed before it goes (the driver asserts it).
        for case let connection? in free { try? (connection.close() as EventLoopFuture<Void>).wait() }
    }

    static func tls(_ settings: MetadataLocation.PostgresSettings) throws -> PostgresConnection.Configuration.TLS {
        do {
            switch settings.sslMode {
            case .disable:
                return .disable
            case .prefer, .require:
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.certificateVerification = .none
                let context = try NIOSSLContext(configuration: configuration)
                return settings.sslMode == .prefer ? .prefer(context) : .require(context)
            case .verifyFull:
                var configuration = TLSConfiguration.makeClientConfiguration()
                configuration.trustRoots = .file(settings.sslRootCertificate ?? "")
                configuration.certificateVerification = .fullVerification
                return .require(try NIOSSLContext(configuration: configuration))
            }
        } catch {
            throw MetadataError.database("postgres TLS (sslmode=\(settings.sslMode.rawValue)): \(error)")
        }
    }

    /// One statement's rows.
    typealias Rows = [PostgresRow]

    /// What a call runs its statements with.
    struct Session {
        let connection: PostgresConnection

        @discardableResult
        func query(_ sql: String, _ values: [any PostgresThrowingDynamicTypeEncodable & Sendable]? = nil) throws -> Rows {
            try query(sql) { binds in for value in values ?? [] { try binds.append(value) } }
        }

        /// A statement with binds that may be NULL.
        @discardableResult
        func query(_ sql: String, binding: (inout PostgresBindings) throws -> Void) throws -> Rows {
            try run(sql, binding).rows
        }

        /// The number of rows the statement changed.
        func execute(_ sql: String, binding: (inout PostgresBindings) throws -> Void) throws -> Int {
            try run(sql, binding).metadata.rows ?? 0
        }

        private func run(_ sql: String, _ binding: (inout PostgresBindings) throws -> Void) throws -> PostgresQueryResult {
            var binds = PostgresBindings()
            try binding(&binds)
            // The deadline is kept here, not left to the driver: a statement written to a
            // connection that closed meanwhile (the server killed under it) never completes
            // there, and closing it again does nothing (seen in CI: an unstage waited for
            // minutes after PostgreSQL was SIGKILLed and started again).
            let done = DispatchSemaphore(value: 0)
            let outcome = Outcome()
            connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: PostgresPool.logger).whenComplete { result in
                outcome.result = result
                done.signal()
            }
            guard done.wait(timeout: .now() + .seconds(Int(PostgresPool.statementDeadline.nanoseconds / 1_000_000_000))) == .success,
                  let result = outcome.result else {
                let _: EventLoopFuture<Void> = connection.close()
                throw MetadataError.database("postgres: no answer within \(PostgresPool.statementDeadline.nanoseconds / 1_000_000_000) s (the connection is given up)")
            }
            return try result.get()
        }
    }

    /// A statement's result, handed from the event loop to the waiting thread.
    private final class Outcome: @unchecked Sendable {
        var result: Result<PostgresQueryResult, any Error>?
    }

    /// Statements outside any transaction: a read (one statement, its own snapshot), or
    /// session-level locks and the transactions of migrations.
    func read<T>(_ body: (Session) throws -> T) throws -> T {
        do { return try withConnection(body) } catch let refusal as any NamespaceRefusal { throw refusal } catch {
            throw Self.described(error, "postgres")
        }
    }

    /// A write transaction, all or nothing, retried on a serialization failure.
    func write<T>(_ body: (Session) throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                try beforeWrite?()
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
            } catch let refusal as any NamespaceRefusal {
                throw refusal
            } catch {
                attempt += 1
                if Self.isConflict(error) && attempt < Self.retries {
                    usleep(UInt32.random(in: 200...2_000) * UInt32(min(attempt, 8)))
                    continue
                }
                throw Self.described(error, "postgres")
            }
        }
    }

    /// A serialization failure or a deadlock: the transaction may simply be run again.
    static func isConflict(_ error: any Error) -> Bool {
        let state = (error as? PSQLError)?.serverInfo?[.sqlState]
        return state == "40001" || state == "40P01"
    }

    /// Runs `body` on a free connection (connecting it if needed); errors of the server or
    /// the connection become `MetadataError.database` with the server's message, except
    /// conflicts, which `write` retries.
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
        } catch let refusal as any NamespaceRefusal {
            throw refusal
        } catch where Self.isConflict(error) {
            throw error
        } catch {
            if connection!.isClosed { condition.withLock { free[slot] = nil } }
            throw Self.described(error, "postgres")
        }
    }

    /// A new connection, outside the pool (the store's controller lock keeps one of its own).
    func connect() throws -> PostgresConnection {
        let configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.user,
                                                             password: settings.password, database: settings.database, tls: tls)
        return try PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration,
                                              id: Self.ids.next(), logger: Self.logger).wait()
    }

    /// The server's message and SQLSTATE, or the connection's failure and its cause.
    static func described(_ error: any Error, _ context: String) -> MetadataError {
        if let error = error as? MetadataError { return error }
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                let message = info[.message] ?? "\(error.code)"
                let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return .database("\(context): \(message)\(state)")
            }
            let cause = error.underlying.map { ": \($0)" } ?? ""
            return .database("\(context): \(error.code)\(cause)")
        }
        return .database("\(context): \(error)")
    }

    /// Connection ids for the driver's logs.
    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.withLock { value += 1; return value } }
    }
}
