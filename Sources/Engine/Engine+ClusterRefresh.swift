import Foundation
import Metadata
import Placement
import Storage

extension Engine {
    /// Whether volumes' namespaces live in the cluster's store (PostgreSQL), so that a volume
    /// mounts on any node, one at a time under its lease.
    public var namespacesAreShared: Bool { database.namespaceStore != nil }

    /// A node's view of what the controller changed (`EngineRole.node`), read again: the
    /// newest map (a new placer only when the epoch moved), classes, where each PG's shards
    /// are now (the controller's mover switches them), devices added since, maintenance.
    /// Writes then place by what the controller decided; reads find moved shards.
    /// Returns whether the epoch changed.
    @discardableResult
    public func refreshClusterState() throws(EngineError) -> Bool {
        let current = state.withLock { $0 }
        let latest = try EngineError.wrap { try database.latestMap() } ?? current.map
        let newEpoch = latest.epoch != current.map.epoch
        let placer = newEpoch ? try EngineError.wrap { try Placer(map: latest) } : current.placer
        let (classes, locations) = try Self.loadClasses(database)
        for record in try EngineError.wrap({ try database.devices() }) where objects.device(DeviceID(record.id)) == nil {
            if let store = try Self.openDevice(record, connector: configuration.connector) { objects.attach(store) }
        }
        let windows = try EngineError.wrap { try database.maintenance() }
        maintenanceWindows.withLock { $0 = Self.maintenanceWindows(windows) }
        let fresh = State(map: latest, placer: placer, classes: classes, locations: locations,
                          targets: newEpoch ? try Self.targets(of: latest, placer: placer) : current.targets)
        state.withLock { st in
            st = fresh
            for entry in fresh.classes.values { objects.setCodec(entry.codec) }
            objects.setLayout(Self.layout(fresh))
        }
        return newEpoch
    }

    /// With namespaces in the cluster's store, the controller's sweep (before each pass of
    /// the mover): volumes left in use by a node that died — their lease ran out or was
    /// broken, nobody mounts them — are reconciled under their lease, from the namespace
    /// their node last shipped, so that the object index lists every object they hold
    /// before their PGs move (a crash loses the index changes not yet committed). A volume
    /// another node holds is that node's. Returns the volumes reconciled.
    @discardableResult
    public func reconcileAbandonedVolumes() throws(EngineError) -> [String] {
        guard database.namespaceStore != nil, configuration.role == .all else { return [] }
        var reconciled: [String] = []
        for id in try EngineError.wrap({ try database.volumesInUse() }) where volumeDatabases.withLock({ $0[id] }) == nil {
            guard let volume = try EngineError.wrap({ try database.volume(id: id) }), volume.state == .available, volume.kind == .volume else { continue }
            do {
                try withLeasedVolumeDatabase(id, wait: .zero) { (vdb) throws(EngineError) in try reconcile(volume, vdb) }
                reconciled.append(id)
            } catch .busy {
                continue
            }
        }
        return reconciled
    }
}
