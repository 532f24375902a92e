import Foundation
import GRDB

/// An errno for the filesystem to return as is.
public struct FSError: Error, Equatable, Sendable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
    public var description: String { "errno \(code)" }
    public static let noEntry = FSError(2)       // ENOENT
    public static let exists = FSError(17)       // EEXIST
    public static let notDirectory = FSError(20) // ENOTDIR
    public static let isDirectory = FSError(21)  // EISDIR
    public static let invalid = FSError(22)      // EINVAL
    public static let notEmpty = FSError(39)     // ENOTEMPTY
    public static let noData = FSError(61)       // ENODATA
    public static let notPermitted = FSError(1)  // EPERM
    public static let io = FSError(5)            // EIO
    public static let nameTooLong = FSError(36)  // ENAMETOOLONG
    public static let noSpace = FSError(28)      // ENOSPC
    public static let tooManyLinks = FSError(31) // EMLINK
    public static let notSupported = FSError(95) // EOPNOTSUPP
    public static let noSuchAddress = FSError(6) // ENXIO
    public static let fileTooLarge = FSError(27) // EFBIG
}

/// One inode as stored. `kind` is the S_IFMT type shifted right by 12.
public struct InodeRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "inode"
    public static let directory: Int64 = 4, regular: Int64 = 8, symlink: Int64 = 10
    public var ino: Int64
    public var kind: Int64
    public var mode: Int64
    public var uid: Int64
    public var gid: Int64
    public var size: Int64
    public var nlink: Int64
    public var rdev: Int64
    public var atimeNs: Int64
    public var mtimeNs: Int64
    public var ctimeNs: Int64
    public var target: Data?

    public init(ino: Int64, kind: Int64, mode: Int64, uid: Int64, gid: Int64, size: Int64 = 0, nlink: Int64, rdev: Int64 = 0,
                atimeNs: Int64, mtimeNs: Int64, ctimeNs: Int64, target: Data? = nil) {
        self.ino = ino; self.kind = kind; self.mode = mode; self.uid = uid; self.gid = gid; self.size = size
        self.nlink = nlink; self.rdev = rdev; self.atimeNs = atimeNs; self.mtimeNs = mtimeNs; self.ctimeNs = ctimeNs
        self.target = target
    }

    public var isDirectory: Bool { kind == Self.directory }

    enum CodingKeys: String, CodingKey {
        case ino, kind, mode, uid, gid, size, nlink, rdev, target
        case atimeNs = "atime_ns"
        case mtimeNs = "mtime_ns"
        case ctimeNs = "ctime_ns"
    }

    /// Decoded by column position from `SELECT *` (or `SELECT i.*`): GRDB's Codable
    /// decoding cost more than the query on the hot paths (lookups, getattr).
    public init(row: Row) throws {
        ino = row[0]; kind = row[1]; mode = row[2]; uid = row[3]; gid = row[4]; size = row[5]; nlink = row[6]
        rdev = row[7]; atimeNs = row[8]; mtimeNs = row[9]; ctimeNs = row[10]; target = row[11]
    }

    public func encode(to container: inout PersistenceContainer) throws {
        container["ino"] = ino; container["kind"] = kind; container["mode"] = mode; container["uid"] = uid
        container["gid"] = gid; container["size"] = size; container["nlink"] = nlink; container["rdev"] = rdev
        container["atime_ns"] = atimeNs; container["mtime_ns"] = mtimeNs; container["ctime_ns"] = ctimeNs
        container["target"] = target
    }
}

/// A piece of a file's data: bytes [pos, pos+len) of chunk `chunk` come from `object` at
/// `objectOff` (or are zeros when `object` is nil). Later ids shadow earlier ones.
public struct SliceRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "slice"
    public var id: Int64?
    public var ino: Int64
    public var chunk: Int64
    public var pos: Int64
    public var len: Int64
    public var object: String?
    public var objectOff: Int64
    /// The size of `object` when read with `Namespace.slices` (not stored in this table).
    public var objectSize: Int64? = nil

    public init(id: Int64? = nil, ino: Int64, chunk: Int64, pos: Int64, len: Int64, object: String?, objectOff: Int64 = 0) {
        self.id = id; self.ino = ino; self.chunk = chunk; self.pos = pos; self.len = len; self.object = object
        self.objectOff = objectOff
    }

    enum CodingKeys: String, CodingKey {
        case id, ino, chunk, pos, len, object
        case objectOff = "object_off"
    }
}

public struct DirectoryEntry: Hashable, Sendable {
    public var name: [UInt8]
    public var ino: Int64
    public var kind: Int64
}

/// A volume's namespace: the queries the filesystem's operations translate into. Every
/// change is one transaction; errors are errno values.
extension VolumeDatabase {
    public static let rootIno: Int64 = 1

    /// A namespace change, in the open batch (`batched`) or, `immediate`, committed with
    /// the batch before returning (what other connections read, slices and objects,
    /// changes only so); the inodes it changed go into the inode cache as they now stand.
    /// `commitIf`: see `batched`.
    func fs<T>(immediate: Bool = false, commitIf: (T) -> Bool = { _ in false },
               _ body: (Database) throws -> T) throws(FSError) -> T {
        // Another node took the volume over: nothing more of this node's may commit.
        if let mirror, mirror.isFenced { throw .io }
        do {
            let change = { (db: Database) throws -> T in
                let result = try body(db)
                try self.inodeWatcher.readBack(db, fetch: Self.fetchInode)
                return result
            }
            return immediate ? try transaction(change) : try batched(commitIf: commitIf, change)
        } catch let e as FSError { throw e } catch { throw .io }
    }

