import Foundation
import GRDB
import Synchronization

/// One volume's metadata in its own SQLite file, so one busy volume never waits on
/// another's writer: the objects holding its data (and, from the filesystem, its namespace).
///
/// Commits here are atomic and survive a crash of the process (WAL, synchronous=NORMAL),
/// but do not each fsync: POSIX asks a filesystem for durability at fsync, not at every
/// create or rename. What is acknowledged as durable — an object made live through the
/// engine, a file or directory fsynced — goes through `durably` (synchronous=FULL), whose
/// WAL fsync also makes every earlier commit durable.
public final class VolumeDatabase: Sendable {
    public let volumeID: String
    let writer: any DatabaseWriter
    /// Inodes read recently, invalidated by every change to the inode table.
    let inodes = InodeCache()
    let inodeWatcher: InodeCache.Invalidator
    /// Every xattr name any inode of the volume has (or had since opening): the kernel asks
    /// for `security.capability` on every write, and a name nobody uses needs no query.
    let xattrNames = Mutex<Set<Data>>([])
    /// Acknowledged writes whose 'live' commit is still to come (`settleLater`).
    private let deferredSettles = Mutex<(ids: Set<String>, flushScheduled: Bool)>(([], false))
    /// The open batch of namespace changes (`batched`): whether its commit is scheduled
    /// (set and cleared on the writer's queue), and whether a batch was lost to a failed
    /// commit (cleared by the sync that reports it).
    private let batch = Mutex<(commitScheduled: Bool, lost: Bool)>((false, false))
    /// Runs the deferred settles and batch commits: a serial queue of its own, so
    /// libdispatch's overcommitting pool runs it even while every thread of the global
    /// queue (one per CPU) is held by callers blocked elsewhere.
    private let timers = DispatchQueue(label: "berth.volume-database")
    /// How long namespace changes may wait in the open batch before it commits; nil:
    /// every change commits at once (the in-memory database of tests, whose reads would
    /// otherwise meet the open transaction).
    let batchWindow: DispatchTimeInterval?
    /// The next inode number to hand out. SQLite would reuse the highest rowid once it is
    /// deleted; a number is never given twice while the database is open, so a new file
    /// never meets the kernel's memory of a deleted one, nor — through the reader pool,
    /// which does not see the open batch — the slices of a deleted inode not yet committed.
    let nextIno = Mutex<Int64?>(nil)
    /// Checkpoints the WAL off the writer's thread (nil in memory).
    let checkpointer: WalCheckpointer?
    /// The store that keeps the namespace beyond this node, and the lease it is written
    /// under (nil: the embedded default, where this file is the only copy).
    public let mirror: NamespaceMirror?
    /// Write transactions ended so far (namespace batches when they commit): one who read
    /// the count, then the database, knows that nothing committed since while the count
    /// stays the same.
    private let writeCount = Atomic<Int>(0)
    public var writesEnded: Int { writeCount.load(ordering: .acquiring) }

    /// `batchWindow`: see the property (tests that watch a batch stay open choose a longer one);
    /// `checkpointFrames`: the WAL's size, in frames, that asks for a checkpoint.
    /// `mirror`: keep the namespace in that store too, under the volume's lease (taken
    /// here, waiting for another node's to run out; see `NamespaceMirror`).
    public init(path: String, volumeID: String, batchWindow: DispatchTimeInterval = .milliseconds(10),
                checkpointFrames: Int32 = WalCheckpointer.defaultThreshold, mirror: NamespaceMirror.Settings? = nil) throws {
        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        // The namespace batch stays open across accesses of the writer (`batched`).
        configuration.allowsUnsafeTransactions = true
        self.volumeID = volumeID
        self.batchWindow = batchWindow
        inodeWatcher = InodeCache.Invalidator(inodes)
        writer = try SharedFileOpen.pool(path: path, configuration: configuration, migrator: VolumeMigrations.migrator)
        let checkpointer = WalCheckpointer(path: path, threshold: checkpointFrames)
        writer.writeWithoutTransaction { db in checkpointer.install(on: db) }
        self.checkpointer = checkpointer
        self.mirror = mirror.map(NamespaceMirror.init)
        if let opened = self.mirror { try openMirror(opened) }
        try prepare()
    }

    deinit { checkpointer?.close() }

