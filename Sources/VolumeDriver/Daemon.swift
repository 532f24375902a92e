import AdminProtocol
import CSI
import ClusterTLS
import NodeAgent
import CSIProtocol
import Dispatch
import Engine
import Metadata
import Foundation
import GRPCCore
import Logging
import ServiceLifecycle
import SocketTransport
import StorageClasses
import Synchronization

/// The daemon's lifecycle: open (or bootstrap) the engine, re-mount what was published,
/// then one `ServiceGroup` (DaemonServices.swift) serves CSI and admin gRPC on their Unix
/// sockets and /metrics on localhost and runs the mover; on SIGTERM/SIGINT it stops
/// accepting, lets in-flight calls finish, stops the mover, unmounts, and the sockets go.
struct Daemon {
    let configuration: DaemonConfiguration
    let logLevel: Logger.Level

    func run() async throws {
        let c = configuration
        // Logging, and signals for `StopSignals` below.
        ProcessSetup.start(logLevel: logLevel)
        var logger = Logger(label: "berth")
        logger[metadataKey: "node"] = "\(c.nodeID)"
        let log = logger

        let csiPath = try UnixSocket.path(fromEndpoint: c.endpoint)
        let adminPath = try UnixSocket.path(fromEndpoint: c.adminSocket)
        // Before anything under the state directory is read: a second daemon stops here.
        try StateDirectoryLock.acquire(c.stateDirectory)
        let metadata: MetadataLocation?
        do { metadata = try c.metadata.map { try MetadataLocation.parse($0, environment: ProcessInfo.processInfo.environment) } } catch {
            throw DaemonError("\(error)")
        }
        var engineConfiguration = EngineConfiguration(stateDirectory: c.stateDirectory, nodeID: NodeNumber.of(c.nodeID))
        engineConfiguration.nodeName = c.nodeID
        engineConfiguration.metadata = metadata
        engineConfiguration.role = c.role
        let controller = c.role == .all
        // Controllers on PostgreSQL: one leads (the controller lock); another waits as a
        // standby and leads once the lock is free. One that finds it lost the lead stops.
        let stepDown = Mutex<(@Sendable () -> Void)?>(nil)
        if controller, case .postgres? = metadata {
            engineConfiguration.leadership = .init(standby: { reason in
                log.notice("standby: waiting to lead", metadata: ["reason": "\(reason)"])
                FileHandle.standardOutput.write(Data("STANDBY \(reason)\n".utf8))
            }, lost: {
                log.error("another controller took the lead: stopping")
                stepDown.withLock { $0 }?()
            })
        }
        let fresh: Bool
        switch metadata {
        case .postgres?: fresh = false  // decided below, once the engine has read the cluster state
        case .sqlite(let path)?: fresh = !FileManager.default.fileExists(atPath: path)
        case nil: fresh = EmbeddedCluster.isNew(c.stateDirectory)
        }
        if let rate = c.moverBytesPerSecond { engineConfiguration.moverBytesPerSecond = rate }
        var agents: AgentDirectory?
        if let path = c.tlsDirectory {
            let tls: TLSDirectory
            do { tls = try TLSDirectory(path: path) } catch { throw DaemonError("--tls-dir: \(error)") }
            agents = AgentDirectory(tls: tls)
            engineConfiguration.connector = agents
        }
        defer { agents?.close() }
        let engine = try Engine(configuration: engineConfiguration)
        // A PostgreSQL database with nothing in it yet is a new cluster (there is no file to look for).
        var isPostgres = false
        if case .postgres? = metadata { isPostgres = true }
        if controller && (fresh || (isPostgres && engine.map.devices.isEmpty && engine.classes().isEmpty)) {
            try EmbeddedCluster.bootstrap(engine, configuration: c, logger: log)
        }
        if let metadata { log.info("cluster state", metadata: ["metadata": "\(metadata)"]) }
        let mounts = try NodeMounts(engine: engine, stateDirectory: c.stateDirectory, logger: log, objectCacheBytes: c.objectCacheBytes,
                                    keeperExecutable: c.fuseKeeper)
        mounts.reconcile()
        let context = DriverContext(engine: engine, mounts: mounts, nodeID: c.nodeID, extraSegments: c.topology,
                                    defaultClass: c.defaultClass, stateDirectory: c.stateDirectory,
                                    vendorVersion: BerthVersion.current, logger: log, servesController: controller)
        let metrics = DaemonMetrics(engine: engine)
        let interceptor = MetricsInterceptor(metrics: metrics, log: log)

        let csiDescriptor = try UnixSocket.listen(path: csiPath, mode: 0o660, gid: c.csiSocketGroup)
        // A node (`--role csi-node`) serves CSI Identity and Node only; the admin API is the
        // controller's.
        let csiServices: [any RegistrableRPCService] = controller
            ? [IdentityService(context: context), ControllerService(context: context), NodeService(context: context)]
            : [IdentityService(context: context), NodeService(context: context)]
        let csiServer = GRPCServer(transport: Transports.server(descriptor: csiDescriptor), services: csiServices, interceptors: [interceptor])
        // The controller's parts: the admin API, the mover, the health check.
        var controllerServices: [any Service] = []
        if controller {
            let adminDescriptor = try UnixSocket.listen(path: adminPath, mode: 0o600)
            let allowed = Set([0] + c.adminAllowedUIDs)
            let gate = PeerCredentials.gate(allowedUIDs: allowed) { peer in
                log.warning("admin socket: refused a caller", metadata: ["uid": "\(peer.uid)", "pid": "\(peer.pid)"])
            }
            let adminServer = GRPCServer(transport: Transports.server(descriptor: adminDescriptor, onAccept: gate),
                                         services: [AdminService(context: context), IdentityService(context: context)],
                                         interceptors: [interceptor])
            controllerServices = [MoverService(engine: engine, log: log), GRPCServerService(server: adminServer)]
            if agents != nil { controllerServices.append(HealthService(engine: engine, policy: c.health, log: log)) }
        }

        var metricsServer: MetricsServer?
        if !c.metricsAddress.isEmpty && c.metricsAddress != "off" {
            guard let (host, port) = HostPort.parse(c.metricsAddress) else {
                throw DaemonError("--metrics-address must be HOST:PORT, not \(c.metricsAddress)")
            }
            metricsServer = try await MetricsServer(host: host, port: port) { metrics.render() }
        }

        var services: [any Service] = [MountsService(mounts: mounts), GRPCServerService(server: csiServer)]
        services += controller ? controllerServices : [ClusterRefreshService(engine: engine, log: log)]
        if let metricsServer { services.append(MetricsService(server: metricsServer)) }
        // A part that fails or ends early takes the daemon down gracefully, in order.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services.map {
            .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
        }, logger: log))
        // Signals through `StopSignals` (installed before READY, see there), not the group's
        // own signal sources.
        try StopSignals.install {
            log.info("shutting down: finishing in-flight calls")
            Task { await group.triggerGracefulShutdown() }
        }
        stepDown.withLock { $0 = { Task { await group.triggerGracefulShutdown() } } }

        log.info("serving", metadata: ["csi": "\(csiPath)", "admin": "\(adminPath)", "metrics": "\(metricsServer?.port.map { "\(c.metricsAddress.split(separator: ":").dropLast().joined(separator: ":")):\($0)" } ?? "off")",
                                       "state_dir": "\(c.stateDirectory)", "new_cluster": "\(fresh)"])
        // Readiness line for scripts and tests.
        FileHandle.standardOutput.write(Data("READY csi=\(csiPath) admin=\(controller ? adminPath : "none") metrics=\(metricsServer?.port.map(String.init) ?? "off")\n".utf8))

        do { try await group.run() } catch { log.error("a part of the daemon failed", metadata: ["error": "\(error)"]) }
        unlink(csiPath)
        if controller { unlink(adminPath) }
        log.info("stopped")
    }
}

struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum BerthVersion {
    static let current = "0.3.0"
}
