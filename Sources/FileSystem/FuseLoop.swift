import CFuse3
import Foundation
import Storage
import Synchronization

/// Serves a FUSE session with leader and followers: one thread at a time (the leader)
/// receives requests and answers the quick ones itself — the namespace's, answered from
/// SQLite and the caches in microseconds — then keeps reading for the next one for a short
/// while before it sleeps in `poll` (`SpinWindow`: 50 µs, growing up to 400 µs while
/// requests keep coming just after the leader gave up). A request that may wait on devices
/// or on other work (`isSlow`: reads, large writes, fsync, a truncation, statfs…) is
/// processed by the thread that received it, which first hands the leadership to a
/// follower (started on demand, up to `threads`): the slow request starts at once, and
/// the next requests are received meanwhile.
///
/// Why: a metadata operation is a few round trips between the application and the daemon,
/// each of which woke a sleeping thread of libfuse's pool, usually on the other CPU. On a
/// VM whose idle vCPUs halt (this machine kind: `haltpoll` with `guest_halt_poll_ns` 0),
/// waking a halted vCPU is the most expensive part of a round trip: pinning the daemon and
/// the application to one CPU alone ran deletes at 2–3× the rate. A leader that is
/// already running when the next request comes needs no wake-up (measured side by side:
/// deletes 6,600–10,400/s → 9,800–16,300/s beside passthrough_ll's 10,200–16,600, creates
/// 4,800–5,500/s → 5,700–9,600/s; docs/benchmarks-history.md, session 12). The spin is bounded: an
/// idle mount sleeps in `poll`; one spinning thread costs at most one CPU while requests
/// keep coming, and none follows a slow request (the CPUs go to the write-back and the
/// devices). A slow request costs what it did with libfuse's pool: one wake-up, of the
/// follower, off its own path.
final class FuseLoop: @unchecked Sendable {
    private let session: OpaquePointer
    /// Only the leader uses it; the leadership passes under `condition`.
    private var spin: SpinWindow
    /// Whether a write (node, size) or a release (node) could wait for the file's
    /// write-back: those are slow.
    private let writeMayWait: (UInt64, Int) -> Bool
    private let releaseMayWait: (UInt64) -> Bool
    private let maxThreads: Int
    private let condition = NSCondition()
    /// Under `condition`: whether a thread leads, how many wait to, how many run besides
    /// the one in `run()`, and whether the session is over.
    private var hasLeader = false, followers = 0, threads = 0, stopping = false
    /// Off once io_uring serves the session (`FuseRing`): only FORGETs and INTERRUPTs
    /// still come through the device, and spinning for them would only burn a CPU.
    private let spinning = Atomic<Bool>(true)
    /// Reads of the device that returned requests once io_uring served the session: the
    /// FORGETs' wake-ups (logged at unmount; tests check that they gather).
    let readsBesideRings = Atomic<Int>(0)
    /// `stop()` writes here to wake a sleeping leader.
    private let wakeRead: Int32, wakeWrite: Int32

