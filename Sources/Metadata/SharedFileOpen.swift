import Foundation
import GRDB

/// Opens and migrates a database file that another process may be opening — creating and
/// migrating — at the same moment: two `berth-engine` commands on one state directory, or
/// the daemon and an operator's tool on a volume created a moment ago.
///
/// GRDB reads which migrations are applied, then runs each in a transaction of its own, so
/// two openers of a new file can both run the first one; the later transaction then fails
/// ("table … already exists", or its row in `grdb_migrations` is taken) and rolls back
/// whole. Switching a new file to WAL can also meet the other's lock ("database is locked")
/// without waiting for it. Nothing is half-applied in either case, so the open is tried
/// again: the next attempt reads what the other applied and goes on from there. (In one
/// process the engine already opens each file once; this is about other processes.)
enum SharedFileOpen {
    /// A pool on `path`, migrated by `migrator`. Errors that a concurrent opener can cause
    /// are retried `attempts` times, a few milliseconds apart; any other error, or the
    /// last attempt's, is thrown.
    static func pool(path: String, configuration: Configuration, migrator: DatabaseMigrator,
                     attempts: Int = 10) throws -> DatabasePool {
        var attempt = 1
        while true {
            do {
                let pool = try DatabasePool(path: path, configuration: configuration)
                try migrator.migrate(pool)
                return pool
            } catch let error as DatabaseError where attempt < attempts && mayComeFromAnotherOpener(error) {
                usleep(UInt32(2_000 * attempt))
                attempt += 1
            }
        }
    }

    /// Busy and locked files, a taken migration row, a table or column made meanwhile.
    static func mayComeFromAnotherOpener(_ error: DatabaseError) -> Bool {
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_CONSTRAINT: return true
        case .SQLITE_ERROR:
            let message = error.message ?? ""
            return message.contains("already exists") || message.contains("duplicate column name")
        default: return false
        }
    }
}
