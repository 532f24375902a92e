import AdminProtocol
import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport
import Synchronization

typealias Controller = Csi_V1_Controller.Client<HTTP2ClientTransport.Posix>
typealias Node = Csi_V1_Node.Client<HTTP2ClientTransport.Posix>
typealias Admin = Berth_Admin_V1_Admin.Client<HTTP2ClientTransport.Posix>

final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    /// The next index, from 0.
    func take() -> Int { value.add(1, ordering: .relaxed).oldValue }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// What a batch of calls gave: latencies (s) of the timed part of each job, failures, wall time (s).
struct Batch: Sendable {
    var latencies: [Double] = []
    var errors = 0
    var firstError: String?
    var wall = 0.0

    mutating func add(_ other: Batch) {
        latencies += other.latencies
        errors += other.errors
        if firstError == nil { firstError = other.firstError }
    }

    func percentile(_ q: Double) -> Double? {
        guard !latencies.isEmpty else { return nil }
        let sorted = latencies.sorted()
        return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1))]
    }

    var p50Ms: Double? { percentile(0.5).map { $0 * 1000 } }
    var p99Ms: Double? { percentile(0.99).map { $0 * 1000 } }
}

/// A job: one unit of work on a client's connection; returns the seconds to count as its
/// latency (nil: not timed).
typealias Job = @Sendable (Controller, Node, Int) async throws -> Double?

enum Load {
    static let clock = ContinuousClock()

