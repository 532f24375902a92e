import Foundation

/// SIGTERM and SIGINT, delivered as a call to `onSignal` on a thread of its own.
///
/// The handler is installed with `sigaction` before `install` returns, so a signal that
/// arrives the moment the daemon says READY is not lost. (A Dispatch signal source is
/// installed later, on Dispatch's manager thread; with the default action set to ignore,
/// a SIGTERM in between was discarded and the daemon served on — a CI run hung on it.)
/// The handler only writes a byte to a pipe: the one async-signal-safe thing it needs.
enum StopSignals {
    nonisolated(unsafe) private static var pipeWrite: Int32 = -1

    static func install(_ onSignal: @escaping @Sendable () -> Void) throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw DaemonError("cannot create the signal pipe: errno \(errno)") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        pipeWrite = fds[1]
        var action = sigaction()
        action.__sigaction_handler = unsafeBitCast(
            { (_: Int32) in
                var byte: UInt8 = 1
                _ = write(StopSignals.pipeWrite, &byte, 1)
            } as @convention(c) (Int32) -> Void,
            to: sigaction.__Unnamed_union___sigaction_handler.self)
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        let reader = fds[0]
        let thread = Thread {
            var byte: UInt8 = 0
            while true {
                let n = read(reader, &byte, 1)
                if n == 1 { onSignal() } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
        thread.name = "berth-signals"
        thread.start()
        for signal in [SIGTERM, SIGINT] {
            guard sigaction(signal, &action, nil) == 0 else { throw DaemonError("cannot handle signal \(signal): errno \(errno)") }
        }
    }
}
