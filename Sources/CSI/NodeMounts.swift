import Engine
import FileSystem
import Foundation
import FuseHandoff
import Logging
import Synchronization

/// The node side of publishing: one FUSE session per volume in use on this node, mounted
/// under the driver's own state directory, and bind mounts of it at each staging and
/// target path the orchestrator asks for (read-only ones remounted read-only).
///
/// One session per volume keeps one set of caches and write buffers per volume, however
/// many pods use it. The list of paths is kept in `STATE/node/mounts.json` (atomically
/// replaced), so a restarted daemon re-mounts what it had published, and cleans up what
/// no longer has a volume.
///
/// With a keeper (`FuseKeeper`, at `STATE/fuse-keeper.sock`), the sessions outlive the
/// daemon: at SIGTERM they stop being served but stay mounted (the keeper holds their
/// /dev/fuse descriptors), and the next daemon serves them again before anything else, so
/// applications see a pause, not "Transport endpoint is not connected".
public final class NodeMounts: Sendable {
    public struct Target: Codable, Sendable, Hashable {
        public enum Kind: String, Codable, Sendable { case staging, publish }
        public var path: String
        public var volumeID: String
        public var kind: Kind
        public var readOnly: Bool
        /// Whether the driver created the directory (and so removes it at unpublish).
        public var created: Bool
    }

    public enum Failure: Error, CustomStringConvertible {
        case conflict(String)
        case notStaged(String)
        case notEmpty(String)
        case mountFailed(String)
        public var description: String {
            switch self { case .conflict(let s), .notStaged(let s), .notEmpty(let s), .mountFailed(let s): s }
        }
    }

    final class Session: @unchecked Sendable {
        let mount: FuseMount
        let path: String
        var volumeID: String { mount.fileSystem.volume }
        let finished = DispatchSemaphore(value: 0)
        init(mount: FuseMount, path: String) { self.mount = mount; self.path = path }
    }

    struct State {
        var targets: [String: Target] = [:]
        var sessions: [String: Session] = [:]
    }

    let engine: Engine
    /// One budget of cached object bytes for every mount of the node.
    let objectCache: ObjectCache
    let sessionsDirectory: String
    let recordPath: String
    let log: Logger
    /// Per volume, the writes its session acknowledged and has not committed yet
    /// (`WriteJournal`): a successor commits them after a SIGKILL. Kept only for sessions a
    /// keeper may hold (without one, a SIGKILL ends the mount, and the application's next
    /// call reports it, as a crash would); what a journal holds is replayed by the volume's
    /// next mount either way.
    let journalsDirectory: String
    /// Holds the sessions' descriptors across restarts (nil: mounts end with the daemon).
    let keeper: KeeperClient?
    private let state = Mutex(State())
    private let saves = GroupedWrites()

    /// The node-wide budget for cached object bytes, shared by all its mounts.
    public static let defaultObjectCacheBytes = 256 << 20

    /// The keeper's socket under a state directory.
    public static func keeperSocket(stateDirectory: String) -> String { stateDirectory + "/fuse-keeper.sock" }

    /// `keeperExecutable`: the keeper to start if none runs for this state directory (nil:
    /// none; mounts then end with the daemon).
    public init(engine: Engine, stateDirectory: String, logger: Logger, objectCacheBytes: Int = defaultObjectCacheBytes,
                keeperExecutable: String? = nil) throws {
        self.engine = engine
        objectCache = ObjectCache(budgetBytes: objectCacheBytes)
        sessionsDirectory = stateDirectory + "/mounts"
        journalsDirectory = stateDirectory + "/journal"
        recordPath = stateDirectory + "/node/mounts.json"
        log = logger
        keeper = keeperExecutable.flatMap { KeeperClient.connect(socketPath: Self.keeperSocket(stateDirectory: stateDirectory), executable: $0) }
        if keeperExecutable != nil && keeper == nil {
            logger.warning("no FUSE session keeper: mounts will not survive a restart of this daemon")
        }
        try FileManager.default.createDirectory(atPath: sessionsDirectory, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: stateDirectory + "/node", withIntermediateDirectories: true)
        if let data = FileManager.default.contents(atPath: recordPath) {
            let targets = try JSONDecoder().decode([Target].self, from: data)
            state.withLock { s in for t in targets { s.targets[t.path] = t } }
        }
    }

    // MARK: queries

    public func targets(volumeID: String) -> [Target] {
        state.withLock { $0.targets.values.filter { $0.volumeID == volumeID }.sorted { $0.path < $1.path } }
    }

    public func target(at path: String) -> Target? { state.withLock { $0.targets[Self.normalized(path)] } }