    init(session: OpaquePointer, threads: Int = 16, spinLimitNanoseconds: UInt64 = FuseLoop.defaultSpinLimit,
         writeMayWait: @escaping (UInt64, Int) -> Bool, releaseMayWait: @escaping (UInt64) -> Bool) {
        self.session = session
        self.writeMayWait = writeMayWait
        self.releaseMayWait = releaseMayWait
        self.maxThreads = max(1, threads)
        spin = SpinWindow(base: Self.baseSpin, limit: spinLimitNanoseconds)
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        } else {
            fds = [-1, -1]
        }
        (wakeRead, wakeWrite) = (fds[0], fds[1])
    }

    deinit {
        if wakeRead >= 0 { close(wakeRead); close(wakeWrite) }
    }

    /// How long the device's reader waits for more FORGETs once io_uring serves the session
    /// (`stopSpinning`): no reply is due for a FORGET, and Berth has nothing to do for one.
    static let gatherMicroseconds: UInt32 = 10_000

    /// The shortest spin, and the longest unless `BERTH_FUSE_SPIN_US` says otherwise.
    static let baseSpin: UInt64 = 50_000, defaultSpinLimit: UInt64 = 400_000

    /// The longest spin from `BERTH_FUSE_SPIN_US` (microseconds; 0: never spin; at most
    /// 10,000), else 400 µs.
    static func spinLimitFromEnvironment() -> UInt64 {
        guard let text = ProcessInfo.processInfo.environment["BERTH_FUSE_SPIN_US"], let us = UInt64(text) else {
            return defaultSpinLimit
        }
        return min(us, 10_000) * 1_000
    }

    /// Serves until the session exits (unmount, a signal, `stop()`), then waits for the
    /// requests other threads are processing.
    func run() {
        let fd = fuse_session_fd(session)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        serve()
        condition.lock()
        while threads > 0 { condition.wait() }
        condition.unlock()
    }

    /// Wakes a leader sleeping in `poll` so that it sees `fuse_session_exit`.
    func wake() {
        var byte: UInt8 = 1
        if wakeWrite >= 0 { _ = write(wakeWrite, &byte, 1) }
    }

    /// Never spin again (the session's requests now come through io_uring).
    func stopSpinning() { spinning.store(false, ordering: .relaxed) }

    /// One thread's life: wait to lead, lead until a slow request, process it, again.
    private func serve() {
        let fd = fuse_session_fd(session)
        var buf = fuse_buf()
        defer { if let mem = buf.mem { free(mem) } }
        while true {
            condition.lock()
            while hasLeader && !stopping {
                followers += 1
                condition.wait()
                followers -= 1
            }
            if stopping { condition.unlock(); return }
            hasLeader = true
            condition.unlock()
            var last: UInt64 = 0
            lead: while true {
                let res = fuse_session_receive_buf(session, &buf)
                if res > 0 {
                    if !spinning.load(ordering: .relaxed) { readsBesideRings.add(1, ordering: .relaxed) }
                    if isSlow(buf) {
                        handOver()
                        fuse_session_process_buf(session, &buf)
                        break lead
                    }
                    fuse_session_process_buf(session, &buf)
                    last = Self.now()
                    continue
                }
                // 0: unmounted; an error other than these: the device failed.
                guard (res == -EAGAIN || res == -EINTR) && fuse_session_exited(session) == 0 else {
                    condition.lock()
                    stopping = true
                    hasLeader = false
                    condition.broadcast()
                    condition.unlock()
                    return
                }
                if last != 0 && spinning.load(ordering: .relaxed) && Self.now() &- last < spin.current { continue }
                if last != 0 && !spinning.load(ordering: .relaxed) {
                    // io_uring serves the session: what comes here now is FORGETs (every
                    // unlink's, as the kernel drops the inode) and the rare INTERRUPT. Let
                    // them gather into one BATCH_FORGET rather than wake this thread per unlink.
                    usleep(Self.gatherMicroseconds)
                    last = 0
                    continue
                }
                var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
                let asleep = last == 0 ? 0 : Self.now()
                _ = poll(&fds, wakeRead >= 0 ? 2 : 1, 500)
                if fds[1].revents != 0 { var byte: UInt8 = 0; while read(wakeRead, &byte, 1) > 0 {} }
                // Only a sleep that followed a spin tells whether the spin was too short.
                if asleep != 0 { spin.sleptAfterSpin(Self.now() &- asleep) }
                last = 0
            }
        }
    }

    /// Gives up leading before a slow request: a waiting follower takes over, or a new
    /// thread if none waits and fewer than `maxThreads` run (else the next thread done
    /// with its request leads).
    private func handOver() {
        condition.lock()
        defer { condition.unlock() }
        hasLeader = false
        if followers > 0 {
            condition.signal()
        } else if threads + 1 < maxThreads && !stopping {
            threads += 1
            let t = Thread { [self] in
                serve()
                condition.lock()
                threads -= 1
                condition.broadcast()
                condition.unlock()
            }
            t.name = "berth-fuse"
            t.start()
        }
    }

    static func now() -> UInt64 { UInt64(Monotonic.nanoseconds()) }

    // Opcodes and fields of the kernel's protocol (linux/fuse.h) read to route a request.
    static let opOpen: UInt32 = 14, opRead: UInt32 = 15, opWrite: UInt32 = 16, opStatfs: UInt32 = 17,
               opRelease: UInt32 = 18, opFsync: UInt32 = 20, opSetattr: UInt32 = 4, opFallocate: UInt32 = 43,
               opCopyFileRange: UInt32 = 47
    /// Size of `fuse_in_header`; `fuse_setattr_in.valid` and `fuse_open_in.flags` follow it.
    static let headerBytes = 40
    static let setattrSize: UInt32 = 1 << 3  // FATTR_SIZE

    /// Whether a request may take long or wait for other work: reads (devices), fsync, a
    /// truncation (a setattr with a size, an open with O_TRUNC), fallocate, statfs (counts
    /// every inode), a write or a release that could wait for the file's write-back (a
    /// large write, or one to a file with a chunk's worth buffered). Everything else is the
    /// namespace's, and small writes to a file are copied into its buffer.
    func isSlow(_ buf: fuse_buf) -> Bool {
        guard let mem = buf.mem, buf.size >= Self.headerBytes else { return false }
        let opcode = mem.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let node = mem.loadUnaligned(fromByteOffset: 16, as: UInt64.self)
        switch opcode {
        case Self.opRead, Self.opFsync, Self.opFallocate, Self.opStatfs, Self.opCopyFileRange: return true
        case Self.opWrite:
            // fuse_write_in: fh, offset, size.
            guard buf.size >= Self.headerBytes + 24 else { return true }
            let size = mem.loadUnaligned(fromByteOffset: Self.headerBytes + 16, as: UInt32.self)
            return writeMayWait(node, Int(size))
        case Self.opRelease: return releaseMayWait(node)
        case Self.opSetattr:
            return buf.size >= Self.headerBytes + 4 && mem.loadUnaligned(fromByteOffset: Self.headerBytes, as: UInt32.self) & Self.setattrSize != 0
        case Self.opOpen:
            return buf.size >= Self.headerBytes + 4
                && Int32(bitPattern: mem.loadUnaligned(fromByteOffset: Self.headerBytes, as: UInt32.self)) & O_TRUNC != 0
        default: return false
        }
    }
}