    /// In memory, for tests.
    public init(volumeID: String) throws {
        self.volumeID = volumeID
        batchWindow = nil
        inodeWatcher = InodeCache.Invalidator(inodes)
        checkpointer = nil
        mirror = nil
        writer = try DatabaseQueue()
        try VolumeMigrations.migrator.migrate(writer)
        try prepare()
    }

    /// Starts watching the inode table (migrated), learns the xattr names in use.
    private func prepare() throws {
        writer.add(transactionObserver: inodeWatcher, extent: .databaseLifetime)
        let names = try writer.read { db in try Data.fetchAll(db, sql: "SELECT DISTINCT name FROM xattr") }
        xattrNames.withLock { $0 = Set(names) }
    }

    /// Step 1 of a write: the object is known before any shard exists, so a crash leaves
    /// a 'writing' row that start-up deals with rather than shards nobody knows about.
    /// (Not fsynced: it survives a process crash and becomes durable with the next durable
    /// commit. Only a power loss in between can forget it; the object was not acknowledged
    /// then, and its shards are unreferenced space, never lost data.)
    /// `settling`: the engine's own write (see `beginSettlingObjectDurably`), made live by
    /// `settle`; start-up keeps such an object if it reads back (see `settlingObjects`), and
    /// collects the others.
    public func beginObject(_ record: ObjectRecord, settling: Bool = false) throws {
        precondition(record.state == .writing)
        try transaction { db in try Self.insert(record, settling: settling, db) }
    }

    /// `beginObject` for the engine's own writes, in a commit that fsyncs: the row is on
    /// disk before any of the object's shards takes its final name.
    /// The commit also carries the deferred settles of earlier writes (`settleLater`).
    public func beginSettlingObjectDurably(_ record: ObjectRecord) throws {
        precondition(record.state == .writing)
        try objectWrite(durable: true) { db in try Self.insert(record, settling: true, db) }
    }

    private static func insert(_ record: ObjectRecord, settling: Bool, _ db: Database) throws {
        try record.insert(db)
        if settling { try db.execute(sql: "INSERT INTO settling_object (id) VALUES (?)", arguments: [record.id]) }
    }

    /// Makes a settling object live once its row and shards are durable. Not fsynced: a
    /// power loss may undo it, and start-up settles the object again from its shards.
    public func settle(object id: String) throws {
        try transaction { db in
            try Self.settle(id, db)
            if db.changesCount == 0 { throw MetadataError.notFound("object \(id) being written") }
        }
    }

    /// `settle`, deferred: the object is live from now on for every query of this
    /// database, and its commit rides on the next write's (or on `settleDeferred`, run
    /// shortly after by itself): one commit less per acknowledged write.
    public func settleLater(object id: String) {
        let schedule = deferredSettles.withLock { d in
            d.ids.insert(id)
            defer { d.flushScheduled = true }
            return !d.flushScheduled
        }
        if schedule {
            timers.asyncAfter(deadline: .now() + .milliseconds(20)) { [self] in
                deferredSettles.withLock { $0.flushScheduled = false }
                try? settleDeferred()  // on failure they stay deferred, for the next commit
            }
        }
    }

    /// Commits the deferred settles (no fsync). Every query of object state runs it first
    /// (`objectRead`); if it fails they stay deferred.
    public func settleDeferred() throws {
        guard deferredSettles.withLock({ !$0.ids.isEmpty }) else { return }
        try objectWrite { _ in }
    }

    /// A change to object rows, in a transaction that also carries the deferred settles
    /// (`durable`: one whose commit fsyncs). The settles are forgotten only once it has
    /// committed: until then a lookup must still answer live for them, since a reader does
    /// not see the commit before it happens. (Two commits may carry the same settle: it is
    /// idempotent.)
    private func objectWrite<T>(durable: Bool = false, _ body: @escaping (Database) throws -> T) throws -> T {
        let ids = deferredSettles.withLock { $0.ids }
        let transaction = { (db: Database) throws -> T in
            for id in ids { try Self.settle(id, db) }
            return try body(db)
        }
        let result = try self.transaction(durable: durable, transaction)
        if !ids.isEmpty { deferredSettles.withLock { $0.ids.subtract(ids) } }
        return result
    }

