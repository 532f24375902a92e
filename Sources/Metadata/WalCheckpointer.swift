import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Checkpoints a WAL database from a connection and a thread of its own, so that the
/// writer's commits never do.
///
/// Why: SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000
/// frames, on the committing connection — here the one writer every namespace change of
/// the volume waits for. A checkpoint syncs the WAL, copies the pages into the database
/// file and syncs that: 10–25 ms on this machine kind, during which every create, unlink
/// and rename of the volume stood still (strace of the daemon during 5,000 unlinks: the
/// checkpoint's `fdatasync`s on the writer's thread; deletes p99 0.4–1.9 ms, max 8 ms).
///
/// The writer's connection gets a WAL hook instead of the automatic checkpoint (`install`):
/// past `threshold` frames it asks for a PASSIVE checkpoint here, which copies what is
/// committed without taking the writer's lock, while commits go on. But SQLite restarts
/// the WAL from its beginning only in a write transaction that began when every frame had
/// been copied — which a stream of commits racing a checkpoint on another thread never
/// meets, so the WAL would grow for as long as the stream lasts. So past `restartFrames`
/// (4 × `threshold`) the writer checkpoints once itself, as SQLite would have: by then
/// this thread has copied nearly everything, so it costs the writer the last frames and
/// the two syncs, once per 4 × `threshold` frames rather than a whole checkpoint per
/// `threshold`. Nothing about durability changes: a checkpoint only moves committed pages,
/// with the same syncs, and a crash in the middle of one is SQLite's ordinary recovery.
public final class WalCheckpointer: @unchecked Sendable {
    /// SQLite's own default for the automatic checkpoint, in frames (pages).
    public static let defaultThreshold: Int32 = 1_000

    private let path: String
    let threshold: Int32
    /// The WAL's size past which the writer checkpoints itself, so that the WAL restarts.
    var restartFrames: Int32 { threshold * 4 }
    private let key: Int
    private let queue = DispatchQueue(label: "berth.wal-checkpoint")
    /// Whether a checkpoint is queued, whether `close` ran.
    private let state = Mutex<(queued: Bool, closed: Bool)>((false, false))
    /// Used on `queue` only (and at deinit); opened at the first checkpoint.
    private var connection: OpaquePointer?
    /// Checkpoints that ran on this thread and on the writer's, for tests.
    let checkpoints = Atomic<Int>(0), writerCheckpoints = Atomic<Int>(0)

    init(path: String, threshold: Int32 = WalCheckpointer.defaultThreshold) {
        self.path = path
        self.threshold = threshold
        key = Self.registry.withLock { r in
            r.next += 1
            return r.next
        }
        Self.registry.withLock { $0.live[key] = Weak(self) }
    }

    deinit {
        Self.registry.withLock { _ = $0.live.removeValue(forKey: key) }
        if let connection { sqlite3_close_v2(connection) }
    }

    /// Replaces the automatic checkpoint of `db` (the writer's connection) by this one.
    /// The hook finds the checkpointer by key, so a connection that outlives it asks nobody.
    func install(on db: Database) {
        sqlite3_wal_hook(db.sqliteConnection, { context, connection, _, frames in
            WalCheckpointer.walGrew(key: Int(bitPattern: context), frames: frames, writer: connection)
            return SQLITE_OK
        }, UnsafeMutableRawPointer(bitPattern: key))
    }

    /// Asks for a checkpoint now (the next one runs after those queued).
    func request() {
        let go = state.withLock { s in
            defer { s.queued = true }
            return !s.queued && !s.closed
        }
        guard go else { return }
        queue.async { [self] in
            state.withLock { $0.queued = false }
            run()
        }
    }

    /// Waits for a checkpoint in progress and stops taking requests.
    func close() {
        state.withLock { $0.closed = true }
        queue.sync {}
    }

    /// One PASSIVE checkpoint: copies what no reader still needs, waits for nobody.
    private func run() {
        if state.withLock({ $0.closed }) { return }
        if connection == nil {
            var c: OpaquePointer?
            // A read first: a connection that has not read the database has not opened its
            // WAL either, and its checkpoint would copy nothing (SQLite 3.40).
            if sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
               sqlite3_exec(c, "SELECT count(*) FROM sqlite_schema", nil, nil, nil) == SQLITE_OK {
                connection = c
            } else {
                sqlite3_close_v2(c)
                return
            }
        }
        if Self.checkpointPassively(connection) { checkpoints.add(1, ordering: .relaxed) }
    }

    /// One PASSIVE checkpoint on `connection`; whether it ran (BUSY: another one runs).
    private static func checkpointPassively(_ connection: OpaquePointer?) -> Bool {
        var logged: Int32 = 0, copied: Int32 = 0
        return sqlite3_wal_checkpoint_v2(connection, nil, SQLITE_CHECKPOINT_PASSIVE, &logged, &copied) == SQLITE_OK
    }

    // MARK: finding a checkpointer from SQLite's hook

    private struct Weak: @unchecked Sendable {
        weak var target: WalCheckpointer?
        init(_ target: WalCheckpointer) { self.target = target }
    }

    private static let registry = Mutex<(next: Int, live: [Int: Weak])>((0, [:]))

    /// Called on the writer's thread after each commit, with the WAL's size in frames.
    private static func walGrew(key: Int, frames: Int32, writer: OpaquePointer?) {
        guard let checkpointer = registry.withLock({ $0.live[key]?.target }),
              frames >= checkpointer.threshold else { return }
        if frames >= checkpointer.restartFrames, let writer {
            // As SQLite's own hook does; BUSY (this thread's checkpoint runs) is tried again
            // at the next commit.
            if checkpointPassively(writer) { checkpointer.writerCheckpoints.add(1, ordering: .relaxed) }
        } else {
            checkpointer.request()
        }
    }
}
