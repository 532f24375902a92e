import Foundation

/// One daemon per state directory: an exclusive `flock` on `<state>/daemon.lock`, taken
/// before anything under the directory is opened and held for the life of the process
/// (the kernel lets it go when the process ends, however it ends, so a SIGKILLed daemon
/// never leaves it behind). The holder writes its pid into the file, for the message a
/// second daemon fails with.
enum StateDirectoryLock {
    /// Takes the lock or throws at once, naming the holder's pid. The descriptor stays open
    /// until the process exits.
    static func acquire(_ directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DaemonError("cannot create the state directory \(directory): \(error.localizedDescription)")
        }
        let path = directory + "/daemon.lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let reason = errno
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, buffer.count, 0)
            close(fd)
            guard reason == EWOULDBLOCK else { throw DaemonError("cannot lock \(path): \(String(cString: strerror(reason)))") }
            let pid = count > 0 ? String(decoding: buffer[..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "unknown"
            throw DaemonError("state directory \(directory) is in use by another VolumeDriver (pid \(pid)); stop it or choose another --state-dir")
        }
        let pid = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, pid, pid.count, 0) == pid.count else {
            throw DaemonError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