    /// A query of object state, after the deferred settles are committed: no acknowledged
    /// object reads as still being written.
    private func objectRead<T>(_ body: (Database) throws -> T) throws -> T {
        try settleDeferred()
        return try writer.read(body)
    }

    /// Live, no longer settling (nothing if it is no longer being written: deleted meanwhile).
    private static func settle(_ id: String, _ db: Database) throws {
        try db.execute(sql: "DELETE FROM settling_object WHERE id = ?", arguments: [id])
        try db.execute(sql: "UPDATE object SET state = 'live' WHERE id = ? AND state = 'writing'", arguments: [id])
    }

    /// 'writing' objects that may have been acknowledged (a crash came between their
    /// durable row and `settle`).
    public func settlingObjects() throws -> [ObjectRecord] {
        try objectRead { db in
            try ObjectRecord.fetchAll(db, sql: "SELECT object.* FROM object JOIN settling_object USING (id) ORDER BY id")
        }
    }

    /// Runs `body` in a transaction whose commit fsyncs the WAL (synchronous=FULL),
    /// making it — and every commit before it — durable.
    func durably<T>(_ body: (Database) throws -> T) throws -> T { try transaction(durable: true, body) }

    /// A transaction of its own, after the open namespace batch (if any) has committed, so
    /// changes commit in the order they were made; `durable`: its commit fsyncs the WAL.
    func transaction<T>(durable: Bool = false, _ body: (Database) throws -> T) throws -> T {
        defer { writeCount.add(1, ordering: .releasing) }
        return try writer.writeWithoutTransaction { db in
            try commitBatch(db)
            if durable { try db.execute(sql: "PRAGMA synchronous = FULL") }
            defer { if durable { try? db.execute(sql: "PRAGMA synchronous = NORMAL") } }
            var result: T?
            try db.inTransaction {
                result = try body(db)
                return .commit
            }
            scheduleShipment()
            return result!
        }
    }

    /// Runs a namespace change in the open batch: one write transaction that many changes
    /// share, opened by the first and committed `batchWindow` later (or sooner, by any
    /// other transaction, a sync, or `commitBatch`). A create or unlink then costs its
    /// statements, not a commit of its own (BEGIN, WAL frames, locks: most of its time).
    ///
    /// Safe because every namespace read runs on the writer's connection, inside the
    /// batch; what other connections read (objects, slices) only changes in transactions
    /// of their own, which commit the batch first. A crash loses at most the last window
    /// of changes, none of them synced; a file's data never commits without its name.
    /// A change that throws before changing anything leaves the batch as it was; any other
    /// failure rolls the whole batch back. `commitIf`: commit the batch before leaving the
    /// writer if the change's result asks for it (no other change can then roll it back).
    func batched<T>(commitIf: (T) -> Bool = { _ in false }, _ body: (Database) throws -> T) throws -> T {
        guard let window = batchWindow else { return try transaction(body) }
        return try writer.writeWithoutTransaction { db in
            if !db.isInsideTransaction {
                try db.beginTransaction(.immediate)
                let schedule = batch.withLock { b in defer { b.commitScheduled = true }; return !b.commitScheduled }
                if schedule {
                    timers.asyncAfter(deadline: .now() + window) { [self] in
                        try? writer.writeWithoutTransaction { db in
                            batch.withLock { $0.commitScheduled = false }
                            try commitBatch(db)
                        }
                    }
                }
            }
            let changesBefore = db.totalChangesCount
            let result: T
            do {
                result = try body(db)
            } catch let refused as FSError where db.totalChangesCount == changesBefore {
                throw refused
            } catch {
                batch.withLock { $0.lost = true }
                try? db.rollback()
                throw error
            }
            if commitIf(result) { try commitBatch(db) }
            return result
        }
    }

    /// Commits the open namespace batch, if any (on the writer's queue). A failed commit
    /// rolls it back and is reported by the next sync.
    func commitBatch(_ db: Database) throws {
        guard db.isInsideTransaction else { return }
        defer { writeCount.add(1, ordering: .releasing) }
        do { try db.commit() } catch {
            batch.withLock { $0.lost = true }
            try? db.rollback()
            throw error
        }
        scheduleShipment()
    }

    /// Commits the open namespace batch now (not fsynced), as at unmount.
    public func commitNamespaceChanges() throws(FSError) {
        do { try writer.writeWithoutTransaction { db in try commitBatch(db) } } catch { throw .io }
    }

