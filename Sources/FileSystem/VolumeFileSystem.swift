import Engine
import Foundation
import Metadata
import Storage
import Synchronization

/// What getattr and lookups return: the inode with any size still in write buffers.
public struct Attributes: Sendable, Hashable {
    public var ino: Int64
    public var kind: Int64
    public var mode: Int64
    public var nlink: Int64
    public var uid: Int64
    public var gid: Int64
    public var size: Int64
    public var rdev: Int64
    public var atimeNs: Int64
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    /// 512-byte units of data held (`st_blocks`): for a file, its chunks that hold data
    /// (`Namespace.dataBytes`) and its bytes not committed yet, at most its size.
    public var blocks: Int64 = 0
}

public struct DirectoryListing: Sendable {
    public var name: [UInt8]
    public var ino: Int64
    public var kind: Int64
    /// The offset to continue after this entry.
    public var next: Int
}

/// One volume as a POSIX filesystem, independent of FUSE: every method returns data or
/// throws an errno. Writes are buffered per file and committed (objects written, then
/// slices, size and times in one transaction) when a chunk fills, when a file holds too
/// much, and on fsync; a closed file's bytes are written back in the background, many
/// files packed into one object and one transaction (see `VolumeFileSystem+WriteBack`).
/// Mutations are serialized by one lock; reads of committed data run in parallel.
public final class VolumeFileSystem: @unchecked Sendable {
    public let engine: Engine
    public let volume: String
    let namespace: VolumeDatabase
    public let chunkSize: Int64
    /// The largest object the class takes (`StorageClass.objectLimitBytes`, whole chunks):
    /// what `stage` packs a batch's bytes into.
    let objectLimit: Int
    /// How many full chunks a writer may hold while its file's write-back is in flight
    /// before it waits for it: as many as the next batch writes at once
    /// (`stageParallelism` objects of `objectLimit`), within `dirtyBytesPerFile`.
    let chunksAhead: Int
    /// The pool of the volume's class: reads go straight to the object store.
    let pool: UInt32
    /// Objects of another pool than `pool` when the volume was mounted: a clone of another
    /// class's data, being copied into its own (Engine+CloneCopy). Empty for every other volume.
    let foreignPools: [String: UInt32]
    /// The filesystem's lock, and the condition writers wait on for a write-back in flight.
    let lock = NSCondition()
    var buffers: [Int64: FileBuffer] = [:]
    var openHandles: [Int64: Int] = [:]
    /// The session was taken over from a daemon that was killed: which files it had open
    /// is not known, so no file without names is deleted while this session lasts (the
    /// next fresh mount deletes them).
    var handlesUnknown = false

    /// How a session taken over from a previous daemon (`FuseKeeper`) starts: with the
    /// files it had open (a clean stop), or not knowing them (a SIGKILL).
    public enum Resumed: Sendable {
        case handles([Int64: Int])
        case unknown
    }
    /// Buffers the background write-back has taken and not yet committed.
    var inflight: [Int64: FileBuffer] = [:]
    /// Where writes are kept until committed, for a successor after a SIGKILL (`WriteJournal`);
    /// nil without one, or once it failed.
    var journal: WriteJournal?
    /// Whether new writes are journaled; false: only what a predecessor left is, until committed.
    var journaling = false
    /// Writes a killed predecessor acknowledged and never committed, committed at start.
    public internal(set) var replayedWrites = 0
    /// The chunks holding data of files being written (`FileAllocation`): loaded at a
    /// file's first write, dropped at its last close and whenever a cut or a hole changes
    /// them (loaded again when needed).
    var allocations: [Int64: FileAllocation] = [:]
    /// The largest file size, as ext4's with 4 KiB blocks: a truncate or write past it is EFBIG.
    public static let maxFileSize: Int64 = 16 << 40
    /// Files whose whole buffer the next write-back takes (closed, or holding too much).
    var queuedWhole: Set<Int64> = []
    /// Files whose full chunks the next write-back takes (a writer still filling the next).
    var queuedFull: Set<Int64> = []
    /// Why a file's last write-back failed, reported by its next write, close or fsync.
    var writeBackFailures: [Int64: FSError] = [:]
    var writeBackScheduled = false
    /// Compactions writing their object (the lock let go meanwhile); unmount waits for them.
    var compactions = 0
    let writeBackQueue = DispatchQueue(label: "berth.fs.write-back")
    /// Where unreferenced objects are deleted (`purgeLater`).
    let purgeQueue = DispatchQueue(label: "berth.fs.purge")
    /// Objects' bytes recently read or written: the node's shared cache when the caller
    /// gives one (`NodeMounts`: one budget for every mount), else one of this volume's own.
    let cache: ObjectCache
    /// Recently read chunks' slice lists (`SliceCache`): invalidated for a file under the
    /// lock by every change of its slices, after it commits.
    let sliceCache = SliceCache()
    /// Objects compaction made unreferenced, purged once reads that may still use them are
    /// done (after `retireAfterSeconds`, or at unmount).
    var retired: [(ids: [String], at: Double)] = []
    /// The bytes the files take against the provisioned size (an upper bound; see `SpaceAccount`).
    var space = SpaceAccount(usedBytes: 0)
    /// The inodes and extra names against `EntryLimit` (the same kind of upper bound).
    var entries = SpaceAccount(usedBytes: 0)
    static let retireAfterSeconds = 10.0
    /// A chunk with more slices than this is rewritten as one object at its next commit.
    /// Reads fetch only the bytes each slice contributes, so a chunk may hold many.
    static let compactAboveSlices = 32
    /// A file's buffered bytes are committed once they pass this (full chunks go at once).
    static let dirtyBytesPerFile = 32 << 20

    /// A file's bytes waiting to be written: per chunk, its dirty extents.
    final class FileBuffer {
        var chunks: [Int64: DirtyExtents] = [:]
        var size: Int64
        /// When the last write happened: the file's mtime once committed, unless
        /// `timesSet` (a later setattr chose the times, as tar does after writing).
        var lastWriteNs: Int64 = 0
        var timesSet = false
        /// The journal's sequence number of the latest write (or times) in it: once it is
        /// committed, taken whole, the file is settled through it (`WriteJournal`). Nil for
        /// a part of a buffer (full chunks split off), whose commit settles nothing.
        var journalSequence: UInt64? = 0
        init(size: Int64) { self.size = size }
        var dirtyBytes: Int { chunks.values.reduce(0) { $0 + $1.byteCount } }

        /// Its bytes as pieces of file `ino`, in chunk order.
        func pieces(of ino: Int64) -> [Piece] {
            chunks.sorted { $0.key < $1.key }.flatMap { chunk, entry in entry.extents.map { Piece(ino: ino, chunk: chunk, extent: $0) } }
        }

