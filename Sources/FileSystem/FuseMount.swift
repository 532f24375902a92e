import CFuse3
import Foundation
import FuseHandoff
import Synchronization
import Metadata

/// Serves a `VolumeFileSystem` at a mount point through the libfuse3 low-level API.
///
/// Each operation is a capture-free closure in `fuse_lowlevel_ops`: it finds the session's
/// context through `fuse_req_userdata`, calls the filesystem, and replies exactly once
/// (entry, attributes, data or an errno) on every path. Mounted with `default_permissions`,
/// so the kernel checks permissions from the attributes we return.
public final class FuseMount: @unchecked Sendable {
    public let fileSystem: VolumeFileSystem
    public let mountpoint: String
    public let readOnly: Bool
    /// How long the kernel may cache entries and attributes. A volume is served by exactly
    /// one daemon and every change passes through it (and through the kernel, which
    /// updates its caches from our replies), so cached entries cannot go stale.
    let cacheSeconds: Double = 3600
    private var session: OpaquePointer?
    /// The loop serving the session while `run()` runs (FuseLoop), for `stop()` to wake.
    private let loop = Mutex<FuseLoop?>(nil)
    /// Serves the session through io_uring where the kernel offers it (FuseRing); set
    /// before the session serves, cleared after unmount.
    private var ring: FuseRing?

    /// Whether `run()` installs libfuse's SIGTERM/SIGINT/SIGHUP handlers. A process serving
    /// one mount wants them; a daemon serving many handles signals itself and stops each
    /// mount by unmounting it (libfuse's handlers know only one session per process).
    public let handlesSignals: Bool
    private let mounted: (@Sendable () -> Void)?
    /// Where the session's descriptor goes once the kernel's INIT is in, so that the mount
    /// outlives this process (`FuseKeeper`); nil: the mount ends with the session.
    private let keeper: KeeperClient?
    /// The session a predecessor served, to serve again (its descriptor, from the keeper).
    private let resuming: (session: HeldSession, descriptor: Int32)?
    /// The kernel's INIT request, once read (what a successor replays), and whether the
    /// keeper holds the descriptor.
    private let handoff = Mutex<(initRequest: Data?, held: Bool)>((nil, false))
    /// Set by `detach()`: the session stops without unmounting.
    private let keepMounted = Atomic<Bool>(false)

    /// `mounted` is called once the kernel mount exists, before requests are served. With a
    /// `keeper`, the session can outlive this process (`detach()`), and is served through
    /// /dev/fuse only (never io_uring: a ring's requests die with the process that
    /// registered it). `resuming`: serve a session a predecessor left with the keeper
    /// instead of mounting a new one.
    public init(fileSystem: VolumeFileSystem, mountpoint: String, readOnly: Bool = false, handlesSignals: Bool = true,
                keeper: KeeperClient? = nil, resuming: (session: HeldSession, descriptor: Int32)? = nil,
                mounted: (@Sendable () -> Void)? = nil) {
        self.fileSystem = fileSystem
        self.mountpoint = mountpoint
        self.readOnly = readOnly
        self.handlesSignals = handlesSignals
        self.keeper = keeper
        self.resuming = resuming
        self.mounted = mounted
        if let resuming { handoff.withLock { $0 = (resuming.session.initRequest, true) } }
    }

    /// Whether the keeper holds the session's descriptor (a `detach()` keeps the mount).
    public var isHeld: Bool { handoff.withLock { $0.held } }

    public enum MountError: Error, CustomStringConvertible {
        case failed(String)
        public var description: String { if case .failed(let why) = self { return why }; return "" }
    }

    /// Clears mounts left behind by crashed daemons ("Transport endpoint is not connected").
    /// Asks with statfs, which always reaches the daemon: stat may be answered from the
    /// kernel's attribute cache even when the daemon is gone.
    public static func clearStaleMount(_ path: String) {
        var info = statvfs()
        var rounds = 0
        while statvfs(path, &info) != 0 && errno == ENOTCONN && rounds < 16 {
            umount2(path, Int32(MNT_DETACH))
            rounds += 1
        }
    }

