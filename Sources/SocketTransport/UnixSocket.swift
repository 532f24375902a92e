import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A Unix-domain listening socket created with its permissions already in place, so there
/// is no moment at which a caller could connect through a wider mode than intended.
public enum UnixSocket {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// The path of a CSI-style endpoint: `unix:///abs/path`, `unix:/abs/path` or a bare
    /// absolute path. Anything else (tcp://…, a relative path) is refused.
    public static func path(fromEndpoint endpoint: String) throws(Failure) -> String {
        var path = endpoint
        if path.hasPrefix("unix://") { path.removeFirst("unix://".count) } else if path.hasPrefix("unix:") { path.removeFirst("unix:".count) }
        guard path.hasPrefix("/") else { throw Failure("endpoint \"\(endpoint)\" must be unix:///ABSOLUTE/PATH") }
        guard path.utf8.count < 108 else { throw Failure("socket path \"\(path)\" is longer than a Unix socket address allows (107 bytes)") }
        return path
    }

    /// Binds and listens on `path` with `mode` (and group `gid` if given); returns the
    /// descriptor. A stale socket left by a previous run is replaced; any other kind of
    /// file at `path` is refused rather than deleted.
    public static func listen(path: String, mode: mode_t, gid: gid_t? = nil) throws(Failure) -> Int32 {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw Failure("\(path) exists and is not a socket; refusing to replace it") }
            unlink(path)
        }
        let parent = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket(): \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        // Bind under a umask that leaves nothing open, then widen to exactly `mode`.
        let old = umask(0o777)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(old)
        guard bound == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw Failure("cannot bind \(path): \(why)")
        }
        if let gid, chown(path, 0, gid) != 0 {
            close(fd)
            throw Failure("cannot give \(path) to group \(gid): \(String(cString: strerror(errno)))")
        }
        guard chmod(path, mode) == 0, Glibc.listen(fd, 512) == 0 else {
            let why = String(cString: strerror(errno))
            close(fd)
            throw Failure("cannot listen on \(path): \(why)")
        }
        return fd
    }
}
