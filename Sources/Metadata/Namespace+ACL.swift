import Foundation
import GRDB

/// POSIX ACLs in the namespace. The kernel enforces them (the mount asks for
/// FUSE_CAP_POSIX_ACL) from the `system.posix_acl_*` xattrs stored here; what it leaves to
/// the filesystem is keeping them and the mode in step, as ext4 does:
/// - setting an access ACL sets the mode's rwx bits from it (and stores nothing when the
///   mode says it all); chmod rewrites a stored access ACL from the new mode;
/// - a new inode in a directory with a default ACL inherits it (the umask does not
///   apply; a directory also takes the default ACL), elsewhere the umask applies — the
///   mount asks the kernel not to apply it (FUSE_CAP_DONT_MASK) so that this can be
///   decided here.
/// Every step runs inside the change that needs it: a mode and its ACL never disagree.
extension VolumeDatabase {
    /// Whether any inode may have an xattr named `name` (known without a query).
    func mayHave(xattr name: [UInt8]) -> Bool { xattrNames.withLock { $0.contains(Data(name)) } }

    /// The mode a new inode gets and the ACLs it inherits from `parent` (see above).
    /// `umask` nil: the caller has applied it already (or there is none to apply).
    func inheritance(_ db: Database, parent: Int64, kind: Int64, mode: Int64,
                     umask: Int64?) throws -> (mode: Int64, access: PosixACL?, defaultACL: [UInt8]?) {
        if kind == InodeRecord.symlink { return (mode, nil, nil) }  // always rwxrwxrwx, as on Linux
        if mayHave(xattr: PosixACL.defaultName),
           let stored = try Self.xattr(db, parent, PosixACL.defaultName) {
            let inherited = try PosixACL(xattr: stored).inherited(mode: mode)
            return (inherited.mode, inherited.access, kind == InodeRecord.directory ? stored : nil)
        }
        return (umask.map { mode & ~($0 & 0o777) } ?? mode, nil, nil)
    }

    /// Stores the ACLs a new inode inherited.
    func storeInherited(_ db: Database, ino: Int64, access: PosixACL?, defaultACL: [UInt8]?) throws {
        if let access { try storeXattr(db, ino, PosixACL.accessName, access.xattr) }
        if let defaultACL { try storeXattr(db, ino, PosixACL.defaultName, defaultACL) }
    }

    /// setxattr of an ACL. An access ACL sets the rwx bits of the mode and, when the
    /// caller may not keep it (`mayKeepSetGID(gid)`: not in the file's group and not
    /// privileged), clears set-group-ID, as the kernel asks of filesystems that store
    /// ACLs; one that the mode alone says is not stored. A default ACL is for directories.
    func setACL(_ db: Database, _ record: InodeRecord, name: [UInt8], value: [UInt8], nowNs: Int64,
                mayKeepSetGID: (Int64) -> Bool) throws {
        var record = record
        let acl = try PosixACL(xattr: value)
        if name == PosixACL.accessName {
            record.mode = record.mode & ~0o777 | acl.modeBits
            if record.mode & Self.setGroupID != 0 && !mayKeepSetGID(record.gid) { record.mode &= ~Self.setGroupID }
            if acl.isEquivalentToMode { try deleteXattr(db, record.ino, name) } else { try storeXattr(db, record.ino, name, acl.xattr) }
        } else {
            guard record.isDirectory else { throw FSError(EACCES) }
            try storeXattr(db, record.ino, name, acl.xattr)
        }
        record.ctimeNs = nowNs
        try Self.store(db, record)
    }

    /// After a chmod: the stored access ACL, if any, takes the new mode's bits.
    func followMode(_ db: Database, ino: Int64, mode: Int64) throws {
        guard mayHave(xattr: PosixACL.accessName), let stored = try Self.xattr(db, ino, PosixACL.accessName) else { return }
        try storeXattr(db, ino, PosixACL.accessName, try PosixACL(xattr: stored).chmod(mode).xattr)
    }

    static func xattr(_ db: Database, _ ino: Int64, _ name: [UInt8]) throws -> [UInt8]? {
        try Data.fetchOne(db.cachedStatement(sql: "SELECT value FROM xattr WHERE ino = ? AND name = ?"), arguments: [ino, Data(name)])
            .map { [UInt8]($0) }
    }

    func storeXattr(_ db: Database, _ ino: Int64, _ name: [UInt8], _ value: [UInt8]) throws {
        // Known before the row commits, so no reader can miss it.
        xattrNames.withLock { _ = $0.insert(Data(name)) }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO xattr (ino, name, value) VALUES (?, ?, ?)").execute(arguments: [ino, Data(name), Data(value)])
    }

    func deleteXattr(_ db: Database, _ ino: Int64, _ name: [UInt8]) throws {
        try db.cachedStatement(sql: "DELETE FROM xattr WHERE ino = ? AND name = ?").execute(arguments: [ino, Data(name)])
    }
}
