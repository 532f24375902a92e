import CFuse3
import CURing
import Foundation
import Synchronization

/// Serves a FUSE session's requests through io_uring (the kernel's FUSE-over-io_uring,
/// Linux 6.14+ with `/sys/module/fuse/parameters/enable_uring` on) instead of reading and
/// writing `/dev/fuse`.
///
/// The kernel keeps one queue per CPU and puts a request on the queue of the CPU its
/// caller runs on. Each queue here has `threadsPerQueue` threads, each pinned to that CPU
/// with its own io_uring and one ring entry (a header buffer and a payload buffer the
/// kernel copies requests into and replies out of). So a request is served on the CPU the
/// application waits on: the application sleeps, the daemon's thread runs in its place,
/// commits the reply, and the application wakes on the same CPU — no wake-up of another
/// (possibly halted) vCPU, which is most of a round trip through `/dev/fuse` on this machine
/// kind (docs/filesystem.md, request loop). A slow request holds only its thread; the
/// queue's other entries take the next requests.
///
/// libfuse 3.14 knows nothing of io_uring, so this sits under it through its custom I/O
/// hooks: a ring thread rebuilds the request as `/dev/fuse` would have delivered it (in
/// header, per-operation header, payload; in place, just before the payload) and hands it
/// to `fuse_session_process_buf`; the reply libfuse then writes comes to `send`, which
/// copies it into the entry and commits it (fetching the next request in the same call).
/// Replies to anything read from `/dev/fuse` — INIT, and whatever came before the ring
/// was ready — still go there; FORGET and INTERRUPT always come that way, so `FuseLoop`
/// keeps serving the device beside the rings.
///
/// The kernel offers io_uring in INIT; libfuse 3.14 cannot ask for it, so `send` adds the
/// flag to libfuse's INIT reply, but only when every ring was set up beforehand: once the
/// flag is accepted the kernel holds every request until all queues have an entry (a ring
/// that then fails to register falls back to `/dev/fuse`: the kernel drops io_uring).
final class FuseRing: @unchecked Sendable {
    /// One ring entry: its io_uring, its buffers, the queue (CPU) it serves.
    final class Entry: @unchecked Sendable {
        let qid: UInt16
        var ring: OpaquePointer?
        /// Serializes submissions: a reply may be committed from a thread other than the
        /// entry's own.
        let submitLock = NSLock()
        let headers: UnsafeMutablePointer<berth_fuse_uring_req_header>
        /// `prefix` bytes, then the payload buffer.
        var block: UnsafeMutableRawPointer?
        var payloadBytes = 0
        var thread: Thread?

        init(qid: UInt16) {
            self.qid = qid
            headers = .allocate(capacity: 1)
            headers.initialize(to: berth_fuse_uring_req_header())
        }

        var payload: UnsafeMutableRawPointer { block! + FuseRing.prefix }

        deinit {
            headers.deallocate()
            if let block { free(block) }
        }
    }

    /// Ring threads run ahead of the applications on their CPU (a process without
    /// CAP_SYS_NICE keeps 0). Why: a request comes while its application still runs — a
    /// RELEASE after close(), writes from several jobs on one CPU — and at the same priority
    /// the thread waited for the scheduler to preempt the application; at -10 it runs at
    /// once, as work in the application's own system call would (creates 7,000–8,100/s →
    /// 11,500–13,500/s alternating, docs/benchmarks-history.md, session 17).
    static let defaultNice: Int32 = -10

    /// Room before the payload for the `fuse_in_header` (40 bytes) and the per-operation
    /// header (at most 128) of a rebuilt request.
    static let prefix = 4096
    static let inHeaderBytes = 40, outHeaderBytes = 16, opHeaderLimit = 128
    static let opInit: UInt32 = 26
    /// FUSE_INIT_EXT (flags), FUSE_OVER_IO_URING (flags2: bit 41 of the 64-bit flags).
    static let initExt: UInt32 = 1 << 30, overIoUring: UInt32 = 1 << 9

    private let entries: [Entry]
    private let pin: Bool
    /// The ring threads' nice value: `BERTH_FUSE_RING_NICE`, default -10 (0 leaves it).
    private let nice: Int32
    private let session: OpaquePointer
    /// The session's `/dev/fuse` descriptor, which the FUSE commands name.
    private let fd: Int32
    /// Requests being served from a ring, by unique id: where their replies go.
    private let inFlight = Mutex<[UInt64: Entry]>([:])
    /// The unique id of an INIT request that offered io_uring, until its reply (0: none).
    private let initUnique = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    /// Whether the kernel accepted the rings (the INIT reply claimed them).
    let claimed = Atomic<Bool>(false)
    /// Requests served from the rings, and replies whose data was built in place.
    let served = Atomic<Int>(0), inPlace = Atomic<Int>(0)
    let queues: Int, threadsPerQueue: Int
    /// Called once the rings serve (the FUSE loop stops spinning on `/dev/fuse`).
    var onStart: (@Sendable () -> Void)?
    /// Whether a request may take long (`FuseLoop.isSlow`: reads, fsync, truncations…): its
    /// thread is unpinned while it runs.
    var isSlow: (@Sendable (fuse_buf) -> Bool)?

