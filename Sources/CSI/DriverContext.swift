import CSIProtocol
import Engine
import Metadata
import Logging

/// What the three CSI services share: the engine, this node's mounts, identity and
/// topology, and the per-key locks that serialize calls for one volume.
public final class DriverContext: Sendable {
    /// The topology key every Berth node reports: a volume is served by the node that holds
    /// its engine, so it is accessible where this key matches.
    public static let nodeTopologyKey = "topology.berth.dev/node"

    public let engine: Engine
    public let mounts: NodeMounts
    public let nodeID: String
    /// This node's topology segments: the node key plus any configured (zone, rack…).
    public let segments: [String: String]
    public let defaultClass: String
    public let defaultVolumeBytes: Int64
    public let stateDirectory: String
    public let vendorVersion: String
    public let logger: Logger
    /// Whether this daemon serves CSI Controller (false: `--role csi-node`).
    public let servesController: Bool
    /// Whether a volume mounts on any node of the cluster (namespaces in PostgreSQL), not
    /// only on the node holding its engine: its accessible topology is then every node.
    public let anyNode: Bool
    /// Create, delete, expand and the per-volume lock: the rules CSI and the admin API share.
    public let operations: VolumeOperations
    let resolver: ClassResolver

    public init(engine: Engine, mounts: NodeMounts, nodeID: String, extraSegments: [String: String] = [:],
                defaultClass: String = "replicated-3", defaultVolumeBytes: Int64 = 1 << 30,
                stateDirectory: String, vendorVersion: String, logger: Logger, servesController: Bool = true) {
        self.engine = engine
        self.servesController = servesController
        // Namespaces in the cluster's store: a volume mounts on any node (its lease decides
        // which one at a time), so no volume is tied to this node's key.
        anyNode = engine.namespacesAreShared
        self.mounts = mounts
        self.nodeID = nodeID
        var segments = extraSegments
        if !anyNode { segments[Self.nodeTopologyKey] = nodeID }
        self.segments = segments
        self.defaultClass = defaultClass
        self.defaultVolumeBytes = defaultVolumeBytes
        self.stateDirectory = stateDirectory
        self.vendorVersion = vendorVersion
        self.logger = logger
        resolver = ClassResolver(engine: engine, defaultClass: defaultClass)
        operations = VolumeOperations(engine: engine, mounts: mounts, nodeID: nodeID)
    }

    var topology: Csi_V1_Topology {
        var t = Csi_V1_Topology()
        t.segments = segments
        return t
    }

    /// Whether a topology names this node: every segment it gives must be one of ours.
    func accepts(_ topology: Csi_V1_Topology) -> Bool {
        anyNode || topology.segments.allSatisfy { segments[$0.key] == $0.value }
    }


    /// The available volume `id`, or NOT_FOUND (`VolumeOperations.volume`).
    func volume(_ id: String) throws -> VolumeRecord { try operations.volume(id) }
}
