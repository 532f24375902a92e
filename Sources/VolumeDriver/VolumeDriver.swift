import ArgumentParser
import Engine
import StorageClasses
import Foundation

/// `VolumeDriver`: Berth's CSI driver daemon. With no flags it starts the embedded
/// default (SQLite and local directory devices under /var/lib/berth, the shipped storage
/// classes, the CSI socket at /run/berth/csi.sock). docs/csi.md has the details.
@main
struct VolumeDriverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "VolumeDriver",
        abstract: "Berth's CSI driver: provisions and mounts volumes of Berth storage classes.")

    @Option(help: "The CSI socket, unix:///PATH (default \(DaemonConfiguration.defaultEndpoint)).")
    var endpoint: String?

    @Option(name: .customLong("state-dir"), help: "State directory; empty or missing gets the embedded default cluster (default \(DaemonConfiguration.defaultStateDirectory)).")
    var stateDir: String?

    @Option(name: .customLong("admin-socket"), help: "The admin API socket for provisionctl, mode 0600 (default \(DaemonConfiguration.defaultAdminSocket)).")
    var adminSocket: String?

    @Option(name: .customLong("node-id"), help: "This node's id (default the host name).")
    var nodeID: String?

    @Option(name: .customLong("metrics-address"), help: "HOST:PORT of the Prometheus /metrics endpoint, or 'off' (default \(DaemonConfiguration.defaultMetricsAddress)).")
    var metricsAddress: String?

    @Option(name: .customLong("topology"), help: "A topology segment KEY=VALUE this node reports (repeatable), e.g. topology.kubernetes.io/zone=z1.")
    var topology: [String] = []

    @Option(name: .customLong("default-class"), help: "Storage class for CreateVolume calls without parameters (default replicated-3).")
    var defaultClass: String?

    @Option(help: "A YAML configuration file (keys in docs/csi.md); flags override it.")
    var config: String?

    @Option(name: .customLong("admin-allow-uid"), help: "A user id besides root allowed on the admin socket (repeatable).")
    var adminAllowUID: [UInt32] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "all (default: CSI, admin API, cluster state, local devices), node (the node agent serving --device over TCP), or csi-node (CSI Node and FUSE mounts of a cluster whose state is in PostgreSQL, --metadata postgres://…: volumes mount on any node).")
    var role: Role = .all

    @Option(name: .customLong("tls-dir"), help: "This node's cluster certificates (ca.pem, node.pem, node-key.pem from `provisionctl cluster cert`). Needed by --role node, and by a daemon whose devices include other hosts'.")
    var tlsDir: String?

    @Option(help: "Where the cluster state lives: sqlite:///PATH (default: cluster.sqlite in the state directory) or postgres://USER@HOST:PORT/DATABASE?sslmode=disable|require|verify-full[&sslrootcert=PATH] (password in the URL or PGPASSWORD).")
    var metadata: String?

    @Option(help: "--role node: HOST:PORT the agent listens on (default 0.0.0.0:7440).")
    var listen: String = "0.0.0.0:7440"

    @Option(name: .customLong("device"), help: "--role node: a device to serve, ID=PATH,CAPACITY (repeatable), e.g. h1-d1=/srv/berth/d1,100Gi.")
    var devices: [String] = []

    @Flag(name: .customLong("init-devices"), help: "--role node: make each --device directory that is not yet a device a new, empty one (first start). Without it an uninitialized directory is refused.")
    var initDevices = false

    @Option(name: .customLong("down-after"), help: "A silent host's devices go down after this (default 0s: as soon as its heartbeat is silent for 5 s).")
    var downAfter: String?

    @Option(name: .customLong("out-after"), help: "...and out, their shards rebuilt on other hosts, this long after the host went silent (default 10m).")
    var outAfter: String?

    @Option(name: .customLong("object-cache"), help: "Memory for the node's object cache, shared by all mounts, e.g. 256Mi (default); 0 turns it off.")
    var objectCache: String?

    @Option(name: .customLong("fuse-keeper"), help: "The berth-fuse-keeper executable that keeps mounts alive while this daemon restarts (default: the one beside this executable), or 'off': mounts end with the daemon.")
    var fuseKeeper: String?

    enum Role: String, ExpressibleByArgument {
        case all, node
        case csiNode = "csi-node"
    }

    mutating func run() async throws {
        if role == .node {
            guard let tlsDir else { throw ValidationError("--role node needs --tls-dir (there is no plain-text listener)") }
            guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
            try await AgentDaemon(tlsDirectory: tlsDir, listen: listen, devices: devices, nodeID: nodeID, initDevices: initDevices, logLevel: level).run()
            return
        }
        guard devices.isEmpty else { throw ValidationError("--device is for --role node; add devices to a running daemon with `provisionctl device add`") }
        var c = DaemonConfiguration()
        if let config { try c.load(file: config) }
        if let endpoint { c.endpoint = endpoint }
        if let stateDir { c.stateDirectory = stateDir }
        if let adminSocket { c.adminSocket = adminSocket }
        if let nodeID { c.nodeID = nodeID }
        if let metricsAddress { c.metricsAddress = metricsAddress }
        if let defaultClass { c.defaultClass = defaultClass }
        if let tlsDir { c.tlsDirectory = tlsDir }
        if let metadata { c.metadata = metadata }
        if role == .csiNode {
            guard c.metadata?.hasPrefix("postgres") == true else {
                throw ValidationError("--role csi-node serves volumes of a cluster whose state is shared: it needs --metadata postgres://…")
            }
            c.role = .node
        }
        var down = c.health.downAfterMs, out = c.health.outAfterMs
        if let downAfter {
            guard let ms = DurationText.milliseconds(downAfter) else { throw ValidationError("--down-after takes a duration such as 5s, not \(downAfter)") }
            down = ms
        }
        if let outAfter {
            guard let ms = DurationText.milliseconds(outAfter) else { throw ValidationError("--out-after takes a duration such as 10m, not \(outAfter)") }
            out = ms
        }
        c.health = HealthPolicy(downAfterMs: down, outAfterMs: out)
        if let objectCache {
            guard let bytes = ByteSize.parse(objectCache), bytes >= 0 else { throw ValidationError("--object-cache takes a size such as 256Mi, not \(objectCache)") }
            c.objectCacheBytes = Int(bytes)
        }
        if let fuseKeeper { c.fuseKeeper = fuseKeeper == "off" ? nil : fuseKeeper }
        c.adminAllowedUIDs += adminAllowUID
        for segment in topology {
            let parts = segment.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--topology takes KEY=VALUE, not \(segment)") }
            c.topology[String(parts[0])] = String(parts[1])
        }
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown --log-level \(logLevel)") }
        try await Daemon(configuration: c, logLevel: level).run()
    }
}

import Logging