        /// What committing it changes of file `ino`: the size, and the times unless a
        /// setattr chose them since.
        func written(_ ino: Int64) -> VolumeDatabase.WrittenFile {
            VolumeDatabase.WrittenFile(ino: ino, size: size, mtimeNs: timesSet ? nil : lastWriteNs)
        }

        /// `newer` written over this one (a failed write-back's bytes under what came since).
        func absorb(_ newer: FileBuffer) {
            for (chunk, extents) in newer.chunks {
                for extent in extents.extents {
                    extent.bytes.withUnsafeBytes { chunks[chunk, default: DirtyExtents()].write(at: extent.start, $0) }
                }
            }
            size = max(size, newer.size)
            lastWriteNs = max(lastWriteNs, newer.lastWriteNs)
            timesSet = newer.timesSet
            // Together they hold every write not settled yet (a part's rest was the newer).
            journalSequence = [journalSequence, newer.journalSequence].compactMap { $0 }.max()
        }
    }

    /// `cache`: shared with the node's other mounts (object ids are unique across volumes);
    /// nil: a cache of `ObjectCache.defaultBudgetBytes` for this volume alone. `resuming`:
    /// the volume's FUSE session outlived the last daemon (`FuseKeeper`), so files it had
    /// open are still open: unlinked ones are kept until their last close (or, with their
    /// handles unknown, until the next fresh mount). `journal`: the volume's journal directory
    /// (`WriteJournal`): what a killed predecessor left there is replayed before this
    /// returns, and with `journaling` every write is kept there until committed.
    public init(engine: Engine, volume: String, cache: ObjectCache? = nil, resuming: Resumed? = nil,
                journal journalDirectory: String? = nil, journaling: Bool = true) throws(FSError) {
        self.engine = engine
        self.volume = volume
        self.cache = cache ?? ObjectCache(budgetBytes: ObjectCache.defaultBudgetBytes)
        do {
            namespace = try engine.namespace(volume: volume)
            let storageClass = try engine.storageClass(ofVolume: volume)
            chunkSize = Int64(storageClass.chunkSizeBytes)
            objectLimit = storageClass.objectLimitBytes
            let pool = try engine.pool(ofVolume: volume)
            self.pool = pool
            foreignPools = try namespace.foreignPools(notIn: pool)
        } catch { throw .noEntry }
        chunksAhead = Self.chunksAhead(chunkSize: Int(chunkSize), objectLimit: objectLimit)
        try namespace.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: Self.now())
        // Files unlinked while open when the last session ended: nobody can open them now
        // (unless the session itself lived on: `resuming`).
        switch resuming {
        case nil: for ino in try namespace.unlinkedInodes() { try purge(ino) }
        case .handles(let open): openHandles = open
        case .unknown: handlesUnknown = true
        }
        // Objects a compaction retired just before the last session ended.
        let leftovers = try namespace.unreferencedLiveObjects()
        if !leftovers.isEmpty { do { try engine.purgeObjects(volume: volume, ids: leftovers) } catch { throw .io } }
        space = SpaceAccount(usedBytes: try namespace.allocatedBytes(chunkSize: chunkSize))
        entries = SpaceAccount(usedBytes: try namespace.usage().entries)
        if let journalDirectory {
            // Writes this node journaled before another node wrote the volume: replaying
            // them would undo the other's (they were never fsynced, so never promised).
            if namespace.mirror?.takeWrittenElsewhere() == true { try? FileManager.default.removeItem(atPath: journalDirectory) }
            try startJournal(journalDirectory, journaling: journaling)
        }
    }

    /// Counts one more inode or name against the volume's `EntryLimit` (ENOSPC past it);
    /// `body` makes it, and a failure gives the entry back.
    func takingEntryLocked<T>(_ body: () throws(FSError) -> T) throws(FSError) -> T {
        let limit = EntryLimit.entries(capacityBytes: capacityBytes)
        _ = try entries.grant(1, capacity: limit, partial: false) { () throws(FSError) -> Int64 in try namespace.usage().entries }
        do { return try body() } catch {
            entries.release(1)
            throw error
        }
    }

    /// The exact bytes in use: the committed files' allocated bytes (`FileAllocation`),
    /// plus what bytes not committed yet add to them.
    func usedBytesLocked() throws(FSError) -> Int64 {
        var total = try namespace.allocatedBytes(chunkSize: chunkSize)
        for ino in Set(buffers.keys).union(inflight.keys) {
            guard let committed = try? namespace.inode(ino) else { continue }
            let pending = attributesLocked(committed).size
            let allocated = try allocationLocked(ino, committed).bytes(size: pending)
            total += max(0, allocated - (try namespace.dataBytes(committed, chunkSize: chunkSize)))
        }
        return total
    }

    /// File `ino`'s allocation (`FileAllocation`): the kept one, or loaded from its committed
    /// slices (`record`) and its bytes not committed yet.
    func allocationLocked(_ ino: Int64, _ record: InodeRecord) throws(FSError) -> FileAllocation {
        if let kept = allocations[ino] { return kept }
        var allocation = FileAllocation(chunkSize: chunkSize)
        if record.size > 0 { allocation.add(try namespace.dataChunks(ino: ino, from: 0).sorted()) }
        for pending in pendingLocked(ino) { allocation.add(pending.chunks.keys.sorted()) }
        allocations[ino] = allocation
        return allocation
    }

    /// Counts `bytes` of growth against the provisioned size (all, or with `partial` what fits).
    func grantLocked(_ bytes: Int64, partial: Bool) throws(FSError) -> Int64 {
        try space.grant(bytes, capacity: capacityBytes, partial: partial) { () throws(FSError) -> Int64 in try usedBytesLocked() }
    }

    /// Runs `body` under the filesystem's lock, keeping its typed error.
    func locked<T>(_ body: () throws(FSError) -> T) throws(FSError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    static func now() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// The volume's provisioned size, asked of the engine at most once a second (writes
    /// check it; an expansion shows within a second).
    var capacityBytes: Int64 { capacity(fresh: false) }

    func capacity(fresh: Bool) -> Int64 {
        let now = Self.now()
        if !fresh, let cached = capacityCache.withLock({ $0 }), now - cached.at < 1_000_000_000 { return cached.bytes }
        let bytes = (try? engine.volume(id: volume)?.capacityBytes) ?? 0
        capacityCache.withLock { $0 = (bytes, now) }
        return bytes
    }
    private let capacityCache = Mutex<(bytes: Int64, at: Int64)?>(nil)

    /// The attributes of the inode `fetch` reads, read under the lock together with the
    /// bytes not yet committed: a write-back commits (size and slices in, its bytes out of
    /// `inflight`) under the lock, so a record read before taking it could be older than
    /// the pending bytes taken after — the size of neither, a size too small (a test saw
    /// a short read now and then).
    func attributes(_ fetch: () throws(FSError) -> InodeRecord) throws(FSError) -> Attributes {
        try locked { () throws(FSError) -> Attributes in attributesLocked(try fetch()) }
    }

    // MARK: namespace

    public func lookup(parent: Int64, name: [UInt8]) throws(FSError) -> Attributes {
        if name.count > 255 { throw .nameTooLong }
        return try attributes { () throws(FSError) in try namespace.lookup(parent: parent, name: name) }
    }

    public func getattr(_ ino: Int64) throws(FSError) -> Attributes {
        try attributes { () throws(FSError) in try namespace.inode(ino) }
    }

    /// A new inode; `umask` applies unless the parent's default ACL is inherited (nil: the
    /// kernel has applied it).
    public func create(parent: Int64, name: [UInt8], kind: Int64, mode: Int64, uid: Int64, gid: Int64, rdev: Int64 = 0,
                       target: [UInt8]? = nil, umask: Int64? = nil) throws(FSError) -> Attributes {
        try locked { () throws(FSError) -> Attributes in
            try takingEntryLocked { () throws(FSError) -> Attributes in
                attributesLocked(try namespace.create(parent: parent, name: name, kind: kind, mode: mode, uid: uid, gid: gid,
                                                      rdev: rdev, target: target, umask: umask, nowNs: Self.now()))
            }
        }
    }

    /// A file's bytes not committed yet, in write order: a write-back in flight, then the buffer.
    func pendingLocked(_ ino: Int64) -> [FileBuffer] { [inflight[ino], buffers[ino]].compactMap { $0 } }

    func attributesLocked(_ r: InodeRecord) -> Attributes {
        var a = Attributes(ino: r.ino, kind: r.kind, mode: r.mode, nlink: r.nlink, uid: r.uid, gid: r.gid, size: r.size,
                           rdev: r.rdev, atimeNs: r.atimeNs, mtimeNs: r.mtimeNs, ctimeNs: r.ctimeNs)
        // Bytes not committed yet count: the size they reach, the time they were written.
        var data = r.kind == InodeRecord.regular ? (try? namespace.dataBytes(r, chunkSize: chunkSize)) ?? r.size : r.size
        for pending in pendingLocked(r.ino) {
            a.size = max(a.size, pending.size)
            data += Int64(pending.dirtyBytes)
            if !pending.timesSet && pending.lastWriteNs > a.mtimeNs {
                a.mtimeNs = pending.lastWriteNs
                a.ctimeNs = max(a.ctimeNs, pending.lastWriteNs)
            }
        }
        a.blocks = (min(data, a.size) + 511) / 512
        return a
    }

    /// Whether an access now would move the atime of a file with attributes `a` (relatime).
    public func atimeIsDue(_ a: Attributes) -> Bool {
        Relatime.isDue(atimeNs: a.atimeNs, mtimeNs: a.mtimeNs, ctimeNs: a.ctimeNs, nowNs: Self.now())
    }

    /// A read of `ino` or a listing of it reached the daemon: its atime moves where
    /// relatime says so (one batched change per change of the file, or per day).
    public func accessed(_ ino: Int64) throws(FSError) {
        let a = try getattr(ino)
        if atimeIsDue(a) { try namespace.touchAtime(ino: ino, nowNs: Self.now()) }
    }

    public func readlink(_ ino: Int64) throws(FSError) -> [UInt8] {
        let r = try namespace.inode(ino)
        guard r.kind == InodeRecord.symlink, let target = r.target else { throw .invalid }
        return [UInt8](target)
    }

    public func link(ino: Int64, newParent: Int64, newName: [UInt8]) throws(FSError) -> Attributes {
        try locked { () throws(FSError) -> Attributes in
            try takingEntryLocked { () throws(FSError) -> Attributes in
                attributesLocked(try namespace.link(ino: ino, newParent: newParent, newName: newName, nowNs: Self.now()))
            }
        }
    }

    // A deleted file's objects are deleted in the background (`purgeLater`), after the
    // namespace change: removing every shard on every device of the class and syncing
    // the removals takes a second for a GiB of 3-copy, and the kernel holds the parent
    // directory locked until the UNLINK is answered.

    public func unlink(parent: Int64, name: [UInt8]) throws(FSError) {
        let freed = try locked { () throws(FSError) -> [String] in
            // An unlinked file nobody has open goes in the same transaction.
            let (victim, deleted) = try namespace.unlink(parent: parent, name: name, nowNs: Self.now()) {
                (openHandles[$0] ?? 0) == 0 && inflight[$0] == nil && !handlesUnknown
            }
            space.markStale()
            entries.markStale()
            guard let deleted else { return try releaseIfGoneLocked(victim) }
            sliceCache.invalidate(victim.ino)
            buffers[victim.ino] = nil
            allocations[victim.ino] = nil
            forgetWriteBackLocked(victim.ino)
            try settleDeletedLocked(victim.ino)
            return deleted
        }
        purgeLater(freed)
    }

    public func rmdir(parent: Int64, name: [UInt8]) throws(FSError) {
        purgeLater(try locked { () throws(FSError) -> [String] in
            entries.markStale()
            return try releaseIfGoneLocked(try namespace.rmdir(parent: parent, name: name, nowNs: Self.now()))
        })
    }

    public func rename(parent: Int64, name: [UInt8], newParent: Int64, newName: [UInt8], flags: UInt32) throws(FSError) {
        purgeLater(try locked { () throws(FSError) -> [String] in
            guard let replaced = try namespace.rename(parent: parent, name: name, newParent: newParent, newName: newName,
                                                      flags: flags, nowNs: Self.now()) else { return [] }
            space.markStale()
            entries.markStale()
            return try releaseIfGoneLocked(replaced)
        })
    }

    /// An inode with no links left goes once no handle holds it open; returns its objects,
    /// for `purgeLater`.
    private func releaseIfGoneLocked(_ r: InodeRecord) throws(FSError) -> [String] {
        guard r.nlink == 0 && (openHandles[r.ino] ?? 0) == 0 && !handlesUnknown else { return [] }
        return try deleteUnusedLocked(r.ino)
    }

    /// Deletes a file with no names and no open handles: its buffered bytes are dropped,
    /// a write-back of them in flight is let finish, then the inode goes; returns the
    /// objects only it referenced, now 'deleting'.
    private func deleteUnusedLocked(_ ino: Int64) throws(FSError) -> [String] {
        space.markStale()
        entries.markStale()
        buffers[ino] = nil
        allocations[ino] = nil
        forgetWriteBackLocked(ino)
        waitForWriteBackLocked(ino)
        defer { sliceCache.invalidate(ino) }
        let freed = try namespace.deleteInode(ino)
        try settleDeletedLocked(ino)
        return freed
    }

    func purge(_ ino: Int64) throws(FSError) {
        try purgeObjects(try namespace.deleteInode(ino))
    }

    private func purgeObjects(_ objects: [String]) throws(FSError) {
        if objects.isEmpty { return }
        do { try engine.purgeObjects(volume: volume, ids: objects) } catch { throw .io }
        for id in objects { cache.remove(id) }
    }

    /// Deletes objects nothing references any more — a deleted file's, those a truncation
    /// or a compaction freed, a dropped compaction's — in the background, in the order they
    /// were handed over; unmount waits for them. They are 'deleting' (or 'writing', or
    /// retired and unreferenced) in a committed transaction already, so a daemon that stops
    /// first leaves them for the next start, which finishes the job. Until then their
    /// shards still take room on the devices; the volume's own space is counted by file
    /// sizes and is free at once.
    func purgeLater(_ objects: [String]) {
        if objects.isEmpty { return }
        purgeQueue.async { [self] in try? purgeObjects(objects) }
    }

    /// Waits until every purge handed over so far is done.
    func waitForPurges() { purgeQueue.sync {} }

    public func readdir(_ ino: Int64, offset: Int, limit: Int) throws(FSError) -> [DirectoryListing] {
        var result: [DirectoryListing] = []
        if offset == 0 { result.append(.init(name: Array(".".utf8), ino: ino, kind: InodeRecord.directory, next: 1)) }
        if offset <= 1 && result.count < limit {
            result.append(.init(name: Array("..".utf8), ino: try namespace.parent(of: ino), kind: InodeRecord.directory, next: 2))
        }
        let skip = max(0, offset - 2)
        var next = skip + 2
        for entry in try namespace.readdir(ino: ino, offset: skip, limit: max(0, limit - result.count)) {
            next += 1
            result.append(.init(name: entry.name, ino: entry.ino, kind: entry.kind, next: next))
        }
        return result
    }

    public func setattr(_ ino: Int64, mode: Int64? = nil, uid: Int64? = nil, gid: Int64? = nil, size: Int64? = nil,
                        atimeNs: Int64? = nil, mtimeNs: Int64? = nil) throws(FSError) -> Attributes {
        try locked { () throws(FSError) -> Attributes in
            var old: Int64 = 0, granted: Int64 = 0, released: Int64 = 0
            if let size {
                if size > Self.maxFileSize { throw .fileTooLarge }
                try commitLocked(ino)  // pending bytes first, then cut
                let record = try namespace.inode(ino)
                old = record.size
                // Growing adds a hole (free) and lengthens the last chunk holding data;
                // a cut gives back what the chunks past it held.
                var allocation = try allocationLocked(ino, record)
                granted = try grantLocked(allocation.lastChunkGrowth(from: old, to: size), partial: false)
                if size < old {
                    let before = allocation.bytes(size: old)
                    allocation.cut(to: size)
                    released = before - allocation.bytes(size: size)
                }
            }
            // Times chosen now win over the write time the buffered bytes would commit (and
            // are journaled with them, so that a replay of those keeps them too).
            if atimeNs != nil || mtimeNs != nil {
                for pending in pendingLocked(ino) { pending.timesSet = true }
                journalTimesLocked(ino, atimeNs: atimeNs, mtimeNs: mtimeNs)
            }
            let changed: (record: InodeRecord, freed: [String])
            defer { if size != nil { sliceCache.invalidate(ino) } }
            do throws(FSError) {
                changed = try namespace.setattr(ino: ino, mode: mode, uid: uid, gid: gid, size: size, atimeNs: atimeNs,
                                                mtimeNs: mtimeNs, chunkSize: chunkSize, nowNs: Self.now())
            } catch {
                space.release(granted)
                throw error
            }
            if size != nil {
                space.release(released)
                allocations[ino] = nil  // the namespace's slices say what the cut left
            }
            // Objects a cut left unreferenced: retired, since a read in flight may still use them.
            retireLocked(changed.freed)
            return attributesLocked(changed.record)
        }
    }

    /// `fallocate` PUNCH_HOLE and ZERO_RANGE: bytes [offset, offset + length) read as zeros
    /// from now on and hold no space (whole chunks of them lose their objects); the size
    /// stays. Bytes not committed yet are committed first, so the hole covers them too.
    public func deallocate(_ ino: Int64, offset: Int64, length: Int64) throws(FSError) {
        guard offset >= 0, length > 0 else { throw .invalid }
        let (end, overflow) = offset.addingReportingOverflow(length)
        if overflow { throw .fileTooLarge }
        try locked { () throws(FSError) -> Void in
            try commitLocked(ino)
            defer { sliceCache.invalidate(ino) }
            let punched = try namespace.punchHole(ino: ino, range: offset..<end, chunkSize: chunkSize, nowNs: Self.now())
            // Whole chunks punched hold nothing now: what they gave back is recounted when needed.
            allocations[ino] = nil
            space.markStale()
            retireLocked(punched.freed)
            try? compactCrowdedLocked(ino, chunks: Set(punched.partial))  // an optimization: a failure loses nothing
        }
    }

    /// Whether the volume has room for bytes `offset ..< end` of file `ino` to hold data
    /// (`fallocate`). A check, not a reservation: space is counted by the chunks that hold
    /// data, and an allocated range holds none until it is written.
    public func ensureRoom(_ ino: Int64, offset: Int64, upTo end: Int64) throws(FSError) {
        if end > Self.maxFileSize { throw .fileTooLarge }
        try locked { () throws(FSError) -> Void in
            let record = try namespace.inode(ino)
            let growth = try allocationLocked(ino, record).growth(writing: offset, end, size: attributesLocked(record).size)
            space.release(try grantLocked(growth, partial: false))
        }
    }

    // MARK: open files

    /// The files open now (inode → handles), for a successor taking the session over.
    public func openHandleCounts() -> [Int64: Int] { lock.withLock { openHandles } }

    public func open(_ ino: Int64) throws(FSError) {
        _ = try namespace.inode(ino)
        lock.withLock { openHandles[ino, default: 0] += 1 }
    }

    /// Last close of a handle: hands the file's bytes to the write-back, or deletes the
    /// file if it was unlinked meanwhile.
    public func release(_ ino: Int64) throws(FSError) {
        purgeLater(try locked { () throws(FSError) -> [String] in
            defer {
                openHandles[ino, default: 1] -= 1
                if openHandles[ino] == 0 {
                    openHandles[ino] = nil
                    allocations[ino] = nil  // loaded again at the next write
                }
            }
            if (openHandles[ino] ?? 0) <= 1 && !handlesUnknown, let r = try? namespace.inode(ino), r.nlink == 0 {
                openHandles[ino] = nil
                return try deleteUnusedLocked(ino)
            }
            queueWriteBackLocked(ino, .whole)
            return []
        })
    }

    /// close(): the bytes go to the write-back (POSIX promises durability at fsync only).
    /// Reports a failed write-back of the file's bytes, as close() should.
    public func flush(_ ino: Int64) throws(FSError) {
        try locked { () throws(FSError) -> Void in
            queueWriteBackLocked(ino, .whole)
            if let failure = writeBackFailures.removeValue(forKey: ino) { throw failure }
        }
    }

    /// Data and namespace are durable when this returns: shards are always fsynced before
    /// their slices commit; namespace commits skip their fsync (POSIX asks for durability
    /// at fsync, not at every create), and this makes them all durable.
    public func fsync(_ ino: Int64) throws(FSError) {
        try locked { () throws(FSError) -> Void in
            try commitLocked(ino, untilEmpty: false)
            writeBackFailures[ino] = nil
        }
        try namespace.syncNamespace()
    }

    // MARK: data

    /// Whether a write of `count` bytes to `ino` could wait for the file's write-back
    /// (`write` does once a file holds `chunksAhead` full chunks or `dirtyBytesPerFile`): false only
    /// for a small write to a file with less than a chunk buffered, none in flight.
    public func writeMayWait(_ ino: Int64, count: Int) -> Bool {
        if count > 256 << 10 { return true }
        return lock.withLock { (buffers[ino]?.dirtyBytes ?? 0) + count >= Int(chunkSize) || inflight[ino] != nil }
    }

    /// Whether closing `ino`'s last handle could wait for its write-back (an unlinked
    /// file is deleted once that is done).
    public func releaseMayWait(_ ino: Int64) -> Bool {
        lock.withLock { inflight[ino] != nil }
    }

    public func write(_ ino: Int64, offset: Int64, bytes: UnsafeRawBufferPointer) throws(FSError) -> Int {
        guard offset >= 0 else { throw .invalid }
        if bytes.isEmpty { return 0 }
        // The journal's record of the write is placed under the lock (its order is the
        // buffer's) and its bytes copied after, outside it, before the write is acknowledged.
        let (count, journaled) = try locked { () throws(FSError) -> (Int, (WriteJournal, WriteJournal.Reservation)?) in
            let record = try namespace.inode(ino)
            if record.isDirectory { throw .isDirectory }
            if let failure = writeBackFailures.removeValue(forKey: ino) { throw failure }
            let buffer = buffers[ino] ?? FileBuffer(size: record.size)
            // Chunks the write makes hold data count against the volume's size (holes
            // skipped over count nothing); what does not fit is a short write, and a write
            // of which nothing fits is ENOSPC. Past the largest file size: EFBIG, or short.
            var bytes = bytes
            if offset >= Self.maxFileSize { throw .fileTooLarge }
            if Int64(bytes.count) > Self.maxFileSize - offset {
                bytes = UnsafeRawBufferPointer(rebasing: bytes[0..<Int(Self.maxFileSize - offset)])
            }
            let current = attributesLocked(record).size
            var allocation = try allocationLocked(ino, record)
            let growth = allocation.growth(writing: offset, offset + Int64(bytes.count), size: current)
            if growth > 0 {
                let granted = try grantLocked(growth, partial: true)
                if granted < growth {
                    // The longest start of the write whose growth fits (growth rises with length).
                    var (fits, over) = (0, bytes.count)
                    while over - fits > 1 {
                        let mid = (fits + over) / 2
                        if allocation.growth(writing: offset, offset + Int64(mid), size: current) <= granted { fits = mid } else { over = mid }
                    }
                    if fits == 0 { space.release(granted); throw .noSpace }
                    space.release(granted - allocation.growth(writing: offset, offset + Int64(fits), size: current))
                    bytes = UnsafeRawBufferPointer(rebasing: bytes[0..<fits])
                }
            }
            let end = offset + Int64(bytes.count)
            if let touched = allocation.chunks(offset, end) {
                allocation.add(touched)
                allocations[ino] = allocation
            }
            var done = 0
            while done < bytes.count {
                let position = offset + Int64(done)
                let chunk = position / chunkSize
                let within = Int(position % chunkSize)
                let n = min(bytes.count - done, Int(chunkSize) - within)
                buffer.chunks[chunk, default: DirtyExtents(limit: Int(chunkSize))].write(at: within, UnsafeRawBufferPointer(rebasing: bytes[done..<(done + n)]))
                done += n
            }
            buffer.size = max(buffer.size, end)
            buffer.lastWriteNs = Self.now()
            buffer.timesSet = false
            buffers[ino] = buffer
            // Kept for a successor before it is acknowledged; files left unsettled in an
            // older segment of the journal are committed whole, so that it can go.
            var journaled: (WriteJournal, WriteJournal.Reservation)?
            if let journal {
                do {
                    let (reservation, lagging) = try journal.reserveWrite(ino: ino, offset: offset, count: bytes.count)
                    journaled = (journal, reservation)
                    buffer.journalSequence = reservation.sequence
                    for ino in lagging { queueWriteBackLocked(ino, .whole, soon: true) }
                } catch { dropJournalLocked(error) }
            }
            // Full chunks go to the write-back at once, while the writer fills the next
            // (one batch in flight per file, so a writer runs at most `chunksAhead` full
            // chunks ahead of it, and the next batch writes those in parallel); so does
            // everything once the file holds too many bytes — more than those chunks and
            // the one being filled, which a sequential writer's next write may add before
            // the write-back has taken them.
            let full = buffer.chunks.values.filter { $0.covers(Int(chunkSize)) }.count
            if buffer.dirtyBytes > max(Self.dirtyBytesPerFile, (chunksAhead + 1) * Int(chunkSize)) {
                waitForWriteBackLocked(ino)
                queueWriteBackLocked(ino, .whole, soon: true)
            } else if full > 0 {
                if full >= chunksAhead { waitForWriteBackLocked(ino) }
                queueWriteBackLocked(ino, .fullChunks, soon: true)
            }
            return (bytes.count, journaled)
        }
        if let (journal, reservation) = journaled {
            journal.write(reservation, bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
        }
        return count
    }

    /// Writes `ino`'s buffered bytes as objects and commits their slices, the size and times
    /// in one transaction. Waits first for a write-back of the same file still in flight, so
    /// slices commit in the order their bytes were written.
    ///
    /// Called with the lock held, and holds it on return, but not while the objects are
    /// written: their shards are fsynced on every device of the class, milliseconds to
    /// seconds, and every other operation of the volume (a stat, a lookup, another file's
    /// write) would wait that long. Meanwhile the bytes are `inflight` — visible to reads and
    /// getattr, waited for by anything else that must come after them, as with the
    /// background write-back. Writers may fill a new buffer meanwhile: with `untilEmpty`
    /// (truncation, hole punching, unmount) that is committed too, in a second round that
    /// keeps the lock — a writer faster than the devices could otherwise keep a
    /// truncation going round after round (a log truncated while its writer appends) — so
    /// that no byte is pending on return; `fsync` needs only the bytes written before it.
    /// If writing the objects or the transaction fails, the bytes go back into the buffer,
    /// under anything written since, and stay there; objects written before the failure
    /// stay 'writing' and are collected.
    func commitLocked(_ ino: Int64, untilEmpty: Bool = true) throws(FSError) {
        var round = 0
        repeat {
            waitForWriteBackLocked(ino)
            guard let buffer = buffers.removeValue(forKey: ino) else { return }
            queuedWhole.remove(ino)
            queuedFull.remove(ino)
            inflight[ino] = buffer
            let pieces = buffer.pieces(of: ino)
            let staged: Result<(slices: [SliceRecord], objects: [String]), FSError>
            if round == 0 {
                staged = unlocked { () throws(FSError) in try stage(pieces) }
            } else {
                do throws(FSError) { staged = .success(try stage(pieces)) } catch { staged = .failure(error) }
            }
            round += 1
            do throws(FSError) {
                let (slices, objects) = try staged.get()
                defer { sliceCache.invalidate(ino) }
                retireLocked(try namespace.commitWrites([buffer.written(ino)], slices: slices, objects: objects))
            } catch {
                inflight[ino] = nil
                if let newer = buffers[ino] { buffer.absorb(newer) }
                buffers[ino] = buffer
                lock.broadcast()
                throw error
            }
            inflight[ino] = nil
            settleLocked([(ino, buffer.journalSequence)])
            lock.broadcast()
            // An optimization (a failure loses nothing) that lets go of the lock: in the
            // first round only, so that the second, locked one is the last.
            if round == 1 { try? compactCrowdedLocked(ino, chunks: Set(pieces.map(\.chunk))) }
            purgeRetiredLocked(all: false)
        } while untilEmpty
    }

    /// Runs `body` with the filesystem's lock released (the caller holds it, and holds it
    /// again on return), keeping its result or typed error.
    func unlocked<T>(_ body: () throws(FSError) -> T) -> Result<T, FSError> {
        lock.unlock()
        defer { lock.lock() }
        do throws(FSError) { return .success(try body()) } catch { return .failure(error) }
    }

    /// Bytes of one file's chunk on their way into an object.
    struct Piece {
        var ino: Int64
        var chunk: Int64
        var extent: DirtyExtents.Extent
    }

    /// Packs pieces back to back into as few objects as `objectLimit` allows (slices point
    /// at their offset inside), so many small writes — or many small files, or two full
    /// chunks — cost one object, not one each; writes the objects (staged, not yet live), up to
    /// `stageParallelism` at once. Needs no lock. If any object fails, those written are
    /// purged and the first failure is thrown.
    func stage(_ pieces: [Piece]) throws(FSError) -> (slices: [SliceRecord], objects: [String]) {
        let packs = Self.pack(pieces.map(\.extent.bytes.count), limit: objectLimit)
        // Each job packs its own object, so no more than `stageParallelism` packed copies
        // exist at once (a lone piece is no copy at all; two full chunks are copied into one).
        let written = ParallelMap.run(packs.count, width: Self.stageParallelism) { (i: Int) throws(FSError) -> ObjectID in
            let pack = packs[i]
            var packed: [UInt8] = []
            if pack.count == 1 {
                packed = pieces[pack.lowerBound].extent.bytes
            } else {
                packed.reserveCapacity(pack.reduce(0) { $0 + pieces[$1].extent.bytes.count })
                for index in pack { packed += pieces[index].extent.bytes }
            }
            let id = try writeObject(packed)
            cache.insert(id.description, packed)
            return id
        }
        let ids = written.compactMap { try? $0.get() }
        if ids.count < written.count {
            purgeLater(ids.map(\.description))  // also drops them from the cache
            for result in written { if case .failure(let error) = result { throw error } }
        }
        var slices: [SliceRecord] = []
        for (pack, id) in zip(packs, ids) {
            var offset = 0
            for index in pack {
                let piece = pieces[index]
                slices.append(SliceRecord(ino: piece.ino, chunk: piece.chunk, pos: Int64(piece.extent.start),
                                          len: Int64(piece.extent.bytes.count), object: id.description, objectOff: Int64(offset)))
                offset += piece.extent.bytes.count
            }
        }
        return (slices, ids.map(\.description))
    }

    /// `chunksAhead` for a class: enough full chunks for `stageParallelism` objects, no
    /// more than `dirtyBytesPerFile` holds, at least one.
    static func chunksAhead(chunkSize: Int, objectLimit: Int) -> Int {
        max(1, min(stageParallelism * max(1, objectLimit / chunkSize), dirtyBytesPerFile / chunkSize))
    }

    /// How many objects one `stage` writes at once. A sequential writer's chunks then
    /// overlap their shard fsyncs (each a device flush) instead of queueing behind them.
    static let stageParallelism = 4

    /// Groups consecutive sizes into packs of at most `limit` bytes (a size over the limit
    /// alone): the index ranges of the objects `stage` writes.
    static func pack(_ sizes: [Int], limit: Int) -> [Range<Int>] {
        var packs: [Range<Int>] = []
        var start = 0
        var bytes = 0
        for (index, size) in sizes.enumerated() {
            if index > start && bytes + size > limit {
                packs.append(start..<index)
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < sizes.count { packs.append(start..<sizes.count) }
        return packs
    }

    /// Writes `bytes` as a staged object of the volume. A device that is full may only
    /// wait for deletes queued in the background (`purgeLater`: a file just removed still
    /// holds its shards): then the write is tried once more after them.
    func writeObject(_ bytes: [UInt8]) throws(FSError) -> ObjectID {
        for attempt in 0..<2 {
            do { return try engine.stageObject(volume: volume, bytes: bytes) } catch {
                guard case .storage(.noSpace) = error else { throw .io }
                if attempt == 0 { waitForPurges() }
            }
        }
        throw .noSpace
    }

    /// Compacts those of a file's chunks that hold too many slices.
    func compactCrowdedLocked(_ ino: Int64, chunks: Set<Int64>) throws(FSError) {
        for chunk in chunks.sorted() where try namespace.sliceCount(ino: ino, chunk: chunk) > Self.compactAboveSlices {
            try compactLocked(ino, chunk: chunk)
        }
    }

    /// Rewrites a chunk's slices as one object, so reads stay one object per chunk and
    /// overwritten data stops holding space. The objects it frees are retired, not deleted:
    /// a read in flight may have fetched the old slice list.
    ///
    /// Called with the lock held; the chunk is read and its object written without it (see
    /// `commitLocked`). What changed meanwhile is found when the new slice commits: slices
    /// added since are newer and still shadow it; if any of the slices it replaces are gone
    /// (a truncation or a punched hole took them, or another compaction ran), it is dropped
    /// and its object deleted — the chunk is compacted again at a later commit.
    func compactLocked(_ ino: Int64, chunk: Int64) throws(FSError) {
        let record = try namespace.inode(ino)
        let start = chunk * chunkSize
        let length = max(0, min(chunkSize, record.size - start))
        let slices = try namespace.slices(ino: ino, chunk: chunk)
        guard let newest = slices.last?.id else { return }
        compactions += 1
        defer { compactions -= 1; lock.broadcast() }
        let written = unlocked { () throws(FSError) -> CompactedChunk? in
            try compacted(ino, chunk: chunk, length: length, slices: slices)
        }
        guard let (id, data) = try written.get() else { return }
        defer { sliceCache.invalidate(ino) }
        guard let freed = try namespace.compactChunk(ino: ino, chunk: chunk, replacing: slices.compactMap(\.id), upToSlice: newest,
                                                     object: id.description, length: length) else {
            purgeLater([id.description])
            return
        }
        cache.insert(id.description, data)
        retireLocked(freed)
    }

    typealias CompactedChunk = (id: ObjectID, data: [UInt8])

    /// A chunk's bytes [0, length) composed from `slices`, written as one staged object; nil
    /// if the devices are full (compaction is an optimization: it is tried again later).
    private func compacted(_ ino: Int64, chunk: Int64, length: Int64, slices: [SliceRecord]) throws(FSError) -> CompactedChunk? {
        let data = length > 0 ? try composedChunk(ino, chunk: chunk, length: Int(length), slices: slices) : []
        do throws(FSError) { return (try writeObject(data), data) } catch {
            if error == .noSpace { return nil }
            throw error
        }
    }

    /// The committed bytes [0, length) of a chunk, slices applied in order over zeros.
    private func composedChunk(_ ino: Int64, chunk: Int64, length: Int, slices: [SliceRecord]) throws(FSError) -> [UInt8] {
        try Self.bytes(capacity: length) { buffer throws(FSError) in
            try applySlices(slices, window: 0..<length, into: buffer, at: 0)
            return length
        }
    }

    /// An array of the first bytes `fill` writes into `capacity` uninitialized ones (it
    /// returns how many).
    private static func bytes(capacity: Int, _ fill: (UnsafeMutableRawBufferPointer) throws(FSError) -> Int) throws(FSError) -> [UInt8] {
        var failure: FSError?
        let result = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            do throws(FSError) {
                count = try fill(UnsafeMutableRawBufferPointer(buffer))
            } catch {
                failure = error
                count = 0
            }
        }
        if let failure { throw failure }
        return result
    }

    /// Writes the bytes `window` of a chunk (offsets within the chunk) into `result` at
    /// `base` (`result` holds at least `base + window.count` bytes, of any content),
    /// applying `slices` in order over zeros: later ones shadow earlier ones, holes write
    /// zeros. The zeros are skipped when one slice covers the whole window (every byte is
    /// then written by it or a later one): the usual read of a written file.
    private func applySlices(_ slices: [SliceRecord], window: Range<Int>, into result: UnsafeMutableRawBufferPointer,
                             at base: Int) throws(FSError) {
        guard !window.isEmpty else { return }
        precondition(base >= 0 && base + window.count <= result.count)
        let start = result.baseAddress! + base
        if !slices.contains(where: { Int($0.pos) <= window.lowerBound && Int($0.pos + $0.len) >= window.upperBound }) {
            start.initializeMemory(as: UInt8.self, repeating: 0, count: window.count)
        }
        for slice in slices {
            let sliceRange = Int(slice.pos)..<Int(slice.pos + slice.len)
            let overlap = sliceRange.clamped(to: window)
            if overlap.isEmpty { continue }
            let destination = start + (overlap.lowerBound - window.lowerBound)
            if let object = slice.object {
                let from = Int(slice.objectOff) + (overlap.lowerBound - sliceRange.lowerBound)
                let data = try objectBytes(object, from..<(from + overlap.count), objectSize: slice.objectSize)
                guard data.count == overlap.count else { throw .io }
                data.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: overlap.count) }
            } else {
                destination.initializeMemory(as: UInt8.self, repeating: 0, count: overlap.count)
            }
        }
    }

    /// Objects no slice references any more, purged once reads that may still use them are done.
    func retireLocked(_ objects: [String]) {
        if !objects.isEmpty { retired.append((objects, Double(Self.now()) / 1e9)) }
    }

    func purgeRetiredLocked(all: Bool) {
        let now = Double(Self.now()) / 1e9
        let due = retired.filter { all || now - $0.at >= Self.retireAfterSeconds }
        guard !due.isEmpty else { return }
        retired.removeAll { all || now - $0.at >= Self.retireAfterSeconds }
        purgeLater(due.flatMap(\.ids))
    }

    /// `lseek(SEEK_DATA / SEEK_HOLE)` at chunk granularity (`SparseSeek`), the bytes not
    /// committed yet counting as data.
    public func seek(_ ino: Int64, offset: Int64, whence: Int32) throws(FSError) -> Int64 {
        try locked { () throws(FSError) -> Int64 in
            let attributes = attributesLocked(try namespace.inode(ino))
            if attributes.kind == InodeRecord.directory { throw .isDirectory }
            let first = max(0, offset) / chunkSize
            var chunks = try namespace.dataChunks(ino: ino, from: first)
            for pending in pendingLocked(ino) { chunks.formUnion(pending.chunks.keys) }
            return try SparseSeek.resolve(offset: offset, whence: whence, size: attributes.size, chunkSize: chunkSize,
                                          dataChunks: chunks)
        }
    }

    public func read(_ ino: Int64, offset: Int64, size: Int) throws(FSError) -> [UInt8] {
        try Self.bytes(capacity: max(0, size)) { buffer throws(FSError) in try read(ino, offset: offset, into: buffer) }
    }

    /// Reads up to `buffer.count` bytes at `offset` into `buffer` (the payload of the ring
    /// entry the reply goes out of, so that it is not copied once more); returns how many
    /// (fewer at the end of the file).
    public func read(_ ino: Int64, offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(FSError) -> Int {
        guard offset >= 0 else { throw .invalid }
        let size = buffer.count
        // The size and the bytes not committed yet, in write order, read together under the
        // lock (see `attributes`), copied: writers keep changing the buffers.
        let (fileSize, pending) = try locked { () throws(FSError) -> (Int64, [[Int64: DirtyExtents]]) in
            let record = try namespace.inode(ino)
            if record.isDirectory { throw .isDirectory }
            var fileSize = record.size
            var layers: [[Int64: DirtyExtents]] = []
            for b in pendingLocked(ino) {
                var copy: [Int64: DirtyExtents] = [:]
                let first = offset / chunkSize, last = (offset + Int64(size)) / chunkSize
                for chunk in first...last {
                    guard let entry = b.chunks[chunk] else { continue }
                    let start = chunk == first ? Int(offset % chunkSize) : 0
                    let stop = chunk == last ? Int((offset + Int64(size)) % chunkSize) : Int(chunkSize)
                    if start < stop { copy[chunk] = entry.clipped(to: start..<stop) }
                }
                layers.append(copy)
                fileSize = max(fileSize, b.size)
            }
            return (fileSize, layers)
        }
        let end = min(fileSize, offset + Int64(size))
        if end <= offset { return 0 }
        var position = offset
        while position < end {
            let chunk = position / chunkSize
            let within = Int(position % chunkSize)
            let n = Int(min(end - position, chunkSize - Int64(within)))
            let window = within..<(within + n)
            let base = Int(position - offset)
            if foreignPools.isEmpty {
                try applySlices(try slices(ino, chunk: chunk), window: window, into: buffer, at: base)
            } else {
                // An object of another pool may have been copied into ours and let go since
                // its slices were read (Engine+CloneCopy): then the slices again, once.
                do { try applySlices(try slices(ino, chunk: chunk), window: window, into: buffer, at: base) } catch {
                    sliceCache.invalidate(ino)
                    try applySlices(try slices(ino, chunk: chunk), window: window, into: buffer, at: base)
                }
            }
            for layer in pending { layer[chunk]?.overlay(window: window, onto: buffer, at: base) }
            position += Int64(n)
        }
        return Int(end - offset)
    }

    /// A chunk's committed slices, from `sliceCache` or the database. Not under the lock:
    /// see `SliceCache` for why a list fetched while a change commits is never kept.
    private func slices(_ ino: Int64, chunk: Int64) throws(FSError) -> [SliceRecord] {
        if let cached = sliceCache.get(ino: ino, chunk: chunk) { return cached }
        let ticket = sliceCache.ticket(ino)
        let fetched = try namespace.slices(ino: ino, chunk: chunk)
        sliceCache.insert(fetched, ino: ino, chunk: chunk, ticket: ticket)
        return fetched
    }

    /// Bytes `range` of an object: from the cache of recently written objects, or read
    /// from the devices (only the blocks covering the range are read and verified).
    private func objectBytes(_ id: String, _ range: Range<Int>, objectSize: Int64?) throws(FSError) -> ArraySlice<UInt8> {
        if let cached = cache.get(id) {
            guard range.upperBound <= cached.count else { throw .io }
            return cached[range]
        }
        guard let objectID = ObjectID(id) else { throw .io }
        do {
            let home = foreignPools.isEmpty ? pool : foreignPools[id] ?? pool
            return try engine.objects.get(pool: home, object: objectID, range: range, objectSize: objectSize.map(Int.init)).bytes[...]
        } catch { throw .io }
    }

    // MARK: xattrs, statfs

    public func getXattr(_ ino: Int64, name: [UInt8]) throws(FSError) -> [UInt8] { try namespace.getXattr(ino: ino, name: name) }
    public func listXattr(_ ino: Int64) throws(FSError) -> [[UInt8]] { try namespace.listXattr(ino: ino) }
    /// `mayKeepSetGID(gid)`: whether the caller is in group `gid` or privileged (an access
    /// ACL set by anyone else clears set-group-ID).
    public func setXattr(_ ino: Int64, name: [UInt8], value: [UInt8], flags: Int32,
                         mayKeepSetGID: (Int64) -> Bool = { _ in true }) throws(FSError) {
        try namespace.setXattr(ino: ino, name: name, value: value, flags: flags, nowNs: Self.now(), mayKeepSetGID: mayKeepSetGID)
    }
    public func removeXattr(_ ino: Int64, name: [UInt8]) throws(FSError) { try namespace.removeXattr(ino: ino, name: name, nowNs: Self.now()) }

    /// Capacity and use in bytes and entries: the volume's provisioned size, and its
    /// `EntryLimit` (inodes and extra names). The used bytes are those writes are checked
    /// against (`SpaceAccount`), counted exactly; so are the entries.
    public func statfs() throws(FSError) -> (capacityBytes: Int64, usedBytes: Int64, entries: Int64, entryLimit: Int64) {
        let capacity = capacity(fresh: true)
        let (used, taken) = try locked { () throws(FSError) -> (Int64, Int64) in
            let used = try usedBytesLocked()
            let taken = try namespace.usage().entries
            space = SpaceAccount(usedBytes: used)
            entries = SpaceAccount(usedBytes: taken)
            return (used, taken)
        }
        return (capacity, min(capacity, used), taken, EntryLimit.entries(capacityBytes: capacity))
    }

    /// Makes every namespace change so far durable (a directory's fsync): names, not data.
    public func syncNamespace() throws(FSError) {
        try namespace.syncNamespace()
    }

    /// Commits every file's buffered bytes and makes data and namespace durable, as an
    /// fsync of every file would: what a snapshot of the mounted volume must hold.
    public func syncAll() throws(FSError) {
        try locked { () throws(FSError) -> Void in
            waitForAllWriteBacksLocked()
            for ino in Array(buffers.keys) { try commitLocked(ino, untilEmpty: false) }
        }
        try namespace.syncNamespace()
    }

    /// Finishes the write-back, commits every buffer and purges retired objects (unmount:
    /// no reads are in flight).
    public func flushAll() {
        lock.withLock {
            waitForAllWriteBacksLocked()
            for ino in Array(buffers.keys) { try? commitLocked(ino) }
            purgeRetiredLocked(all: true)
            try? namespace.commitNamespaceChanges()
        }
        waitForPurges()
    }
}
