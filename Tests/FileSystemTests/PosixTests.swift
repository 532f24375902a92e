import CLinux
import CFuse3
import Foundation
import Testing
@testable import FileSystem

/// POSIX behaviour on a real mount, error codes included. Runs as root; permission checks
/// are exercised as `nobody` through runuser.
@Suite(.serialized) struct PosixTests {
    @Test(arguments: ["replicated-3", "ec-4-2", "remote-disk"])
    func filesAndDirectories(storageClass: String) throws {
        let v = try MountedVolume(storageClass: storageClass)
        // Create, write, read back; sizes above one chunk and not aligned.
        let data = pattern(300_001, seed: 1)
        #expect(writeFile(v.path("f"), data) == 0)
        expectSame(readFile(v.path("f")), data)
        // O_APPEND.
        #expect(writeFile(v.path("f"), [1, 2, 3], flags: O_WRONLY | O_APPEND) == 0)
        expectSame(readFile(v.path("f")), data + [1, 2, 3])
        // O_TRUNC.
        #expect(writeFile(v.path("f"), [9]) == 0)
        #expect(readFile(v.path("f")) == [9])
        // O_TRUNC with O_RDONLY truncates too, as Linux does (the kernel has checked write access).
        let readOnlyTrunc = open(v.path("f"), O_RDONLY | O_TRUNC)
        #expect(readOnlyTrunc >= 0)
        close(readOnlyTrunc)
        #expect(readFile(v.path("f")) == [])
        #expect(writeFile(v.path("f"), [9]) == 0)
        // Sparse files read zeros, including above 4 GiB.
        let fd = open(v.path("sparse"), O_WRONLY | O_CREAT, 0o644)
        #expect(fd >= 0)
        let far: off_t = 5 << 30
        #expect([UInt8]([7, 7]).withUnsafeBytes { pwrite(fd, $0.baseAddress, 2, far) } == 2)
        close(fd)
        var st = stat()
        #expect(stat(v.path("sparse"), &st) == 0)
        #expect(st.st_size == Int(far) + 2)
        let rfd = open(v.path("sparse"), O_RDONLY)
        var buf = [UInt8](repeating: 0xFF, count: 8)
        #expect(pread(rfd, &buf, 8, far - 6) == 8)
        #expect(buf == [0, 0, 0, 0, 0, 0, 7, 7])
        #expect(pread(rfd, &buf, 8, 1000) == 8)
        #expect(buf == [UInt8](repeating: 0, count: 8))
        close(rfd)
        // Truncate down then up: the cut part reads as zeros.
        #expect(writeFile(v.path("t"), pattern(200_000, seed: 2)) == 0)
        #expect(truncate(v.path("t"), 1000) == 0)
        #expect(truncate(v.path("t"), 150_000) == 0)
        let t = readFile(v.path("t"))!
        expectSame(Array(t[0..<1000]), Array(pattern(200_000, seed: 2)[0..<1000]))
        #expect(t.count == 150_000)
        #expect(t[1000...].allSatisfy { $0 == 0 })
        // Directories.
        #expect(mkdir(v.path("d"), 0o755) == 0)
        #expect(errnoOf(mkdir(v.path("d"), 0o755)) == EEXIST)
        #expect(writeFile(v.path("d/inner"), [1]) == 0)
        #expect(errnoOf(rmdir(v.path("d"))) == ENOTEMPTY)
        #expect(errnoOf(unlink(v.path("d"))) == EISDIR)
        #expect(errnoOf(open(v.path("d"), O_WRONLY)) == EISDIR)
        #expect(errnoOf(open(v.path("missing"), O_RDONLY)) == ENOENT)
        #expect(errnoOf(mkdir(v.path("f/x"), 0o755)) == ENOTDIR)
        #expect(errnoOf(open(v.path(String(repeating: "n", count: 256)), O_WRONLY | O_CREAT, 0o644)) == ENAMETOOLONG)
        #expect(try FileManager.default.contentsOfDirectory(atPath: v.mountpoint).sorted() == ["d", "f", "sparse", "t"])
        // Directory link counts: 2 + subdirectories.
        #expect(mkdir(v.path("d/sub"), 0o755) == 0)
        #expect(stat(v.path("d"), &st) == 0 && st.st_nlink == 3)
        // Rename: replace a file; move a directory; a directory into itself is refused.
        #expect(writeFile(v.path("a"), [1]) == 0)
        #expect(writeFile(v.path("b"), [2]) == 0)
        #expect(rename(v.path("a"), v.path("b")) == 0)
        #expect(readFile(v.path("b")) == [1] && access(v.path("a"), F_OK) != 0)
        #expect(rename(v.path("d"), v.path("e")) == 0)
        #expect(errnoOf(rename(v.path("e"), v.path("e/sub/x"))) == EINVAL)
        #expect(errnoOf(rename(v.path("b"), v.path("e"))) == EISDIR)
        // Across filesystems: EXDEV (from the kernel).
        #expect(errnoOf(rename(v.path("b"), v.root + "/outside")) == EXDEV)
        // Hard links and nlink; symlinks.
        #expect(link(v.path("b"), v.path("b2")) == 0)
        #expect(stat(v.path("b"), &st) == 0 && st.st_nlink == 2)
        #expect(unlink(v.path("b")) == 0)
        #expect(stat(v.path("b2"), &st) == 0 && st.st_nlink == 1)
        #expect(readFile(v.path("b2")) == [1])
        #expect(symlink("e/inner", v.path("s")) == 0)
        #expect(readFile(v.path("s")) == [1])
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: v.path("s")) == "e/inner")
        #expect(errnoOf(link(v.path("e"), v.path("e2"))) == EPERM)
        // Unlinked while open: still readable until closed.
        #expect(writeFile(v.path("ghost"), [4, 5, 6]) == 0)
        let gfd = open(v.path("ghost"), O_RDONLY)
        #expect(unlink(v.path("ghost")) == 0)
        #expect(access(v.path("ghost"), F_OK) != 0)
        var g = [UInt8](repeating: 0, count: 3)
        #expect(pread(gfd, &g, 3, 0) == 3 && g == [4, 5, 6])
        close(gfd)
        // Attributes: chmod, chown, times.
        #expect(chmod(v.path("b2"), 0o600) == 0)
        #expect(stat(v.path("b2"), &st) == 0 && st.st_mode & 0o7777 == 0o600)
        #expect(chown(v.path("b2"), 1234, 5678) == 0)
        #expect(stat(v.path("b2"), &st) == 0 && st.st_uid == 1234 && st.st_gid == 5678)
        var times = [timespec(tv_sec: 1_000_000, tv_nsec: 5), timespec(tv_sec: 2_000_000, tv_nsec: 7)]
        #expect(utimensat(AT_FDCWD, v.path("b2"), &times, 0) == 0)
        #expect(stat(v.path("b2"), &st) == 0 && st.st_mtim.tv_sec == 2_000_000 && st.st_atim.tv_sec == 1_000_000)
        let before = st.st_mtim.tv_sec
        #expect(writeFile(v.path("b2"), [3], flags: O_WRONLY) == 0)
        #expect(stat(v.path("b2"), &st) == 0 && st.st_mtim.tv_sec > before)
        // Extended attributes.
        #expect(setxattr(v.path("b2"), "user.color", "blue", 4, 0) == 0)
        var value = [CChar](repeating: 0, count: 16)
        #expect(getxattr(v.path("b2"), "user.color", &value, 16) == 4)
        #expect(Array(value.prefix(4)).map { UInt8(bitPattern: $0) } == Array("blue".utf8))
        #expect(errnoOf(Int32(setxattr(v.path("b2"), "user.color", "red", 3, Int32(XATTR_CREATE)))) == EEXIST)
        #expect(errnoOf(Int32(getxattr(v.path("b2"), "user.none", &value, 16))) == ENODATA)
        #expect(listxattr(v.path("b2"), nil, 0) == 11)
        #expect(removexattr(v.path("b2"), "user.color") == 0)
        #expect(errnoOf(removexattr(v.path("b2"), "user.color")) == ENODATA)
        // Only the namespaces Linux filesystems keep (ext4 answers the same): no ACLs the
        // kernel would not enforce, no names without a namespace.
        for name in ["bogus.x", "user", "system.foo", "USER.x"] {
            #expect(errnoOf(Int32(setxattr(v.path("b2"), name, "1", 1, 0))) == EOPNOTSUPP, "\(name)")
            #expect(errnoOf(Int32(getxattr(v.path("b2"), name, &value, 16))) == EOPNOTSUPP, "\(name)")
            #expect(errnoOf(removexattr(v.path("b2"), name)) == EOPNOTSUPP, "\(name)")
        }
        #expect(errnoOf(Int32(setxattr(v.path("b2"), "user.", "1", 1, 0))) == EINVAL)
        #expect(listxattr(v.path("b2"), nil, 0) == 0)
        // statfs reports the volume's provisioned size.
        var fs = statvfs()
        #expect(statvfs(v.mountpoint, &fs) == 0)
        #expect(Int64(fs.f_blocks) * Int64(fs.f_frsize) == v.size)
        // And its entry limit (df -i): one inode per 16 KiB, at least 65,536; the files here take some.
        #expect(Int64(fs.f_files) == max(65_536, v.size / 16_384))
        #expect(fs.f_ffree > 0 && fs.f_ffree < fs.f_files && fs.f_favail == fs.f_ffree)
    }

    /// Permissions are the kernel's (default_permissions) from our attributes.
    /// A mount reads ahead a chunk (at least 1 MiB) for sequential readers, not the
    /// kernel's 128 KiB for FUSE: set in sysfs before the kernel's INIT is answered, which
    /// keeps the smaller of that and what INIT asks for, so both must say it.
    @Test(arguments: [(64 << 10, 1024), (4 << 20, 4096)])
    func mountReadsAheadAChunk(chunk: Int, expectedKiB: Int) throws {
        let v = try MountedVolume(storageClass: "remote-disk", chunk: chunk)
        let device = try #require(MountTable.entries().last { $0.mountPoint == v.mountpoint }?.device)
        let text = MountTable.readProcFile("/sys/class/bdi/\(device)/read_ahead_kb")
        #expect(text.trimmingCharacters(in: .whitespacesAndNewlines) == "\(expectedKiB)")
        #expect(FuseMount.readAheadBytes(chunkSize: 64 << 20) == 16 << 20)
    }

    /// Reads and listings move atime as `relatime` does on Linux: once after each change
    /// (or when a day old), not on every read; O_NOATIME reads never.
    @Test func readsMoveAtimeAsRelatimeDoes() throws {
        let v = try MountedVolume(storageClass: "remote-disk")
        func atime(_ path: String) -> Int64 {
            var st = stat()
            _ = stat(path, &st)
            return Int64(st.st_atim.tv_sec) * 1_000_000_000 + Int64(st.st_atim.tv_nsec)
        }
        func setTimes(_ path: String, atime: Int64, mtime: Int64) {
            var times = [timespec(tv_sec: Int(atime / 1_000_000_000), tv_nsec: Int(atime % 1_000_000_000)),
                         timespec(tv_sec: Int(mtime / 1_000_000_000), tv_nsec: Int(mtime % 1_000_000_000))]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        func readAll(_ path: String, flags: Int32 = O_RDONLY) {
            let fd = open(path, flags)
            var buffer = [UInt8](repeating: 0, count: 64)
            #expect(fd >= 0 && read(fd, &buffer, 64) >= 0)
            close(fd)
        }
        let past: Int64 = 1_000_000_000 * 1_000_000_000  // 2001
        let file = v.path("f")
        #expect(writeFile(file, Array("hello".utf8)) == 0)
        setTimes(file, atime: past, mtime: past)
        let start = VolumeFileSystem.now() - 1_000_000_000
        readAll(file)
        let first = atime(file)
        #expect(first >= start)
        readAll(file)
        #expect(atime(file) == first)  // not after a change: stays
        #expect(writeFile(file, Array("again".utf8), flags: O_WRONLY | O_APPEND) == 0)
        readAll(file)
        #expect(atime(file) > first)  // the first read after a change moves it
        setTimes(file, atime: past, mtime: past + 1)
        readAll(file, flags: O_RDONLY | FuseMount.openNoAtime)
        #expect(atime(file) == past)
        setTimes(file, atime: VolumeFileSystem.now() - 2 * Relatime.dayNs, mtime: past)
        readAll(file)
        #expect(atime(file) >= start)  // a day old: moves
        let directory = v.path("d")
        #expect(mkdir(directory, 0o755) == 0)
        #expect(writeFile(directory + "/x", []) == 0)
        setTimes(directory, atime: past, mtime: past)
        _ = try FileManager.default.contentsOfDirectory(atPath: directory)
        let listed = atime(directory)
        #expect(listed >= start)
        _ = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(atime(directory) == listed)
        // A read-only mount changes nothing, atime included.
        setTimes(file, atime: past, mtime: past)
        setTimes(directory, atime: past, mtime: past)
        v.unmount()
        try v.mount(readOnly: true)
        readAll(file)
        _ = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(open(file, O_WRONLY) < 0 && errno == EROFS)
        v.unmount()  // what the volume holds, not what the kernel cached
        try v.mount()
        #expect(atime(file) == past)
        #expect(atime(directory) == past)
        #expect(Relatime.isDue(atimeNs: 5, mtimeNs: 5, ctimeNs: 1, nowNs: 6))
        #expect(Relatime.isDue(atimeNs: 5, mtimeNs: 1, ctimeNs: 5, nowNs: 6))
        #expect(!Relatime.isDue(atimeNs: 5, mtimeNs: 4, ctimeNs: 4, nowNs: 5 + Relatime.dayNs - 1))
        #expect(Relatime.isDue(atimeNs: 5, mtimeNs: 4, ctimeNs: 4, nowNs: 5 + Relatime.dayNs))
    }

    /// Read-only handles close without a FLUSH round trip; handles that may write keep it
    /// (their close reports a failed write-back). A reader closing while a writer still
    /// holds unflushed bytes loses none of them.
    @Test func readOnlyHandlesCloseWithoutAFlush() throws {
        #expect(FuseMount.skipsFlush(openFlags: O_RDONLY))
        #expect(FuseMount.skipsFlush(openFlags: O_RDONLY | O_NOFOLLOW | O_CLOEXEC))
        #expect(!FuseMount.skipsFlush(openFlags: O_WRONLY))
        #expect(!FuseMount.skipsFlush(openFlags: O_RDWR | O_APPEND))
        let v = try MountedVolume(storageClass: "remote-disk")
        let path = v.mountpoint + "/f"
        let writer = open(path, O_CREAT | O_WRONLY, 0o644)
        #expect(writer >= 0)
        #expect(write(writer, "abc", 3) == 3)
        let reader = open(path, O_RDONLY)
        var buffer = [UInt8](repeating: 0, count: 8)
        #expect(read(reader, &buffer, 8) == 3)
        #expect(close(reader) == 0)
        #expect(write(writer, "def", 3) == 3)
        #expect(close(writer) == 0)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "abcdef")
    }

    /// SEEK_DATA / SEEK_HOLE find the chunks that hold data, buffered or committed, as
    /// `cp --sparse`, tar and qemu-img use them; before the write-back and after a remount.
    @Test func sparseFilesReportTheirHoles() throws {
        let v = try MountedVolume(storageClass: "remote-disk")
        let c: off_t = 64 << 10  // the test volume's chunk
        let fd = open(v.path("s"), O_RDWR | O_CREAT, 0o644)
        #expect([UInt8](repeating: 1, count: 10).withUnsafeBytes { pwrite(fd, $0.baseAddress, 10, 0) } == 10)
        #expect([UInt8]([2]).withUnsafeBytes { pwrite(fd, $0.baseAddress, 1, 5 * c + 100) } == 1)
        #expect(ftruncate(fd, 9 * c) == 0)
        func expectLayout(_ fd: Int32, _ when: Comment) {
            #expect(lseek(fd, 0, SparseSeek.data) == 0, when)
            #expect(lseek(fd, 0, SparseSeek.hole) == c, when)
            #expect(lseek(fd, c, SparseSeek.data) == 5 * c, when)
            #expect(lseek(fd, 5 * c + 200, SparseSeek.data) == 5 * c + 200, when)
            #expect(lseek(fd, 5 * c, SparseSeek.hole) == 6 * c, when)
            #expect(lseek(fd, 6 * c + 1, SparseSeek.hole) == 6 * c + 1, when)
            #expect(lseek(fd, 6 * c, SparseSeek.data) == -1 && errno == ENXIO, when)
            #expect(lseek(fd, 9 * c, SparseSeek.hole) == -1 && errno == ENXIO, when)
        }
        expectLayout(fd, "buffered")
        #expect(fsync(fd) == 0)
        expectLayout(fd, "committed")
        close(fd)
        v.unmount()
        try v.mount()
        let again = open(v.path("s"), O_RDONLY)
        expectLayout(again, "after a remount")
        close(again)
    }

    @Test func permissionsAsAnotherUser() throws {
        let v = try MountedVolume()
        #expect(writeFile(v.path("secret"), [1]) == 0)
        #expect(chmod(v.path("secret"), 0o600) == 0)
        #expect(chmod(v.mountpoint, 0o755) == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        p.arguments = ["-u", "nobody", "--", "cat", v.path("secret")]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus != 0)  // EACCES: Permission denied
        #expect(chmod(v.path("secret"), 0o644) == 0)
        let q = Process()
        q.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        q.arguments = ["-u", "nobody", "--", "cat", v.path("secret")]
        q.standardOutput = FileHandle.nullDevice
        try q.run()
        q.waitUntilExit()
        #expect(q.terminationStatus == 0)
    }

    /// POSIX ACLs as ext4 keeps them: the kernel enforces them (allowed and refused as
    /// nobody), chmod and the ACL mask move together, default ACLs are inherited past the
    /// umask, set-group-ID goes when a non-member sets an ACL, `cp -a` copies them. The
    /// expected text is what this script printed on ext4 (Debian 12, acl 2.3.1).
    @Test func posixACLsBehaveAsOnExt4() throws {
        let v = try MountedVolume(storageClass: "remote-disk")
        #expect(chmod(v.mountpoint, 0o777) == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", Self.aclScript]
        p.currentDirectoryURL = URL(fileURLWithPath: v.mountpoint)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let got = text.trimmingCharacters(in: .newlines).split(separator: "\n", omittingEmptySubsequences: false)
        let want = Self.aclExpected.trimmingCharacters(in: .newlines).split(separator: "\n", omittingEmptySubsequences: false)
        for (i, line) in want.enumerated() {
            #expect(i < got.count && got[i] == line, "line \(i + 1): \(i < got.count ? String(got[i]) : "missing")")
            if i >= got.count || got[i] != line { break }
        }
        #expect(got.count == want.count)
    }

    static let aclScript = """
umask 022
touch f; setfacl -m u:nobody:rw f; getfacl -c f; ls -l f | cut -c1-11
runuser -u nobody -- sh -c 'echo hi >> f' && echo "nobody wrote f"
chmod 640 f; getfacl -c f; ls -l f | cut -c1-11
runuser -u nobody -- sh -c 'echo hi >> f' 2>/dev/null || echo "nobody denied f"
setfacl -m m::rw f; runuser -u nobody -- sh -c 'echo hi >> f' && echo "nobody wrote f through the mask"
mkdir d; chmod 755 d; setfacl -d -m u:nobody:rwx d; setfacl -m u:nobody:rwx d; getfacl -c d
touch d/new; mkdir d/sub; ln -s new d/link; mknod d/fifo p
getfacl -c d/new d/sub d/fifo; ls -ld d/new d/sub d/fifo d/link | cut -c1-11
runuser -u nobody -- sh -c 'touch d/bynobody && mkdir d/nd' && echo "nobody created in d"
ls -ld d/bynobody d/nd | cut -c1-11
umask 077; touch d/masked plain; mkdir plaindir; ls -ld d/masked plain plaindir | cut -c1-11; umask 022
setfacl -b f; getfacl -c f; ls -l f | cut -c1-11
setfacl -k d; getfacl -c d; setfacl -k d && echo "removing an absent default ACL is fine"
touch g; chown nobody:root g; chmod 2770 g; runuser -u nobody -- setfacl -m u:nobody:rwx g; ls -l g | cut -c1-11
touch h; chown nobody:nogroup h; chmod 2770 h; runuser -u nobody -- setfacl -m u:nobody:rwx h; ls -l h | cut -c1-11
setfacl -m d:u::rwx,d:g::---,d:o::--- e 2>&1 | sed 's/^.*: //'; mkdir e; setfacl -m d:u::rwx,d:g::---,d:o::--- e
touch e/x; mkdir e/y; ls -ld e/x e/y | cut -c1-11; getfacl -c e/y
setfacl --set u::rw,g::r,o::- e/x; getfacl -c e/x; ls -l e/x | cut -c1-11
setfacl -d -m u:nobody:r e/x 2>&1 | sed 's/^.*: //'
cp -a d d2; getfacl -c d2/sub d2/new
"""

    static let aclExpected = """
user::rw-
user:nobody:rw-
group::r--
mask::rw-
other::r--

-rw-rw-r--+
nobody wrote f
user::rw-
user:nobody:rw-\t#effective:r--
group::r--
mask::r--
other::---

-rw-r-----+
nobody denied f
nobody wrote f through the mask
user::rwx
user:nobody:rwx
group::r-x
mask::rwx
other::r-x
default:user::rwx
default:user:nobody:rwx
default:group::r-x
default:mask::rwx
default:other::r-x

user::rw-
user:nobody:rwx\t#effective:rw-
group::r-x\t#effective:r--
mask::rw-
other::r--

user::rwx
user:nobody:rwx
group::r-x
mask::rwx
other::r-x
default:user::rwx
default:user:nobody:rwx
default:group::r-x
default:mask::rwx
default:other::r-x

user::rw-
user:nobody:rwx\t#effective:rw-
group::r-x\t#effective:r--
mask::rw-
other::r--

prw-rw-r--+
lrwxrwxrwx 
-rw-rw-r--+
drwxrwxr-x+
nobody created in d
-rw-rw-r--+
drwxrwxr-x+
-rw-rw-r--+
-rw------- 
drwx------ 
user::rw-
group::r--
other::---

-rw-r----- 
user::rwx
user:nobody:rwx
group::r-x
mask::rwx
other::r-x

removing an absent default ACL is fine
-rwxrwx---+
-rwxrws---+
No such file or directory
-rw------- 
drwx------+
user::rwx
group::---
other::---
default:user::rwx
default:group::---
default:other::---

user::rw-
group::r--
other::---

-rw-r----- 
Only directories can have default ACLs
user::rwx
user:nobody:rwx
group::r-x
mask::rwx
other::r-x
default:user::rwx
default:user:nobody:rwx
default:group::r-x
default:mask::rwx
default:other::r-x

user::rw-
user:nobody:rwx\t#effective:rw-
group::r-x\t#effective:r--
mask::rw-
other::r--

"""

    /// What is made in a set-group-ID directory takes the directory's group, and a new
    /// directory the bit too (Linux semantics); elsewhere the creator's group.
    @Test func setGroupIDDirectoriesPassOnTheirGroup() throws {
        let v = try MountedVolume()
        #expect(mkdir(v.path("shared"), 0o755) == 0)
        #expect(chown(v.path("shared"), 0, 1234) == 0)
        #expect(chmod(v.path("shared"), 0o2775) == 0)
        #expect(writeFile(v.path("shared/f"), [1]) == 0)
        #expect(mkdir(v.path("shared/d"), 0o755) == 0)
        #expect(symlink("f", v.path("shared/l")) == 0)
        #expect(mkdir(v.path("plain"), 0o755) == 0)
        #expect(writeFile(v.path("plain/f"), [1]) == 0)
        func owner(_ path: String) -> (mode: mode_t, gid: gid_t) {
            var st = stat()
            #expect(lstat(v.path(path), &st) == 0, "\(path)")
            return (st.st_mode & 0o7777, st.st_gid)
        }
        #expect(owner("shared/f").gid == 1234)
        #expect(owner("shared/f").mode & 0o2000 == 0)
        #expect(owner("shared/d").gid == 1234)
        #expect(owner("shared/d").mode & 0o2000 != 0)
        #expect(owner("shared/l").gid == 1234)
        #expect(owner("plain/f").gid == getegid())
        // Inherited again one level down, and still so after a remount.
        #expect(writeFile(v.path("shared/d/g"), [2]) == 0)
        v.unmount()
        try v.mount()
        #expect(owner("shared/d/g").gid == 1234)
        #expect(owner("shared/d").mode & 0o2000 != 0)
    }

    /// A truncate to the same size and an O_TRUNC open of an empty file move mtime and
    /// ctime, a chown to -1, -1 ctime (what ext4 does, and what pjdfstest checks).
    @Test func sizeChangesThatChangeNothingStillMoveTheTimes() throws {
        let v = try MountedVolume()
        #expect(writeFile(v.path("f"), [1, 2, 3]) == 0)
        #expect(writeFile(v.path("empty"), []) == 0)
        func times(_ path: String) -> (m: timespec, c: timespec) {
            var st = stat()
            #expect(stat(v.path(path), &st) == 0)
            return (st.st_mtim, st.st_ctim)
        }
        func later(_ a: timespec, _ b: timespec) -> Bool { (b.tv_sec, b.tv_nsec) > (a.tv_sec, a.tv_nsec) }
        var before = times("f")
        usleep(20_000)
        #expect(truncate(v.path("f"), 3) == 0)
        var after = times("f")
        #expect(later(before.m, after.m) && later(before.c, after.c), "truncate to the same size")
        before = times("empty")
        usleep(20_000)
        let fd = open(v.path("empty"), O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        close(fd)
        after = times("empty")
        #expect(later(before.m, after.m) && later(before.c, after.c), "O_TRUNC of an empty file")
        before = times("f")
        usleep(20_000)
        #expect(chown(v.path("f"), uid_t.max, gid_t.max) == 0)
        after = times("f")
        #expect(later(before.c, after.c), "chown -1 -1")
        #expect(!later(before.m, after.m))
        #expect(readFile(v.path("f")) == [1, 2, 3])
    }

    /// Writing past the provisioned size fails with ENOSPC and leaves the volume usable.
    @Test func fullVolumeSaysNoSpace() throws {
        let v = try MountedVolume(size: 1 << 20)
        #expect(writeFile(v.path("fits"), pattern(500_000, seed: 3)) == 0)
        #expect(writeFile(v.path("too-big"), pattern(2 << 20, seed: 4)) == ENOSPC)
        expectSame(readFile(v.path("fits")), pattern(500_000, seed: 3))
        #expect(unlink(v.path("too-big")) == 0 || errno == ENOENT)
        #expect(writeFile(v.path("small"), [1, 2]) == 0)
    }

    /// Times Berth cannot hold (past 2262, before 1677) are clamped, as ext4 clamps to its
    /// range; times before 1970 read back exact (a timespec's nanoseconds stay positive).
    @Test func timesOutsideTheRangeAreClampedAndTheMountStaysUp() throws {
        let v = try MountedVolume()
        #expect(writeFile(v.path("f"), [1, 2, 3]) == 0)
        func set(_ seconds: Int, _ nanoseconds: Int) -> Int32 {
            var times = [timespec(tv_sec: seconds, tv_nsec: nanoseconds), timespec(tv_sec: seconds, tv_nsec: nanoseconds)]
            return utimensat(AT_FDCWD, v.path("f"), &times, 0)
        }
        func mtime() -> timespec { var st = stat(); _ = stat(v.path("f"), &st); return st.st_mtim }
        #expect(set(32_503_680_000, 0) == 0, "year 3000")
        #expect(mtime().tv_sec == Int(Int64.max / 1_000_000_000), "clamped to 2262")
        #expect(set(-32_503_680_000, 0) == 0)
        #expect(mtime().tv_sec == Int(Int64.min / 1_000_000_000) - 1, "clamped to 1677")
        #expect(set(-1, 999_999_999) == 0)
        let before1970 = mtime()
        #expect(before1970.tv_sec == -1 && before1970.tv_nsec == 999_999_999)
        v.unmount()
        try v.mount()
        #expect(mtime().tv_sec == -1 && mtime().tv_nsec == 999_999_999, "after a remount")
        #expect(readFile(v.path("f")) == [1, 2, 3])
    }

    /// The provisioned size bounds all the files together, not each alone: the write that
    /// crosses it is cut short and the next one refused; allocating past it (fallocate) is
    /// ENOSPC, while a truncate that grows a file only adds a hole; an unlink (once the
    /// file is closed) and a truncate give the room back; `statfs` counts the same bytes.
    @Test func theProvisionedSizeBoundsAllFilesTogether() throws {
        let v = try MountedVolume(size: 1 << 20)
        #expect(writeFile(v.path("a"), pattern(400_000, seed: 1)) == 0)
        #expect(writeFile(v.path("b"), pattern(400_000, seed: 2)) == 0)
        let fd = open(v.path("c"), O_RDWR | O_CREAT, 0o644)
        let first = pattern(400_000, seed: 3).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #expect(first == 248_576, "the write crossing the provisioned size is cut where it ends")
        let second = [UInt8](repeating: 1, count: 10).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #expect(second == -1 && errno == ENOSPC)
        // A byte past the end needs its chunk: no room for it either.
        #expect(pwrite(fd, [UInt8(1)], 1, 2_000_000) == -1 && errno == ENOSPC)
        var fs = statvfs()
        #expect(statvfs(v.mountpoint, &fs) == 0)
        #expect(fs.f_bavail == 0 && fs.f_bfree == 0, "\(fs.f_bfree) blocks free of a full volume")
        // An unlinked file keeps its room while it is open.
        let held = open(v.path("a"), O_RDONLY)
        #expect(unlink(v.path("a")) == 0)
        #expect(writeFile(v.path("d"), [1]) == ENOSPC)
        close(held)
        #expect(writeFile(v.path("d"), pattern(300_000, seed: 4)) == 0)
        #expect(truncate(v.path("b"), 0) == 0)
        #expect(writeFile(v.path("e"), pattern(300_000, seed: 5)) == 0)
        // 200,000 bytes left. Growing "e" only lengthens its last chunk (from 37,856 bytes to
        // 64 KiB), and a cut gives that back.
        #expect(truncate(v.path("e"), 600_000) == 0)
        #expect(truncate(v.path("e"), 300_000) == 0)
        // "c" holds 248,576 bytes: up to 600,000 it needs 13,568 more in its last chunk and
        // 337,856 in new ones; up to 400,000, 151,424 in all.
        #expect(fallocate(fd, 0, 0, 600_000) == -1 && errno == ENOSPC)
        #expect(fallocate(fd, 0x01, 0, 600_000) == -1 && errno == ENOSPC, "KEEP_SIZE past the room")
        #expect(fallocate(fd, 0x01, 0, 400_000) == 0, "KEEP_SIZE within the room")
        #expect(fallocate(fd, 0, 0, 400_000) == 0)
        var st = stat()
        #expect(fstat(fd, &st) == 0 && st.st_size == 400_000)
        close(fd)
        // The allocation reserves nothing: "c" grew to 400,000 with its last chunk whole
        // (262,144 bytes) and a hole after it; "d" and "e" take 300,000 each.
        let used = 262_144 + 2 * 300_000
        #expect(statvfs(v.mountpoint, &fs) == 0)
        #expect(Int(fs.f_bfree) == ((1 << 20) - used) / Int(fs.f_bsize), "\(fs.f_bfree) blocks free")
        for when in ["mounted", "remounted"] {
            expectSame(readFile(v.path("c")).map { Array($0.prefix(248_576)) }, Array(pattern(400_000, seed: 3).prefix(248_576)), "c \(when)")
            expectSame(readFile(v.path("d")), pattern(300_000, seed: 4), "d \(when)")
            expectSame(readFile(v.path("e")), pattern(300_000, seed: 5), "e \(when)")
            #expect(writeFile(v.path("f"), [UInt8](repeating: 2, count: 200_000)) == ENOSPC, "\(when)")
            v.unmount()
            try v.mount()
        }
    }

    /// Holes take no space, as on ext4: a file ten thousand times its 1 MiB volume, grown by
    /// truncate and written far apart, fits until the chunks holding data (64 KiB each
    /// here) fill the volume; holes read as zeros; `du` (blocks) and `ls -l` (size) differ;
    /// `statfs` agrees; the count holds across a remount and a cut gives chunks back; past
    /// the largest file size, EFBIG.
    @Test func sparseFilesTakeOnlyTheChunksThatHoldData() throws {
        let v = try MountedVolume(size: 1 << 20)
        let c = 64 << 10, apart: off_t = 512 << 20
        #expect(writeFile(v.path("big"), []) == 0)
        #expect(truncate(v.path("big"), 10 << 30) == 0, "10 GiB on a 1 MiB volume")
        var st = stat()
        #expect(stat(v.path("big"), &st) == 0 && st.st_size == 10 << 30 && st.st_blocks == 0)
        let fd = open(v.path("big"), O_RDWR)
        #expect(fd >= 0)
        // A byte in each of 16 chunks 512 MiB apart fills the volume (16 × 64 KiB).
        for i in 0..<16 { #expect(pwrite(fd, [UInt8(i + 1)], 1, off_t(i) * apart + 1) == 1, "chunk \(i)") }
        #expect(pwrite(fd, [UInt8(99)], 1, 9 << 30) == -1 && errno == ENOSPC, "a 17th chunk")
        // Chunks that hold data take more bytes for nothing.
        let more = pattern(1000, seed: 1)
        #expect(more.withUnsafeBytes { pwrite(fd, $0.baseAddress, 1000, apart + 100) } == 1000)
        var buf = [UInt8](repeating: 0xff, count: 4)
        #expect(pread(fd, &buf, 4, 0) == 4 && buf == [0, 1, 0, 0], "data and the hole around it")
        #expect(pread(fd, &buf, 4, (3 << 30) + 12_345) == 4 && buf == [0, 0, 0, 0], "a hole")
        #expect(fsync(fd) == 0)
        #expect(fstat(fd, &st) == 0 && st.st_size == 10 << 30)
        #expect(Int(st.st_blocks) * 512 == 16 * c, "du: \(st.st_blocks) blocks")
        var fs = statvfs()
        #expect(statvfs(v.mountpoint, &fs) == 0 && fs.f_bfree == 0, "\(fs.f_bfree) blocks free of a full volume")
        close(fd)
        v.unmount()
        try v.mount()
        let again = open(v.path("big"), O_RDWR)
        #expect(again >= 0)
        defer { close(again) }
        #expect(pwrite(again, [UInt8(99)], 1, 9 << 30) == -1 && errno == ENOSPC, "after a remount")
        #expect(pread(again, &buf, 4, 15 * apart) == 4 && buf == [0, 16, 0, 0])
        var back = [UInt8](repeating: 0, count: 1000)
        #expect(pread(again, &back, 1000, apart + 100) == 1000)
        expectSame(back, more, "after a remount")
        // Cut at 4 GiB: the 8 chunks past it are given back.
        #expect(ftruncate(again, 4 << 30) == 0)
        #expect(statvfs(v.mountpoint, &fs) == 0)
        #expect(Int(fs.f_bfree) * Int(fs.f_bsize) == 8 * c, "\(fs.f_bfree) blocks free")
        #expect(writeFile(v.path("small"), pattern(8 * c, seed: 2)) == 0, "the room a cut gave back")
        #expect(writeFile(v.path("one-more"), [1]) == ENOSPC)
        // The largest file size: 16 TiB.
        #expect(ftruncate(again, (16 << 40) + 1) == -1 && errno == EFBIG)
        #expect(pwrite(again, [UInt8(1)], 1, 16 << 40) == -1 && errno == EFBIG)
        #expect(ftruncate(again, 16 << 40) == 0)
    }

    /// `fallocate`: PUNCH_HOLE (with KEEP_SIZE, as Linux demands) and ZERO_RANGE read as
    /// zeros from then on, inside a chunk, across a boundary and over whole chunks, whose
    /// objects are deleted; ZERO_RANGE without KEEP_SIZE grows the file; modes Berth does
    /// not do are EOPNOTSUPP.
    @Test func punchedHolesReadAsZerosAndFreeWholeChunks() throws {
        let v = try MountedVolume(storageClass: "replicated-3")  // 64 KiB chunks
        let chunk = 64 << 10
        var model = pattern(6 * chunk + 1000, seed: 7)
        #expect(writeFile(v.path("f"), model, sync: true) == 0)
        let fd = open(v.path("f"), O_RDWR)
        for (offset, length) in [(100, 5000), (chunk - 10, 30), (2 * chunk - 5, 3 * chunk + 10)] {
            #expect(fallocate(fd, 0x01 | 0x02, off_t(offset), off_t(length)) == 0, "punch \(offset) +\(length)")
            model.replaceSubrange(offset..<(offset + length), with: repeatElement(0, count: length))
        }
        #expect(fallocate(fd, 0x02, 0, 10) == -1 && errno == EOPNOTSUPP, "PUNCH_HOLE without KEEP_SIZE")
        #expect(fallocate(fd, 0x08, 0, off_t(chunk)) == -1 && errno == EOPNOTSUPP, "COLLAPSE_RANGE")
        // Punching past the end changes nothing; zeroing past it grows the file.
        #expect(fallocate(fd, 0x01 | 0x02, off_t(model.count + 10), 100) == 0)
        #expect(fallocate(fd, 0x10, off_t(model.count - 10), 100) == 0)
        model.replaceSubrange((model.count - 10)..., with: repeatElement(0, count: 10))
        model += [UInt8](repeating: 0, count: 90)
        // Bytes written and not committed yet are punched too.
        #expect(pwrite(fd, [UInt8](repeating: 9, count: 4), 4, 50_000) == 4)
        #expect(fallocate(fd, 0x01 | 0x10, 50_001, 2) == 0)
        model.replaceSubrange(50_000..<50_004, with: [9, 0, 0, 9])
        close(fd)
        expectSame(readFile(v.path("f")), model, "mounted")
        var st = stat()
        #expect(stat(v.path("f"), &st) == 0 && st.st_size == model.count)
        v.unmount()  // purges the objects the holes retired
        // 7 chunks were written as 7 objects; chunks 2, 3 and 4 are holes now; the 4-byte
        // write is one more object.
        #expect(v.shardFiles() / 3 <= 5, "\(v.shardFiles() / 3) objects remain")
        try v.mount()
        expectSame(readFile(v.path("f")), model, "remounted")
    }

    /// `st_blocks` counts the chunks that hold data (and bytes not committed yet), so `du`
    /// and sparse-aware copies see holes: a file grown by truncate holds nothing, a byte
    /// far out holds one chunk at most, a punched chunk gives its blocks back.
    @Test func blocksCountTheChunksThatHoldData() throws {
        let v = try MountedVolume(storageClass: "remote-disk")  // 64 KiB chunks
        func blocks(_ name: String) -> Int { var st = stat(); _ = stat(v.path(name), &st); return Int(st.st_blocks) }
        #expect(writeFile(v.path("full"), pattern(300_000, seed: 1)) == 0)
        #expect(blocks("full") == (300_000 + 511) / 512, "pending bytes count")
        #expect(writeFile(v.path("synced"), pattern(300_000, seed: 2), sync: true) == 0)
        #expect(blocks("synced") == (300_000 + 511) / 512, "committed bytes count")
        #expect(writeFile(v.path("empty"), []) == 0 && truncate(v.path("empty"), 1 << 30) == 0)
        #expect(blocks("empty") == 0, "a file grown by truncate holds nothing")
        let fd = open(v.path("far"), O_RDWR | O_CREAT, 0o644)
        #expect(pwrite(fd, [UInt8(7)], 1, 5 << 30) == 1)
        #expect(blocks("far") <= 128, "one byte far out: \(blocks("far")) blocks")
        #expect(fsync(fd) == 0)
        #expect(blocks("far") == 1, "committed: the last chunk up to the size")
        close(fd)
        // Punch chunk 1 of "synced" whole: 64 KiB fewer.
        let sfd = open(v.path("synced"), O_RDWR)
        #expect(fallocate(sfd, 0x01 | 0x02, 65_536, 65_536) == 0)
        close(sfd)
        #expect(blocks("synced") == (300_000 - 65_536 + 511) / 512)
        v.unmount()
        try v.mount()
        #expect(blocks("synced") == (300_000 - 65_536 + 511) / 512 && blocks("far") == 1 && blocks("empty") == 0, "after a remount")
    }

    /// The pages a writer put in the kernel's page cache stay there when the file's
    /// attributes are asked for again. A stat after writes dropped them all before (the
    /// kernel's AUTO_INVAL_DATA, seeing a new mtime): 140 ms of kernel time per GiB cached,
    /// and every later read went to the daemon.
    @Test func aStatAfterWritesKeepsTheCachedPages() throws {
        let v = try MountedVolume(storageClass: "remote-disk")
        let size = 2 << 20
        let fd = open(v.path("f"), O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        let data = pattern(size, seed: 11)
        #expect(data.withUnsafeBytes { pwrite(fd, $0.baseAddress, size, 0) } == size)
        #expect(fsync(fd) == 0)
        let mapped = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0)
        let map = try #require(mapped == MAP_FAILED ? nil : mapped)
        defer { munmap(map, size) }
        let pages = size / Int(sysconf(Int32(_SC_PAGESIZE)))
        func resident() -> Int {
            var vector = [UInt8](repeating: 0, count: pages)
            guard mincore(map, size, &vector) == 0 else { return -1 }
            return vector.filter { $0 & 1 != 0 }.count
        }
        // A stat that invalidated the file's cache would drop every page, every time. The
        // kernel may also page out one now and then by itself (DAMON's reclaim of cold page
        // cache runs on the CI machines): so a shortfall gets one more round, the pages
        // written again first, and only a stat that drops pages twice fails.
        var after = 0
        for round in 0..<2 {
            if round > 0 {
                #expect(data.withUnsafeBytes { pwrite(fd, $0.baseAddress, size, 0) } == size)
                #expect(fsync(fd) == 0)
            }
            var st = stat()
            #expect(fstat(fd, &st) == 0 && st.st_size == size)  // a GETATTR: the writes changed the attributes
            #expect(stat(v.path("f"), &st) == 0)
            after = resident()
            if after == pages { break }
        }
        #expect(after == pages, "pages dropped from the cache by a stat")
        #expect(memcmp(map, data, size) == 0)
    }

    /// Shards whose bytes rot on disk: as long as the class has enough good ones the file
    /// reads right (checksums catch the bad ones), and when it has not a read is EIO — never
    /// the damaged bytes — and the mount keeps serving everything else.
    @Test(arguments: [("replicated-3", [0, 1]), ("ec-4-2", [0, 3]), ("remote-disk", [])])
    func rottenShardsReadRightOrFailWithEIO(storageClass: String, rotten positions: [Int]) throws {
        let v = try MountedVolume(storageClass: storageClass)  // 64 KiB chunks
        let data = pattern(200_000, seed: 11)
        #expect(writeFile(v.path("f"), data, sync: true) == 0)
        v.unmount()
        // Flip the last byte (payload) of the chosen positions' shards — every shard for single copy.
        var flipped = 0
        for path in v.shardPaths() where positions.isEmpty || positions.contains(where: { path.hasSuffix(".\($0)") }) {
            let fd = open(path, O_RDWR)
            var st = stat()
            #expect(fd >= 0 && fstat(fd, &st) == 0)
            var byte: UInt8 = 0
            #expect(pread(fd, &byte, 1, off_t(st.st_size - 1)) == 1)
            byte ^= 0xFF
            #expect(pwrite(fd, &byte, 1, off_t(st.st_size - 1)) == 1)
            close(fd)
            flipped += 1
        }
        #expect(flipped > 0)
        try v.mount()
        if positions.isEmpty {
            let fd = open(v.path("f"), O_RDONLY)
            var buffer = [UInt8](repeating: 0, count: 200_000)
            // The kernel returns the pages that did read (a short read), then the error.
            var done = 0, failure: Int32 = 0
            while done < buffer.count {
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
                if n < 0 { failure = errno; break }
                if n == 0 { break }
                done += n
            }
            #expect(failure == EIO && done < data.count, "damaged data is EIO, not garbage (\(done) bytes read)")
            #expect(buffer.prefix(done) == data.prefix(done), "what did read is right")
            close(fd)
        } else {
            expectSame(readFile(v.path("f")), data, "\(storageClass) with positions \(positions) rotten")
        }
        #expect(writeFile(v.path("g"), [1, 2, 3], sync: true) == 0)
        #expect(readFile(v.path("g")) == [1, 2, 3], "the mount still serves")
    }

    /// Cutting a file short gives its space back on the devices at once: the objects past
    /// the new end are deleted (once reads in flight are done), not kept until a remount.
    @Test(arguments: ["replicated-3", "ec-4-2"])
    func truncatedDataDoesNotKeepItsSpace(storageClass: String) throws {
        let v = try MountedVolume(storageClass: storageClass)  // 64 KiB chunks
        for round in 0..<5 { #expect(writeFile(v.path("log"), pattern(300_000, seed: round), sync: true) == 0) }  // O_TRUNC
        #expect(truncate(v.path("log"), 70_000) == 0)
        v.unmount()  // purges what truncation retired, as a running mount does after a while
        let width = storageClass == "replicated-3" ? 3 : 6
        // The last version's first two chunks (of five) are left.
        #expect(v.shardFiles() / width <= 2, "\(v.shardFiles() / width) objects remain")
        try v.mount()
        expectSame(readFile(v.path("log")), Array(pattern(300_000, seed: 4).prefix(70_000)))
    }

    /// fsynced data and names survive a SIGKILL of the daemon and a remount, which
    /// clears the dead mount first.
    @Test func fsyncedDataSurvivesAKill() throws {
        let v = try MountedVolume(storageClass: "ec-4-2")
        #expect(mkdir(v.path("dir"), 0o755) == 0)
        for i in 0..<5 { #expect(writeFile(v.path("dir/f\(i)"), pattern(100_000 + i, seed: i), sync: true) == 0) }
        // Unsynced writes in flight when the daemon dies.
        let fd = open(v.path("dir/unsynced"), O_WRONLY | O_CREAT, 0o644)
        _ = pattern(50_000, seed: 99).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        v.crash()
        close(fd)
        try v.mount()
        // The dead mount was cleared, not buried under the new one.
        let entries = String(decoding: FileHandle(forReadingAtPath: "/proc/mounts")?.readDataToEndOfFile() ?? Data(), as: UTF8.self)
            .split(separator: "\n").filter { $0.contains(" \(v.mountpoint) ") }
        #expect(entries.count == 1, "\(entries.count) mounts at \(v.mountpoint)")
        for i in 0..<5 { expectSame(readFile(v.path("dir/f\(i)")), pattern(100_000 + i, seed: i), "dir/f\(i)") }
        // The unsynced file, if its create committed before the kill, has old or new data, never garbage.
        let unsynced = readFile(v.path("dir/unsynced")) ?? []
        let oldOrNew = unsynced.isEmpty || unsynced == pattern(50_000, seed: 99)
        #expect(oldOrNew, "unsynced file has \(unsynced.count) bytes of neither old nor new content")
    }

    /// Closed files go to the background write-back: their bytes read back at once (while
    /// buffered or in flight), survive an unmount, keep the mtime of their writes (not of
    /// the later commit) or the one a setattr chose after writing, and files deleted right
    /// after closing leave no shards behind.
    @Test(arguments: ["replicated-3", "remote-disk"])
    func closedFilesAreWrittenBack(storageClass: String) throws {
        let v = try MountedVolume(storageClass: storageClass)
        #expect(mkdir(v.path("d"), 0o755) == 0)
        for i in 0..<150 { #expect(writeFile(v.path("d/f\(i)"), pattern(1 + i * 97, seed: i)) == 0) }
        var closedAt = timespec()
        clock_gettime(CLOCK_REALTIME, &closedAt)
        for i in 0..<150 { expectSame(readFile(v.path("d/f\(i)")), pattern(1 + i * 97, seed: i), "d/f\(i) at once") }
        // tar's order: write, close, then set the times.
        #expect(writeFile(v.path("timed"), pattern(5000, seed: 7)) == 0)
        var times = [timespec(tv_sec: 978_307_200, tv_nsec: 5), timespec(tv_sec: 978_307_200, tv_nsec: 5)]
        #expect(utimensat(AT_FDCWD, v.path("timed"), &times, 0) == 0)
        // Written and deleted before the write-back runs.
        for i in 0..<20 { #expect(writeFile(v.path("gone\(i)"), pattern(3000, seed: i)) == 0); #expect(unlink(v.path("gone\(i)")) == 0) }
        v.unmount()
        try v.mount()
        for i in 0..<150 {
            expectSame(readFile(v.path("d/f\(i)")), pattern(1 + i * 97, seed: i), "d/f\(i) after remount")
            var st = stat()
            #expect(stat(v.path("d/f\(i)"), &st) == 0)
            let mtime = st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec
            #expect(mtime <= closedAt.tv_sec * 1_000_000_000 + closedAt.tv_nsec, "d/f\(i): mtime is the write's, not the commit's")
        }
        var st = stat()
        #expect(stat(v.path("timed"), &st) == 0)
        #expect(st.st_mtim.tv_sec == 978_307_200 && st.st_mtim.tv_nsec == 5)
        expectSame(readFile(v.path("timed")), pattern(5000, seed: 7))
        #expect(access(v.path("gone0"), F_OK) != 0)
        // Everything deleted: no shard stays behind.
        for i in 0..<150 { #expect(unlink(v.path("d/f\(i)")) == 0) }
        #expect(unlink(v.path("timed")) == 0)
        v.unmount()
        #expect(v.shardFiles() == 0)
    }

    @Test func parallelWritersOnDifferentAndTheSameFile() throws {
        let v = try MountedVolume(storageClass: "ec-4-2")
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            _ = writeFile(v.path("p\(i)"), pattern(150_000, seed: i))
        }
        for i in 0..<8 { expectSame(readFile(v.path("p\(i)")), pattern(150_000, seed: i), "p\(i)") }
        // Same file, disjoint ranges.
        let fd = open(v.path("shared"), O_RDWR | O_CREAT, 0o644)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            let block = pattern(40_000, seed: 100 + i)
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(i * 40_000)) }
        }
        #expect(fsync(fd) == 0)
        close(fd)
        let all = readFile(v.path("shared"))!
        #expect(all.count == 320_000)
        for i in 0..<8 { expectSame(Array(all[(i * 40_000)..<((i + 1) * 40_000)]), pattern(40_000, seed: 100 + i)) }
    }
}

/// Overwrites add slices that shadow old data; compaction rewrites a chunk once it has
/// many, and the objects it frees are deleted, so space really comes back.
@Suite(.serialized) struct CompactionTests {
    @Test(arguments: ["replicated-3", "ec-4-2"])
    func overwrittenDataDoesNotKeepItsSpace(storageClass: String) throws {
        let v = try MountedVolume(storageClass: storageClass)
        var model = pattern(100_000, seed: 1)
        #expect(writeFile(v.path("db"), model) == 0)
        // 120 small overwrites in one chunk, each its own open/write/close (one commit each).
        for round in 0..<120 {
            let patch = pattern(4096, seed: 100 + round)
            let offset = (round % 5) * 3000
            model.replaceSubrange(offset..<(offset + 4096), with: patch)
            let fd = open(v.path("db"), O_WRONLY)
            #expect(patch.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) } == 4096)
            close(fd)
        }
        expectSame(readFile(v.path("db")), model, "before remount")
        v.unmount()  // purges the objects compaction retired
        try v.mount()
        expectSame(readFile(v.path("db")), model, "after remount")
        // Without compaction 121 objects would remain; with it, at most one compaction
        // window's worth (the compacted object and the slices written since).
        let width = storageClass == "replicated-3" ? 3 : 6
        let objects = v.shardFiles() / width
        #expect(objects <= VolumeFileSystem.compactAboveSlices + 1, "\(objects) objects remain")
    }
}
