import Foundation
import Logging

/// What every role of `VolumeDriver` does first: logs to stderr at `level`, and signals as
/// the daemon handles them — SIGTERM, SIGINT and SIGHUP unblocked (a parent may have
/// blocked them; Foundation's Process does) for `StopSignals`, SIGPIPE ignored.
enum ProcessSetup {
    static func start(logLevel level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&unblock, s) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        signal(SIGPIPE, SIG_IGN)
    }
}