    /// Namespace reads run on the writer's connection: point queries of a few
    /// microseconds, where borrowing a reader from GRDB's pool cost more than the query
    /// (runtime key-path instantiation on every `Pool.get`), and where the pages are warm.
    /// Data reads (`slices`) that may run in parallel use `fsParallelRead`.
    func fsRead<T>(_ body: (Database) throws -> T) throws(FSError) -> T {
        do { return try writer.writeWithoutTransaction(body) } catch let e as FSError { throw e } catch { throw .io }
    }

    func fsParallelRead<T>(_ body: (Database) throws -> T) throws(FSError) -> T {
        do { return try writer.read(body) } catch let e as FSError { throw e } catch { throw .io }
    }

    /// Creates the root directory on first use.
    public func ensureRoot(uid: Int64, gid: Int64, mode: Int64, nowNs: Int64) throws(FSError) {
        try fs { db in
            if try Self.fetchInode(db, Self.rootIno) == nil {
                try InodeRecord(ino: Self.rootIno, kind: InodeRecord.directory, mode: mode, uid: uid, gid: gid, nlink: 2,
                                atimeNs: nowNs, mtimeNs: nowNs, ctimeNs: nowNs).insert(db)
            }
        }
    }

    /// An inode, from the cache of inodes (kept exact by `InodeCache.Invalidator`) or the database.
    public func inode(_ ino: Int64) throws(FSError) -> InodeRecord {
        if let cached = inodes.get(ino) { return cached }
        let generation = inodes.generation
        guard let record = try fsRead({ db in try Self.fetchInode(db, ino) }) else { throw .noEntry }
        inodes.insert(record, ifGeneration: generation)
        return record
    }

    // Hot queries use cached prepared statements: compiling SQL on every call cost more
    // than running it (75 µs per inode read, measured in release).
    static func fetchInode(_ db: Database, _ ino: Int64) throws -> InodeRecord? {
        try InodeRows.fetchOne(db.cachedStatement(sql: "SELECT * FROM inode WHERE ino = ?"), ino)
    }

    /// Writes every column of an existing inode (GRDB's generic `update` cost more than the statement).
    static func store(_ db: Database, _ r: InodeRecord) throws {
        try db.cachedStatement(sql: """
            UPDATE inode SET kind = ?, mode = ?, uid = ?, gid = ?, size = ?, nlink = ?, rdev = ?,
            atime_ns = ?, mtime_ns = ?, ctime_ns = ?, target = ? WHERE ino = ?
            """).execute(arguments: [r.kind, r.mode, r.uid, r.gid, r.size, r.nlink, r.rdev, r.atimeNs, r.mtimeNs, r.ctimeNs, r.target, r.ino])
    }

    static func directory(_ db: Database, _ ino: Int64) throws -> InodeRecord {
        guard let dir = try fetchInode(db, ino) else { throw FSError.noEntry }
        guard dir.isDirectory else { throw FSError.notDirectory }
        return dir
    }

    /// `fetchInode` inside a change, from the inode cache where it holds the inode: the
    /// cache follows the writer's connection exactly (`InodeCache`), so it is what a query
    /// would return.
    func currentInode(_ db: Database, _ ino: Int64) throws -> InodeRecord? {
        if let cached = inodes.get(ino) { return cached }
        return try Self.fetchInode(db, ino)
    }

    /// Whether `parent` has an entry `name` (no inode read).
    static func hasChild(_ db: Database, _ parent: Int64, _ name: [UInt8]) throws -> Bool {
        try InodeRows.fetchIno(db.cachedStatement(sql: "SELECT ino FROM dentry WHERE parent = ? AND name = ?"), parent, name) != nil
    }

    static func child(_ db: Database, _ parent: Int64, _ name: [UInt8]) throws -> InodeRecord? {
        try InodeRows.fetchOne(
            db.cachedStatement(sql: "SELECT i.* FROM dentry d JOIN inode i ON i.ino = d.ino WHERE d.parent = ? AND d.name = ?"),
            parent, name)
    }

    /// A directory's link count moved by `nlinkDelta`, its mtime and ctime set: stepped
    /// outside GRDB (`InodeRows.executeChange`), every create and unlink runs it.
    func touchDirectory(_ db: Database, _ ino: Int64, nlinkDelta: Int64, nowNs: Int64) throws {
        try InodeRows.executeChange(db.cachedStatement(sql: "UPDATE inode SET nlink = nlink + ?1, mtime_ns = ?2, ctime_ns = ?2 WHERE ino = ?3"),
                                    nlinkDelta, nowNs, ino)
        inodeWatcher.didChange(ino, deleted: false)
    }

    /// `touchDirectory` of a directory the caller holds as it stood: the read-back then
    /// takes its new state without a query.
    func touchDirectory(_ db: Database, _ directory: InodeRecord, nlinkDelta: Int64, nowNs: Int64) throws {
        try touchDirectory(db, directory.ino, nlinkDelta: nlinkDelta, nowNs: nowNs)
        var touched = directory
        touched.nlink += nlinkDelta
        touched.mtimeNs = nowNs
        touched.ctimeNs = nowNs
        inodeWatcher.know(touched)
    }

    public func lookup(parent: Int64, name: [UInt8]) throws(FSError) -> InodeRecord {
        guard try inode(parent).isDirectory else { throw .notDirectory }
        let found = try fsRead { db in
            try InodeRows.fetchIno(db.cachedStatement(sql: "SELECT ino FROM dentry WHERE parent = ? AND name = ?"), parent, name)
        }
        guard let found else { throw .noEntry }
        return try inode(found)
    }

