import Foundation
import Glibc

/// Holds FUSE sessions' `/dev/fuse` descriptors while the daemons serving them stop and
/// start: the kernel keeps a FUSE connection (and its mount) alive as long as one
/// descriptor of it is open, and requests that arrive meanwhile wait in the kernel until a
/// successor reads them. A small process of its own (`berth-fuse-keeper`), started by the
/// first daemon that mounts, in a session of its own, so that it outlives the daemon.
///
/// Serves one Unix SOCK_SEQPACKET socket (mode 0600, callers of its own user only): `hold`
/// (a descriptor attached), `take` (answered with a descriptor), `list`, `release`. A held
/// session whose connection ends (its mount unmounted while no daemon served it) is let
/// go. It ends once it holds nothing and nobody is connected (or nobody came within
/// `idleSeconds`).
public final class FuseKeeper {
    private let socketPath: String
    private let listener: Int32
    private var held: [String: (session: HeldSession, descriptor: Int32, generation: Int)] = [:]
    private var generation = 0
    /// The socket file's inode: only that file is removed at the end.
    private var socketInode: ino_t = 0
    private var clients: [Int32: PacketSocket] = [:]
    public static let idleSeconds: Int32 = 30

    /// Never end by itself (run by an orchestrator, which would only start it again).
    private let stay: Bool

    public init(socketPath: String, stay: Bool = false) throws {
        self.socketPath = socketPath
        self.stay = stay
        listener = try PacketSocket.listen(path: socketPath)
        var st = stat()
        if stat(socketPath, &st) == 0 { socketInode = st.st_ino }
    }

    /// Serves until it holds nothing and nobody is connected.
    public func run() {
        var idleSince = Date()
        while true {
            let clientFDs = clients.keys.sorted()
            // Held devices are watched for errors only: a FUSE device reports POLLERR once
            // its connection is gone (unmounted, or aborted), and is then let go.
            let heldFDs = held.map { ($0.key, $0.value.descriptor, $0.value.generation) }
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
                + clientFDs.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                + heldFDs.map { pollfd(fd: $0.1, events: 0, revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), 1000)
            if ready < 0 && errno != EINTR { break }
            if fds[0].revents & Int16(POLLIN) != 0 { accept() }
            for (i, fd) in clientFDs.enumerated() where fds[1 + i].revents != 0 {
                if !serveOne(fd) { clients[fd] = nil }
            }
            for (i, (key, fd, generation)) in heldFDs.enumerated() where fds[1 + clientFDs.count + i].revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 {
                guard held[key]?.generation == generation else { continue }  // released or replaced meanwhile
                held[key] = nil
                close(fd)
            }
            if stay || !held.isEmpty || !clients.isEmpty {
                idleSince = Date()
            } else if Date().timeIntervalSince(idleSince) >= Double(Self.idleSeconds) || everHeld {
                break
            }
        }
        // Only our own socket file (one left by another keeper is that keeper's).
        var st = stat()
        if stat(socketPath, &st) == 0 && st.st_ino == socketInode { unlink(socketPath) }
        close(listener)
    }

    /// Whether it ever held a descriptor: once all are gone and nobody is connected, done.
    private var everHeld = false

    private func accept() {
        let fd = Glibc.accept(listener, nil, nil)
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let client = PacketSocket(fd: fd)
        // Only the keeper's own user (root, in practice) may hand over or take sessions.
        guard client.peerUID == getuid() else { return }
        clients[fd] = client
    }

    /// Answers one request of `fd`; false when the client is gone.
    private func serveOne(_ fd: Int32) -> Bool {
        guard let client = clients[fd] else { return false }
        guard let (data, descriptor) = try? client.receive() else { return false }
        var answer = KeeperAnswer(ok: true)
        var attached: Int32 = -1
        do {
            let request = try JSONDecoder().decode(KeeperRequest.self, from: data)
            guard request.version == KeeperRequest.version else { throw HandoffError("protocol version \(request.version), not \(KeeperRequest.version)") }
            switch request.op {
            case .hold:
                guard let session = request.session, descriptor >= 0 else { throw HandoffError("hold needs a session and a descriptor") }
                if let old = held[session.mountpoint] { close(old.descriptor) }
                generation += 1
                held[session.mountpoint] = (session, descriptor, generation)
                everHeld = true
            case .take:
                guard let key = request.mountpoint, let entry = held[key] else { throw HandoffError("no session held for \(request.mountpoint ?? "?")") }
                answer.sessions = [entry.session]
                attached = entry.descriptor
            case .list:
                answer.sessions = held.values.map(\.session).sorted { $0.mountpoint < $1.mountpoint }
            case .release:
                if let key = request.mountpoint, let old = held.removeValue(forKey: key) { close(old.descriptor) }
            }
            if request.op != .hold, descriptor >= 0 { close(descriptor) }
        } catch {
            if descriptor >= 0 { close(descriptor) }
            answer = KeeperAnswer(ok: false, error: "\(error)")
        }
        guard let encoded = try? JSONEncoder().encode(answer) else { return false }
        return (try? client.send(encoded, descriptor: attached)) != nil
    }
}