    /// Mounts and serves until unmounted or until SIGTERM/SIGINT/SIGHUP; then commits
    /// buffered writes and unmounts. Blocks the calling thread.
    public func run() throws {
        Self.keepChunkBuffersInTheHeap
        if resuming == nil { Self.clearStaleMount(mountpoint) }
        // A parent may have spawned us with these blocked (Foundation's Process does):
        // libfuse's handlers would then never run and SIGTERM would not unmount.
        if handlesSignals {
            var handled = sigset_t()
            sigemptyset(&handled)
            for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, signal) }
            pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        }
        var options = "default_permissions,allow_other,fsname=berth:\(fileSystem.volume),subtype=berth"
        if readOnly { options += ",ro" }
        // BERTH_FUSE_DEBUG=1 prints every request and reply (libfuse's -d) to stderr.
        let arguments = ["berth", "-o", options] + (ProcessInfo.processInfo.environment["BERTH_FUSE_DEBUG"] == "1" ? ["-d"] : [])
        var cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var ops = Self.operations()
        let context = Unmanaged.passRetained(self)
        defer { context.release() }
        let se: OpaquePointer? = cStrings.withUnsafeMutableBufferPointer { argv -> OpaquePointer? in
            var args = fuse_args(argc: Int32(argv.count), argv: argv.baseAddress, allocated: 0)
            return fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, context.toOpaque())
        }
        guard let se else { throw MountError.failed("fuse_session_new failed") }
        session = se
        defer { fuse_session_destroy(se) }
        if handlesSignals {
            guard fuse_set_signal_handlers(se) == 0 else { throw MountError.failed("cannot install signal handlers") }
        }
        defer { if handlesSignals { fuse_remove_signal_handlers(se) } }
        // Resolved before mounting: resolving the mount's own root would ask this daemon,
        // which serves nothing until the loop below runs.
        let absolute = resuming == nil ? Self.resolved(mountpoint) : mountpoint
        if let resuming {
            // libfuse serves an open descriptor given as /dev/fd/N, and mounts nothing.
            guard fuse_session_mount(se, "/dev/fd/\(resuming.descriptor)") == 0 else {
                close(resuming.descriptor)
                throw MountError.failed("cannot serve the held session of \(mountpoint)")
            }
        } else {
            guard fuse_session_mount(se, mountpoint) == 0 else { throw MountError.failed("cannot mount at \(mountpoint)") }
        }
        // Rings are made before INIT: its reply claims them only if they all exist.
        let libfuseLoop = ProcessInfo.processInfo.environment["BERTH_FUSE_LOOP"] == "libfuse"
        if keeper != nil {
            // Through /dev/fuse, reading the kernel's INIT as it passes (for `handOver`).
            var io = fuse_custom_io()
            io.writev = { fd, iov, count, _ in writev(fd, iov, count) }
            io.read = { fd, buffer, length, userdata in
                let n = read(fd, buffer, length)
                if n >= FuseLoop.headerBytes, buffer!.loadUnaligned(fromByteOffset: 4, as: UInt32.self) == FuseMount.opInit {
                    Unmanaged<FuseMount>.fromOpaque(userdata!).takeUnretainedValue().handOver(initRequest: Data(bytes: buffer!, count: n))
                }
                return n
            }
            guard fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0 else { throw MountError.failed("cannot hook the FUSE device") }
        } else if !libfuseLoop, let ring = FuseRing.make(session: se, fd: fuse_session_fd(se)) {
            self.ring = ring
            var io = fuse_custom_io()
            io.writev = { fd, iov, count, userdata in
                guard let ring = Unmanaged<FuseMount>.fromOpaque(userdata!).takeUnretainedValue().ring else { return writev(fd, iov, count) }
                return ring.send(fd: fd, iov: iov!, count: count)
            }
            io.read = { fd, buffer, length, userdata in
                let n = read(fd, buffer, length)
                if n > 0 { Unmanaged<FuseMount>.fromOpaque(userdata!).takeUnretainedValue().ring?.noteRead(buffer!, count: n) }
                return n
            }
            guard fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0 else { throw MountError.failed("cannot hook the FUSE device") }
        }
        if let resuming {
            Self.replayInit(se, resuming.session.initRequest)
            // A killed predecessor may have read requests it never answered: they are sent
            // again, or, on a kernel that cannot, the session cannot be served safely.
            if !resuming.session.clean && !Self.askForResend(fuse_session_fd(se)) {
                throw MountError.failed("\(mountpoint): the kernel cannot resend what the killed daemon left unanswered (Linux 6.9+)")
            }
            // From now on this daemon serves it: not clean until it stops cleanly.
            var serving = resuming.session
            (serving.clean, serving.openHandles) = (false, nil)
            let held = hold(serving)  // not under the lock: a call to the keeper
            handoff.withLock { $0.held = held }
            Self.log("\(mountpoint): serving the session a previous daemon left (no remount)")
        } else {
            // Before the loop answers the kernel's INIT, which keeps the smaller of this and
            // the read-ahead the init callback asks for.
            Self.setReadAhead(of: absolute, bytes: Self.readAheadBytes(chunkSize: Int(fileSystem.chunkSize)))
        }
        mounted?()
        // One receiving thread that answers the namespace's requests itself (FuseLoop);
        // BERTH_FUSE_LOOP=libfuse serves with libfuse's pool of threads instead.
        if libfuseLoop {
            let config = fuse_loop_cfg_create()
            fuse_loop_cfg_set_max_threads(config, 16)
            _ = fuse_session_loop_mt(se, config)
            fuse_loop_cfg_destroy(config)
        } else {
            let fs = fileSystem
            let loop = FuseLoop(session: se, spinLimitNanoseconds: FuseLoop.spinLimitFromEnvironment(),
                                writeMayWait: { fs.writeMayWait(Int64(bitPattern: $0), count: $1) },
                                releaseMayWait: { fs.releaseMayWait(Int64(bitPattern: $0)) })
            self.loop.withLock { $0 = loop }
            let label = mountpoint
            ring?.isSlow = { loop.isSlow($0) }
            ring?.onStart = { [weak ring] in
                loop.stopSpinning()
                if let ring { Self.log("\(label): requests served through io_uring (\(ring.queues) queues × \(ring.threadsPerQueue) threads)") }
            }
            loop.run()
            if let ring {
                ring.stop()
                if ring.claimed.load(ordering: .acquiring) {
                    Self.log("\(mountpoint): io_uring served \(ring.served.load(ordering: .relaxed)) requests "
                             + "(\(ring.inPlace.load(ordering: .relaxed)) replies built in place); "
                             + "/dev/fuse was read \(loop.readsBesideRings.load(ordering: .relaxed)) times beside them")
                }
            }
        }
        fileSystem.flushAll()
        if !keepMounted.load(ordering: .acquiring) || !holdForSuccessor() { fuse_session_unmount(se) }
        ring = nil
    }

    /// Stops serving without unmounting, once the keeper holds the session: requests that
    /// come meanwhile wait in the kernel for a successor (`resuming`). Returns false (and
    /// does nothing) when the keeper does not hold it. Buffered writes are committed when
    /// `run()` returns, as at any stop.
    public func detach() -> Bool {
        guard isHeld else { return false }
        keepMounted.store(true, ordering: .releasing)
        stop()
        return true
    }

    static let opInit: UInt32 = 26

    /// The kernel's INIT went by: the keeper gets the device with it, at once, before the
    /// INIT is answered (a session that could end before the keeper held it would race
    /// with its unmount). A mount whose hand-over failed just ends with this process.
    private func handOver(initRequest: Data) {
        handoff.withLock { $0.initRequest = initRequest }
        let held = hold(HeldSession(mountpoint: mountpoint, volume: fileSystem.volume, readOnly: readOnly, initRequest: initRequest))
        handoff.withLock { $0.held = held }
    }

    /// Sends the keeper `session` with a duplicate of the device (replacing what it held).
    private func hold(_ session: HeldSession) -> Bool {
        guard let keeper, let se = self.session else { return false }
        let copy = fcntl(fuse_session_fd(se), F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else { return false }
        defer { close(copy) }
        do {
            try keeper.hold(session, descriptor: copy)
            return true
        } catch {
            Self.log("\(mountpoint): the keeper does not hold the session (it ends with this daemon): \(error)")
            return false
        }
    }

    /// At a clean stop: the keeper learns that every request read was answered and which
    /// files are open, for the successor. False: the keeper did not take it (unmount).
    private func holdForSuccessor() -> Bool {
        guard let initRequest = handoff.withLock({ $0.initRequest }) else { return false }
        return hold(HeldSession(mountpoint: mountpoint, volume: fileSystem.volume, readOnly: readOnly, initRequest: initRequest,
                                clean: true, openHandles: fileSystem.openHandleCounts()))
    }

    /// A successor's libfuse session answers nothing before an INIT: the kernel's INIT
    /// of this connection is processed again, under a request id the kernel never issued,
    /// so its reply is refused (ENOENT, which libfuse passes over in silence) while the
    /// session negotiates exactly what the first daemon did.
    static func replayInit(_ se: OpaquePointer, _ request: Data) {
        var bytes = [UInt8](request)
        guard bytes.count >= FuseLoop.headerBytes else { return }
        let unusedUnique: UInt64 = 0x7FFF_FFFF_FFFF_FFFE  // even (not an interrupt), bit 63 clear (not a resend)
        withUnsafeBytes(of: unusedUnique.littleEndian) { bytes.replaceSubrange(8..<16, with: $0) }
        bytes.withUnsafeMutableBytes { raw in
            var buf = fuse_buf()
            buf.size = raw.count
            buf.mem = raw.baseAddress
            buf.fd = -1
            fuse_session_process_buf(se, &buf)
        }
    }

    /// FUSE_NOTIFY_RESEND (Linux 6.9): requests the predecessor read and never answered (it
    /// was killed) go back to the queue, to be read again. False: the kernel refused it.
    static func askForResend(_ fd: Int32) -> Bool {
        var header = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: UInt32(16).littleEndian) { header.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: Int32(7).littleEndian) { header.replaceSubrange(4..<8, with: $0) }
        return header.withUnsafeBytes { write(fd, $0.baseAddress, 16) } == 16
    }

    /// A line on standard error, where the daemon's operators look.
    static func log(_ line: String) {
        FileHandle.standardError.write(Data("berth: \(line)\n".utf8))
    }

    /// Chunk buffers are megabytes: by default glibc maps each one fresh and unmaps it when
    /// freed, so every chunk written paid a page fault per 4 KiB (a fifth of a sequential
    /// writer's CPU, measured). Allocations up to 64 MiB stay in the heap and freed memory
    /// is kept for reuse instead. Process-wide, done once by the first mount.
    static let keepChunkBuffersInTheHeap: Void = {
        _ = mallopt(M_MMAP_THRESHOLD, 64 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 1 << 30)
    }()

    /// How far the kernel reads ahead of a sequential reader: a chunk (1–16 MiB). The
    /// kernel gives a FUSE mount 128 KiB, so a sequential reader's requests were 128 KiB,
    /// each opening its shard afresh and waiting for the disk, while a plain file on the
    /// same disk gets the block device's read-ahead (8 MiB here): cold sequential reads
    /// ran at 0.6–0.7 of passthrough_ll's; with a chunk of read-ahead, even with it.
    /// Random reads are not affected (the kernel reads ahead only for sequential access).
    static func readAheadBytes(chunkSize: Int) -> Int { min(max(chunkSize, 1 << 20), 16 << 20) }

    /// Sets the read-ahead of the mount at `mountpoint` (absolute) through its backing
    /// device info in sysfs. Needs root, like mounting; a mount that cannot is only slower.
    static func setReadAhead(of mountpoint: String, bytes: Int) {
        guard let device = MountTable.entries().last(where: { $0.mountPoint == mountpoint })?.device else { return }
        let fd = open("/sys/class/bdi/\(device)/read_ahead_kb", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let text = Array("\(bytes / 1024)\n".utf8)
        _ = write(fd, text, text.count)
    }

    /// `path` made absolute and free of symlinks (as mountinfo lists mount points).
    static func resolved(_ path: String) -> String {
        guard let r = realpath(path, nil) else { return path }
        defer { free(r) }
        return String(cString: r)
    }

    /// Asks a running `run()` to stop (as SIGTERM does).
    public func stop() {
        if let session { fuse_session_exit(session) }
        loop.withLock { $0 }?.wake()
    }

    /// `fallocate` modes (linux/falloc.h).
    static let fallocKeepSize: Int32 = 0x01, fallocPunchHole: Int32 = 0x02, fallocZeroRange: Int32 = 0x10

    static func context(_ req: fuse_req_t?) -> FuseMount {
        Unmanaged<FuseMount>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    }

    static func bytes(_ name: UnsafePointer<CChar>?) -> [UInt8] {
        guard let name else { return [] }
        return Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
    }

    static func timespecOf(_ ns: Int64) -> timespec {
        let (seconds, nanoseconds) = Timestamp.parts(ns)
        return timespec(tv_sec: seconds, tv_nsec: nanoseconds)
    }

    func attributesStat(_ a: Attributes) -> Glibc.stat {
        var s = Glibc.stat()
        s.st_ino = UInt(a.ino)
        s.st_mode = UInt32(a.kind << 12 | a.mode)
        s.st_nlink = UInt(max(0, a.nlink))
        s.st_uid = UInt32(truncatingIfNeeded: a.uid)
        s.st_gid = UInt32(truncatingIfNeeded: a.gid)
        s.st_size = Int(a.size)
        s.st_rdev = UInt(a.rdev)
        s.st_blksize = 4096
        s.st_blocks = Int(a.blocks)
        s.st_atim = Self.timespecOf(a.atimeNs)
        s.st_mtim = Self.timespecOf(a.mtimeNs)
        s.st_ctim = Self.timespecOf(a.ctimeNs)
        return s
    }

    func replyEntry(_ req: fuse_req_t?, _ a: Attributes) {
        var e = fuse_entry_param()
        e.ino = fuse_ino_t(a.ino)
        e.generation = 1
        e.attr = attributesStat(a)
        e.attr_timeout = cacheSeconds
        e.entry_timeout = cacheSeconds
        fuse_reply_entry(req, &e)
    }

    func replyAttr(_ req: fuse_req_t?, _ a: Attributes) {
        var s = attributesStat(a)
        fuse_reply_attr(req, &s, cacheSeconds)
    }

    /// Runs `body`, replying with the errno it throws; `body` replies on success.
    static func handle(_ req: fuse_req_t?, _ body: (FuseMount) throws(FSError) -> Void) {
        let mount = context(req)
        do { try body(mount) } catch { fuse_reply_err(req, error.code) }
    }

    /// Who asks, and the umask of their process (sent with creates: the mount asks the
    /// kernel not to apply it, FUSE_CAP_DONT_MASK, so a default ACL can win over it).
    static func caller(_ req: fuse_req_t?) -> (uid: Int64, gid: Int64, umask: Int64) {
        guard let ctx = fuse_req_ctx(req) else { return (0, 0, 0o022) }
        return (Int64(ctx.pointee.uid), Int64(ctx.pointee.gid), Int64(ctx.pointee.umask))
    }

    /// Whether the caller of `req` is privileged or in group `gid` (primary or
    /// supplementary, which libfuse reads from /proc): the kernel's test for keeping
    /// set-group-ID, which it leaves to filesystems that store ACLs themselves.
    static func inGroupOrPrivileged(_ req: fuse_req_t?, gid: Int64) -> Bool {
        let who = caller(req)
        if who.uid == 0 || who.gid == gid { return true }
        var groups = [gid_t](repeating: 0, count: 256)
        let count = fuse_req_getgroups(req, Int32(groups.count), &groups)
        return count > 0 && groups.prefix(min(Int(count), groups.count)).contains(gid_t(truncatingIfNeeded: gid))
    }

    /// Whether the kernel agreed to enforce POSIX ACLs (INIT): only then are they stored.
    private let acls = Mutex(false)
    var aclsEnabled: Bool { acls.withLock { $0 } }

    /// An xattr name from the kernel; the ACL names are EOPNOTSUPP unless the kernel
    /// enforces ACLs (it would pass them through as plain xattrs and never check them).
    func xattrName(_ name: UnsafePointer<CChar>?) throws(FSError) -> [UInt8] {
        let bytes = Self.bytes(name)
        if XattrName.isACL(bytes) && !aclsEnabled { throw .notSupported }
        return bytes
    }

    /// getxattr/listxattr: size 0 asks for the length; a buffer too small is ERANGE.
    static func replyXattr(_ req: fuse_req_t?, _ bytes: [UInt8], size: Int) throws(FSError) {
        if size == 0 {
            fuse_reply_xattr(req, bytes.count)
        } else if bytes.count > size {
            throw FSError(ERANGE)
        } else {
            bytes.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
        }
    }

    func writable() throws(FSError) { if readOnly { throw FSError(EROFS) } }

    /// The umask the namespace applies: the caller's when the kernel left it to us.
    func umask(_ who: (uid: Int64, gid: Int64, umask: Int64)) -> Int64? { aclsEnabled ? who.umask : nil }

    /// `fh` of a handle opened with O_NOATIME: its reads leave atime alone.
    static let noatimeHandle: UInt64 = 1
    /// O_NOATIME, which Glibc declares only under _GNU_SOURCE (the same on every Linux ABI).
    static let openNoAtime: Int32 = 0o1_000_000

    /// Whether the kernel may close a handle opened with `openFlags` without a FLUSH
    /// (FOPEN_NOFLUSH): a read-only handle wrote nothing whose write-back its close could
    /// start or report, so its close costs no round trip (one of three requests of an
    /// open-read-close of a small file). Handles that may write keep FLUSH: close() is
    /// where a failed write-back of their bytes is reported.
    static func skipsFlush(openFlags: Int32) -> Bool { openFlags & O_ACCMODE == O_RDONLY }

    // swiftlint:disable:next function_body_length
    static func operations() -> fuse_lowlevel_ops {
        var ops = fuse_lowlevel_ops()
        ops.`init` = { userdata, conn in
            // 1 MiB writes instead of 128 KiB: fewer round trips per chunk. The kernel
            // takes the smaller of this read-ahead and the one `run()` set in sysfs.
            conn?.pointee.max_write = 1 << 20
            let m = Unmanaged<FuseMount>.fromOpaque(userdata!).takeUnretainedValue()
            conn?.pointee.max_readahead = UInt32(FuseMount.readAheadBytes(chunkSize: Int(m.fileSystem.chunkSize)))
            // Every change of a file's data passes through the kernel (one daemon serves a
            // volume), so its cached pages never go stale behind its back. With libfuse's
            // default AUTO_INVAL_DATA the kernel dropped all of them whenever a GETATTR
            // reply carried an mtime it had not seen — the first stat after any write: a
            // stat of a 1 GiB file just written took 140 ms of kernel time, and a reader's
            // cached pages went at every fstat after a write.
            conn?.pointee.want &= ~UInt32(FUSE_CAP_AUTO_INVAL_DATA)
            // POSIX ACLs: the kernel enforces them and caches them from our xattrs; the
            // namespace keeps them and the mode in step and applies the umask itself.
            let both = UInt32(FUSE_CAP_POSIX_ACL) | UInt32(FUSE_CAP_DONT_MASK)
            if let conn, conn.pointee.capable & both == both {
                conn.pointee.want |= both
                m.acls.withLock { $0 = true }
            }
        }
        ops.lookup = { req, parent, name in
            FuseMount.handle(req) { m throws(FSError) in
                do throws(FSError) {
                    m.replyEntry(req, try m.fileSystem.lookup(parent: Int64(parent), name: FuseMount.bytes(name)))
                } catch {
                    guard error == .noEntry else { throw error }
                    // A negative entry (ino 0) the kernel caches: repeated lookups of a
                    // missing name (every create starts with one) stay in the kernel.
                    var e = fuse_entry_param()
                    e.entry_timeout = m.cacheSeconds
                    fuse_reply_entry(req, &e)
                }
            }
        }
        ops.forget = { req, _, _ in fuse_reply_none(req) }
        ops.getattr = { req, ino, _ in
            FuseMount.handle(req) { m throws(FSError) in m.replyAttr(req, try m.fileSystem.getattr(Int64(ino))) }
        }
        ops.setattr = { req, ino, attr, toSet, _ in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let a = attr!.pointee
                let set = toSet
                func has(_ flag: Int32) -> Bool { set & flag != 0 }
                let now = VolumeFileSystem.now()
                let result = try m.fileSystem.setattr(
                    Int64(ino),
                    mode: has(FUSE_SET_ATTR_MODE) ? Int64(a.st_mode & 0o7777) : nil,
                    uid: has(FUSE_SET_ATTR_UID) ? Int64(a.st_uid) : nil,
                    gid: has(FUSE_SET_ATTR_GID) ? Int64(a.st_gid) : nil,
                    size: has(FUSE_SET_ATTR_SIZE) ? Int64(a.st_size) : nil,
                    atimeNs: has(FUSE_SET_ATTR_ATIME_NOW) ? now
                        : has(FUSE_SET_ATTR_ATIME) ? Timestamp.nanoseconds(seconds: a.st_atim.tv_sec, nanoseconds: a.st_atim.tv_nsec) : nil,
                    mtimeNs: has(FUSE_SET_ATTR_MTIME_NOW) ? now
                        : has(FUSE_SET_ATTR_MTIME) ? Timestamp.nanoseconds(seconds: a.st_mtim.tv_sec, nanoseconds: a.st_mtim.tv_nsec) : nil)
                m.replyAttr(req, result)
            }
        }
        ops.readlink = { req, ino in
            FuseMount.handle(req) { m throws(FSError) in
                let target = try m.fileSystem.readlink(Int64(ino))
                var cString = target.map { CChar(bitPattern: $0) }
                cString.append(0)
                fuse_reply_readlink(req, cString)
            }
        }
        ops.mknod = { req, parent, name, mode, rdev in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let kind = Int64(mode & S_IFMT) >> 12
                guard [1, 8, 12, 2, 6].contains(kind) else { throw .invalid }
                let who = FuseMount.caller(req)
                m.replyEntry(req, try m.fileSystem.create(parent: Int64(parent), name: FuseMount.bytes(name), kind: kind,
                                                          mode: Int64(mode & 0o7777), uid: who.uid, gid: who.gid, rdev: Int64(rdev),
                                                          umask: m.umask(who)))
            }
        }
        ops.mkdir = { req, parent, name, mode in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let who = FuseMount.caller(req)
                m.replyEntry(req, try m.fileSystem.create(parent: Int64(parent), name: FuseMount.bytes(name), kind: InodeRecord.directory,
                                                          mode: Int64(mode & 0o7777), uid: who.uid, gid: who.gid, umask: m.umask(who)))
            }
        }
        ops.unlink = { req, parent, name in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                try m.fileSystem.unlink(parent: Int64(parent), name: FuseMount.bytes(name))
                fuse_reply_err(req, 0)
            }
        }
        ops.rmdir = { req, parent, name in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                try m.fileSystem.rmdir(parent: Int64(parent), name: FuseMount.bytes(name))
                fuse_reply_err(req, 0)
            }
        }
        ops.symlink = { req, link, parent, name in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let who = FuseMount.caller(req)
                m.replyEntry(req, try m.fileSystem.create(parent: Int64(parent), name: FuseMount.bytes(name), kind: InodeRecord.symlink,
                                                          mode: 0o777, uid: who.uid, gid: who.gid, target: FuseMount.bytes(link)))
            }
        }
        ops.rename = { req, parent, name, newParent, newName, flags in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                try m.fileSystem.rename(parent: Int64(parent), name: FuseMount.bytes(name), newParent: Int64(newParent),
                                        newName: FuseMount.bytes(newName), flags: flags)
                fuse_reply_err(req, 0)
            }
        }
        ops.link = { req, ino, newParent, newName in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                m.replyEntry(req, try m.fileSystem.link(ino: Int64(ino), newParent: Int64(newParent), newName: FuseMount.bytes(newName)))
            }
        }
        ops.open = { req, ino, fi in
            FuseMount.handle(req) { m throws(FSError) in
                let flags = fi!.pointee.flags
                if m.readOnly && ((flags & O_ACCMODE) != O_RDONLY || flags & O_TRUNC != 0) { throw FSError(EROFS) }
                let attributes = try m.fileSystem.getattr(Int64(ino))
                if attributes.kind == InodeRecord.directory { throw .isDirectory }
                // Also with O_RDONLY, as on Linux: the kernel has checked write access for O_TRUNC.
                if flags & O_TRUNC != 0 { _ = try m.fileSystem.setattr(Int64(ino), size: 0) }
                try m.fileSystem.open(Int64(ino))
                // Reads move atime (relatime) only where they reach us: when one is due,
                // the kernel drops the pages it holds so that the next read does.
                let noatime = flags & FuseMount.openNoAtime != 0 || m.readOnly  // a read-only mount changes nothing
                let reads = flags & O_ACCMODE != O_WRONLY
                fi!.pointee.keep_cache = reads && !noatime && m.fileSystem.atimeIsDue(attributes) ? 0 : 1
                fi!.pointee.fh = noatime ? FuseMount.noatimeHandle : 0
                fi!.pointee.noflush = FuseMount.skipsFlush(openFlags: flags) ? 1 : 0
                fuse_reply_open(req, fi)
            }
        }
        ops.create = { req, parent, name, mode, fi in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let who = FuseMount.caller(req)
                let attributes = try m.fileSystem.create(parent: Int64(parent), name: FuseMount.bytes(name), kind: InodeRecord.regular,
                                                         mode: Int64(mode & 0o7777), uid: who.uid, gid: who.gid, umask: m.umask(who))
                try m.fileSystem.open(attributes.ino)
                var e = fuse_entry_param()
                e.ino = fuse_ino_t(attributes.ino)
                e.generation = 1
                e.attr = m.attributesStat(attributes)
                e.attr_timeout = m.cacheSeconds
                e.entry_timeout = m.cacheSeconds
                fuse_reply_create(req, &e, fi)
            }
        }
        ops.read = { req, ino, size, offset, fi in
            FuseMount.handle(req) { m throws(FSError) in
                // Through io_uring the data is read straight into the reply's place.
                if let place = FuseRing.replyBuffer(count: size) {
                    let count = try m.fileSystem.read(Int64(ino), offset: Int64(offset), into: place)
                    if fi?.pointee.fh != FuseMount.noatimeHandle { try? m.fileSystem.accessed(Int64(ino)) }
                    _ = fuse_reply_buf(req, place.baseAddress?.assumingMemoryBound(to: CChar.self), count)
                    return
                }
                let data = try m.fileSystem.read(Int64(ino), offset: Int64(offset), size: size)
                // Before the reply, so that a stat after the read sees the new atime; it
                // cannot fail the read.
                if fi?.pointee.fh != FuseMount.noatimeHandle { try? m.fileSystem.accessed(Int64(ino)) }
                data.withUnsafeBytes { _ = fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
            }
        }
        ops.write = { req, ino, buffer, size, offset, fi in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                var position = Int64(offset)
                if fi!.pointee.flags & O_APPEND != 0 { position = try m.fileSystem.getattr(Int64(ino)).size }
                let written = try m.fileSystem.write(Int64(ino), offset: position,
                                                     bytes: UnsafeRawBufferPointer(start: buffer, count: size))
                fuse_reply_write(req, written)
            }
        }
        ops.flush = { req, ino, _ in
            FuseMount.handle(req) { m throws(FSError) in
                try m.fileSystem.flush(Int64(ino))
                fuse_reply_err(req, 0)
            }
        }
        ops.fsync = { req, ino, _, _ in
            FuseMount.handle(req) { m throws(FSError) in
                try m.fileSystem.fsync(Int64(ino))
                fuse_reply_err(req, 0)
            }
        }
        ops.release = { req, ino, _ in
            FuseMount.handle(req) { m throws(FSError) in
                try m.fileSystem.release(Int64(ino))
                fuse_reply_err(req, 0)
            }
        }
        ops.opendir = { req, ino, fi in
            FuseMount.handle(req) { m throws(FSError) in
                let attributes = try m.fileSystem.getattr(Int64(ino))
                if attributes.kind != InodeRecord.directory { throw .notDirectory }
                fuse_reply_open(req, fi)
            }
        }
        ops.readdir = { req, ino, size, offset, _ in
            FuseMount.handle(req) { m throws(FSError) in
                let entries = try m.fileSystem.readdir(Int64(ino), offset: Int(offset), limit: max(1, size / 32))
                var buffer = [CChar](repeating: 0, count: size)
                var used = 0
                for entry in entries {
                    var s = Glibc.stat()
                    s.st_ino = UInt(entry.ino)
                    s.st_mode = UInt32(entry.kind << 12)
                    var name = entry.name.map { CChar(bitPattern: $0) }
                    name.append(0)
                    let needed = buffer.withUnsafeMutableBufferPointer { b in
                        fuse_add_direntry(req, b.baseAddress! + used, size - used, name, &s, off_t(entry.next))
                    }
                    if used + needed > size { break }
                    used += needed
                }
                if offset == 0 && !m.readOnly { try? m.fileSystem.accessed(Int64(ino)) }  // a listing reads the directory
                buffer.withUnsafeBufferPointer { _ = fuse_reply_buf(req, $0.baseAddress, used) }
            }
        }
        ops.releasedir = { req, _, _ in fuse_reply_err(req, 0) }
        // A directory's fsync makes its entries durable: every namespace change so far (and,
        // with a cluster store, shipped there).
        ops.fsyncdir = { req, _, _, _ in
            FuseMount.handle(req) { m throws(FSError) in
                try m.fileSystem.syncNamespace()
                fuse_reply_err(req, 0)
            }
        }
        ops.statfs = { req, _ in
            FuseMount.handle(req) { m throws(FSError) in
                let usage = try m.fileSystem.statfs()
                var s = statvfs()
                let block: UInt = 4096
                s.f_bsize = block
                s.f_frsize = block
                s.f_blocks = UInt(usage.capacityBytes) / block
                s.f_bfree = UInt(max(0, usage.capacityBytes - usage.usedBytes)) / block
                s.f_bavail = s.f_bfree
                s.f_files = UInt(usage.entryLimit)
                s.f_ffree = UInt(max(0, usage.entryLimit - usage.entries))
                s.f_favail = s.f_ffree
                s.f_namemax = 255
                fuse_reply_statfs(req, &s)
            }
        }
        ops.setxattr = { req, ino, name, value, size, flags in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let bytesValue = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
                let name = try m.xattrName(name)
                try m.fileSystem.setXattr(Int64(ino), name: name, value: bytesValue, flags: flags) {
                    FuseMount.inGroupOrPrivileged(req, gid: $0)
                }
                fuse_reply_err(req, 0)
            }
        }
        ops.getxattr = { req, ino, name, size in
            FuseMount.handle(req) { m throws(FSError) in
                let name = try m.xattrName(name)
                try FuseMount.replyXattr(req, try m.fileSystem.getXattr(Int64(ino), name: name), size: size)
            }
        }
        ops.listxattr = { req, ino, size in
            FuseMount.handle(req) { m throws(FSError) in
                var list: [UInt8] = []
                for name in try m.fileSystem.listXattr(Int64(ino)) { list += name + [0] }
                try FuseMount.replyXattr(req, list, size: size)
            }
        }
        ops.removexattr = { req, ino, name in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                let name = try m.xattrName(name)
                try m.fileSystem.removeXattr(Int64(ino), name: name)
                fuse_reply_err(req, 0)
            }
        }
        ops.lseek = { req, ino, offset, whence, _ in
            FuseMount.handle(req) { m throws(FSError) in
                fuse_reply_lseek(req, off_t(try m.fileSystem.seek(Int64(ino), offset: Int64(offset), whence: whence)))
            }
        }
        ops.fallocate = { req, ino, mode, offset, length, _ in
            FuseMount.handle(req) { m throws(FSError) in
                try m.writable()
                // Allocating checks there is room for the range to hold data (space counts
                // chunks that hold data; a check, not a reservation) and, without KEEP_SIZE,
                // grows the size (the new bytes read as zeros); PUNCH_HOLE and ZERO_RANGE
                // deallocate. Other modes (COLLAPSE, INSERT, UNSHARE) are refused.
                let (ino, offset, length) = (Int64(ino), Int64(offset), Int64(length))
                let (end, overflow) = offset.addingReportingOverflow(length)
                guard offset >= 0, length > 0, !overflow else { throw overflow ? .fileTooLarge : .invalid }
                let keepSize = mode & FuseMount.fallocKeepSize != 0
                func grow() throws(FSError) {
                    if end > (try m.fileSystem.getattr(ino)).size { _ = try m.fileSystem.setattr(ino, size: end) }
                }
                switch mode & ~FuseMount.fallocKeepSize {
                case 0:
                    try m.fileSystem.ensureRoom(ino, offset: offset, upTo: end)
                    if !keepSize { try grow() }
                case FuseMount.fallocPunchHole:
                    guard keepSize else { throw .notSupported }  // as the kernel demands
                    try m.fileSystem.deallocate(ino, offset: offset, length: length)
                case FuseMount.fallocZeroRange:
                    if !keepSize { try grow() }
                    try m.fileSystem.deallocate(ino, offset: offset, length: length)
                default: throw .notSupported
                }
                fuse_reply_err(req, 0)
            }
        }
        return ops
    }
}
