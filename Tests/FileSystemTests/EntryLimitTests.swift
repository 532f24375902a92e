import Engine
import Foundation
import Metadata
import Testing
@testable import FileSystem

/// A volume holds at most `EntryLimit` inodes and extra names (one per 16 KiB of its size,
/// at least 65,536), as ext4 holds at most its inode count: past it a create, mkdir,
/// symlink or link is ENOSPC, and whatever frees an entry makes room again.
@Suite struct EntryLimitTests {
    @Test func theLimitFollowsTheProvisionedSize() {
        #expect(EntryLimit.entries(capacityBytes: 0) == 65_536)
        #expect(EntryLimit.entries(capacityBytes: 64 << 20) == 65_536)
        #expect(EntryLimit.entries(capacityBytes: 1 << 30) == 65_536)
        #expect(EntryLimit.entries(capacityBytes: 100 << 30) == 6_553_600)
    }

    @Test func createsAndLinksStopAtTheLimit() throws {
        let v = try LockScopeTests.Volume("remote-disk", volumeCapacity: 64 << 20)
        let fs = v.fs
        func n(_ s: String) -> [UInt8] { Array(s.utf8) }
        let start = try fs.statfs()
        #expect(start.entryLimit == 65_536 && start.entries == 1, "the root only")
        // Files, directories, symlinks and hard links all take one entry.
        let dir = try fs.create(parent: 1, name: n("d"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0).ino
        _ = try fs.create(parent: dir, name: n("s"), kind: InodeRecord.symlink, mode: 0o777, uid: 0, gid: 0, target: n("x"))
        let f = try v.file("f")
        _ = try fs.link(ino: f, newParent: dir, newName: n("f2"))
        #expect(try fs.statfs().entries == 5)
        var made = 5
        while true {
            do throws(FSError) {
                _ = try fs.create(parent: dir, name: n("e\(made)"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0)
                made += 1
            } catch {
                #expect(error == .noSpace)
                break
            }
            if made > 70_000 { break }
        }
        #expect(made == 65_536)
        let full = try fs.statfs()
        #expect(full.entries == 65_536 && full.entryLimit == 65_536)
        #expect(throws: FSError.noSpace) { try fs.link(ino: f, newParent: 1, newName: n("f3")) }
        #expect(throws: FSError.noSpace) { try fs.create(parent: 1, name: n("dir2"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0) }
        // A refusal took nothing: removing a name makes room for exactly one more.
        try fs.unlink(parent: dir, name: n("f2"))
        _ = try fs.link(ino: f, newParent: 1, newName: n("f3"))
        #expect(throws: FSError.noSpace) { try v.file("g") }
        // A file unlinked while open keeps its inode (and its entry) until closed; its
        // second name was an entry of its own.
        try fs.open(f)
        try fs.unlink(parent: 1, name: n("f"))
        try fs.unlink(parent: 1, name: n("f3"))
        _ = try v.file("g")
        #expect(throws: FSError.noSpace) { try v.file("g2") }
        try fs.release(f)
        _ = try v.file("g2")
        #expect(try fs.statfs().entries == 65_536)
        // A larger volume has room for more.
        _ = try v.engine.expandVolume(id: v.volumeID, capacityBytes: 2 << 30)
        #expect(try fs.statfs().entryLimit == 131_072)
        _ = try v.file("h")
    }
}
