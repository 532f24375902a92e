import GRDB

enum Durable {
    /// GRDB's DatabasePool turns on WAL with `synchronous = NORMAL` (7.10: Database.setUpWALMode,
    /// after `prepareDatabase` runs), where a commit does not fsync the WAL and may be lost
    /// to a power failure. Berth acknowledges only what is on disk, so the one writer
    /// connection is set back to FULL: every commit fsyncs the WAL.
    static func makeCommitsDurable(_ writer: any DatabaseWriter) throws {
        try writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
    }
}
