import CLinux
import Foundation
import Glibc

/// A connected Unix SOCK_SEQPACKET socket: whole messages, each with at most one file
/// descriptor attached (SCM_RIGHTS). The keeper's transport.
final class PacketSocket {
    let fd: Int32
    /// The largest message either side sends (a few sessions' INIT requests in JSON).
    static let maxMessage = 1 << 20

    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Connects to the socket at `path`; nil if nobody listens there. Sends and receives
    /// give up after `timeoutSeconds` (a stuck keeper must not hang an unstage).
    static func connect(path: String, timeoutSeconds: Int = 10) -> PacketSocket? {
        guard path.utf8.count < MemoryLayout<sockaddr_un>.size - 2 else { return nil }
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = Self.address(path)
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
        guard ok else { close(fd); return nil }
        return PacketSocket(fd: fd)
    }

    /// Listens at `path` (replacing a dead socket file, never one a keeper answers on),
    /// mode 0600.
    static func listen(path: String) throws -> Int32 {
        guard path.utf8.count < MemoryLayout<sockaddr_un>.size - 2 else { throw HandoffError("socket path too long: \(path)") }
        if connect(path: path, timeoutSeconds: 1) != nil { throw HandoffError("a keeper already answers at \(path)") }
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HandoffError("socket: \(String(cString: strerror(errno)))") }
        unlink(path)
        var address = Self.address(path)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
        guard bound, chmod(path, 0o600) == 0, Glibc.listen(fd, 16) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw HandoffError("cannot listen at \(path): \(why)")
        }
        return fd
    }

    static func address(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8.prefix(MemoryLayout.size(ofValue: address.sun_path) - 1))
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return address
    }

    func send(_ data: Data, descriptor: Int32 = -1) throws {
        let n = data.withUnsafeBytes { berth_send_with_fd(fd, $0.baseAddress, UInt(data.count), descriptor) }
        guard n == data.count else { throw HandoffError("send: \(String(cString: strerror(errno)))") }
    }

    /// The next message and the descriptor attached to it (-1: none); nil at end of stream.
    func receive() throws -> (Data, Int32)? {
        var buffer = [UInt8](repeating: 0, count: Self.maxMessage)
        var descriptor: Int32 = -1
        let n = buffer.withUnsafeMutableBytes { berth_receive_with_fd(fd, $0.baseAddress, UInt($0.count), &descriptor) }
        if n < 0 { throw HandoffError("receive: \(String(cString: strerror(errno)))") }
        if n == 0 { if descriptor >= 0 { close(descriptor) }; return nil }
        return (Data(buffer[0..<n]), descriptor)
    }

    /// The peer's user id (SO_PEERCRED: it cannot be forged by the peer).
    var peerUID: uid_t? {
        var credentials = UCred()
        var length = socklen_t(MemoryLayout<UCred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else { return nil }
        return credentials.uid
    }

    /// `struct ucred` (Glibc declares it only under _GNU_SOURCE): three 32-bit fields.
    struct UCred { var pid: Int32 = 0; var uid: UInt32 = 0; var gid: UInt32 = 0 }
}

public struct HandoffError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
