import AgentProtocol
import ClusterTLS
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Logging
import NodeAgent
import Placement
import Storage
import StorageClasses

/// `VolumeDriver --role node`: the node agent of one host. It serves this host's devices
/// (`--device ID=PATH,CAPACITY`) to the cluster over gRPC on TCP with mutual TLS
/// (`--tls-dir`, `--listen`), and nothing else: no CSI socket, no cluster state. The
/// embedded default never starts one (docs/cluster.md).
struct AgentDaemon {
    let tlsDirectory: String
    let listen: String
    let devices: [String]
    let nodeID: String?
    /// Whether a device directory that is not yet a device may be made one. Off, an agent
    /// whose disk did not mount refuses to start instead of serving an empty directory as
    /// the device (every shard "missing", no alarm).
    let initDevices: Bool
    let logLevel: Logger.Level

    /// `ID=PATH,CAPACITY`, e.g. `h1-d1=/srv/berth/d1,100Gi`.
    static func parseDevice(_ text: String) throws -> (id: String, path: String, capacityBytes: Int) {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { throw DaemonError("--device takes ID=PATH,CAPACITY, not \(text)") }
        let rest = parts[1].split(separator: ",")
        guard rest.count == 2, rest[0].hasPrefix("/"), let bytes = ByteSize.parse(String(rest[1])), bytes > 0 else {
            throw DaemonError("--device takes ID=PATH,CAPACITY with an absolute PATH and a size such as 10Gi, not \(text)")
        }
        return (String(parts[0]), String(rest[0]), Int(bytes))
    }

    func run() async throws {
        ProcessSetup.start(logLevel: logLevel)

        let tls: TLSDirectory
        do { tls = try TLSDirectory(path: tlsDirectory) } catch { throw DaemonError("--tls-dir: \(error)") }
        if let nodeID, nodeID != tls.node {
            throw DaemonError("--node-id \(nodeID) differs from the node id in \(tlsDirectory)/node.pem (\(tls.node))")
        }
        var logger = Logger(label: "berth.agent")
        logger[metadataKey: "node"] = "\(tls.node)"
        let log = logger
        guard !devices.isEmpty else { throw DaemonError("--role node needs at least one --device ID=PATH,CAPACITY") }
        var stores: [ShardStore] = []
        for text in devices {
            let (id, path, capacity) = try Self.parseDevice(text)
            if !initDevices && !FileManager.default.fileExists(atPath: path + "/device-id") {
                throw DaemonError("device \(id): \(path) is not an initialized device (is its disk mounted?); "
                    + "--init-devices makes a new, empty device of it")
            }
            // One agent per device directory, as one daemon per state directory.
            try StateDirectoryLock.acquire(path)
            do { stores.append(try ShardStore(id: DeviceID(id), root: path, capacityBytes: capacity, create: initDevices)) } catch {
                throw DaemonError("device \(id) at \(path): \(error)")
            }
        }
        guard let (host, port) = HostPort.parse(listen) else { throw DaemonError("--listen takes HOST:PORT, not \(listen)") }
        let service = AgentService(node: tls.node, devices: stores)
        let transport = HTTP2ServerTransport.Posix(
            address: host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port),
            transportSecurity: tls.serverSecurity,
            config: AgentService.transportConfig)
        let server = GRPCServer(transport: transport, services: [service])
        try StopSignals.install {
            log.info("shutting down: finishing in-flight calls")
            service.beginShutdown()
            Task {
                _ = try? await server.listeningAddress
                server.beginGracefulShutdown()
            }
        }
        let serving = Task(executorPreference: AgentExecutor.shared) { try await server.serve() }
        let address: String
        do {
            let bound = try await server.listeningAddress
            address = bound?.ipv4.map { "\($0.host):\($0.port)" } ?? bound?.ipv6.map { "[\($0.host)]:\($0.port)" } ?? listen
        } catch {
            throw DaemonError("cannot listen on \(listen): \(error)")
        }
        log.info("serving", metadata: ["agent": "\(address)", "devices": "\(stores.map(\.id.rawValue))"])
        FileHandle.standardOutput.write(Data("READY agent=\(address) node=\(tls.node) devices=\(stores.map(\.id.rawValue).joined(separator: ","))\n".utf8))
        do { try await serving.value } catch { log.error("the agent failed", metadata: ["error": "\(error)"]); throw error }
        log.info("stopped")
    }
}
