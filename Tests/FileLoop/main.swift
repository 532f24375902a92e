// berth-file-loop PATH STOPFILE: an application for the restart tests (CSITests,
// MountsSurviveRestartTests), in a process of its own so that the test process holds no
// file of the mount while it starts a daemon (a fork closes its copies, and a close of a
// FUSE file waits for the daemon). Keeps PATH open and, every 50 ms until STOPFILE exists,
// appends "line N\n", fsyncs and reads the whole file back; then prints one JSON line:
// {"lines": N, "errors": [...], "worst_stall_s": S}. A read-back that differs is reported
// (with the time) and the line written again, so the file stays lines 0..<N.
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3 else { FileHandle.standardError.write(Data("usage: berth-file-loop PATH STOPFILE\n".utf8)); exit(2) }
let (path, stopFile) = (arguments[1], arguments[2])
let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
guard fd >= 0 else { print("{\"lines\": 0, \"errors\": [\"open: errno \(errno)\"], \"worst_stall_s\": 0}"); exit(1) }
var expected = [UInt8]()
var n = 0, errors: [String] = [], worst = 0.0
while access(stopFile, F_OK) != 0 {
    let started = Date()
    let line = Array("line \(n)\n".utf8)
    if line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) != line.count {
        errors.append("write \(n): errno \(errno)")
    } else if fsync(fd) != 0 {
        errors.append("fsync \(n): errno \(errno)")
    } else {
        expected += line
        var back = [UInt8](repeating: 0, count: expected.count + 1)
        let got = pread(fd, &back, back.count, 0)
        if got != expected.count || Array(back.prefix(expected.count)) != expected {
            errors.append("read back after line \(n) at \(Date().timeIntervalSince1970): \(got) bytes, \(expected.count) expected")
            expected = Array(back.prefix(max(0, got)))  // report each divergence once
        } else {
            n += 1
        }
    }
    worst = max(worst, Date().timeIntervalSince(started))
    if errors.count > 20 { break }
    usleep(50_000)
}
close(fd)
let quoted = errors.map { "\"\($0)\"" }.joined(separator: ", ")
print("{\"lines\": \(n), \"errors\": [\(quoted)], \"worst_stall_s\": \(worst)}")