    public var volumesInUse: Set<String> { state.withLock { Set($0.targets.values.map(\.volumeID)) } }

    // MARK: stage / publish

    /// Makes the volume available at `path` (a staging path). Idempotent for the same
    /// volume; another volume already there is a conflict.
    public func stage(volumeID: String, path: String) throws {
        try attach(Target(path: Self.normalized(path), volumeID: volumeID, kind: .staging, readOnly: false, created: false))
    }

    /// Bind-mounts the volume at `target`. The volume must be staged at `stagingPath`.
    public func publish(volumeID: String, stagingPath: String, target: String, readOnly: Bool) throws {
        guard let staged = self.target(at: stagingPath), staged.kind == .staging, staged.volumeID == volumeID else {
            throw Failure.notStaged("volume \(volumeID) is not staged at \(stagingPath)")
        }
        try attach(Target(path: Self.normalized(target), volumeID: volumeID, kind: .publish, readOnly: readOnly, created: false))
    }

    /// Removes the mount at `path` (either kind). Nothing there is success. The volume's
    /// session ends with its last path.
    public func detach(volumeID: String, path: String, kind: Target.Kind) throws {
        let key = Self.normalized(path)
        guard let existing = target(at: key) else {
            // Not ours, or already gone: success, and nothing there is touched.
            return
        }
        guard existing.volumeID == volumeID else {
            throw Failure.conflict("\(key) holds volume \(existing.volumeID), not \(volumeID)")
        }
        Self.unmount(key)
        if existing.created { rmdir(key) }
        let last = state.withLock { s -> Bool in
            s.targets[key] = nil
            return !s.targets.values.contains { $0.volumeID == volumeID }
        }
        try save()
        if last { stopSession(volumeID) }
    }

    private func attach(_ wanted: Target) throws {
        let key = wanted.path
        if let existing = target(at: key) {
            guard existing.volumeID == wanted.volumeID, existing.kind == wanted.kind, existing.readOnly == wanted.readOnly else {
                throw Failure.conflict("\(key) already holds volume \(existing.volumeID) (\(existing.kind.rawValue)\(existing.readOnly ? ", read-only" : ""))")
            }
            if Self.isMounted(key) { return }
            // Recorded but not mounted (a crash between the two): mount again below.
        }
        var target = wanted
        var st = stat()
        if lstat(key, &st) != 0 {
            // Kubernetes creates staging paths and lets the driver create targets; a
            // missing one of either is created (in an existing parent) and removed later.
            guard mkdir(key, 0o750) == 0 else { throw Failure.mountFailed("cannot create \(key): \(String(cString: strerror(errno)))") }
            target.created = true
        } else if st.st_mode & S_IFMT != S_IFDIR {
            throw Failure.notEmpty("\(key) is not a directory")
        } else if let existing = self.target(at: key) {
            target.created = existing.created
        } else if !Self.isEmptyDirectory(key) {
            // Orchestrators hand out empty directories; mounting over anything else would
            // hide what is there (think /etc), so it is refused and left untouched.
            throw Failure.notEmpty("\(key) is not an empty directory; refusing to mount over it")
        }
        let source = try session(for: wanted.volumeID)
        try Self.bind(source, key, readOnly: wanted.readOnly)
        state.withLock { $0.targets[key] = target }
        try save()
        log.info("mounted", metadata: ["volume": "\(wanted.volumeID)", "path": "\(key)", "kind": "\(wanted.kind.rawValue)",
                                       "read_only": "\(wanted.readOnly)"])
    }

    /// Makes everything written to the volume through its mount here durable in its
    /// database (nothing to do if it is not mounted here): before a snapshot or clone.
    public func sync(volumeID: String) throws {
        guard let session = state.withLock({ $0.sessions[volumeID] }) else { return }
        do { try session.mount.fileSystem.syncAll() } catch {
            throw Failure.mountFailed("cannot flush the writes buffered for volume \(volumeID): \(error)")
        }
    }

    // MARK: sessions