    /// A new file, directory, symlink or special file named `name` in `parent`, owned by
    /// `uid` and `gid` — except in a set-group-ID directory, whose group the new inode
    /// takes, and whose set-group-ID bit a new directory takes too (as Linux filesystems
    /// do; the kernel has already dropped the bit from a new file's `mode` where the
    /// creator may not have it). In a directory with a default ACL the new inode inherits
    /// it; elsewhere `umask` (when given: the mount has the kernel leave it to us) applies.
    public func create(parent: Int64, name: [UInt8], kind: Int64, mode: Int64, uid: Int64, gid: Int64, rdev: Int64 = 0,
                       target: [UInt8]? = nil, umask: Int64? = nil, nowNs: Int64) throws(FSError) -> InodeRecord {
        if name.count > 255 { throw .nameTooLong }
        return try fs { db in
            guard let directory = try currentInode(db, parent) else { throw FSError.noEntry }
            guard directory.isDirectory else { throw FSError.notDirectory }
            if try Self.hasChild(db, parent, name) { throw FSError.exists }
            let isDir = kind == InodeRecord.directory
            let inherits = directory.mode & Self.setGroupID != 0
            let acls = try inheritance(db, parent: parent, kind: kind, mode: mode & 0o7777, umask: umask)
            var record = InodeRecord(ino: 0, kind: kind, mode: acls.mode | (inherits && isDir ? Self.setGroupID : 0), uid: uid,
                                     gid: inherits ? directory.gid : gid,
                                     size: Int64(target?.count ?? 0), nlink: isDir ? 2 : 1, rdev: rdev,
                                     atimeNs: nowNs, mtimeNs: nowNs, ctimeNs: nowNs, target: target.map { Data($0) })
            record.ino = try allocateIno(db)
            try db.cachedStatement(sql: """
                INSERT INTO inode (ino, kind, mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, target)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [record.ino, record.kind, record.mode, record.uid, record.gid, record.size, record.nlink,
                                         record.rdev, nowNs, nowNs, nowNs, record.target])
            try db.cachedStatement(sql: "INSERT INTO dentry (parent, name, ino) VALUES (?, ?, ?)")
                .execute(arguments: [parent, Data(name), record.ino])
            inodeWatcher.know(record)
            try storeInherited(db, ino: record.ino, access: acls.access, defaultACL: acls.defaultACL)
            try touchDirectory(db, directory, nlinkDelta: isDir ? 1 : 0, nowNs: nowNs)
            return record
        }
    }

    /// S_ISGID.
    static let setGroupID: Int64 = 0o2000

    /// The most names a file has (ext4's EXT4_LINK_MAX): one more link is EMLINK.
    public static let maxLinks: Int64 = 65_000

    /// A new inode number: above every one in the table and every one handed out since
    /// the database opened (`nextIno`).
    func allocateIno(_ db: Database) throws -> Int64 {
        try nextIno.withLock { n in
            let next = try n ?? (Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(ino), 0) FROM inode") ?? 0) + 1
            n = next + 1
            return next
        }
    }

    /// A hard link `newName` in `newParent` to `ino` (not a directory).
    public func link(ino: Int64, newParent: Int64, newName: [UInt8], nowNs: Int64) throws(FSError) -> InodeRecord {
        if newName.count > 255 { throw .nameTooLong }
        return try fs { db in
            guard var target = try Self.fetchInode(db, ino) else { throw FSError.noEntry }
            if target.isDirectory { throw FSError.notPermitted }
            if target.nlink >= Self.maxLinks { throw FSError.tooManyLinks }
            _ = try Self.directory(db, newParent)
            if try Self.child(db, newParent, newName) != nil { throw FSError.exists }
            try db.cachedStatement(sql: "INSERT INTO dentry (parent, name, ino) VALUES (?, ?, ?)").execute(arguments: [newParent, Data(newName), ino])
            target.nlink += 1
            target.ctimeNs = nowNs
            try Self.store(db, target)
            try touchDirectory(db, newParent, nlinkDelta: 0, nowNs: nowNs)
            return target
        }
    }

    /// Removes a name of a non-directory; returns the inode with its new link count and,
    /// when that reached 0 and `deleteIfUnused(ino)` says no handle holds it, the objects
    /// only it referenced (the inode is then deleted in the same transaction, as
    /// `deleteInode` would). Otherwise the caller deletes it once no handle is open.
    public func unlink(parent: Int64, name: [UInt8], nowNs: Int64,
                       deleteIfUnused: (Int64) -> Bool = { _ in false }) throws(FSError) -> (inode: InodeRecord, deleted: [String]?) {
        // The objects it frees lose their shards next: the change must be committed first.
        try fs(commitIf: { $0.deleted?.isEmpty == false }) { db in
            guard let directory = try currentInode(db, parent) else { throw FSError.noEntry }
            guard directory.isDirectory else { throw FSError.notDirectory }
            guard let ino = try InodeRows.fetchIno(db.cachedStatement(sql: "SELECT ino FROM dentry WHERE parent = ? AND name = ?"), parent, name),
                  var victim = try currentInode(db, ino) else { throw FSError.noEntry }
            if victim.isDirectory { throw FSError.isDirectory }
            try InodeRows.execute(db.cachedStatement(sql: "DELETE FROM dentry WHERE parent = ?1 AND name = ?2"), parent, name)
            victim.nlink -= 1
            victim.ctimeNs = nowNs
            try touchDirectory(db, directory, nlinkDelta: 0, nowNs: nowNs)
            // Deleted in this same change: its new link count need not be stored first.
            if victim.nlink == 0 && deleteIfUnused(victim.ino) { return (victim, try self.deleteUnlinkedInode(db, victim.ino)) }
            try Self.store(db, victim)
            inodeWatcher.know(victim)
            return (victim, nil)
        }
    }

    /// Removes an empty directory; returns it (its inode is then deleted by the caller).
    public func rmdir(parent: Int64, name: [UInt8], nowNs: Int64) throws(FSError) -> InodeRecord {
        try fs { db in
            _ = try Self.directory(db, parent)
            guard var victim = try Self.child(db, parent, name) else { throw FSError.noEntry }
            if !victim.isDirectory { throw FSError.notDirectory }
            if try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM dentry WHERE parent = ?"), arguments: [victim.ino]) ?? 0 > 0 {
                throw FSError.notEmpty
            }
            try db.cachedStatement(sql: "DELETE FROM dentry WHERE parent = ? AND name = ?").execute(arguments: [parent, Data(name)])
            victim.nlink = 0
            victim.ctimeNs = nowNs
            try Self.store(db, victim)
            try touchDirectory(db, parent, nlinkDelta: -1, nowNs: nowNs)
            return victim
        }
    }

    public static let renameNoReplace: UInt32 = 1, renameExchange: UInt32 = 2

    /// Whether directory `ancestor` is `node` or above it (moving it there would detach a subtree).
    static func isAncestor(_ db: Database, _ ancestor: Int64, of node: Int64) throws -> Bool {
        var current = node
        while current != rootIno {
            if current == ancestor { return true }
            guard let up = try Int64.fetchOne(db.cachedStatement(sql: "SELECT parent FROM dentry WHERE ino = ?"), arguments: [current]) else {
                return false
            }
            current = up
        }
        return false
    }

    /// Renames (or with `renameExchange` swaps) a name. Returns the inode a replacing rename
    /// unlinked, with its new link count, for the caller to delete when unused.
    public func rename(parent: Int64, name: [UInt8], newParent: Int64, newName: [UInt8], flags: UInt32,
                       nowNs: Int64) throws(FSError) -> InodeRecord? {
        if newName.count > 255 { throw .nameTooLong }
        if flags & ~(Self.renameNoReplace | Self.renameExchange) != 0
            || flags == Self.renameNoReplace | Self.renameExchange { throw .invalid }
        return try fs { db in
            _ = try Self.directory(db, parent)
            _ = try Self.directory(db, newParent)
            guard var source = try Self.child(db, parent, name) else { throw FSError.noEntry }
            let existing = try Self.child(db, newParent, newName)
            if existing?.ino == source.ino { return nil }  // same file: nothing to do
            // A directory may not move into its own subtree.
            if source.isDirectory, try Self.isAncestor(db, source.ino, of: newParent) { throw FSError.invalid }
            if flags & Self.renameExchange != 0 {
                guard var other = existing else { throw FSError.noEntry }
                if other.isDirectory, try Self.isAncestor(db, other.ino, of: parent) { throw FSError.invalid }
                try db.cachedStatement(sql: "UPDATE dentry SET ino = ? WHERE parent = ? AND name = ?").execute(arguments: [other.ino, parent, Data(name)])
                try db.cachedStatement(sql: "UPDATE dentry SET ino = ? WHERE parent = ? AND name = ?").execute(arguments: [source.ino, newParent, Data(newName)])
                if parent != newParent && source.isDirectory != other.isDirectory {
                    let delta: Int64 = source.isDirectory ? 1 : -1
                    try touchDirectory(db, newParent, nlinkDelta: delta, nowNs: nowNs)
                    try touchDirectory(db, parent, nlinkDelta: -delta, nowNs: nowNs)
                } else {
                    try touchDirectory(db, parent, nlinkDelta: 0, nowNs: nowNs)
                    try touchDirectory(db, newParent, nlinkDelta: 0, nowNs: nowNs)
                }
                source.ctimeNs = nowNs; other.ctimeNs = nowNs
                try Self.store(db, source); try Self.store(db, other)
                return nil
            }
            var replaced: InodeRecord? = nil
            if var victim = existing {
                if flags & Self.renameNoReplace != 0 { throw FSError.exists }
                if source.isDirectory && !victim.isDirectory { throw FSError.notDirectory }
                if !source.isDirectory && victim.isDirectory { throw FSError.isDirectory }
                if victim.isDirectory {
                    if try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM dentry WHERE parent = ?"), arguments: [victim.ino]) ?? 0 > 0 {
                        throw FSError.notEmpty
                    }
                    victim.nlink = 0
                    try touchDirectory(db, newParent, nlinkDelta: -1, nowNs: nowNs)
                } else {
                    victim.nlink -= 1
                }
                victim.ctimeNs = nowNs
                try Self.store(db, victim)
                try db.cachedStatement(sql: "DELETE FROM dentry WHERE parent = ? AND name = ?").execute(arguments: [newParent, Data(newName)])
                replaced = victim
            }
            try db.execute(sql: "UPDATE dentry SET parent = ?, name = ? WHERE parent = ? AND name = ?",
                           arguments: [newParent, Data(newName), parent, Data(name)])
            if source.isDirectory && parent != newParent {
                try touchDirectory(db, parent, nlinkDelta: -1, nowNs: nowNs)
                try touchDirectory(db, newParent, nlinkDelta: 1, nowNs: nowNs)
            } else {
                try touchDirectory(db, parent, nlinkDelta: 0, nowNs: nowNs)
                if newParent != parent { try touchDirectory(db, newParent, nlinkDelta: 0, nowNs: nowNs) }
            }
            source.ctimeNs = nowNs
            try Self.store(db, source)
            return replaced
        }
    }

    /// Entries of a directory after the first `offset`, at most `limit`.
    public func readdir(ino: Int64, offset: Int, limit: Int) throws(FSError) -> [DirectoryEntry] {
        try fsRead { db in
            _ = try Self.directory(db, ino)
            let rows = try Row.fetchAll(db, sql: """
                SELECT d.name, d.ino, i.kind FROM dentry d JOIN inode i ON i.ino = d.ino
                WHERE d.parent = ? ORDER BY d.name LIMIT ? OFFSET ?
                """, arguments: [ino, limit, offset])
            return rows.map { DirectoryEntry(name: [UInt8]($0["name"] as Data), ino: $0["ino"], kind: $0["kind"]) }
        }
    }

    /// The parent of a directory (for "..").
    public func parent(of ino: Int64) throws(FSError) -> Int64 {
        if ino == Self.rootIno { return Self.rootIno }
        return try fsRead { db in try Int64.fetchOne(db.cachedStatement(sql: "SELECT parent FROM dentry WHERE ino = ? LIMIT 1"), arguments: [ino]) ?? Self.rootIno }
    }

    /// Changes attributes. A smaller size drops the slices past it and writes a hole from
    /// the new end to the end of its chunk, so growing the file again reads zeros.
    /// Times as Linux filesystems keep them: any size change of a file — a truncate to the
    /// size it has, an `O_TRUNC` open of an empty file — moves its mtime and ctime, and a
    /// change of nothing (`chown(f, -1, -1)`) its ctime.
    /// Returns the inode as changed and the objects a cut left no slice referencing (still
    /// live: the caller retires them once reads in flight are done).
    public func setattr(ino: Int64, mode: Int64? = nil, uid: Int64? = nil, gid: Int64? = nil, size: Int64? = nil,
                        atimeNs: Int64? = nil, mtimeNs: Int64? = nil, chunkSize: Int64,
                        nowNs: Int64) throws(FSError) -> (record: InodeRecord, freed: [String]) {
        // A new size changes slices, which reads see through other connections.
        try fs(immediate: size != nil) { db in
            guard var record = try Self.fetchInode(db, ino) else { throw FSError.noEntry }
            var freed: [String] = []
            if let mode {
                record.mode = mode & 0o7777
                record.ctimeNs = nowNs
                try followMode(db, ino: ino, mode: record.mode)
            }
            if let uid { record.uid = uid; record.ctimeNs = nowNs }
            if let gid { record.gid = gid; record.ctimeNs = nowNs }
            if let atimeNs { record.atimeNs = atimeNs; record.ctimeNs = nowNs }
            if let mtimeNs { record.mtimeNs = mtimeNs; record.ctimeNs = nowNs }
            if let size, size != record.size {
                if record.isDirectory { throw FSError.isDirectory }
                if record.kind != InodeRecord.regular { throw FSError.invalid }
                if size < record.size { freed = try Self.truncate(db, ino: ino, to: size, chunkSize: chunkSize) }
                record.size = size
            }
            if size != nil && record.kind == InodeRecord.regular {
                record.mtimeNs = nowNs
                record.ctimeNs = nowNs
            }
            if mode == nil && uid == nil && gid == nil && size == nil && atimeNs == nil && mtimeNs == nil { record.ctimeNs = nowNs }
            try Self.store(db, record)
            return (record, freed)
        }
    }

    /// An access (a read, a directory listing): the atime moves, nothing else.
    public func touchAtime(ino: Int64, nowNs: Int64) throws(FSError) {
        try fs { db in
            try db.cachedStatement(sql: "UPDATE inode SET atime_ns = ? WHERE ino = ?").execute(arguments: [nowNs, ino])
        }
    }

    /// Drops the slices past `size` and writes a hole over the rest of its chunk; returns
    /// the objects no slice references any more.
    static func truncate(_ db: Database, ino: Int64, to size: Int64, chunkSize: Int64) throws -> [String] {
        let lastChunk = size / chunkSize
        let firstDropped = size % chunkSize == 0 ? lastChunk : lastChunk + 1
        let dropped = try String.fetchAll(db.cachedStatement(sql: """
            SELECT DISTINCT object FROM slice WHERE ino = ? AND chunk >= ? AND object IS NOT NULL
            """), arguments: [ino, firstDropped])
        try db.cachedStatement(sql: "DELETE FROM slice WHERE ino = ? AND chunk >= ?").execute(arguments: [ino, firstDropped])
        let offset = size % chunkSize
        if offset > 0 {
            try SliceRecord(ino: ino, chunk: lastChunk, pos: offset, len: chunkSize - offset, object: nil).insert(db)
        }
        return try unreferenced(db, dropped)
    }

    /// Those of `candidates` that no slice references.
    static func unreferenced(_ db: Database, _ candidates: [String]) throws -> [String] {
        try candidates.filter { object in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM slice WHERE object = ? LIMIT 1"), arguments: [object]) == nil
        }
    }

    /// Deallocates bytes `range` of a regular file (`fallocate` PUNCH_HOLE, ZERO_RANGE): the
    /// chunks it covers whole lose their slices, the one or two it covers in part get a hole
    /// slice (reads of either give zeros); the size stays, mtime and ctime move. Bytes past
    /// the end are left alone. Returns the objects no slice references any more (still
    /// live: the caller retires them) and the chunks given a hole slice.
    public func punchHole(ino: Int64, range: Range<Int64>, chunkSize: Int64,
                          nowNs: Int64) throws(FSError) -> (freed: [String], partial: [Int64]) {
        try fs(immediate: true) { db in
            guard var record = try Self.fetchInode(db, ino) else { throw FSError.noEntry }
            if record.isDirectory { throw FSError.isDirectory }
            if record.kind != InodeRecord.regular { throw FSError.invalid }
            let low = range.lowerBound, end = min(range.upperBound, record.size)
            var freed: [String] = [], partial: [Int64] = []
            if low < end {
                let head = low / chunkSize, tail = (end - 1) / chunkSize
                // Whole chunks: from the first starting at or after `low` to the last ending
                // at or before `end` (the file's last chunk ends at its size).
                let firstWhole = (low + chunkSize - 1) / chunkSize
                let lastWhole = end == record.size ? tail : end / chunkSize - 1
                let whole: ClosedRange<Int64>? = firstWhole <= lastWhole ? firstWhole...lastWhole : nil
                if whole != nil {
                    let candidates = try String.fetchAll(db.cachedStatement(sql: """
                        SELECT DISTINCT object FROM slice WHERE ino = ? AND chunk BETWEEN ? AND ? AND object IS NOT NULL
                        """), arguments: [ino, firstWhole, lastWhole])
                    try db.cachedStatement(sql: "DELETE FROM slice WHERE ino = ? AND chunk BETWEEN ? AND ?")
                        .execute(arguments: [ino, firstWhole, lastWhole])
                    freed = try Self.unreferenced(db, candidates)
                }
                for chunk in Set([head, tail]).sorted() where !(whole?.contains(chunk) ?? false) {
                    let start = chunk * chunkSize
                    let from = max(low, start) - start, to = min(end, start + chunkSize) - start
                    try SliceRecord(ino: ino, chunk: chunk, pos: from, len: to - from, object: nil).insert(db)
                    partial.append(chunk)
                }
            }
            record.mtimeNs = nowNs
            record.ctimeNs = nowNs
            try Self.store(db, record)
            return (freed, partial)
        }
    }

    /// The chunks of a file from `first` on that hold committed bytes (a slice with an
    /// object; truncation's zero slices have none).
    public func dataChunks(ino: Int64, from first: Int64) throws(FSError) -> Set<Int64> {
        try fsParallelRead { db in
            Set(try Int64.fetchAll(db.cachedStatement(sql: """
                SELECT DISTINCT chunk FROM slice WHERE ino = ? AND chunk >= ? AND object IS NOT NULL
                """), arguments: [ino, first]))
        }
    }

    /// Bytes of a file's committed data, at chunk granularity: each chunk holding a slice
    /// with an object counts whole, the last up to the size; holes and chunks never written
    /// count nothing. What `st_blocks` reports (with bytes not committed yet). Cached with
    /// the inode (`InodeCache`).
    public func dataBytes(_ record: InodeRecord, chunkSize: Int64) throws(FSError) -> Int64 {
        guard record.kind == InodeRecord.regular, record.size > 0 else { return 0 }
        if let cached = inodes.dataBytes(record.ino) { return cached }
        let generation = inodes.generation
        let bytes = try dataChunks(ino: record.ino, from: 0).reduce(Int64(0)) { total, chunk in
            total + max(0, min(chunkSize, record.size - chunk * chunkSize))
        }
        inodes.insertDataBytes(bytes, of: record.ino, ifGeneration: generation)
        return bytes
    }

    /// A chunk's slices, oldest first, each with its object's size.
    public func slices(ino: Int64, chunk: Int64) throws(FSError) -> [SliceRecord] {
        try fsParallelRead { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT slice.*, object.size_bytes AS object_size FROM slice LEFT JOIN object ON object.id = slice.object
                WHERE slice.ino = ? AND slice.chunk = ? ORDER BY slice.id
                """), arguments: [ino, chunk]).map { row in
                var slice = try SliceRecord(row: row)
                slice.objectSize = row["object_size"]
                return slice
            }
        }
    }

    /// What one file's committed write changes: its size grows to `size`, and its mtime
    /// and ctime become `mtimeNs` (nil: a setattr chose the times since the bytes were written).
    public struct WrittenFile: Sendable {
        public var ino: Int64
        public var size: Int64
        public var mtimeNs: Int64?
        public init(ino: Int64, size: Int64, mtimeNs: Int64?) { self.ino = ino; self.size = size; self.mtimeNs = mtimeNs }
    }

    /// Makes written data visible, atomically: staged objects become live, their slices
    /// are added, and the files' sizes and times move forward — for one file or for many
    /// (the write-back commits every file it packed together in one transaction).
    ///
    /// Older slices that a new one covers whole shadow nothing any more: they go, so an
    /// overwritten chunk lets go of its old objects at once rather than at its next
    /// compaction. Returns the objects no slice references any more (still live: the
    /// caller retires them once reads in flight are done, as after `compactChunk`).
    @discardableResult
    public func commitWrites(_ files: [WrittenFile], slices: [SliceRecord], objects: [String]) throws(FSError) -> [String] {
        try fs(immediate: true) { db -> [String] in
            for object in objects {
                try db.cachedStatement(sql: "UPDATE object SET state = 'live' WHERE id = ?").execute(arguments: [object])
            }
            var dropped: Set<String> = []
            for slice in slices {
                // Before the insert, so only older slices match (a batch's slices of one
                // chunk never overlap: they come from one buffer's disjoint extents).
                let covered = try String?.fetchAll(db.cachedStatement(sql: """
                    DELETE FROM slice WHERE ino = ? AND chunk = ? AND pos >= ? AND pos + len <= ? RETURNING object
                    """), arguments: [slice.ino, slice.chunk, slice.pos, slice.pos + slice.len])
                for case let object? in covered { dropped.insert(object) }
                try slice.insert(db)
            }
            for file in files {
                if let mtime = file.mtimeNs {
                    try db.cachedStatement(sql: "UPDATE inode SET size = max(size, ?), mtime_ns = max(mtime_ns, ?), ctime_ns = max(ctime_ns, ?) WHERE ino = ?")
                        .execute(arguments: [file.size, mtime, mtime, file.ino])
                } else {
                    try db.cachedStatement(sql: "UPDATE inode SET size = max(size, ?) WHERE ino = ?").execute(arguments: [file.size, file.ino])
                }
            }
            return try Self.unreferenced(db, dropped.sorted())
        }
    }

    /// Replaces the slices of a chunk up to `upToSlice` — which must still be exactly
    /// `replacing`, the ids the caller composed the chunk from — with one slice of `object`
    /// covering [0, length), making the object live; returns the objects no slice references
    /// any more (still live: the caller retires them once reads in flight are done). Returns
    /// nil and changes nothing when those slices changed meanwhile (the object stays
    /// 'writing': the caller deletes it).
    public func compactChunk(ino: Int64, chunk: Int64, replacing: [Int64], upToSlice: Int64, object: String,
                             length: Int64) throws(FSError) -> [String]? {
        try fs(immediate: true) { db -> [String]? in
            let current = try Int64.fetchAll(db.cachedStatement(sql: """
                SELECT id FROM slice WHERE ino = ? AND chunk = ? AND id <= ? ORDER BY id
                """), arguments: [ino, chunk, upToSlice])
            guard current == replacing.sorted() else { return nil }
            let before = try String.fetchAll(db.cachedStatement(sql: """
                SELECT DISTINCT object FROM slice WHERE ino = ? AND chunk = ? AND id <= ? AND object IS NOT NULL
                """), arguments: [ino, chunk, upToSlice])
            try db.cachedStatement(sql: "DELETE FROM slice WHERE ino = ? AND chunk = ? AND id <= ?").execute(arguments: [ino, chunk, upToSlice])
            try db.cachedStatement(sql: "UPDATE object SET state = 'live' WHERE id = ?").execute(arguments: [object])
            if length > 0 {
                // Takes the id of the newest slice it replaces: free again, and older than
                // every slice left, which must still shadow it.
                try SliceRecord(id: upToSlice, ino: ino, chunk: chunk, pos: 0, len: length, object: object).insert(db)
            }
            return try Self.unreferenced(db, before)
        }
    }

    public func sliceCount(ino: Int64, chunk: Int64) throws(FSError) -> Int {
        try fsRead { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT count(*) FROM slice WHERE ino = ? AND chunk = ?"), arguments: [ino, chunk]) ?? 0
        }
    }

    /// Live objects that no slice references (a compaction's leftovers when the daemon
    /// stopped before retiring them). Only meaningful for volumes used as filesystems.
    public func unreferencedLiveObjects() throws(FSError) -> [String] {
        do { try settleDeferred() } catch { throw .io }
        return try fsRead { db in
            try String.fetchAll(db, sql: """
                SELECT id FROM object WHERE state = 'live'
                AND NOT EXISTS (SELECT 1 FROM slice WHERE slice.object = object.id)
                """)
        }
    }

    /// Deletes an inode with no links left; returns the objects only it referenced (the
    /// caller deletes their shards, then `removeObject`s them).
    public func deleteInode(_ ino: Int64) throws(FSError) -> [String] {
        try fs(immediate: true) { db in try deleteInode(db, ino) }
    }

    func deleteInode(_ db: Database, _ ino: Int64) throws -> [String] {
        // Only an inode without links goes, and only then its objects: the change that
        // unlinked it may have been rolled back since (a failed batch) and the file be back.
        guard try Self.fetchInode(db, ino)?.nlink == 0 else { return [] }
        return try deleteUnlinkedInode(db, ino)
    }

    /// `deleteInode` of an inode the caller's change has just unlinked (its last dentry
    /// gone; the stored link count may be the old one). Its slices and xattrs go first
    /// (the foreign keys refuse them orphaned), each only where there can be any: most
    /// unlinked files are small, many empty, and a statement that finds nothing still
    /// costs (see migration v5). Returns the objects no other inode's slices name (the
    /// write-back packs small files into shared objects), now 'deleting'.
    func deleteUnlinkedInode(_ db: Database, _ ino: Int64) throws -> [String] {
        let named = try InodeRows.fetchTexts(db.cachedStatement(sql: "SELECT object FROM slice WHERE ino = ?"), ino)
        var objects: [String] = []
        if !named.isEmpty {
            var seen = Set<String>()
            for case let object? in named where seen.insert(object).inserted {
                let shared = try Bool.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM slice WHERE object = ? AND ino <> ? LIMIT 1"),
                                               arguments: [object, ino]) ?? false
                if !shared { objects.append(object) }
            }
            try db.cachedStatement(sql: "DELETE FROM slice WHERE ino = ?").execute(arguments: [ino])
        }
        if !xattrNames.withLock({ $0.isEmpty }) {
            try db.cachedStatement(sql: "DELETE FROM xattr WHERE ino = ?").execute(arguments: [ino])
        }
        try InodeRows.executeChange(db.cachedStatement(sql: "DELETE FROM inode WHERE ino = ?1"), ino)
        inodeWatcher.didChange(ino, deleted: true)
        for object in objects {
            try db.cachedStatement(sql: "UPDATE object SET state = 'deleting' WHERE id = ?").execute(arguments: [object])
        }
        return objects
    }

    /// Inodes with no links (unlinked while open when the process stopped).
    public func unlinkedInodes() throws(FSError) -> [Int64] {
        try fsRead { db in try Int64.fetchAll(db, sql: "SELECT ino FROM inode WHERE nlink = 0") }
    }

    /// Bytes the regular files' data takes, each file's as `dataBytes` counts it: every
    /// chunk holding a slice with an object whole, the last up to the file's size. What a
    /// volume's provisioned size bounds: holes take nothing.
    public func allocatedBytes(chunkSize: Int64) throws(FSError) -> Int64 {
        try fsRead { db in
            try Int64.fetchOne(db.cachedStatement(sql: """
                SELECT COALESCE(SUM(MIN(?1, inode.size - held.chunk * ?1)), 0)
                FROM (SELECT DISTINCT ino, chunk FROM slice WHERE object IS NOT NULL) AS held
                JOIN inode ON inode.ino = held.ino
                WHERE inode.kind = 8 AND inode.size > held.chunk * ?1
                """), arguments: [chunkSize]) ?? 0
        }
    }

    /// Total bytes in files, the number of inodes, and the entries they take of the
    /// volume's limit (`EntryLimit`): every inode, and every name of a file past its first.
    public func usage() throws(FSError) -> (bytes: Int64, inodes: Int64, entries: Int64) {
        try fsRead { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COALESCE(SUM(CASE WHEN kind = 8 THEN size ELSE 0 END), 0) AS b, count(*) AS n,
                       COALESCE(SUM(CASE WHEN kind != 4 AND nlink > 1 THEN nlink - 1 ELSE 0 END), 0) AS x FROM inode
                """)!
            let inodes: Int64 = row["n"], extraNames: Int64 = row["x"]
            return (row["b"], inodes, inodes + extraNames)
        }
    }

    // MARK: xattrs

    public static let xattrCreate: Int32 = 1, xattrReplace: Int32 = 2

    public func getXattr(ino: Int64, name: [UInt8]) throws(FSError) -> [UInt8] {
        _ = try inode(ino)
        try XattrName.check(name)
        if !mayHave(xattr: name) { throw .noData }
        return try fsRead { db in
            guard let value = try Self.xattr(db, ino, name) else { throw FSError.noData }
            return value
        }
    }

    /// Sets an xattr; an ACL also changes the mode (`setACL`), `mayKeepSetGID(gid)` saying
    /// whether the caller is in group `gid` or privileged.
    public func setXattr(ino: Int64, name: [UInt8], value: [UInt8], flags: Int32, nowNs: Int64,
                         mayKeepSetGID: (Int64) -> Bool = { _ in true }) throws(FSError) {
        try XattrName.check(name)
        return try fs { db in
            guard let record = try Self.fetchInode(db, ino) else { throw FSError.noEntry }
            let exists = try Self.xattr(db, ino, name) != nil
            if flags & Self.xattrCreate != 0 && exists { throw FSError.exists }
            if flags & Self.xattrReplace != 0 && !exists { throw FSError.noData }
            // Before anything changes: a refusal then leaves the namespace batch alone.
            let others = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT coalesce(sum(length(name) + 1), 0), coalesce(sum(length(name) + length(value)), 0)
                FROM xattr WHERE ino = ? AND name <> ?
                """), arguments: [ino, Data(name)])
            guard XattrLimits.fits(otherListBytes: others?[0] ?? 0, otherTotalBytes: others?[1] ?? 0,
                                   nameBytes: name.count, valueBytes: value.count) else { throw FSError.noSpace }
            if XattrName.isACL(name) {
                try setACL(db, record, name: name, value: value, nowNs: nowNs, mayKeepSetGID: mayKeepSetGID)
                return
            }
            try storeXattr(db, ino, name, value)
            try db.cachedStatement(sql: "UPDATE inode SET ctime_ns = ? WHERE ino = ?").execute(arguments: [nowNs, ino])
        }
    }

    public func listXattr(ino: Int64) throws(FSError) -> [[UInt8]] {
        try fsRead { db in
            guard try Self.fetchInode(db, ino) != nil else { throw FSError.noEntry }
            return try Data.fetchAll(db.cachedStatement(sql: "SELECT name FROM xattr WHERE ino = ? ORDER BY name"), arguments: [ino]).map { [UInt8]($0) }
        }
    }

    /// Removes an xattr. Removing an ACL that is not there succeeds (`setfacl -k` of a
    /// directory without a default ACL), as on ext4; the mode stays as it is.
    public func removeXattr(ino: Int64, name: [UInt8], nowNs: Int64) throws(FSError) {
        try XattrName.check(name)
        return try fs { db in
            guard try Self.fetchInode(db, ino) != nil else { throw FSError.noEntry }
            try deleteXattr(db, ino, name)
            if db.changesCount == 0 {
                if XattrName.isACL(name) { return }  // nothing changed: no new ctime either
                throw FSError.noData
            }
            try db.cachedStatement(sql: "UPDATE inode SET ctime_ns = ? WHERE ino = ?").execute(arguments: [nowNs, ino])
        }
    }
}
