import Foundation
import Glibc

/// The daemon's side of the keeper (`FuseKeeper`): hands it a dup of each FUSE session's
/// descriptor once the session is initialized, takes them back after a restart, and lets
/// go of one at unmount. One connection, held for the daemon's life: the keeper ends once
/// it holds nothing and nobody is connected.
public final class KeeperClient: @unchecked Sendable {
    public let socketPath: String
    /// The keeper to start again if it went away (nil: only connect).
    private let executable: String?
    private let lock = NSLock()
    private var connection: PacketSocket?

    private init(socketPath: String, executable: String?, connection: PacketSocket) {
        self.socketPath = socketPath
        self.executable = executable
        self.connection = connection
    }

    /// Connects to the keeper at `socketPath`, starting `executable` there first if none
    /// answers (in a session of its own, so it outlives this process and its process
    /// group). Nil when none can be reached: mounts then end with the daemon, as before.
    public static func connect(socketPath: String, executable: String?) -> KeeperClient? {
        reach(socketPath, executable).map { KeeperClient(socketPath: socketPath, executable: executable, connection: $0) }
    }

    /// A connection to the keeper at `socketPath`, started from `executable` if none answers.
    private static func reach(_ socketPath: String, _ executable: String?) -> PacketSocket? {
        if let socket = PacketSocket.connect(path: socketPath) { return socket }
        guard let executable, FileManager.default.isExecutableFile(atPath: executable) else { return nil }
        guard spawn(executable, ["--socket", socketPath]) else { return nil }
        for _ in 0..<100 {
            if let socket = PacketSocket.connect(path: socketPath) { return socket }
            usleep(20_000)
        }
        return nil
    }

    /// The keeper holds a dup of `descriptor` for `session` (replacing what it held for the
    /// same mount point).
    public func hold(_ session: HeldSession, descriptor: Int32) throws {
        _ = try call(KeeperRequest(op: .hold, mountpoint: session.mountpoint, session: session), descriptor: descriptor)
    }

    /// The sessions the keeper holds.
    public func list() throws -> [HeldSession] {
        try call(KeeperRequest(op: .list)).0.sessions ?? []
    }

    /// A descriptor of the session at `mountpoint` (the keeper keeps its own): the caller
    /// serves it and closes it.
    public func take(_ mountpoint: String) throws -> (HeldSession, Int32) {
        let (answer, descriptor) = try call(KeeperRequest(op: .take, mountpoint: mountpoint))
        guard let session = answer.sessions?.first, descriptor >= 0 else {
            if descriptor >= 0 { close(descriptor) }
            throw HandoffError("the keeper sent no descriptor for \(mountpoint)")
        }
        return (session, descriptor)
    }

    /// The keeper closes its descriptor of the session at `mountpoint` (unmounted, or not
    /// wanted any more). Not held is fine.
    public func release(_ mountpoint: String) throws {
        _ = try call(KeeperRequest(op: .release, mountpoint: mountpoint))
    }

    private func call(_ request: KeeperRequest, descriptor: Int32 = -1) throws -> (KeeperAnswer, Int32) {
        lock.lock()
        defer { lock.unlock() }
        // A connection that broke (the keeper ended or was killed) is made again, once per call.
        if connection == nil { connection = Self.reach(socketPath, executable) }
        guard let connection else { throw HandoffError("not connected to the keeper") }
        let data: Data, received: Int32
        do {
            try connection.send(try JSONEncoder().encode(request), descriptor: descriptor)
            guard let message = try connection.receive() else { throw HandoffError("the keeper closed the connection") }
            (data, received) = message
        } catch {
            self.connection = nil  // a broken connection is not used again
            throw error
        }
        guard let answer = try? JSONDecoder().decode(KeeperAnswer.self, from: data), answer.ok else {
            if received >= 0 { close(received) }
            let why = (try? JSONDecoder().decode(KeeperAnswer.self, from: data))?.error ?? "an unreadable answer"
            throw HandoffError("the keeper refused \(request.op.rawValue): \(why)")
        }
        return (answer, received)
    }

    /// Starts `path` with `arguments`, detached: its own session, standard streams to
    /// /dev/null but standard error, which it shares (the keeper logs little).
    static func spawn(_ path: String, _ arguments: [String]) -> Bool {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (0x80): a session of its own; a SIGKILL of the daemon's process
        // group does not reach it. And no signal mask or disposition inherited.
        posix_spawnattr_setflags(&attributes, Int16(0x80 | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        return posix_spawn(&pid, path, &actions, &attributes, argv, environ) == 0
    }
}