    /// The volume's FUSE mount point, starting its session if it has none (`resuming`: the
    /// session a previous daemon left with the keeper, served again without a remount).
    private func session(for volumeID: String, resuming: (session: HeldSession, descriptor: Int32)? = nil) throws -> String {
        if let running = state.withLock({ $0.sessions[volumeID] }), Self.isMounted(running.path) { return running.path }
        let path = sessionsDirectory + "/" + volumeID  // volumeID is an id the engine issued
        if resuming == nil {
            FuseMount.clearStaleMount(path)
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        // The volume's database first, so that a refusal says why (another node holds its
        // lease: ABORTED, tried again by kubelet) rather than the filesystem's bare errno.
        do { _ = try engine.namespace(volume: volumeID) } catch {
            if let resuming { close(resuming.descriptor) }
            throw error
        }
        let fileSystem: VolumeFileSystem
        let resumed: VolumeFileSystem.Resumed? = resuming.map { held in
            held.session.clean ? .handles(held.session.openHandles ?? [:]) : .unknown
        }
        do {
            fileSystem = try VolumeFileSystem(engine: engine, volume: volumeID, cache: objectCache, resuming: resumed,
                                              journal: journalsDirectory + "/" + volumeID, journaling: keeper != nil)
        } catch {
            if let resuming { close(resuming.descriptor) }
            throw error
        }
        let ready = DispatchSemaphore(value: 0)
        let mount = FuseMount(fileSystem: fileSystem, mountpoint: path, handlesSignals: false, keeper: keeper, resuming: resuming,
                              mounted: { ready.signal() })
        let session = Session(mount: mount, path: path)
        let failure = Mutex<String?>(nil)
        let thread = Thread { [log] in
            do { try mount.run() } catch {
                failure.withLock { $0 = "\(error)" }
                log.error("FUSE session failed", metadata: ["volume": "\(volumeID)", "error": "\(error)"])
            }
            ready.signal()
            session.finished.signal()
        }
        thread.name = "fuse-\(volumeID.suffix(8))"
        thread.start()
        let started = ready.wait(timeout: .now() + 30) == .success
        if let why = failure.withLock({ $0 }) { throw Failure.mountFailed("cannot mount volume \(volumeID): \(why)") }
        guard started, Self.isMounted(path) else {
            // Not left serving behind a session that will be mounted again.
            mount.stop()
            _ = session.finished.wait(timeout: .now() + 5)
            var info = statvfs()
            let listed = Self.isListed(path)
            let answer = statvfs(path, &info) == 0 ? "answers" : "statfs: \(String(cString: strerror(errno)))"
            throw Failure.mountFailed("volume \(volumeID) did not mount (\(listed ? "listed" : "not listed") in mountinfo; \(answer))")
        }
        state.withLock { $0.sessions[volumeID] = session }
        return path
    }

    /// Ends a volume's session: commits its buffered writes, unmounts it. `until`: the
    /// daemon is stopping — the session stops serving by then even if files are still open
    /// on it (they see ENOTCONN; without a keeper, nothing can serve them any more).
    private func stopSession(_ volumeID: String, until deadline: DispatchTime? = nil) {
        guard let session = state.withLock({ $0.sessions.removeValue(forKey: volumeID) }) else { return }
        session.mount.fileSystem.flushAll()
        // The keeper lets go first: the unmount below is then the connection's end.
        do { try keeper?.release(session.path) } catch {
            log.warning("the keeper did not let go of a session", metadata: ["volume": "\(volumeID)", "error": "\(error)"])
        }
        // Unmounting ends the session: its /dev/fuse reads fail and the loop returns (once
        // the last file open on the lazily detached mount is closed).
        umount2(session.path, Int32(MNT_DETACH))
        if deadline != nil { session.mount.stop() }
        if session.finished.wait(timeout: deadline ?? .now() + 30) == .timedOut {
            log.warning("FUSE session did not stop in time", metadata: ["volume": "\(volumeID)"])
            return  // its thread still uses the volume
        }
        // Nothing is served any more: with every buffer committed, the journal goes.
        session.mount.fileSystem.flushAll()
        session.mount.fileSystem.endJournal()
        rmdir(session.path)
        engine.closeVolume(volumeID)
    }

    /// Re-mounts every recorded path after a restart; forgets paths whose volume is gone.
    /// Sessions the keeper held through the restart are served again first: until then
    /// every request on them waits — this process's own look at their paths included.
    public func reconcile() {
        let recorded = state.withLock { Array($0.targets.values) }.sorted { ($0.kind == .staging ? 0 : 1, $0.path) < ($1.kind == .staging ? 0 : 1, $1.path) }
        resumeHeldSessions(wanted: Set(recorded.map(\.volumeID)))
        abortUnservedSessions(recorded: recorded.map(\.path))
        // Journals of volumes deleted since (a journal of a volume that exists is replayed
        // by its next mount, staged again or not).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: journalsDirectory)) ?? [] {
            guard case .success(nil) = Result(catching: { try engine.volume(id: name) }) else { continue }  // exists, or not known now
            try? FileManager.default.removeItem(atPath: journalsDirectory + "/" + name)
        }
        for target in recorded {
            FuseMount.clearStaleMount(target.path)
            let exists = ((try? engine.volume(id: target.volumeID)) ?? nil) != nil
            do {
                guard exists else { throw Failure.conflict("volume no longer exists") }
                let source = try session(for: target.volumeID)
                // A bind of a session that lived on is still there, and still the session's.
                if Self.isMounted(target.path) && Self.sameFileSystem(target.path, source) {
                    log.info("kept across the restart", metadata: ["volume": "\(target.volumeID)", "path": "\(target.path)"])
                    continue
                }
                if Self.isMounted(target.path) { Self.unmount(target.path) }
                try Self.bind(source, target.path, readOnly: target.readOnly)
                log.info("re-mounted after restart", metadata: ["volume": "\(target.volumeID)", "path": "\(target.path)"])
            } catch {
                log.warning("dropping a recorded mount", metadata: ["volume": "\(target.volumeID)", "path": "\(target.path)", "reason": "\(error)"])
                Self.unmount(target.path)
                if target.created { rmdir(target.path) }
                state.withLock { $0.targets[target.path] = nil }
            }
        }
        try? save()
    }

