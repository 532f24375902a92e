// csi-bench: CreateVolume, NodeStageVolume and NodePublishVolume latency (median, p99) and
// throughput with 1, 16 and 64 concurrent clients, each client on its own connection,
// against a real VolumeDriver started on a fresh state directory.
//
//   swift run -c release csi-bench [--calls N] [--json] [--log-level LEVEL] [--metadata URL]
//   swift run -c release csi-bench --snapshots [--files N] [--file-bytes B] [--class replicated|erasure|single] [--json]
//
// N is the number of calls per client at each level (default max(20, 200 / clients)).
// --metadata URL: the daemon keeps its cluster state there (VolumeDriver --metadata), e.g. an
// empty PostgreSQL database.
// --snapshots: CreateSnapshot and clone times of a mounted volume full of files instead
// (SnapshotBench.swift).
import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport

@main
struct CSIBench {
    struct Result: Codable {
        var rpc: String
        var clients: Int
        var calls: Int
        var medianMs: Double
        var p99Ms: Double
        var callsPerSecond: Double
    }

    typealias Controller = Csi_V1_Controller.Client<HTTP2ClientTransport.Posix>
    typealias Node = Csi_V1_Node.Client<HTTP2ClientTransport.Posix>

    static func main() async throws {
        let arguments = CommandLine.arguments
        let json = arguments.contains("--json")
        let callsOverride = arguments.firstIndex(of: "--calls").flatMap { Int(arguments[$0 + 1]) }
        let logLevel = arguments.firstIndex(of: "--log-level").map { arguments[$0 + 1] } ?? "warning"

        let root = "/tmp/csi-bench-\(getpid())"
        let socket = root + "/csi.sock"
        let snapshots = arguments.contains("--snapshots")
        // --metadata URL: the daemon's cluster state elsewhere (an empty PostgreSQL database, say).
        let metadata = arguments.firstIndex(of: "--metadata").map { arguments[$0 + 1] }
        let daemon = try startDaemon(root: root, deviceCapacity: snapshots ? "16Gi" : "8Gi", logLevel: logLevel, metadata: metadata)
        defer {
            kill(daemon.processIdentifier, SIGTERM)
            daemon.waitUntilExit()
            try? FileManager.default.removeItem(atPath: root)
        }
        if snapshots {
            func value(_ name: String) -> String? { arguments.firstIndex(of: name).map { arguments[$0 + 1] } }
            try await SnapshotBench.run(root: root, socket: socket, files: value("--files").flatMap(Int.init) ?? 100_000,
                                        fileBytes: value("--file-bytes").flatMap(Int.init) ?? 107_374, redundancy: value("--class") ?? "replicated",
                                        json: json)
            return
        }

        var results: [Result] = []
        for clients in [1, 16, 64] {
            let perClient = callsOverride ?? max(20, 200 / clients)
            let tag = "c\(clients)"
            progress("\(clients) clients, \(perClient) calls each")
            // CreateVolume: distinct names, 1 MiB single-copy volumes.
            let (create, createWall) = try await measure(socket, clients: clients, perClient: perClient) { controller, _, client, i in
                var r = Csi_V1_CreateVolumeRequest()
                r.name = "\(tag)-\(client)-\(i)"
                r.capacityRange.requiredBytes = 1 << 20
                r.volumeCapabilities = [capability()]
                r.parameters = ["redundancy": "single"]
                _ = try await controller.createVolume(r)
            }
            results.append(summarize("CreateVolume", clients, create, createWall))

            // One volume per client, staged once (this starts its FUSE session) ...
            let ids = try await withGRPCClient(transport: try Transports.client(path: socket)) { grpc in
                let controller = Csi_V1_Controller.Client(wrapping: grpc)
                var ids: [String] = []
                for client in 0..<clients {
                    var r = Csi_V1_CreateVolumeRequest()
                    r.name = "\(tag)-pub-\(client)"
                    r.capacityRange.requiredBytes = 1 << 20
                    r.volumeCapabilities = [capability()]
                    ids.append(try await controller.createVolume(r).volume.volumeID)
                }
                return ids
            }
            let (stage, stageWall) = try await measure(socket, clients: clients, perClient: 1) { _, node, client, _ in
                let staging = root + "/targets/\(tag)-staging-\(client)"
                try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
                var r = Csi_V1_NodeStageVolumeRequest()
                r.volumeID = ids[client]
                r.stagingTargetPath = staging
                r.volumeCapability = capability()
                _ = try await node.nodeStageVolume(r)
            }
            results.append(summarize("NodeStageVolume", clients, stage, stageWall))
            // ... then published at a new target per call (a bind mount), unpublished untimed after.
            let (publish, publishWall) = try await measure(socket, clients: clients, perClient: perClient) { _, node, client, i in
                var r = Csi_V1_NodePublishVolumeRequest()
                r.volumeID = ids[client]
                r.stagingTargetPath = root + "/targets/\(tag)-staging-\(client)"
                r.targetPath = root + "/targets/\(tag)-\(client)-\(i)"
                r.volumeCapability = capability()
                _ = try await node.nodePublishVolume(r)
            }
            results.append(summarize("NodePublishVolume", clients, publish, publishWall))
            try await withGRPCClient(transport: try Transports.client(path: socket)) { grpc in
                let node = Csi_V1_Node.Client(wrapping: grpc)
                for client in 0..<clients {
                    for i in 0..<perClient {
                        var r = Csi_V1_NodeUnpublishVolumeRequest()
                        r.volumeID = ids[client]
                        r.targetPath = root + "/targets/\(tag)-\(client)-\(i)"
                        _ = try await node.nodeUnpublishVolume(r)
                    }
                    var u = Csi_V1_NodeUnstageVolumeRequest()
                    u.volumeID = ids[client]
                    u.stagingTargetPath = root + "/targets/\(tag)-staging-\(client)"
                    _ = try await node.nodeUnstageVolume(u)
                }
            }
        }

        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print("rpc                  clients  calls  median ms   p99 ms   calls/s")
            for r in results {
                print(r.rpc.padding(toLength: 20, withPad: " ", startingAt: 0),
                      String(format: "%7d  %5d  %9.2f  %7.2f  %8.1f", r.clients, r.calls, r.medianMs, r.p99Ms, r.callsPerSecond))
            }
        }
    }

    /// A release VolumeDriver (beside this executable) on a fresh state directory under `root`.
    static func startDaemon(root: String, deviceCapacity: String, logLevel: String, metadata: String?) throws -> Process {
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root + "/targets", withIntermediateDirectories: true)
        try "embeddedDeviceCapacity: \(deviceCapacity)\n".write(toFile: root + "/config.yaml", atomically: true, encoding: .utf8)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("VolumeDriver")
        daemon.arguments = ["--endpoint", "unix://" + root + "/csi.sock", "--state-dir", root + "/state", "--admin-socket", root + "/admin.sock",
                            "--metrics-address", "off", "--config", root + "/config.yaml", "--log-level", logLevel]
            + (metadata.map { ["--metadata", $0] } ?? [])
        let ready = Pipe()
        daemon.standardOutput = ready
        try daemon.run()
        let readyLine = String(decoding: ready.fileHandleForReading.availableData, as: UTF8.self)
        guard readyLine.hasPrefix("READY") else { fatalError("VolumeDriver did not start: \(readyLine)") }
        return daemon
    }

    static func progress(_ text: String) { FileHandle.standardError.write(Data("csi-bench: \(text)\n".utf8)) }

    static func capability() -> Csi_V1_VolumeCapability {
        var c = Csi_V1_VolumeCapability()
        c.mount = Csi_V1_VolumeCapability.MountVolume()
        c.accessMode.mode = .singleNodeWriter
        return c
    }

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    /// Runs `perClient` calls on each of `clients` connections; returns latencies (s) and wall time (s).
    static func measure(_ socket: String, clients: Int, perClient: Int,
                        _ call: @escaping @Sendable (Controller, Node, Int, Int) async throws -> Void) async throws -> ([Double], Double) {
        let clock = ContinuousClock()
        let start = clock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for client in 0..<clients {
                group.addTask {
                    try await withGRPCClient(transport: try Transports.client(path: socket)) { grpc in
                        let controller = Csi_V1_Controller.Client(wrapping: grpc)
                        let node = Csi_V1_Node.Client(wrapping: grpc)
                        _ = try await node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())  // connect before timing
                        var mine: [Double] = []
                        for i in 0..<perClient {
                            let t = clock.now
                            try await call(controller, node, client, i)
                            mine.append(seconds(clock.now - t))
                        }
                        return mine
                    }
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }
        }
        return (latencies, seconds(clock.now - start))
    }

    static func summarize(_ rpc: String, _ clients: Int, _ latencies: [Double], _ wall: Double) -> Result {
        let sorted = latencies.sorted()
        let median = sorted[sorted.count / 2]
        let p99 = sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
        return Result(rpc: rpc, clients: clients, calls: sorted.count, medianMs: median * 1000, p99Ms: p99 * 1000,
                      callsPerSecond: Double(sorted.count) / wall)
    }
}