    /// Runs jobs 0..<jobs on `clients` connections (each client its own), each client taking
    /// the next index as it finishes one. With `pace`, a client starts a job at most once per
    /// `pace`; with `stop`, clients stop taking jobs once it is set.
    static func run(_ socket: String, clients: Int, jobs: Int = Int.max, pace: Duration? = nil, stop: Flag? = nil,
                    _ job: @escaping Job) async -> Batch {
        let next = Counter()
        let began = clock.now
        var total = await withTaskGroup(of: Batch.self) { group in
            for _ in 0..<clients {
                group.addTask {
                    do {
                        return try await withGRPCClient(transport: try Transports.client(path: socket)) { grpc in
                            let controller = Csi_V1_Controller.Client(wrapping: grpc)
                            let node = Csi_V1_Node.Client(wrapping: grpc)
                            _ = try await node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())  // connect before timing
                            var mine = Batch()
                            while !(stop?.isSet ?? false) {
                                let index = next.take()
                                guard index < jobs else { break }
                                let t = clock.now
                                do {
                                    if let latency = try await job(controller, node, index) { mine.latencies.append(latency) }
                                } catch {
                                    mine.errors += 1
                                    if mine.firstError == nil { mine.firstError = describe(error) }
                                    try? await Task.sleep(for: .milliseconds(10))
                                }
                                if let pace { try? await Task.sleep(until: t.advanced(by: pace), clock: clock) }
                            }
                            return mine
                        }
                    } catch {
                        return Batch(latencies: [], errors: 1, firstError: describe(error))
                    }
                }
            }
            var all = Batch()
            for await b in group { all.add(b) }
            return all
        }
        total.wall = Bench.seconds(clock.now - began)
        return total
    }

    static func describe(_ error: any Error) -> String {
        if let rpc = error as? RPCError { return "\(rpc.code): \(rpc.message)" }
        return "\(error)"
    }

    static func capability() -> Csi_V1_VolumeCapability {
        var c = Csi_V1_VolumeCapability()
        c.mount = Csi_V1_VolumeCapability.MountVolume()
        c.accessMode.mode = .singleNodeWriter
        return c
    }

    /// The three shipped classes, round-robin by index: replicated-3, ec-4-2, remote-disk.
    static let redundancies = ["replicated", "erasure", "single"]

    static func createRequest(name: String, index: Int, bytes: Int64) -> Csi_V1_CreateVolumeRequest {
        var r = Csi_V1_CreateVolumeRequest()
        r.name = name
        r.capacityRange.requiredBytes = bytes
        r.volumeCapabilities = [capability()]
        r.parameters = ["redundancy": redundancies[index % redundancies.count]]
        return r
    }

    /// A timed CreateVolume; returns (seconds, volume id).
    static func create(_ controller: Controller, name: String, index: Int, bytes: Int64) async throws -> (Double, String) {
        let t = clock.now
        let response = try await controller.createVolume(createRequest(name: name, index: index, bytes: bytes))
        return (Bench.seconds(clock.now - t), response.volume.volumeID)
    }

    static func delete(_ controller: Controller, id: String) async throws {
        var r = Csi_V1_DeleteVolumeRequest()
        r.volumeID = id
        _ = try await controller.deleteVolume(r)
    }

    // MARK: admin API

    static func admin<T: Sendable>(_ path: String, _ body: (Admin) async throws -> T) async throws -> T {
        try await withGRPCClient(transport: try Transports.client(path: path)) { grpc in
            try await body(Berth_Admin_V1_Admin.Client(wrapping: grpc))
        }
    }

    /// Status report fields the bench needs.
    struct Status: Sendable {
        var epoch: Int64
        var pgsMoving: Int
        var pgsDegraded: Int
        var movementEpoch: Int64?
        var movementFinished: Bool
        var doneBytes: Int64
        var totalBytes: Int64
        var remainingPositions: Int
        var serverBytesPerSecond: Double?
    }

    static func status(_ path: String) async throws -> Status {
        let report = try await admin(path) { try await $0.status(Berth_Admin_V1_Empty()) }
        let o = try object(report.json)
        let m = o["movement"] as? [String: Any]
        return Status(epoch: int(o["epoch"]) ?? -1, pgsMoving: Int(int(o["pgs_moving"]) ?? 0), pgsDegraded: Int(int(o["pgs_degraded"]) ?? 0),
                      movementEpoch: m.flatMap { int($0["epoch"]) }, movementFinished: (m?["finished"] as? Bool) ?? false,
                      doneBytes: m.flatMap { int($0["done_bytes"]) } ?? 0, totalBytes: m.flatMap { int($0["total_bytes"]) } ?? 0,
                      remainingPositions: Int(m.flatMap { int($0["remaining_positions"]) } ?? 0),
                      serverBytesPerSecond: m?["bytes_per_second"] as? Double)
    }

    /// A plan or apply report: epochs, and totals over its classes.
    struct PlanSummary: Sendable {
        var fromEpoch: Int64
        var toEpoch: Int64
        var movedPositions: Int
        var recoveryPositions: Int
        var movedBytes: Int64
    }

    static func planSummary(_ json: String) throws -> PlanSummary {
        let o = try object(json)
        let classes = o["classes"] as? [[String: Any]] ?? []
        return PlanSummary(fromEpoch: int(o["from_epoch"]) ?? -1, toEpoch: int(o["to_epoch"]) ?? -1,
                           movedPositions: classes.reduce(0) { $0 + Int(int($1["moved_positions"]) ?? 0) },
                           recoveryPositions: classes.reduce(0) { $0 + Int(int($1["recovery_positions"]) ?? 0) },
                           movedBytes: classes.reduce(Int64(0)) { $0 + (int($1["moved_bytes"]) ?? 0) })
    }

    struct BadReport: Error, CustomStringConvertible { var description: String }

    static func object(_ json: String) throws -> [String: Any] {
        guard let o = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw BadReport(description: "not a JSON object: \(json.prefix(200))")
        }
        return o
    }

    static func int(_ value: Any?) -> Int64? {
        switch value {
        case let n as NSNumber: n.int64Value
        case let s as String: Int64(s)
        default: nil
        }
    }

    // MARK: /metrics

    /// GET /metrics over a plain TCP connection to 127.0.0.1:port; the response body.
    static func scrape(port: Int) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BadReport(description: "socket: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw BadReport(description: "connect 127.0.0.1:\(port): errno \(errno)") }
        let request = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw BadReport(description: "send: errno \(errno)") }
            sent += n
        }
        var response = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            response += buffer[0..<n]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200"), let split = text.range(of: "\r\n\r\n") else {
            throw BadReport(description: "/metrics answered: \(text.prefix(100))")
        }
        return String(text[split.upperBound...])
    }

    /// The sum of a metric's samples (every label set), or nil if absent.
    static func metricSum(_ body: String, _ name: String) -> Double? {
        var total: Double?
        for line in body.split(separator: "\n") where line.hasPrefix(name) {
            let rest = line.dropFirst(name.count)
            guard rest.first == "{" || rest.first == " " else { continue }
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { total = (total ?? 0) + value }
        }
        return total
    }
}

/// Raised when a step outlives the step timeout.
struct StepTimedOut: Error {}

/// `body`, or `StepTimedOut` after `seconds` (the body is cancelled).
func withStepTimeout<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw StepTimedOut()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