    /// For SIGTERM. Sessions the keeper holds stop being served but stay mounted, with
    /// their bind mounts (the next daemon serves them again); the others are unmounted
    /// with their paths. The records stay either way (a restart re-mounts what is gone).
    /// Bounded: a session stops once the requests it is processing are answered.
    public func shutdown() {
        let deadline = DispatchTime.now() + 8
        let sessions = state.withLock { Array($0.sessions.values) }
        var kept = Set<String>()
        for session in sessions where session.mount.detach() { kept.insert(session.volumeID) }
        for session in sessions where kept.contains(session.volumeID) {
            state.withLock { _ = $0.sessions.removeValue(forKey: session.volumeID) }
            if session.finished.wait(timeout: deadline) == .timedOut {
                // Still committing: the process exit ends it (what it did not commit is what a crash loses).
                log.warning("a kept FUSE session did not stop in time", metadata: ["volume": "\(session.volumeID)"])
                continue
            }
            // Its session lives on in the keeper: the lease stays this node's for the next daemon.
            engine.closeVolume(session.volumeID, keepLease: true)
        }
        if !kept.isEmpty { log.info("sessions kept mounted for the next daemon", metadata: ["volumes": "\(kept.sorted())"]) }
        let (targets, volumes) = state.withLock { s in
            (s.targets.values.filter { !kept.contains($0.volumeID) }.map(\.path), Array(s.sessions.keys))
        }
        for path in targets { Self.unmount(path) }
        for volume in volumes { stopSession(volume, until: deadline) }
    }

    /// Serves again the sessions the keeper held through a restart, for volumes still
    /// recorded here (`wanted`); lets go of the others (the keeper's descriptor was their
    /// last: their mounts end, and are cleared as stale ones).
    private func resumeHeldSessions(wanted: Set<String>) {
        guard let keeper else { return }
        let held: [HeldSession]
        do { held = try keeper.list() } catch {
            log.warning("cannot ask the FUSE session keeper", metadata: ["error": "\(error)"])
            return
        }
        for session in held {
            let expected = sessionsDirectory + "/" + session.volume
            let exists = ((try? engine.volume(id: session.volume)) ?? nil) != nil
            guard session.mountpoint == expected, wanted.contains(session.volume), exists else {
                try? keeper.release(session.mountpoint)
                log.info("let go of a held session", metadata: ["volume": "\(session.volume)", "path": "\(session.mountpoint)"])
                continue
            }
            do {
                let taken = try keeper.take(session.mountpoint)
                _ = try self.session(for: session.volume, resuming: taken)
                log.info("serving a session kept across the restart", metadata: ["volume": "\(session.volume)"])
            } catch {
                log.warning("cannot serve a held session again; it is re-mounted", metadata: ["volume": "\(session.volume)", "error": "\(error)"])
                try? keeper.release(session.mountpoint)
                Self.abortConnection(of: session.mountpoint)
            }
        }
    }