    /// Makes every commit so far durable (one WAL fsync).
    public func makeCommitsDurable() throws {
        try durably { db in try db.execute(sql: "UPDATE sync_marker SET counter = counter + 1 WHERE id = 1") }
    }

    /// Makes every commit so far durable (the filesystem's fsync).
    /// With a mirror, the store has every change when this returns (`shipNamespace`).
    public func syncNamespace() throws(FSError) {
        do { try makeCommitsDurable() } catch { throw .io }
        // Changes acknowledged earlier and lost to a failed batch commit: this sync cannot
        // promise them (reported once).
        if batch.withLock({ b in defer { b.lost = false }; return b.lost }) { throw .io }
        try shipNamespace()
    }

    /// The current `PRAGMA synchronous` of the writer (1 = NORMAL, 2 = FULL), for tests.
    func synchronousMode() throws -> Int {
        try writer.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    public func setState(object id: String, _ state: ObjectRecord.State) throws {
        try objectWrite { db in
            try db.execute(sql: "UPDATE object SET state = ? WHERE id = ?", arguments: [state.rawValue, id])
            if db.changesCount == 0 { throw MetadataError.notFound("object \(id)") }
        }
    }

    public func removeObject(id: String) throws {
        try removeObjects(ids: [id])
    }

    /// Removes the rows of objects whose shards are gone, in one transaction.
    public func removeObjects(ids: [String]) throws {
        if ids.isEmpty { return }
        try objectWrite { db in
            let statement = try db.cachedStatement(sql: "DELETE FROM object WHERE id = ?")
            for id in ids { try statement.execute(arguments: [id]) }
        }
    }

    public func object(id: String) throws -> ObjectRecord? {
        // Asked before reading: a settle committed in between is then read as live anyway.
        let deferred = deferredSettles.withLock { $0.ids.contains(id) }
        guard var record = try writer.read({ db in try ObjectRecord.fetchOne(db, key: id) }) else { return nil }
        if deferred && record.state == .writing { record.state = .live }
        return record
    }

    /// Every object row, in any state (what the cluster's object index is rebuilt from).
    public func objects() throws -> [ObjectRecord] {
        try objectRead { db in try ObjectRecord.order(Column("id")).fetchAll(db) }
    }

    public func objects(state: ObjectRecord.State) throws -> [ObjectRecord] {
        try objectRead { db in try ObjectRecord.filter(Column("state") == state.rawValue).order(Column("id")).fetchAll(db) }
    }

    /// The objects of one PG in one of `states`: what the mover copies (live, and writing:
    /// a staged object's shards are complete before its row turns live) and what cleaning
    /// a device after a move deletes (every state).
    public func objects(poolID: UInt32, pg: Int, states: Set<ObjectRecord.State>) throws -> [ObjectRecord] {
        try objectRead { db in
            try ObjectRecord.filter(Column("pool_id") == Int64(poolID) && Column("pg") == Int64(pg)
                                    && states.map(\.rawValue).contains(Column("state")))
                .order(Column("id")).fetchAll(db)
        }
    }

    /// Bytes of data (not counting redundancy) in live objects.
    public func liveBytes() throws -> Int64 {
        try objectRead { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(size_bytes), 0) FROM object WHERE state = 'live'") ?? 0 }
    }

    /// Bytes the live objects take on devices: per object, `width` shard files of a
    /// header, a 4-byte checksum per `blockSize` block of the payload, and the payload of
    /// ⌈size / k⌉ rounded up to `alignment` (k = 1, alignment 1 for copies).
    public func storedBytes(width: Int, k: Int, alignment: Int, headerBytes: Int, blockSize: Int) throws -> Int64 {
        try objectRead { db in
            try Int64.fetchOne(db, sql: """
                SELECT COALESCE(SUM(? * (p + ? + 4 * ((p + ? - 1) / ?))), 0)
                FROM (SELECT (((size_bytes + ? - 1) / ?) + ? - 1) / ? * ? AS p FROM object WHERE state = 'live')
                """, arguments: [width, headerBytes, blockSize, blockSize, k, k, alignment, alignment, alignment]) ?? 0
        }
    }

    public func objectCount() throws -> Int {
        try objectRead { db in try ObjectRecord.fetchCount(db) }
    }
}
