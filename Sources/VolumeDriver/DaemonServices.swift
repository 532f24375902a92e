import CSI
import Engine
import Storage
import GRPCCore
import Logging
import ServiceLifecycle

// The daemon's long-running parts as ServiceLifecycle services. `Daemon` runs them in one
// `ServiceGroup`, in dependency order — mounts, mover, CSI, admin API, metrics — and a
// graceful shutdown (SIGTERM, SIGINT, or a part that failed) stops them in reverse: metrics
// and the admin API first, then CSI once its in-flight calls are answered, then the
// mover, and the mounts last, when nothing can use them any more.

/// A gRPC server: serves until the graceful shutdown, then finishes in-flight calls.
struct GRPCServerService<Transport: ServerTransport>: Service {
    let server: GRPCServer<Transport>

    func run() async throws {
        let server = server
        try await withGracefulShutdownHandler {
            try await server.serve()
        } onGracefulShutdown: {
            // Not before it listens: stopping a server while it binds trips an assertion in
            // NIO, and one not yet serving ignores the request.
            Task {
                _ = try? await server.listeningAddress
                server.beginGracefulShutdown()
            }
        }
    }
}

/// Executes pending movement in small steps while the daemon runs (the engine's throttle
/// keeps it below the configured rate); between steps it waits as `MoverPause` says. A
/// step in progress finishes before the mover stops.
struct MoverService: Service {
    let engine: Engine
    let log: Logger

    func run() async throws {
        var pause = MoverPause()
        let engine = engine
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let result = try? await blocking { engine.move(maxPositions: 32) }
            for failure in result?.failures ?? [] { log.warning("move failed", metadata: ["reason": "\(failure)"]) }
            // Maintenance windows that have run their time end (their devices come up).
            if let ended = try? await blocking({ engine.endExpiredMaintenance() }), !ended.isEmpty {
                log.notice("maintenance ended", metadata: ["devices": "\(ended.joined(separator: ","))"])
            }
            // Clones of another class's data copy it under the same budget.
            let cloned = try? await blocking { engine.copyClones() }
            let moved = (result?.positions ?? 0) + ((cloned?.bytes ?? 0) > 0 ? 1 : 0)
            let waitMs = pause.next(moved: moved, failed: result.map { !$0.failures.isEmpty } ?? true)
            // Wakes at once on shutdown (the sleep is cancelled), never later than planned.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(waitMs)) }
        }
    }
}

/// This node's mounts: nothing to do while the daemon serves; at the end, after the CSI
/// server has stopped, every mount is unmounted and every FUSE session ended.
struct MountsService: Service {
    let mounts: NodeMounts

    func run() async throws {
        try? await gracefulShutdown()
        let mounts = mounts
        _ = try? await blocking { mounts.shutdown() }
    }
}

/// The /metrics endpoint, closed at the graceful shutdown.
struct MetricsService: Service {
    let server: MetricsServer

    func run() async throws {
        try? await gracefulShutdown()
        await server.close()
    }
}

/// The health check of other hosts' devices (`Engine.checkHealth`), once a second: a
/// silent host goes down, then out after the grace period, and back up when it answers.
struct HealthService: Service {
    let engine: Engine
    let policy: HealthPolicy
    let log: Logger

    func run() async throws {
        let (engine, policy) = (engine, policy)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let changes = (try? await blocking { engine.checkHealth(policy: policy, nowMs: Monotonic.milliseconds()) }) ?? []
            for change in changes { log.notice("device health", metadata: ["change": "\(change)"]) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
        }
    }
}

/// A node's view of the cluster state, read again every two seconds (`--role csi-node`):
/// the controller's epochs, moves, devices and classes.
struct ClusterRefreshService: Service {
    let engine: Engine
    let log: Logger

    func run() async throws {
        let engine = engine
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                if try await blocking({ try engine.refreshClusterState() }) {
                    log.info("cluster map", metadata: ["epoch": "\(engine.map.epoch)"])
                }
                if failing { log.notice("cluster state readable again") }
                failing = false
            } catch {
                if !failing { log.warning("cannot read the cluster state", metadata: ["error": "\(error)"]) }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
        }
    }
}