    private init(session: OpaquePointer, fd: Int32, entries: [Entry], queues: Int, threadsPerQueue: Int, pin: Bool, nice: Int32) {
        self.session = session
        self.fd = fd
        self.nice = nice
        self.entries = entries
        self.queues = queues
        self.threadsPerQueue = threadsPerQueue
        self.pin = pin
    }

    deinit {
        for entry in entries { berth_ring_close(entry.ring) }
    }

    /// Rings for every possible CPU, or nil when this kernel or process cannot have them
    /// (io_uring disabled, no CPU list) or `BERTH_FUSE_RING=0`. `BERTH_FUSE_RING_THREADS`
    /// sets the threads per CPU (at most 16; default 16 ÷ CPUs, between 1 and 8: a slow
    /// request holds its thread, and each thread keeps a payload buffer of max_write);
    /// `BERTH_FUSE_RING_PIN=0` leaves them unpinned (measured 2–3× slower metadata);
    /// `BERTH_FUSE_RING_NICE` sets their nice value (default -10, 0 leaves it).
    /// `session`'s device is open (mounted) as `fd`.
    static func make(session: OpaquePointer, fd: Int32,
                     environment: [String: String] = ProcessInfo.processInfo.environment) -> FuseRing? {
        guard environment["BERTH_FUSE_RING"] != "0", uringOffered(), let cpus = possibleCPUs() else { return nil }
        let perQueue = min(16, max(1, Int(environment["BERTH_FUSE_RING_THREADS"] ?? "") ?? min(8, 16 / cpus)))
        var entries: [Entry] = []
        for cpu in 0..<cpus {
            for _ in 0..<perQueue {
                let entry = Entry(qid: UInt16(cpu))
                entry.ring = berth_ring_open(4)
                guard entry.ring != nil else {
                    for made in entries { berth_ring_close(made.ring) }
                    return nil
                }
                entries.append(entry)
            }
        }
        return FuseRing(session: session, fd: fd, entries: entries, queues: cpus, threadsPerQueue: perQueue, pin: environment["BERTH_FUSE_RING_PIN"] != "0",
                        nice: environment["BERTH_FUSE_RING_NICE"].flatMap { Int32($0) }.map { min(19, max(-20, $0)) } ?? defaultNice)
    }

    /// The fuse module's switch: Y offers io_uring to new connections.
    static let offeredParameter = "/sys/module/fuse/parameters/enable_uring"

