import Foundation
import GRDB
import GRDBSQLite

/// Statements of the hot paths bound and stepped straight through SQLite's C API: inode
/// rows and dentry lookups (lookup, getattr, every change's read-back), and an unlink's
/// dentry delete and slice-object read. GRDB builds a column-name dictionary for each row
/// it fetches, and that decoding cost a third of an unlink's SQL (perf, release build).
/// Each statement here is stepped here alone — GRDB never runs the same SQL — and
/// `fetchOne` only takes statements whose columns are the inode table's in table order
/// (`SELECT *` or `SELECT i.*`).
enum InodeRows {
    /// The inode row `statement` yields with integer arguments `arguments` (nil: none).
    static func fetchOne(_ statement: Statement, _ arguments: Int64...) throws -> InodeRecord? {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        for (i, value) in arguments.enumerated() { sqlite3_bind_int64(s, Int32(i + 1), value) }
        return try step(statement)
    }

    /// The same, for a statement taking an integer and then a blob (a dentry's parent and name).
    static func fetchOne(_ statement: Statement, _ integer: Int64, _ blob: [UInt8]) throws -> InodeRecord? {
        try bound(statement, integer, blob) { try step(statement) }
    }

    /// The inode number a dentry lookup (`SELECT ino FROM dentry WHERE parent = ? AND name = ?`) yields.
    static func fetchIno(_ statement: Statement, _ parent: Int64, _ name: [UInt8]) throws -> Int64? {
        try bound(statement, parent, name) {
            let s = statement.sqliteStatement
            defer { sqlite3_reset(s) }
            switch sqlite3_step(s) {
            case SQLITE_ROW: return sqlite3_column_int64(s, 0)
            case SQLITE_DONE: return nil
            case let code: throw error(code, statement)
            }
        }
    }

    /// Runs a change `statement` taking an integer and a blob, stepped here alone (not
    /// through GRDB, whose transaction observers it therefore bypasses): only for tables
    /// none observes and SQLite reports no row changes of — the `dentry` table is WITHOUT
    /// ROWID, so its changes reach no update hook. Its SQL must be its own (not one GRDB
    /// also runs), as for the fetches here.
    static func execute(_ statement: Statement, _ integer: Int64, _ blob: [UInt8]) throws {
        try bound(statement, integer, blob) {
            let s = statement.sqliteStatement
            defer { sqlite3_reset(s) }
            let code = sqlite3_step(s)
            guard code == SQLITE_DONE else { throw error(code, statement) }
        }
    }

    /// Runs a change of the `inode` table, `statement` taking integer `arguments`, stepped
    /// here alone: GRDB's update hook is off between its own statements, so no observer
    /// hears of it, and the caller reports the change to the inode cache
    /// (`InodeCache.Invalidator.didChange`). A directory's touch (every create, unlink,
    /// link, rename, rmdir) and an unlinked inode's delete had cost GRDB's overhead (its
    /// observer bookkeeping and argument boxing: ~4,500 instructions each) on top of their SQL.
    /// Its SQL must be its own, as for the fetches here.
    static func executeChange(_ statement: Statement, _ arguments: Int64...) throws {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        defer { sqlite3_reset(s) }
        for (i, value) in arguments.enumerated() { sqlite3_bind_int64(s, Int32(i + 1), value) }
        let code = sqlite3_step(s)
        guard code == SQLITE_DONE else { throw error(code, statement) }
    }

    /// Column 0 of every row `statement` yields for one integer argument, as text (nil for
    /// NULL): a file's slice objects when its inode is deleted, where GRDB's cursor cost
    /// more than the query.
    static func fetchTexts(_ statement: Statement, _ integer: Int64) throws -> [String?] {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        defer { sqlite3_reset(s) }
        sqlite3_bind_int64(s, 1, integer)
        var texts: [String?] = []
        while true {
            switch sqlite3_step(s) {
            case SQLITE_ROW:
                texts.append(sqlite3_column_type(s, 0) == SQLITE_NULL ? nil : String(cString: sqlite3_column_text(s, 0)))
            case SQLITE_DONE:
                return texts
            case let code:
                throw error(code, statement)
            }
        }
    }

    /// Runs `body` with `statement` reset and bound to an integer and a blob; the blob's
    /// binding (SQLITE_STATIC: it points into `blob`) is cleared before `blob` can go.
    private static func bound<T>(_ statement: Statement, _ integer: Int64, _ blob: [UInt8], _ body: () throws -> T) throws -> T {
        let s = statement.sqliteStatement
        sqlite3_reset(s)
        sqlite3_bind_int64(s, 1, integer)
        return try blob.withUnsafeBytes { bytes in
            sqlite3_bind_blob(s, 2, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count), nil)
            defer { sqlite3_clear_bindings(s) }
            return try body()
        }
    }

    private static func error(_ code: Int32, _ statement: Statement) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code),
                      message: String(cString: sqlite3_errmsg(sqlite3_db_handle(statement.sqliteStatement))), sql: statement.sql)
    }

    private static func step(_ statement: Statement) throws -> InodeRecord? {
        let s = statement.sqliteStatement
        defer { sqlite3_reset(s) }
        switch sqlite3_step(s) {
        case SQLITE_ROW:
            func int(_ column: Int32) -> Int64 { sqlite3_column_int64(s, column) }
            var target: Data?
            if sqlite3_column_type(s, 11) != SQLITE_NULL {
                let count = Int(sqlite3_column_bytes(s, 11))
                target = count == 0 ? Data() : Data(bytes: sqlite3_column_blob(s, 11), count: count)
            }
            return InodeRecord(ino: int(0), kind: int(1), mode: int(2), uid: int(3), gid: int(4), size: int(5), nlink: int(6),
                               rdev: int(7), atimeNs: int(8), mtimeNs: int(9), ctimeNs: int(10), target: target)
        case SQLITE_DONE:
            return nil
        case let code:
            throw error(code, statement)
        }
    }
}
