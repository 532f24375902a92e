import Engine
import Foundation
import GRPCCore
import Prometheus
import Logging
import Synchronization

/// The daemon's Prometheus metrics: per-RPC request counts (by status code) and latency,
/// and, refreshed at each scrape, volumes and capacity per class, movement progress and
/// degraded state.
final class DaemonMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let engine: Engine
    static let latencyBuckets: [Duration] = [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                             .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                                             .seconds(1), .seconds(5)]

    init(engine: Engine) { self.engine = engine }

    /// Records one finished RPC.
    func record(service: String, method: String, code: String, duration: Duration) {
        registry.makeCounter(descriptor: .init(namespace: "berth", metricName: "rpc_requests", unitName: "total",
                                               helpText: "RPCs handled, by service, method and status code"),
                             labels: [("service", service), ("method", method), ("code", code)]).increment()
        registry.makeDurationHistogram(descriptor: .init(namespace: "berth", metricName: "rpc_duration", unitName: "seconds",
                                                         helpText: "RPC latency, by service and method"),
                                       labels: [("service", service), ("method", method)], buckets: Self.latencyBuckets)
            .record(duration)
    }

    /// Refreshes the engine gauges, then renders the exposition text.
    func render() -> String {
        func gauge(_ name: String, _ unit: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            registry.makeGauge(descriptor: .init(namespace: "berth", metricName: name, unitName: unit, helpText: help), labels: labels)
        }
        if let counts = try? engine.volumeCounts() {
            for c in engine.classes() {
                gauge("volumes", "", "Volumes per storage class", [("class", c.storageClass.name)])
                    .set(Double(counts[c.storageClass.name] ?? 0))
            }
        }
        if let report = try? engine.capacity() {
            for c in report.classes {
                let labels = [("class", c.name)]
                gauge("class_raw", "bytes", "Raw capacity of the devices a class places on", labels).set(Double(c.rawBytes))
                gauge("class_used", "bytes", "Raw bytes a class's shards occupy", labels).set(Double(c.usedBytes))
                gauge("class_provisioned", "bytes", "Sum of the class's volume sizes", labels).set(Double(c.provisionedBytes))
                gauge("class_usable", "bytes", "Data bytes the class can still take before a device is full", labels).set(Double(c.usableBytes))
            }
        }
        if let status = try? engine.status() {
            gauge("devices", "", "Devices by state", [("state", "up")]).set(Double(status.devicesUp))
            gauge("devices", "", "Devices by state", [("state", "down")]).set(Double(status.devicesDown))
            gauge("devices", "", "Devices by state", [("state", "out")]).set(Double(status.devicesOut))
            gauge("devices_unreachable", "", "Devices not out whose directory or host does not answer").set(Double(status.devicesUnreachable))
            gauge("pgs_recovering", "", "PGs holding degraded writes whose missing shards are still to be rebuilt")
                .set(Double((try? engine.pgsNeedingRecovery().count) ?? 0))
            gauge("pgs", "", "Placement groups by state", [("state", "clean")]).set(Double(status.pgsClean))
            gauge("pgs", "", "Placement groups by state", [("state", "moving")]).set(Double(status.pgsMoving))
            gauge("pgs", "", "Placement groups by state", [("state", "degraded")]).set(Double(status.pgsDegraded))
            let m = status.movement
            gauge("movement_remaining", "positions", "PG positions still to move").set(Double(m?.remainingPositions ?? 0))
            gauge("movement_done", "bytes", "Bytes moved in the current movement").set(Double(m?.doneBytes ?? 0))
            gauge("movement_total", "bytes", "Bytes the current movement moves in all").set(Double(m?.totalBytes ?? 0))
        }
        if let degraded = try? engine.degradedObjects() {
            gauge("degraded_objects", "", "Objects readable with less redundancy than their class promises").set(Double(degraded))
        }
        let budget = engine.moverBudget
        gauge("mover_budget", "bytes_per_second", "The mover's rate now, adapted to client latency (-1: unlimited)")
            .set(budget.bytesPerSecond ?? -1)
        gauge("client_p99_baseline", "seconds", "Clients' object I/O p99 without movement, the bar of the mover's budget (0: not seen yet)")
            .set(budget.baselineP99Seconds ?? 0)
        gauge("degraded_writes", "", "Object writes acknowledged with an unreachable member's shard missing, since start")
            .set(Double(engine.objects.degradedWrites))
        gauge("degraded_reads", "", "Object reads that avoided a lost device or a bad shard since start")
            .set(Double(engine.objects.degradedReads))
        return registry.emitToString()
    }
}

/// Measures every RPC for `DaemonMetrics` and logs failures (method and code, never the
/// request: requests may carry secrets).
struct MetricsInterceptor: ServerInterceptor {
    let metrics: DaemonMetrics
    let log: Logging.Logger

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>, context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let clock = ContinuousClock()
        let start = clock.now
        let service = context.descriptor.service.fullyQualifiedService
        let method = context.descriptor.method
        do {
            let response = try await next(request, context)
            let code: String
            switch response.accepted {
            case .success: code = "ok"
            case .failure(let error): code = "\(error.code)"
            }
            metrics.record(service: service, method: method, code: code, duration: clock.now - start)
            if case .failure(let error) = response.accepted { logFailure(method, error) }
            return response
        } catch {
            let rpc = error as? RPCError
            metrics.record(service: service, method: method, code: rpc.map { "\($0.code)" } ?? "unknown", duration: clock.now - start)
            if let rpc { logFailure(method, rpc) }
            throw error
        }
    }

    func logFailure(_ method: String, _ error: RPCError) {
        log.notice("rpc failed", metadata: ["method": "\(method)", "code": "\(error.code)", "message": "\(error.message)"])
    }
}