    /// Whether the fuse module offers io_uring to new connections.
    static func uringOffered() -> Bool {
        (try? String(contentsOfFile: offeredParameter, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) == "Y"
    }

    /// How many queues the kernel makes: one per possible CPU (ids 0 through the highest
    /// in /sys/devices/system/cpu/possible, e.g. "0-1" or "0,2-3").
    static func possibleCPUs() -> Int? {
        guard let text = try? String(contentsOfFile: "/sys/devices/system/cpu/possible", encoding: .utf8) else { return nil }
        return CPUList.highest(text).map { $0 + 1 }
    }

    /// The custom read hook's look at each request read from `/dev/fuse`: notes INIT.
    func noteRead(_ buffer: UnsafeRawPointer, count: Int) {
        guard count >= Self.inHeaderBytes + 20, buffer.loadUnaligned(fromByteOffset: 4, as: UInt32.self) == Self.opInit else { return }
        let flags = buffer.loadUnaligned(fromByteOffset: Self.inHeaderBytes + 12, as: UInt32.self)
        let flags2 = buffer.loadUnaligned(fromByteOffset: Self.inHeaderBytes + 16, as: UInt32.self)
        guard flags & Self.initExt != 0, flags2 & Self.overIoUring != 0 else { return }
        initUnique.store(buffer.loadUnaligned(fromByteOffset: 8, as: UInt64.self), ordering: .releasing)
    }

    /// The custom writev hook: a reply to a ring request is committed to its entry, INIT's
    /// reply claims the rings, anything else goes to the device.
    func send(fd: Int32, iov: UnsafeMutablePointer<iovec>, count: Int32) -> Int {
        guard count >= 1, iov[0].iov_len >= Self.outHeaderBytes, let header = iov[0].iov_base else {
            return writev(fd, iov, count)
        }
        let unique = header.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        if unique != 0, let entry = inFlight.withLock({ $0.removeValue(forKey: unique) }) {
            return commit(entry, unique: unique, iov: iov, count: Int(count))
        }
        if unique != 0, unique == initUnique.load(ordering: .acquiring) {
            initUnique.store(0, ordering: .relaxed)
            return sendInit(fd: fd, iov: iov, count: Int(count))
        }
        return writev(fd, iov, count)
    }

    /// Sends libfuse's INIT reply with FUSE_OVER_IO_URING added, then starts the rings
    /// with payload buffers as large as the kernel will use (the largest of 8 KiB,
    /// max_write and max_pages pages).
    private func sendInit(fd: Int32, iov: UnsafeMutablePointer<iovec>, count: Int) -> Int {
        var reply = [UInt8]()
        for i in 0..<count where iov[i].iov_len > 0 {
            reply.append(contentsOf: UnsafeRawBufferPointer(start: iov[i].iov_base, count: iov[i].iov_len))
        }
        let argument = Self.outHeaderBytes
        let error = reply.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: Int32.self) }
        // fuse_init_out: flags at 12, max_write at 20, max_pages at 28, flags2 at 32.
        guard error == 0, reply.count >= argument + 36 else { return reply.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        let (maxWrite, maxPages) = reply.withUnsafeMutableBytes { bytes -> (Int, Int) in
            let flags = bytes.loadUnaligned(fromByteOffset: argument + 12, as: UInt32.self)
            bytes.storeBytes(of: flags | Self.initExt, toByteOffset: argument + 12, as: UInt32.self)
            let flags2 = bytes.loadUnaligned(fromByteOffset: argument + 32, as: UInt32.self)
            bytes.storeBytes(of: flags2 | Self.overIoUring, toByteOffset: argument + 32, as: UInt32.self)
            return (Int(bytes.loadUnaligned(fromByteOffset: argument + 20, as: UInt32.self)),
                    Int(bytes.loadUnaligned(fromByteOffset: argument + 28, as: UInt16.self)))
        }
        let written = reply.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == reply.count else { return written }
        claimed.store(true, ordering: .releasing)
        start(payloadBytes: max(8192, maxWrite, max(maxPages, 32) * Int(getpagesize())))
        return written
    }

    /// Allocates the entries' payloads and starts their threads, which register them.
    private func start(payloadBytes: Int) {
        for entry in entries {
            entry.payloadBytes = payloadBytes
            entry.block = malloc(Self.prefix + payloadBytes)
            let thread = Thread { [self] in serve(entry) }
            thread.name = "berth-ring"
            entry.thread = thread
        }
        onStart?()
        for entry in entries { entry.thread?.start() }
    }

    /// Stops serving: each thread ends at its next completion or within 200 ms. A request
    /// fetched meanwhile is left to the kernel, which ends it at unmount.
    func stop() {
        stopping.store(true, ordering: .releasing)
        for entry in entries {
            guard let thread = entry.thread else { continue }
            while !thread.isFinished { usleep(1_000) }
        }
    }

    /// One entry's thread: register, then serve each request the kernel puts in it.
    private func serve(_ entry: Entry) {
        var everywhere = berth_cpu_mask()
        let canRoam = berth_get_affinity(&everywhere) == 0
        var pinned = everywhere
        if pin {
            _ = berth_pin_to_cpu(Int32(entry.qid))
            _ = berth_get_affinity(&pinned)
        }
        if nice != 0 { _ = berth_set_thread_nice(nice) }
        var iov = [iovec(iov_base: UnsafeMutableRawPointer(entry.headers), iov_len: MemoryLayout<berth_fuse_uring_req_header>.size),
                   iovec(iov_base: entry.payload, iov_len: entry.payloadBytes)]
        let registered = entry.submitLock.withLock {
            berth_ring_fuse_command(entry.ring, fd, UInt32(BERTH_FUSE_URING_REGISTER), entry.qid, 0, &iov)
        }
        guard registered == 0 else { return }
        while !stopping.load(ordering: .acquiring) {
            var result: Int32 = 0
            let waited = berth_ring_wait(entry.ring, 200, &result)
            if waited == -ETIME || waited == -EINTR { continue }
            // The wait failed, or the command ended: -ENOTCONN when the connection ends.
            guard waited == 0, result == 0, !stopping.load(ordering: .acquiring) else { return }
            process(entry, roam: pin && canRoam ? (everywhere, pinned) : nil)
        }
    }