    /// Ends the FUSE connections of this node's paths that nobody serves now — a session a
    /// keeper holds that this daemon could not take (no keeper configured, the keeper not
    /// answering, an older protocol) — so that looking at those paths fails at once
    /// (ENOTCONN, cleared as stale) instead of waiting for ever for a daemon. Reads the
    /// mount table only: nothing here touches a mounted filesystem.
    private func abortUnservedSessions(recorded: [String]) {
        let entries = MountTable.entries()
        // The devices of the sessions served now: a stat this process itself answers.
        let served = Set(state.withLock { Array($0.sessions.values) }.compactMap { session -> String? in
            var st = stat()
            guard stat(session.path, &st) == 0 else { return nil }
            let dev = UInt64(st.st_dev)
            let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfff)
            let minor = (dev & 0xff) | ((dev >> 12) & ~0xff)
            return "\(major):\(minor)"
        })
        let ours = Set(recorded)
        for entry in entries where !served.contains(entry.device)
            && (entry.mountPoint.hasPrefix(sessionsDirectory + "/") || ours.contains(entry.mountPoint)) {
            if Self.abortConnection(device: entry.device) {
                log.info("ended a FUSE connection nobody serves", metadata: ["path": "\(entry.mountPoint)"])
            }
        }
    }

    /// Aborts the FUSE connection mounted at `path` (through the fusectl filesystem).
    @discardableResult
    static func abortConnection(of path: String) -> Bool {
        guard let entry = MountTable.entries().last(where: { $0.mountPoint == path }) else { return false }
        return abortConnection(device: entry.device)
    }

    /// Aborts FUSE connection `device` ("0:N": connection N of /sys/fs/fuse/connections,
    /// mounted there first if it is not). False if it is not a FUSE connection of this kernel.
    static func abortConnection(device: String) -> Bool {
        guard device.hasPrefix("0:"), let minor = Int(device.dropFirst(2)) else { return false }
        let connections = "/sys/fs/fuse/connections"
        if !FileManager.default.fileExists(atPath: connections + "/\(minor)") {
            _ = mount("none", connections, "fusectl", 0, nil)
        }
        let fd = open(connections + "/\(minor)/abort", O_WRONLY)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return write(fd, "1", 1) == 1
    }

    // MARK: persistence

    private func save() throws { try saves.write { try writeRecords() } }

    /// Writes every record to `mounts.json`: temporary file, fsync, rename, directory fsync.
    private func writeRecords() throws {
        let targets = state.withLock { $0.targets.values.sorted { $0.path < $1.path } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(targets)
        let temporary = recordPath + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { throw Failure.mountFailed("cannot write \(temporary)") }
        let fd = open(temporary, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(temporary, recordPath) == 0 else {
            throw Failure.mountFailed("cannot replace \(recordPath): \(String(cString: strerror(errno)))")
        }
        let dir = open((recordPath as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY)
        if dir >= 0 { fsync(dir); close(dir) }
    }

    // MARK: mount(2) helpers

    static func isEmptyDirectory(_ path: String) -> Bool {
        guard let dir = opendir(path) else { return false }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { return false }
        }
        return true
    }

    static func normalized(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
    }

    static func bind(_ source: String, _ target: String, readOnly: Bool) throws {
        guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
            throw Failure.mountFailed("cannot bind-mount at \(target): \(String(cString: strerror(errno)))")
        }
        if readOnly, mount(source, target, nil, UInt(MS_BIND | MS_REMOUNT | MS_RDONLY), nil) != 0 {
            let why = String(cString: strerror(errno))
            umount2(target, Int32(MNT_DETACH))
            throw Failure.mountFailed("cannot make \(target) read-only: \(why)")
        }
    }

    /// Unmounts `path` (lazily when busy). Not mounted is fine.
    static func unmount(_ path: String) {
        var rounds = 0
        while isMountPoint(path) && rounds < 8 {
            if umount2(path, 0) != 0 && errno == EBUSY { umount2(path, Int32(MNT_DETACH)) }
            rounds += 1
        }
    }

    /// Whether `path` is a live mount point (a dead FUSE mount answers ENOTCONN: not live).
    static func isMounted(_ path: String) -> Bool {
        var info = statvfs()
        return isMountPoint(path) && statvfs(path, &info) == 0
    }

    /// Whether something is mounted at `path`: its device differs from its parent's (every
    /// mount here is a FUSE session or a bind of one, never of the parent's filesystem), or
    /// it is a dead FUSE mount (ENOTCONN). O(1), unlike scanning mountinfo.
    static func isMountPoint(_ path: String) -> Bool {
        var st = stat(), parent = stat()
        if stat(path, &st) != 0 { return errno == ENOTCONN }
        guard stat((path as NSString).deletingLastPathComponent, &parent) == 0 else { return false }
        return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino
    }

    /// Whether `a` and `b` are the same mounted filesystem (a bind of a session and the
    /// session itself share their device).
    static func sameFileSystem(_ a: String, _ b: String) -> Bool {
        var x = stat(), y = stat()
        return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev
    }

    /// Whether /proc/self/mountinfo lists `path` (for diagnostics).
    static func isListed(_ path: String) -> Bool { MountTable.entries().contains { $0.mountPoint == path } }
}
