import Foundation
import Metadata
import NIOCore
import PostgresNIO

/// One daemon at a time keeps a cluster's state in a database: the engine caches the
/// cluster map, classes and devices in memory and runs the mover and the health check, so a
/// second daemon writing beside it would undo its work (its own volumes' index, its epochs).
/// Until controllers elect a leader (issue 29), the store holds a session-level advisory lock
/// on a connection of its own for as long as it lives, and a second daemon is refused at
/// start with that reason. A lock whose connection broke (the server restarted) is taken
/// again before the next write — or the write fails, if another daemon has it by then.
final class PostgresControllerLock: @unchecked Sendable {
    /// The advisory lock's key: "berth" and a version, spelled as a number.
    static let key: Int64 = 7_011_955_302
    /// Tries, 250 ms apart, before another daemon's lock is final (about 3 s).
    static let tries = 12
    private let pool: PostgresPool
    private let lock = NSLock()
    private var connection: PostgresConnection?

    init(pool: PostgresPool) throws {
        self.pool = pool
        try lock.withLock { try acquireLocked() }
    }

    deinit {
        guard let connection else { return }
        // Let go of it now, not when the server notices the connection is gone: the next
        // daemon (a restart) takes it at once.
        var binds = PostgresBindings()
        binds.append(Self.key)
        _ = try? connection.query(PostgresQuery(unsafeSQL: "SELECT pg_advisory_unlock($1)", binds: binds), logger: PostgresPool.logger).wait()
        try? (connection.close() as EventLoopFuture<Void>).wait()
    }

    /// Still held (taken again after its connection broke), or an error saying why not.
    func ensure() throws {
        try lock.withLock {
            if let connection, !connection.isClosed { return }
            try acquireLocked()
        }
    }

    private func acquireLocked() throws {
        if let old = connection { try? (old.close() as EventLoopFuture<Void>).wait() }
        connection = nil
        let fresh: PostgresConnection
        do { fresh = try pool.connect() } catch {
            throw PostgresPool.described(error, "cannot connect to \(MetadataLocation.postgres(pool.settings))")
        }
        // A daemon that just stopped releases the lock when the server notices its connection
        // is gone: a moment, so a few tries before giving up.
        var held = false
        for attempt in 0..<Self.tries where !held {
            if attempt > 0 { usleep(250_000) }
            do {
                var binds = PostgresBindings()
                binds.append(Self.key)
                let rows = try fresh.query(PostgresQuery(unsafeSQL: "SELECT pg_try_advisory_lock($1)", binds: binds), logger: PostgresPool.logger).wait().rows
                held = try rows.first?.decode(Bool.self) ?? false
            } catch {
                try? (fresh.close() as EventLoopFuture<Void>).wait()
                throw PostgresPool.described(error, "postgres")
            }
        }
        guard held else {
            try? (fresh.close() as EventLoopFuture<Void>).wait()
            throw MetadataError.database("the cluster state at \(MetadataLocation.postgres(pool.settings)) is kept by another Berth daemon "
                                         + "(it holds the controller lock): one daemon per cluster state until controllers elect a leader")
        }
        connection = fresh
    }
}