    /// Rebuilds the request in the entry as `/dev/fuse` would deliver it and has libfuse
    /// process it. A slow request runs with the thread's affinity widened to `roam.0` (then
    /// pinned back to `roam.1`): the kernel reads ahead with several READs at once, all on
    /// the reader's CPU's queue, and pinned they shared that CPU for their checksums and
    /// copies while the other idled (cold 1 GiB sequential reads fell to 0.68 of
    /// passthrough_ll's; docs/benchmarks-history.md, session 17).
    private func process(_ entry: Entry, roam: (berth_cpu_mask, berth_cpu_mask)? = nil) {
        let headers = UnsafeMutableRawPointer(entry.headers)
        let length = Int(headers.loadUnaligned(as: UInt32.self))
        let unique = headers.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
        let payloadCount = Int(entry.headers.pointee.ring_ent_in_out.payload_sz)
        let opHeader = length - Self.inHeaderBytes - payloadCount
        guard opHeader >= 0, opHeader <= Self.opHeaderLimit, payloadCount <= entry.payloadBytes else {
            commitError(entry, unique: unique, error: EIO)
            return
        }
        let start = entry.payload - Self.inHeaderBytes - opHeader
        start.copyMemory(from: headers, byteCount: Self.inHeaderBytes)
        (start + Self.inHeaderBytes).copyMemory(from: headers + 128, byteCount: opHeader)
        inFlight.withLock { $0[unique] = entry }
        served.add(1, ordering: .relaxed)
        var buf = fuse_buf()
        buf.size = length
        buf.mem = start
        buf.fd = -1
        pthread_setspecific(Self.servingKey, Unmanaged.passUnretained(entry).toOpaque())
        defer { pthread_setspecific(Self.servingKey, nil) }
        if var (everywhere, pinned) = roam, isSlow?(buf) == true {
            _ = berth_set_affinity(&everywhere)
            fuse_session_process_buf(session, &buf)
            _ = berth_set_affinity(&pinned)
        } else {
            fuse_session_process_buf(session, &buf)
        }
    }

    /// The entry whose request the calling thread is processing (set around
    /// `fuse_session_process_buf` on a ring thread).
    private static let servingKey: pthread_key_t = {
        var key = pthread_key_t()
        precondition(pthread_key_create(&key, nil) == 0)
        return key
    }()

    /// Where a reply of `count` bytes of data can be built in place: the payload buffer of
    /// the ring entry whose request the calling thread is processing — nil on any other
    /// thread (a request from `/dev/fuse`), or if it is too small. A reply whose data
    /// libfuse hands over at that address is committed without copying it (a READ's data
    /// had been copied there from the file system's buffer: 1 MiB per request).
    static func replyBuffer(count: Int) -> UnsafeMutableRawBufferPointer? {
        guard let serving = pthread_getspecific(servingKey) else { return nil }
        let entry = Unmanaged<Entry>.fromOpaque(serving).takeUnretainedValue()
        guard count <= entry.payloadBytes else { return nil }
        return UnsafeMutableRawBufferPointer(start: entry.payload, count: count)
    }

    /// Copies a reply (out header, then its arguments) into the entry and commits it.
    private func commit(_ entry: Entry, unique: UInt64, iov: UnsafeMutablePointer<iovec>, count: Int) -> Int {
        let arguments = (1..<max(1, count)).reduce(0) { $0 + iov[$1].iov_len }
        guard arguments <= entry.payloadBytes else {
            commitError(entry, unique: unique, error: EIO)
            errno = EINVAL
            return -1
        }
        UnsafeMutableRawPointer(entry.headers).copyMemory(from: iov[0].iov_base!, byteCount: Self.outHeaderBytes)
        var offset = 0
        for i in 1..<max(1, count) where iov[i].iov_len > 0 {
            // Data built in place (`replyBuffer`) is where it must go already.
            if iov[i].iov_base != entry.payload + offset {
                (entry.payload + offset).copyMemory(from: iov[i].iov_base!, byteCount: iov[i].iov_len)
            } else {
                inPlace.add(1, ordering: .relaxed)
            }
            offset += iov[i].iov_len
        }
        entry.headers.pointee.ring_ent_in_out.payload_sz = UInt32(offset)
        let r = entry.submitLock.withLock {
            berth_ring_fuse_command(entry.ring, fd, UInt32(BERTH_FUSE_URING_COMMIT_AND_FETCH), entry.qid, unique, nil)
        }
        guard r == 0 else { errno = -r; return -1 }
        return Self.outHeaderBytes + arguments
    }

    private func commitError(_ entry: Entry, unique: UInt64, error: Int32) {
        var header = (UInt32(Self.outHeaderBytes), -error, unique)
        withUnsafeMutableBytes(of: &header) { bytes in
            var iov = iovec(iov_base: bytes.baseAddress, iov_len: Self.outHeaderBytes)
            _ = commit(entry, unique: unique, iov: &iov, count: 1)
        }
    }

}
