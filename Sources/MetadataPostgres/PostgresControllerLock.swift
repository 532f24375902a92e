import Foundation
import Metadata
import NIOCore
import PostgresNIO

/// One controller at a time keeps a cluster's state in a database: the engine caches the
/// cluster map, classes and devices in memory and runs the mover and the health check, so a
/// second one writing beside it would undo its work (its epochs, its moves). The leader
/// holds a session-level advisory lock on a connection of its own for as long as it lives.
/// Another controller either is refused at start (`standby` nil) or waits as a standby,
/// trying every second, and leads once the lock is free: the leader stopped, or died and
/// the server closed its connection. A lock whose connection broke (the server restarted)
/// is taken again before the next write; if another controller has it by then, the write
/// fails and `lost` is called: this one no longer leads.
final class PostgresControllerLock: @unchecked Sendable {
    /// The advisory lock's key: "berth" and a version, spelled as a number.
    static let key: Int64 = 7_011_955_302
    /// Tries, 250 ms apart, before another daemon's lock is final (about 3 s).
    static let tries = 12
    private let pool: PostgresPool
    private let lock = NSLock()
    private var connection: PostgresConnection?
    /// Called once if the lock is found taken by another controller after this one had it.
    private let lost: (@Sendable () -> Void)?

    /// `standby`: wait for the lock while another controller holds it, told once with the
    /// reason (nil: fail at once).
    init(pool: PostgresPool, standby: (@Sendable (String) -> Void)? = nil, lost: (@Sendable () -> Void)? = nil) throws {
        self.pool = pool
        self.lost = lost
        var told = false
        while true {
            do {
                try lock.withLock { try acquireLocked() }
                return
            } catch let taken as Taken {
                guard let standby else { throw MetadataError.database(taken.description) }
                if !told { standby(taken.description) }
                told = true
                sleep(1)
            }
        }
    }

    /// Another controller holds the lock.
    struct Taken: Error, CustomStringConvertible {
        let description: String
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
        do {
            try lock.withLock {
                if let connection, !connection.isClosed { return }
                try acquireLocked()
            }
        } catch let taken as Taken {
            lost?()
            throw MetadataError.database("this controller no longer leads: " + taken.description)
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
            throw Taken(description: "the cluster state at \(MetadataLocation.postgres(pool.settings)) is kept by another Berth controller "
                        + "(it holds the controller lock)")
        }
        connection = fresh
    }
}
