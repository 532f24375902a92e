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
        maintenanceWindows.withLock { w in
            w = Dictionary(windows.map { (DeviceID($0.device), ($0.startedMs, $0.untilMs)) }, uniquingKeysWith: { a, _ in a })
        }
        let fresh = State(map: latest, placer: placer, classes: classes, locations: locations,
                          targets: newEpoch ? try Self.targets(of: latest, placer: placer) : current.targets)
        state.withLock { st in
            st = fresh
            for entry in fresh.classes.values { objects.setCodec(entry.codec) }
            objects.setLayout(Self.layout(fresh))
        }
        return newEpoch
    }
}
