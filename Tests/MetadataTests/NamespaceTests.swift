import Foundation
import GRDB
import Testing
@testable import Metadata

/// Namespace rules checked directly on the volume database (the mount passes flags and
/// names through unchanged).
@Suite struct NamespaceTests {
    func fresh() throws -> VolumeDatabase {
        let db = try VolumeDatabase(volumeID: "v")
        try db.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        return db
    }

    func n(_ s: String) -> [UInt8] { Array(s.utf8) }

    @Test func xattrNamesAreThoseOfALinuxFilesystem() {
        func verdict(_ name: String) -> FSError? {
            do throws(FSError) { try XattrName.check(n(name)); return nil } catch { return error }
        }
        for kept in ["user.a", "trusted.overlay.opaque", "security.capability", "security.selinux", "user.\u{e9}",
                     "system.posix_acl_access", "system.posix_acl_default"] {
            #expect(verdict(kept) == nil, "\(kept)")
        }
        for empty in ["user.", "trusted.", "security."] { #expect(verdict(empty) == .invalid, "\(empty)") }
        for refused in ["", "user", "bogus.x", "system.posix_acl_accessx", "system.foo", "system.nfs4_acl", "USER.x", "os2.x", ".user.x"] {
            #expect(verdict(refused) == .notSupported, "\(refused)")
        }
    }

    /// A file takes at most 65,000 names, as on ext4 (EMLINK past them); `usage` counts
    /// every inode and every name of a file past its first as an entry, a directory's
    /// link count (its subdirectories) not.
    @Test func linksStopAtExt4sLimitAndCountAsEntries() throws {
        let db = try fresh()
        let f = try db.create(parent: 1, name: n("f"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2).ino
        let d = try db.create(parent: 1, name: n("d"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 2).ino
        _ = try db.create(parent: d, name: n("sub"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 2)
        #expect(try db.usage().entries == 4 && db.usage().inodes == 4)
        for i in 1..<Int(VolumeDatabase.maxLinks) {
            _ = try db.link(ino: f, newParent: d, newName: n("l\(i)"), nowNs: 3)
        }
        #expect(try db.inode(f).nlink == VolumeDatabase.maxLinks)
        #expect(throws: FSError.tooManyLinks) { try db.link(ino: f, newParent: 1, newName: n("one-more"), nowNs: 4) }
        #expect(try db.usage().entries == 4 + VolumeDatabase.maxLinks - 1)
        _ = try db.unlink(parent: d, name: n("l1"), nowNs: 5) { _ in true }
        _ = try db.link(ino: f, newParent: 1, newName: n("one-more"), nowNs: 6)
        #expect(try db.usage().inodes == 4)
    }

    /// An inode's xattrs stop at the limits with ENOSPC (ext4 stops near 4 KiB): names
    /// that `listxattr` can still return in 64 KiB, and 256 KiB of names and values. A
    /// replacement counts the new value instead of the old one; a refusal changes nothing
    /// of the open namespace batch; what was kept still lists.
    @Test func xattrsStopAtTheLimits() throws {
        let db = try fresh()
        let f = try db.create(parent: 1, name: n("f"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2).ino
        // Names: 30 bytes each, 31 in the list.
        func name(_ i: Int) -> [UInt8] { n("user." + String(format: "%025d", i)) }
        var kept = 0
        while true {
            do throws(FSError) {
                try db.setXattr(ino: f, name: name(kept), value: [1], flags: 0, nowNs: 3)
                kept += 1
            } catch {
                #expect(error == .noSpace)
                break
            }
        }
        #expect(kept == XattrLimits.listBytes / 31)
        let listed = try db.listXattr(ino: f)
        #expect(listed.count == kept && listed.reduce(0) { $0 + $1.count + 1 } <= XattrLimits.listBytes)
        // Replacing one of them still fits; another name does not.
        try db.setXattr(ino: f, name: name(0), value: [2, 2], flags: 0, nowNs: 4)
        #expect(throws: FSError.noSpace) { try db.setXattr(ino: f, name: n("user.x"), value: [], flags: 0, nowNs: 5) }
        // Values: four of the largest size fit in 256 KiB with their names, a fifth does not.
        let g = try db.create(parent: 1, name: n("g"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2).ino
        let big = [UInt8](repeating: 7, count: 65_536 - 16)
        for i in 0..<4 { try db.setXattr(ino: g, name: n("user.v\(i)"), value: big, flags: 0, nowNs: 6) }
        #expect(throws: FSError.noSpace) { try db.setXattr(ino: g, name: n("user.v4"), value: big, flags: 0, nowNs: 7) }
        // A smaller value in place of a big one makes room.
        try db.setXattr(ino: g, name: n("user.v0"), value: [1], flags: 0, nowNs: 8)
        try db.setXattr(ino: g, name: n("user.v4"), value: big, flags: 0, nowNs: 9)
        #expect(try db.getXattr(ino: g, name: n("user.v4")) == big)
        // Refusals left the namespace as it was (nothing rolled back with them).
        #expect(try db.getXattr(ino: f, name: name(0)) == [2, 2])
        #expect(try db.lookup(parent: 1, name: n("f")).ino == f)
    }

    /// Inode rows read straight from SQLite (`InodeRows`) equal what GRDB's own decoding
    /// reads, for every column: catches a column order the raw reader does not expect.
    @Test func rawInodeRowsMatchGRDBDecoding() throws {
        let db = try fresh()
        let records = [
            InodeRecord(ino: 7, kind: InodeRecord.regular, mode: 0o4755, uid: 4_000_000_000, gid: 65_534, size: 5 << 32, nlink: 3,
                        rdev: 0, atimeNs: -1_000_000_001, mtimeNs: 1 << 62, ctimeNs: 17),
            InodeRecord(ino: 8, kind: InodeRecord.symlink, mode: 0o777, uid: 1, gid: 2, size: 4, nlink: 1, rdev: 0,
                        atimeNs: 1, mtimeNs: 2, ctimeNs: 3, target: Data([0x61, 0, 0xff, 0x62])),
            InodeRecord(ino: 9, kind: 2, mode: 0o600, uid: 0, gid: 0, nlink: 1, rdev: 0x0103, atimeNs: 4, mtimeNs: 5, ctimeNs: 6,
                        target: Data()),
        ]
        try db.writer.write { d in
            for r in records {
                try r.insert(d)
                try d.execute(sql: "INSERT INTO dentry (parent, name, ino) VALUES (1, ?, ?)", arguments: [Data("n\(r.ino)".utf8), r.ino])
            }
        }
        try db.writer.read { d in
            for r in records {
                let viaGRDB = try InodeRecord.fetchOne(d, sql: "SELECT * FROM inode WHERE ino = ?", arguments: [r.ino])
                #expect(viaGRDB == r)
                #expect(try VolumeDatabase.fetchInode(d, r.ino) == viaGRDB)
                #expect(try VolumeDatabase.child(d, 1, Array("n\(r.ino)".utf8)) == viaGRDB)
            }
            #expect(try VolumeDatabase.fetchInode(d, 99) == nil)
            #expect(try VolumeDatabase.child(d, 1, Array("n99".utf8)) == nil)
        }
    }

    /// The inode cache never answers with an inode older than the database: every kind
    /// of change (namespace calls, data commits, raw SQL) drops the cached copy, and an
    /// insert racing with a change is refused.
    @Test func inodeCacheFollowsEveryChange() throws {
        let db = try fresh()
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        #expect(try db.inode(a.ino).mode == 0o644)  // now cached
        _ = try db.setattr(ino: a.ino, mode: 0o600, chunkSize: 4096, nowNs: 3)
        #expect(try db.inode(a.ino).mode == 0o600)
        try db.commitWrites([.init(ino: a.ino, size: 777, mtimeNs: 4)], slices: [], objects: [])
        #expect(try db.inode(a.ino).size == 777)
        try db.writer.write { d in try d.execute(sql: "UPDATE inode SET uid = 42 WHERE ino = ?", arguments: [a.ino]) }
        #expect(try db.inode(a.ino).uid == 42)
        #expect(try db.inode(1).mtimeNs == 2)
        _ = try db.unlink(parent: 1, name: n("a"), nowNs: 5)
        #expect(try db.inode(a.ino).nlink == 0)
        #expect(try db.inode(1).mtimeNs == 5)  // the parent was touched
        // A reader that fetched before a change must not cache what it fetched.
        let stale = try db.inode(1)
        let seen = db.inodes.generation
        _ = try db.create(parent: 1, name: n("b"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 6)
        db.inodes.insert(stale, ifGeneration: seen)
        #expect(try db.inode(1).mtimeNs == 6)
        // A change's own inodes are in the cache, as committed, without another query.
        let c = try db.create(parent: 1, name: n("c"), kind: InodeRecord.regular, mode: 0o600, uid: 3, gid: 0, nowNs: 9)
        #expect(db.inodes.get(1)?.mtimeNs == 9)
        #expect(db.inodes.get(c.ino) == c)
        // A rolled-back change leaves nothing stale either.
        _ = try? db.writer.write { d in
            try d.execute(sql: "UPDATE inode SET uid = 7 WHERE ino = 1")
            throw FSError.io
        }
        #expect(try db.inode(1).uid == 0)
        // A deleted inode leaves the cache with its change (read back as gone, no query):
        // neither the cache nor a lookup finds it, and its name is gone from the directory.
        #expect(try db.inode(c.ino) == c)
        let gone = try db.unlink(parent: 1, name: n("c"), nowNs: 10, deleteIfUnused: { _ in true })
        #expect(gone.deleted == [])
        #expect(db.inodes.get(c.ino) == nil)
        #expect(throws: FSError.noEntry) { try db.inode(c.ino) }
        #expect(throws: FSError.noEntry) { try db.lookup(parent: 1, name: n("c")) }
        #expect(db.inodes.get(1)?.mtimeNs == 10)
        // Unlinking a directory is refused and changes nothing.
        let d = try db.create(parent: 1, name: n("d"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 11)
        #expect(throws: FSError.isDirectory) { try db.unlink(parent: 1, name: n("d"), nowNs: 12) }
        #expect(try db.lookup(parent: 1, name: n("d")).ino == d.ino)
    }

    @Test func renameFlags() throws {
        let db = try fresh()
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let b = try db.create(parent: 1, name: n("b"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        #expect(throws: FSError.exists) {
            _ = try db.rename(parent: 1, name: n("a"), newParent: 1, newName: n("b"), flags: VolumeDatabase.renameNoReplace, nowNs: 3)
        }
        // Exchange swaps the two names atomically.
        #expect(try db.rename(parent: 1, name: n("a"), newParent: 1, newName: n("b"), flags: VolumeDatabase.renameExchange, nowNs: 3) == nil)
        #expect(try db.lookup(parent: 1, name: n("a")).ino == b.ino)
        #expect(try db.lookup(parent: 1, name: n("b")).ino == a.ino)
        // Exchange needs both names; both flags together are invalid.
        #expect(throws: FSError.noEntry) {
            _ = try db.rename(parent: 1, name: n("a"), newParent: 1, newName: n("zzz"), flags: VolumeDatabase.renameExchange, nowNs: 4)
        }
        #expect(throws: FSError.invalid) {
            _ = try db.rename(parent: 1, name: n("a"), newParent: 1, newName: n("b"), flags: 3, nowNs: 4)
        }
        // Exchanging a directory and a file across directories moves the link counts.
        let d = try db.create(parent: 1, name: n("d"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 5)
        let e = try db.create(parent: 1, name: n("e"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 5)
        _ = try db.create(parent: e.ino, name: n("f"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 5)
        _ = try db.rename(parent: 1, name: n("d"), newParent: e.ino, newName: n("f"), flags: VolumeDatabase.renameExchange, nowNs: 6)
        #expect(try db.lookup(parent: e.ino, name: n("f")).ino == d.ino)
        #expect(try db.inode(e.ino).nlink == 3)
        #expect(try db.inode(1).nlink == 3)  // root: 2 + e (d moved into e, the file came up)
    }

    @Test func namesAreBytes() throws {
        let db = try fresh()
        let odd: [UInt8] = [0xff, 0xfe, 0x41]  // not UTF-8
        _ = try db.create(parent: 1, name: odd, kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 1)
        #expect(try db.readdir(ino: 1, offset: 0, limit: 10).map(\.name) == [odd])
        #expect(throws: FSError.nameTooLong) {
            _ = try db.create(parent: 1, name: [UInt8](repeating: 0x61, count: 256), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 1)
        }
    }

    /// On a volume's database file, namespace changes share one open transaction: other
    /// connections see them only once it commits (its window passing, a sync, a
    /// transaction of object rows, or an unlink whose objects are deleted next), a refused
    /// change keeps the batch, and what commits is every change in its order.
    @Test func namespaceChangesAreBatched() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-batch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/v.sqlite"
        // A window long enough that a loaded machine cannot pass it between the changes
        // and the check that they are not committed yet.
        let db = try VolumeDatabase(path: path, volumeID: "v", batchWindow: .milliseconds(500))
        try db.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        try db.commitNamespaceChanges()
        let other = try DatabaseQueue(path: path)
        func committedNames() throws -> [String] {
            try other.read { d in try Data.fetchAll(d, sql: "SELECT name FROM dentry ORDER BY name").map { String(decoding: $0, as: UTF8.self) } }
        }
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        _ = try db.create(parent: 1, name: n("b"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 2)
        #expect(throws: FSError.exists) {
            _ = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 3)
        }
        // Seen at once through the namespace, not yet by another connection.
        #expect(try db.lookup(parent: 1, name: n("a")).ino == a.ino)
        #expect(try db.readdir(ino: 1, offset: 0, limit: 10).count == 2)
        #expect(try committedNames() == [])
        // The window passes: committed, the refused create changed nothing.
        var waitedMs = 0
        while try committedNames() != ["a", "b"], waitedMs < 5000 { Thread.sleep(forTimeInterval: 0.002); waitedMs += 2 }
        #expect(try committedNames() == ["a", "b"])
        // An object row's transaction commits the open batch first.
        _ = try db.rename(parent: 1, name: n("a"), newParent: 1, newName: n("c"), flags: 0, nowNs: 4)
        let object = String(repeating: "b", count: 32)
        try db.beginObject(ObjectRecord(id: object, poolID: 1, pg: 0, sizeBytes: 10, state: .writing, createdMs: 0))
        #expect(try committedNames() == ["b", "c"])
        // An unlink that frees objects is committed before it returns (their shards go next).
        try db.commitWrites([.init(ino: a.ino, size: 10, mtimeNs: 5)],
                            slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 0, len: 10, object: object)], objects: [object])
        _ = try db.create(parent: 1, name: n("d"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 6)
        let gone = try db.unlink(parent: 1, name: n("c"), nowNs: 7, deleteIfUnused: { _ in true })
        #expect(gone.deleted == [object])
        #expect(try committedNames() == ["b", "d"])
        #expect(try other.read { d in try String.fetchOne(d, sql: "SELECT state FROM object WHERE id = ?", arguments: [object]) } == "deleting")
        // A sync commits (and fsyncs) whatever is open.
        _ = try db.create(parent: 1, name: n("e"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 8)
        try db.syncNamespace()
        #expect(try committedNames() == ["b", "d", "e"])
    }

    /// A committed slice that covers older ones whole takes their place: they are deleted,
    /// and the objects no slice names any more come back for retiring. Slices it covers in
    /// part, and objects other slices still name, stay.
    @Test func aSliceCoveringOlderOnesWholeFreesTheirObjects() throws {
        let db = try fresh()
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let (pair, small, whole) = (String(repeating: "1", count: 32), String(repeating: "2", count: 32), String(repeating: "3", count: 32))
        for object in [pair, small, whole] {
            try db.beginObject(ObjectRecord(id: object, poolID: 1, pg: 0, sizeBytes: 200, state: .writing, createdMs: 0))
        }
        // Chunks 0 and 1 from one object of two chunks (100 bytes each); a small write on chunk 0.
        #expect(try db.commitWrites([.init(ino: a.ino, size: 200, mtimeNs: 3)],
                                    slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 0, len: 100, object: pair),
                                             SliceRecord(ino: a.ino, chunk: 1, pos: 0, len: 100, object: pair, objectOff: 100)],
                                    objects: [pair]) == [])
        #expect(try db.commitWrites([.init(ino: a.ino, size: 200, mtimeNs: 4)],
                                    slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 10, len: 20, object: small)], objects: [small]) == [])
        // A write over [5, 40) of chunk 0 covers the small slice whole, the pair's in part.
        let patch = String(repeating: "4", count: 32)
        try db.beginObject(ObjectRecord(id: patch, poolID: 1, pg: 0, sizeBytes: 35, state: .writing, createdMs: 0))
        #expect(try db.commitWrites([.init(ino: a.ino, size: 200, mtimeNs: 5)],
                                    slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 5, len: 35, object: patch)], objects: [patch]) == [small])
        #expect(try db.slices(ino: a.ino, chunk: 0).map(\.object) == [pair, patch])
        // Chunk 0 rewritten whole: the pair still backs chunk 1.
        #expect(try db.commitWrites([.init(ino: a.ino, size: 200, mtimeNs: 6)],
                                    slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 0, len: 100, object: whole)], objects: [whole]) == [patch])
        #expect(try db.slices(ino: a.ino, chunk: 0).map(\.object) == [whole])
        // Chunk 1 rewritten whole, from the second half of the same object: the pair is free.
        #expect(try db.commitWrites([.init(ino: a.ino, size: 200, mtimeNs: 7)],
                                    slices: [SliceRecord(ino: a.ino, chunk: 1, pos: 0, len: 100, object: whole, objectOff: 100)],
                                    objects: []) == [pair])
        #expect(try db.slices(ino: a.ino, chunk: 1).map(\.object) == [whole])
        #expect(try db.unreferencedLiveObjects().sorted() == [pair, patch, small].sorted())
    }

    /// Deleting an inode that still has a name (the unlink that took its last one was
    /// rolled back with a failed batch) keeps it and its objects.
    @Test func deletingALinkedInodeKeepsItsObjects() throws {
        let db = try fresh()
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let object = String(repeating: "c", count: 32)
        try db.beginObject(ObjectRecord(id: object, poolID: 1, pg: 0, sizeBytes: 10, state: .writing, createdMs: 0))
        try db.commitWrites([.init(ino: a.ino, size: 10, mtimeNs: 3)],
                            slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 0, len: 10, object: object)], objects: [object])
        #expect(try db.deleteInode(a.ino) == [])
        #expect(try db.inode(a.ino).nlink == 1)
        #expect(try db.object(id: object)?.state == .live)
        _ = try db.unlink(parent: 1, name: n("a"), nowNs: 4)
        #expect(try db.deleteInode(a.ino) == [object])
        #expect(try db.object(id: object)?.state == .deleting)
    }

    /// An inode number is never handed out twice while the database is open, even once
    /// the highest one is deleted (SQLite alone would reuse it).
    @Test func inodeNumbersAreNotReused() throws {
        let db = try fresh()
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let removed = try db.unlink(parent: 1, name: n("a"), nowNs: 3, deleteIfUnused: { _ in true })
        #expect(removed.deleted == [])
        let b = try db.create(parent: 1, name: n("b"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 4)
        #expect(b.ino > a.ino)
    }

    /// An unlinked inode takes its slices and xattrs with it (the filesystem deletes them;
    /// no cascade does), and frees only the objects no other file's slices name.
    @Test func deletingAnInodeTakesItsSlicesAndXattrs() throws {
        let db = try fresh()
        let a = try db.create(parent: 1, name: n("a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let b = try db.create(parent: 1, name: n("b"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let shared = String(repeating: "d", count: 32), own = String(repeating: "e", count: 32)
        for object in [shared, own] {
            try db.beginObject(ObjectRecord(id: object, poolID: 1, pg: 0, sizeBytes: 20, state: .writing, createdMs: 0))
        }
        try db.commitWrites([.init(ino: a.ino, size: 30, mtimeNs: 3), .init(ino: b.ino, size: 10, mtimeNs: 3)],
                            slices: [SliceRecord(ino: a.ino, chunk: 0, pos: 0, len: 10, object: shared),
                                     SliceRecord(ino: a.ino, chunk: 0, pos: 10, len: 10, object: own),
                                     SliceRecord(ino: a.ino, chunk: 0, pos: 20, len: 10, object: own, objectOff: 10),
                                     SliceRecord(ino: b.ino, chunk: 0, pos: 0, len: 10, object: shared, objectOff: 10)],
                            objects: [shared, own])
        _ = try db.setattr(ino: a.ino, size: 40, chunkSize: 1 << 20, nowNs: 4)  // a hole slice too
        try db.setXattr(ino: a.ino, name: n("user.k"), value: [1], flags: 0, nowNs: 4)
        try db.setXattr(ino: b.ino, name: n("user.k"), value: [2], flags: 0, nowNs: 4)
        let gone = try db.unlink(parent: 1, name: n("a"), nowNs: 5, deleteIfUnused: { _ in true })
        #expect(gone.deleted == [own])
        let left = try db.writer.read { d in
            (try Int.fetchOne(d, sql: "SELECT count(*) FROM slice WHERE ino = ?", arguments: [a.ino]),
             try Int.fetchOne(d, sql: "SELECT count(*) FROM xattr WHERE ino = ?", arguments: [a.ino]),
             try Row.fetchAll(d, sql: "PRAGMA foreign_key_check").count)
        }
        #expect(left.0 == 0 && left.1 == 0 && left.2 == 0)
        #expect(try db.slices(ino: b.ino, chunk: 0).map(\.object) == [shared])
        #expect(try db.getXattr(ino: b.ino, name: n("user.k")) == [2])
        #expect(try db.object(id: shared)?.state == .live)
        #expect(try db.object(id: own)?.state == .deleting)
    }

    /// A cut hands back the objects no slice references any more; a punched hole deletes
    /// the slices of the chunks it covers whole and shadows the ones it covers in part.
    @Test func cutsAndHolesHandBackTheirObjects() throws {
        let db = try fresh()
        let f = try db.create(parent: 1, name: n("f"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let g = try db.create(parent: 1, name: n("g"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        let objects = (0..<6).map { String(repeating: String($0), count: 32) }
        for object in objects {
            try db.beginObject(ObjectRecord(id: object, poolID: 1, pg: 0, sizeBytes: 100, state: .writing, createdMs: 0))
        }
        // f: chunks 0...4 of 100 bytes, one object each (object 4 also holds g's bytes); f is 450 bytes.
        try db.commitWrites([.init(ino: f.ino, size: 450, mtimeNs: 3), .init(ino: g.ino, size: 10, mtimeNs: 3)],
                            slices: (0..<5).map { SliceRecord(ino: f.ino, chunk: Int64($0), pos: 0, len: $0 == 4 ? 50 : 100, object: objects[$0]) }
                                + [SliceRecord(ino: g.ino, chunk: 0, pos: 0, len: 10, object: objects[4], objectOff: 50)],
                            objects: Array(objects.prefix(5)))
        // Data bytes (st_blocks) at chunk granularity, cached and dropped with the inode.
        #expect(try db.dataBytes(db.inode(f.ino), chunkSize: 100) == 450)
        #expect(try db.dataBytes(db.inode(f.ino), chunkSize: 100) == 450, "cached")
        // Bytes 150..<420: chunk 1 in part, chunks 2 and 3 whole, chunk 4 in part.
        let punched = try db.punchHole(ino: f.ino, range: 150..<420, chunkSize: 100, nowNs: 4)
        #expect(Set(punched.freed) == [objects[2], objects[3]])
        #expect(punched.partial == [1, 4])
        #expect(try db.slices(ino: f.ino, chunk: 1).map { [$0.pos, $0.len] } == [[0, 100], [50, 50]])
        #expect(try db.slices(ino: f.ino, chunk: 1).last?.object == nil)
        #expect(try db.slices(ino: f.ino, chunk: 2).isEmpty && db.slices(ino: f.ino, chunk: 3).isEmpty)
        #expect(try db.slices(ino: f.ino, chunk: 4).map { [$0.pos, $0.len] } == [[0, 50], [0, 20]])
        #expect(try db.inode(f.ino).size == 450 && db.inode(f.ino).mtimeNs == 4)
        #expect(try db.dataBytes(db.inode(f.ino), chunkSize: 100) == 250, "chunks 0, 1 and 4 (50 bytes) hold data")
        // To the end of the file: its last chunk counts as whole, past the end nothing happens.
        #expect(try db.punchHole(ino: f.ino, range: 400..<10_000, chunkSize: 100, nowNs: 5).freed.isEmpty, "g still uses object 4")
        #expect(try db.slices(ino: f.ino, chunk: 4).isEmpty)
        #expect(try db.punchHole(ino: f.ino, range: 450..<500, chunkSize: 100, nowNs: 5) == ([], []))
        // A cut to 120: chunk 1 keeps its object under a hole, chunk 0 is untouched.
        let cut = try db.setattr(ino: f.ino, size: 120, chunkSize: 100, nowNs: 6)
        #expect(cut.freed.isEmpty && cut.record.size == 120)
        #expect(try db.dataBytes(cut.record, chunkSize: 100) == 120)
        #expect(try db.setattr(ino: f.ino, size: 100, chunkSize: 100, nowNs: 7).freed == [objects[1]])
        #expect(try db.setattr(ino: f.ino, size: 0, chunkSize: 100, nowNs: 8).freed == [objects[0]])
        #expect(throws: FSError.isDirectory) { try db.punchHole(ino: 1, range: 0..<1, chunkSize: 100, nowNs: 9) }
    }

    /// A volume made before migration v5 (constraints rebuilt) keeps every row of its
    /// namespace through it, and its foreign keys still hold.
    @Test func theConstraintMigrationKeepsTheNamespace() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-v5-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/v.sqlite"
        let object = String(repeating: "f", count: 32)
        do {
            var configuration = Configuration()
            configuration.foreignKeysEnabled = true
            let old = try DatabaseQueue(path: path, configuration: configuration)
            try VolumeMigrations.migrator.migrate(old, upTo: "v4-settling-objects")
            try old.write { d in
                try d.execute(sql: """
                    INSERT INTO object (id, pool_id, pg, size_bytes, state, created_ms) VALUES ('\(object)', 1, 0, 5, 'live', 0);
                    INSERT INTO inode VALUES (1, 4, 493, 0, 0, 0, 2, 0, 1, 1, 1, NULL);
                    INSERT INTO inode VALUES (2, 8, 420, 7, 8, 5, 1, 0, 2, 3, 4, NULL);
                    INSERT INTO inode VALUES (3, 10, 511, 0, 0, 1, 1, 0, 2, 2, 2, x'61');
                    INSERT INTO dentry VALUES (1, x'66', 2);
                    INSERT INTO dentry VALUES (1, x'6c', 3);
                    INSERT INTO slice (id, ino, chunk, pos, len, object, object_off) VALUES (9, 2, 0, 0, 5, '\(object)', 0);
                    INSERT INTO xattr VALUES (2, x'757365722e6b', x'01');
                    """)
            }
        }
        let db = try VolumeDatabase(path: path, volumeID: "v")
        #expect(try db.inode(2) == InodeRecord(ino: 2, kind: InodeRecord.regular, mode: 0o644, uid: 7, gid: 8, size: 5, nlink: 1,
                                                atimeNs: 2, mtimeNs: 3, ctimeNs: 4))
        #expect(try db.inode(3).target == Data("a".utf8))
        #expect(try db.lookup(parent: 1, name: n("f")).ino == 2)
        #expect(try db.slices(ino: 2, chunk: 0).map(\.id) == [9])
        #expect(try db.getXattr(ino: 2, name: n("user.k")) == [1])
        let schema = try db.writer.read { d in
            try String.fetchAll(d, sql: "SELECT sql FROM sqlite_schema WHERE name IN ('inode', 'slice', 'xattr', 'slice_by_chunk', 'slice_by_object')")
        }
        #expect(schema.count == 5)
        #expect(!schema.contains { $0.contains("CASCADE") || $0.contains("IN (") || $0.contains("_v5") })
        #expect(try db.writer.read { d in try Row.fetchAll(d, sql: "PRAGMA foreign_key_check").count } == 0)
        let gone = try db.unlink(parent: 1, name: n("f"), nowNs: 9, deleteIfUnused: { _ in true })
        #expect(gone.deleted == [object])
        // A kind the check refuses is still refused.
        #expect(throws: (any Error).self) {
            try db.writer.write { d in try d.execute(sql: "INSERT INTO inode VALUES (5, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, NULL)") }
        }
    }

    /// An access ACL and the mode stay in step: setting one sets the mode's rwx bits (and
    /// stores nothing a mode can say), chmod rewrites it; set-group-ID goes when the
    /// setter is not in the file's group; a default ACL is for directories only.
    @Test func accessACLsAndModesStayInStep() throws {
        let db = try fresh()
        let f = try db.create(parent: 1, name: n("f"), kind: InodeRecord.regular, mode: 0o2644, uid: 5, gid: 6, nowNs: 2)
        let acl = try PosixACL(entries: [.init(tag: PosixACL.userObj, perm: 6), .init(tag: PosixACL.user, perm: 6, id: 7),
                                         .init(tag: PosixACL.groupObj, perm: 4), .init(tag: PosixACL.mask, perm: 6),
                                         .init(tag: PosixACL.other, perm: 0)])
        try db.setXattr(ino: f.ino, name: PosixACL.accessName, value: acl.xattr, flags: 0, nowNs: 3)
        #expect(try db.inode(f.ino).mode == 0o2660)
        #expect(try db.inode(f.ino).ctimeNs == 3)
        #expect(try db.getXattr(ino: f.ino, name: PosixACL.accessName) == acl.xattr)
        _ = try db.setattr(ino: f.ino, mode: 0o2604, chunkSize: 1 << 20, nowNs: 4)
        #expect(try PosixACL(xattr: db.getXattr(ino: f.ino, name: PosixACL.accessName)) == acl.chmod(0o604))
        // Set by someone outside group 6: set-group-ID goes.
        try db.setXattr(ino: f.ino, name: PosixACL.accessName, value: acl.xattr, flags: 0, nowNs: 5) { $0 != 6 }
        #expect(try db.inode(f.ino).mode == 0o660)
        // A mode-only ACL sets the mode and leaves no xattr.
        try db.setXattr(ino: f.ino, name: PosixACL.accessName, value: PosixACL(mode: 0o640).xattr, flags: 0, nowNs: 6)
        #expect(try db.inode(f.ino).mode == 0o640)
        #expect(throws: FSError.noData) { _ = try db.getXattr(ino: f.ino, name: PosixACL.accessName) }
        try db.removeXattr(ino: f.ino, name: PosixACL.accessName, nowNs: 7)  // not there: still fine, and no change
        #expect(try db.inode(f.ino).ctimeNs == 6)
        #expect(throws: FSError(EACCES)) {
            try db.setXattr(ino: f.ino, name: PosixACL.defaultName, value: acl.xattr, flags: 0, nowNs: 8)
        }
        #expect(throws: FSError.invalid) {
            try db.setXattr(ino: f.ino, name: PosixACL.accessName, value: [2, 0, 0, 0, 1], flags: 0, nowNs: 8)
        }
        #expect(throws: FSError.noData) { try db.removeXattr(ino: f.ino, name: n("user.absent"), nowNs: 9) }
    }

    /// New inodes inherit a directory's default ACL (subdirectories keep passing it on)
    /// and the umask is not applied; elsewhere it is; symlinks take neither.
    @Test func newInodesInheritTheDefaultACLOrTakeTheUmask() throws {
        let db = try fresh()
        let plain = try db.create(parent: 1, name: n("plain"), kind: InodeRecord.regular, mode: 0o666, uid: 0, gid: 0, umask: 0o027, nowNs: 2)
        #expect(plain.mode == 0o640)
        let d = try db.create(parent: 1, name: n("d"), kind: InodeRecord.directory, mode: 0o777, uid: 0, gid: 0, umask: 0o022, nowNs: 2)
        #expect(d.mode == 0o755)
        let inheritable = try PosixACL(entries: [.init(tag: PosixACL.userObj, perm: 7), .init(tag: PosixACL.user, perm: 7, id: 9),
                                                 .init(tag: PosixACL.groupObj, perm: 5), .init(tag: PosixACL.mask, perm: 7),
                                                 .init(tag: PosixACL.other, perm: 5)])
        try db.setXattr(ino: d.ino, name: PosixACL.defaultName, value: inheritable.xattr, flags: 0, nowNs: 3)
        let file = try db.create(parent: d.ino, name: n("f"), kind: InodeRecord.regular, mode: 0o666, uid: 0, gid: 0, umask: 0o077, nowNs: 4)
        #expect(file.mode == 0o664)
        #expect(try PosixACL(xattr: db.getXattr(ino: file.ino, name: PosixACL.accessName)) == inheritable.inherited(mode: 0o666).access)
        #expect(throws: FSError.noData) { _ = try db.getXattr(ino: file.ino, name: PosixACL.defaultName) }
        let sub = try db.create(parent: d.ino, name: n("s"), kind: InodeRecord.directory, mode: 0o777, uid: 0, gid: 0, umask: 0o077, nowNs: 4)
        #expect(sub.mode == 0o775)
        #expect(try db.getXattr(ino: sub.ino, name: PosixACL.defaultName) == inheritable.xattr)
        let link = try db.create(parent: d.ino, name: n("l"), kind: InodeRecord.symlink, mode: 0o777, uid: 0, gid: 0,
                                 target: n("f"), umask: 0o077, nowNs: 4)
        #expect(link.mode == 0o777)
        #expect(try db.listXattr(ino: link.ino).isEmpty)
        // A removed directory takes its ACLs with it.
        _ = try db.rmdir(parent: d.ino, name: n("s"), nowNs: 5)
        #expect(try db.deleteInode(sub.ino) == [])
        #expect(try db.writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM xattr WHERE ino = ?", arguments: [sub.ino]) } == 0)
    }
}
