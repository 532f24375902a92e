import AdminProtocol
import CSI
import CSIProtocol
import Dispatch
import Engine
import Foundation
import GRPCCore
import Logging
import SocketTransport
import StorageClasses
import Synchronization

/// The daemon's lifecycle: open (or bootstrap) the engine, re-mount what was published,
/// serve CSI and admin gRPC on their Unix sockets and /metrics on localhost, run the mover,
/// and on SIGTERM/SIGINT stop accepting, let in-flight calls finish, unmount, and remove
/// the sockets.
struct Daemon {
    let configuration: DaemonConfiguration
    let logLevel: Logger.Level

    func run() async throws {
        let c = configuration
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        var logger = Logger(label: "berth")
        logger[metadataKey: "node"] = "\(c.nodeID)"
        let log = logger

        // Signals: a parent may have blocked them (Foundation's Process does); SIGTERM and
        // SIGINT are handled by `StopSignals` below, SIGPIPE ignored.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&unblock, s) }
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        signal(SIGPIPE, SIG_IGN)

        let csiPath = try UnixSocket.path(fromEndpoint: c.endpoint)
        let adminPath = try UnixSocket.path(fromEndpoint: c.adminSocket)
        // Before anything under the state directory is read: a second daemon stops here.
        try StateDirectoryLock.acquire(c.stateDirectory)
        let fresh = EmbeddedCluster.isNew(c.stateDirectory)
        var engineConfiguration = EngineConfiguration(stateDirectory: c.stateDirectory, nodeID: NodeNumber.of(c.nodeID))
        if let rate = c.moverBytesPerSecond { engineConfiguration.moverBytesPerSecond = rate }
        let engine = try Engine(configuration: engineConfiguration)
        if fresh { try EmbeddedCluster.bootstrap(engine, configuration: c, logger: log) }
        let mounts = try NodeMounts(engine: engine, stateDirectory: c.stateDirectory, logger: log)
        mounts.reconcile()
        let context = DriverContext(engine: engine, mounts: mounts, nodeID: c.nodeID, extraSegments: c.topology,
                                    defaultClass: c.defaultClass, stateDirectory: c.stateDirectory,
                                    vendorVersion: BerthVersion.current, logger: log)
        let metrics = DaemonMetrics(engine: engine)
        let interceptor = MetricsInterceptor(metrics: metrics, log: log)

        let csiDescriptor = try UnixSocket.listen(path: csiPath, mode: 0o660, gid: c.csiSocketGroup)
        let adminDescriptor = try UnixSocket.listen(path: adminPath, mode: 0o600)
        let allowed = Set([0] + c.adminAllowedUIDs)
        let gate = PeerCredentials.gate(allowedUIDs: allowed) { peer in
            log.warning("admin socket: refused a caller", metadata: ["uid": "\(peer.uid)", "pid": "\(peer.pid)"])
        }
        let csiServer = GRPCServer(transport: Transports.server(descriptor: csiDescriptor),
                                   services: [IdentityService(context: context), ControllerService(context: context), NodeService(context: context)],
                                   interceptors: [interceptor])
        let adminServer = GRPCServer(transport: Transports.server(descriptor: adminDescriptor, onAccept: gate),
                                     services: [AdminService(context: context), IdentityService(context: context)],
                                     interceptors: [interceptor])

        var metricsServer: MetricsServer?
        if !c.metricsAddress.isEmpty && c.metricsAddress != "off" {
            guard let colon = c.metricsAddress.lastIndex(of: ":"), let port = Int(c.metricsAddress[c.metricsAddress.index(after: colon)...]) else {
                throw DaemonError("--metrics-address must be HOST:PORT, not \(c.metricsAddress)")
            }
            let host = String(c.metricsAddress[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            metricsServer = try await MetricsServer(host: host, port: port) { metrics.render() }
        }

        // A signal or a failed server only raises the flag; the stopper below passes it on
        // to the servers once they listen (stopping a server while it still binds its
        // socket trips an assertion in NIO, and one not yet serving ignores the request).
        let stopping = StopFlag()
        let shutdown: @Sendable () -> Void = {
            guard !stopping.value.exchange(true, ordering: .relaxed) else { return }
            log.info("shutting down: finishing in-flight calls")
        }
        try StopSignals.install(shutdown)

        log.info("serving", metadata: ["csi": "\(csiPath)", "admin": "\(adminPath)", "metrics": "\(metricsServer?.port.map { "\(c.metricsAddress.split(separator: ":").dropLast().joined(separator: ":")):\($0)" } ?? "off")",
                                       "state_dir": "\(c.stateDirectory)", "new_cluster": "\(fresh)"])
        // Readiness line for scripts and tests.
        FileHandle.standardOutput.write(Data("READY csi=\(csiPath) admin=\(adminPath) metrics=\(metricsServer?.port.map(String.init) ?? "off")\n".utf8))

        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await csiServer.serve() }
            group.addTask { try await adminServer.serve() }
            group.addTask { await Self.runMover(engine, stopping: stopping, log: log) }
            group.addTask {
                _ = try? await csiServer.listeningAddress
                _ = try? await adminServer.listeningAddress
                while !stopping.value.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(50)) }
                csiServer.beginGracefulShutdown()
                adminServer.beginGracefulShutdown()
            }
            while true {
                do {
                    guard try await group.next() != nil else { break }
                } catch {
                    log.error("a server failed", metadata: ["error": "\(error)"])
                    shutdown()
                }
            }
        }
        mounts.shutdown()
        await metricsServer?.close()
        unlink(csiPath)
        unlink(adminPath)
        log.info("stopped")
    }

    /// Executes pending movement in small steps while the daemon runs (the engine's
    /// throttle keeps it below the configured rate). Idle, it looks again every second;
    /// after a step that failed and moved nothing, it waits twice as long as the last time,
    /// up to a minute, so a position that cannot move (its only copy lost) is not retried
    /// every second forever.
    static func runMover(_ engine: Engine, stopping: StopFlag, log: Logger) async {
        var pause = MoverPause()
        while !stopping.value.load(ordering: .relaxed) {
            let result = try? await blocking { engine.move(maxPositions: 32) }
            for failure in result?.failures ?? [] { log.warning("move failed", metadata: ["reason": "\(failure)"]) }
            let waitMs = pause.next(moved: result?.positions ?? 0, failed: result.map { !$0.failures.isEmpty } ?? true)
            var waitedMs = 0
            while waitedMs < waitMs && !stopping.value.load(ordering: .relaxed) {
                try? await Task.sleep(for: .milliseconds(100))
                waitedMs += 100
            }
        }
    }
}

final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum BerthVersion {
    static let current = "0.3.0"
}
