import Glibc

/// The kernel's table of mounts as this process sees it (`/proc/self/mountinfo`), read
/// without asking any mounted filesystem anything: a FUSE daemon looking up its own mount
/// before it serves requests would otherwise wait on itself.
public enum MountTable {
    public struct Entry: Equatable, Sendable {
        /// "major:minor" of the mounted filesystem (a FUSE mount's backing device info).
        public var device: String
        public var mountPoint: String
    }

    public static func entries() -> [Entry] {
        readProcFile("/proc/self/mountinfo").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 5 else { return nil }
            return Entry(device: String(fields[2]), mountPoint: unescape(fields[4]))
        }
    }

    /// Reads a /proc file to its end. (/proc files report size 0, and readers that trust
    /// the size — Foundation's among them — stop after the first page: a node with many
    /// mounts then seems to have lost some.)
    public static func readProcFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { bytes += buffer[0..<n] } else if n < 0 && errno == EINTR { continue } else { break }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo.
    public static func unescape(_ field: Substring) -> String {
        var bytes: [UInt8] = []
        var i = field.utf8.startIndex
        let u = field.utf8
        while i < u.endIndex {
            if u[i] == UInt8(ascii: "\\"), let end = u.index(i, offsetBy: 4, limitedBy: u.endIndex),
               let value = UInt8(String(decoding: u[u.index(after: i)..<end], as: UTF8.self), radix: 8) {
                bytes.append(value)
                i = end
            } else {
                bytes.append(u[i])
                i = u.index(after: i)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
