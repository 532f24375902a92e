import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The process at the other end of a Unix-socket connection, as the kernel reports it
/// (SO_PEERCRED): it cannot be forged by the client.
public struct PeerCredentials: Sendable, Hashable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    /// Reads the credentials of an accepted connection.
    public static func of(_ channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(Refused(reason: "not a socket channel"))
        }
        let future: EventLoopFuture<UCred> = provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: SO_PEERCRED))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }

    /// `struct ucred` (Glibc declares it only under _GNU_SOURCE): three 32-bit fields.
    struct UCred { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }

    public struct Refused: Error, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// An accept callback that closes connections from users other than `allowedUIDs` (or
    /// members of `allowedGID`), for the admin socket's "root only unless configured".
    public static func gate(allowedUIDs: Set<UInt32>, allowedGID: UInt32? = nil,
                            onRefuse: @escaping @Sendable (PeerCredentials) -> Void = { _ in })
        -> @Sendable (any Channel) -> EventLoopFuture<Void> {
        { channel in
            of(channel).flatMap { peer in
                if allowedUIDs.contains(peer.uid) || (allowedGID != nil && peer.gid == allowedGID) {
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                onRefuse(peer)
                return channel.close().flatMap {
                    channel.eventLoop.makeFailedFuture(Refused(reason: "uid \(peer.uid) may not use this socket"))
                }
            }
        }
    }
}
