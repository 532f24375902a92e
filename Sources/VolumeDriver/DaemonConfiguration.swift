import CSI
import Engine
import Foundation
import StorageClasses
import Yams

/// Everything the daemon needs to start, from flags and an optional YAML file (`--config`);
/// flags win over the file, the file over the defaults.
///
/// ```yaml
/// endpoint: unix:///run/berth/csi.sock
/// stateDir: /var/lib/berth
/// adminSocket: /run/berth/admin.sock
/// nodeId: node-a
/// metricsAddress: 127.0.0.1:9810
/// topology: {topology.kubernetes.io/zone: z1}
/// defaultClass: replicated-3
/// devices:                 # used only when the state directory is new
///   - {id: d1, host: h1, rack: r1, path: /mnt/disk1, capacity: 1Ti}
///   - {id: h2-d1, host: h2, agent: 10.0.0.2:7440}   # served by host h2's node agent
/// tlsDir: /etc/berth/tls   # this node's cluster certificates (docs/cluster.md)
/// ```
struct DaemonConfiguration: Sendable {
    static let defaultEndpoint = "unix:///run/berth/csi.sock"
    static let defaultStateDirectory = "/var/lib/berth"
    static let defaultAdminSocket = "/run/berth/admin.sock"
    static let defaultMetricsAddress = "127.0.0.1:9810"

    var endpoint = defaultEndpoint
    var stateDirectory = defaultStateDirectory
    var adminSocket = defaultAdminSocket
    var nodeID = ProcessInfo.processInfo.hostName
    /// `host:port`; empty or `off` disables the endpoint.
    var metricsAddress = defaultMetricsAddress
    var topology: [String: String] = [:]
    var defaultClass = "replicated-3"
    /// Devices for a new state directory; empty: the embedded default cluster.
    var devices: [DeviceSpec] = []
    var embeddedHosts = 6
    var embeddedDevicesPerHost = 2
    /// nil: 4 GiB, or less when the disk under the state directory has less free space.
    var embeddedDeviceBytes: Int64?
    /// Users besides root allowed on the admin socket.
    var adminAllowedUIDs: [UInt32] = []
    /// Group that may use the CSI socket (mode 0660); nil: root's group.
    var csiSocketGroup: UInt32?
    var moverBytesPerSecond: Int64?
    /// This node's cluster certificates (`TLSDirectory`): needed to reach devices that other
    /// hosts' node agents serve. nil: local devices only.
    var tlsDirectory: String?
    /// Where the cluster state lives (`--metadata`, `metadata:`): nil, `cluster.sqlite` in
    /// the state directory; else `sqlite:///PATH` or `postgres://…` (`MetadataLocation`).
    var metadata: String?
    /// `all`, or `node` for `--role csi-node`: CSI Node and FUSE only, on a cluster whose
    /// state a controller keeps in PostgreSQL.
    var role: EngineRole = .all
    /// When a silent host's devices go down, and out (rebuilt elsewhere).
    var health = HealthPolicy()
    /// The node's object cache, shared by all its mounts (0: none).
    var objectCacheBytes = NodeMounts.defaultObjectCacheBytes
    /// The keeper that holds the FUSE sessions across a restart (`FuseKeeper`; nil: none,
    /// mounts end with the daemon): by default the one beside this executable.
    var fuseKeeper: String? = DaemonConfiguration.keeperBesideExecutable

    static var keeperBesideExecutable: String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        return (exe as NSString).deletingLastPathComponent + "/berth-fuse-keeper"
    }

    struct FileError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the YAML file's keys over the defaults. Unknown keys are errors.
    mutating func load(file path: String) throws {
        guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw FileError(description: "cannot read config file \(path)")
        }
        guard let root = try Yams.load(yaml: text) as? [String: Any] else { throw FileError(description: "\(path): not a YAML mapping") }
        func string(_ key: String) throws -> String? {
            guard let v = root[key] else { return nil }
            guard let s = v as? String ?? (v as? Int).map(String.init) else { throw FileError(description: "\(path): \(key) must be a string") }
            return s
        }
        let known: Set = ["endpoint", "stateDir", "adminSocket", "nodeId", "metricsAddress", "topology", "defaultClass", "devices",
                          "embeddedHosts", "embeddedDevicesPerHost", "embeddedDeviceCapacity", "adminAllowUids", "csiSocketGroup", "moverBytesPerSecond", "tlsDir", "metadata"]
        if let unknown = root.keys.sorted().first(where: { !known.contains($0) }) {
            throw FileError(description: "\(path): unknown key \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
        }
        if let v = try string("endpoint") { endpoint = v }
        if let v = try string("stateDir") { stateDirectory = v }
        if let v = try string("adminSocket") { adminSocket = v }
        if let v = try string("nodeId") { nodeID = v }
        if let v = try string("metricsAddress") { metricsAddress = v }
        if let v = try string("defaultClass") { defaultClass = v }
        if let v = try string("tlsDir") { tlsDirectory = v }
        if let v = try string("metadata") { metadata = v }
        if let v = root["topology"] {
            guard let map = v as? [String: Any] else { throw FileError(description: "\(path): topology must be a mapping") }
            for (k, value) in map { topology[k] = "\(value)" }
        }
        if let v = root["embeddedHosts"] as? Int { embeddedHosts = v }
        if let v = root["embeddedDevicesPerHost"] as? Int { embeddedDevicesPerHost = v }
        if let v = try string("embeddedDeviceCapacity") {
            guard let bytes = ByteSize.parse(v) else { throw FileError(description: "\(path): embeddedDeviceCapacity \"\(v)\" is not a size") }
            embeddedDeviceBytes = bytes
        }
        if let v = root["adminAllowUids"] as? [Int] { adminAllowedUIDs = v.map { UInt32($0) } }
        if let v = root["csiSocketGroup"] as? Int { csiSocketGroup = UInt32(v) }
        if let v = root["moverBytesPerSecond"] as? Int { moverBytesPerSecond = Int64(v) }
        if let v = root["devices"] {
            guard let list = v as? [[String: Any]] else { throw FileError(description: "\(path): devices must be a list of mappings") }
            devices = try list.enumerated().map { (i, d) in
                func field(_ k: String) -> String? { d[k].map { "\($0)" } }
                guard let id = field("id"), let host = field("host") else { throw FileError(description: "\(path): devices[\(i)] needs id and host") }
                let agent = field("agent")
                guard let capacity = field("capacity").flatMap(ByteSize.parse) ?? (agent != nil ? 0 : nil) else {
                    throw FileError(description: "\(path): devices[\(i)].capacity must be a size such as 500Gi")
                }
                return DeviceSpec(id: id, host: host, rack: field("rack"), zone: field("zone"), path: field("path"), capacityBytes: capacity,
                                  agent: agent)
            }
        }
    }

}

/// A duration flag: "500ms", "20s", "10m", "1h".
enum DurationText {
    static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            if let value = Int64(number), value >= 0 { return value * scale }
        }
        return nil
    }
}
