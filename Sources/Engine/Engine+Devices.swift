import Foundation
import Metadata
import Placement
import Storage

/// A device to add: where it sits in the failure-domain tree and how big it is.
public struct DeviceSpec: Sendable, Hashable, Codable {
    public var id: String
    public var host: String
    public var rack: String?
    public var zone: String?
    /// Directory of the shard store; default `<state>/devices/<id>`. Ignored with `agent`.
    public var path: String?
    /// HOST:PORT of the node agent of `host` that serves this device (docs/cluster.md);
    /// nil: a directory on this machine.
    public var agent: String?
    public var capacityBytes: Int64
    /// Placement weight; default the capacity in GiB.
    public var weight: Double?

    public init(id: String, host: String, rack: String? = nil, zone: String? = nil, path: String? = nil,
                capacityBytes: Int64, weight: Double? = nil, agent: String? = nil) {
        self.agent = agent
        self.id = id
        self.host = host
        self.rack = rack
        self.zone = zone
        self.path = path
        self.capacityBytes = capacityBytes
        self.weight = weight
    }
}

extension DeviceSpec {
    /// The devices of a new host, named `HOST-d1` … `HOST-dN` (what "add a host" means to
    /// `provisionctl plan --add-host` and `apply`).
    public static func host(_ host: String, devices: Int, capacityBytes: Int64, rack: String? = nil, zone: String? = nil) -> [DeviceSpec] {
        (1...max(1, devices)).map { DeviceSpec(id: "\(host)-d\($0)", host: host, rack: rack, zone: zone, capacityBytes: capacityBytes) }
    }
}

/// A device as the engine sees it now.
public struct DeviceInfo: Sendable, Hashable, Codable {
    public var id: String
    public var host: String
    public var rack: String?
    public var zone: String?
    public var path: String
    /// The node agent serving it (HOST:PORT), nil for a local device.
    public var agent: String?
    public var state: DeviceState
    public var weight: Double
    public var capacityBytes: Int64
    public var usedBytes: Int64
    /// Whether its directory answers on this node.
    public var reachable: Bool
}

extension Engine {
    public func devices() throws(EngineError) -> [DeviceInfo] {
        let records = try EngineError.wrap { try database.devices() }
        let map = self.map
        return records.map { r in
            let d = map.device(DeviceID(r.id))
            let store = objects.device(DeviceID(r.id))
            return DeviceInfo(id: r.id, host: r.host, rack: r.rack, zone: r.zone, path: r.path, agent: r.agent, state: d?.state ?? .out,
                              weight: d?.weight ?? 0, capacityBytes: r.capacityBytes, usedBytes: Int64(store?.usedBytes ?? 0),
                              reachable: store?.isReachable ?? false)
        }
    }

    static func validName(_ name: String, _ what: String) throws(EngineError) {
        let ok = (1...64).contains(name.utf8.count) && name != "." && name != ".."
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x2e || $0 == 0x5f }
        if !ok { throw .invalidArgument("\(what) \"\(name)\" must be 1-64 characters of A-Z a-z 0-9 . _ -") }
    }

    /// Adds devices (and any new hosts, racks, zones) in one epoch; the balancer moves their
    /// share of shards onto them, which `move` then executes.
    public func addDevices(_ specs: [DeviceSpec]) throws(EngineError) {
        try apply(adding: specs, changes: [])
    }

    /// Adds `specs` and applies state/weight `changes` together, as one epoch: exactly the
    /// transition that `plan(changes, adding: specs)` predicts.
    public func apply(adding specs: [DeviceSpec], changes: [MapChange]) throws(EngineError) {
        try adminLock.withLock { _ throws(EngineError) in
            var s = state.withLock { $0 }
            let known = Set(s.map.devices.map(\.id)).union(specs.map { DeviceID($0.id) })
            try Self.checkDeviceChanges(changes, known: known)
            var specs = specs
            var records: [DeviceRecord] = []
            var stores: [any ShardDevice] = []
            for (i, spec) in specs.enumerated() {
                let store: any ShardDevice
                let path: String
                if let agent = spec.agent {
                    guard let connector = configuration.connector else {
                        throw .invalidArgument("device \(spec.id): this daemon reaches no node agents (start it with --tls-dir)")
                    }
                    path = ""
                    store = try EngineError.wrap { try connector.device(id: DeviceID(spec.id), host: spec.host, address: agent,
                                                                      capacityBytes: Int(spec.capacityBytes), verify: true) }
                    // What the agent serves (its --device flag) is the device's capacity.
                    specs[i].capacityBytes = Int64(store.capacityBytes)
                } else {
                    path = spec.path ?? devicesDirectory + "/" + spec.id
                    store = try EngineError.wrap { try ShardStore(id: DeviceID(spec.id), root: path, capacityBytes: Int(spec.capacityBytes)) }
                }
                stores.append(store)
                records.append(DeviceRecord(id: spec.id, path: path, capacityBytes: Int64(store.capacityBytes), host: spec.host,
                                            rack: spec.rack, zone: spec.zone, addedMs: Engine.nowMs(), agent: spec.agent))
            }
            let all = try deviceChanges(specs, in: s.map) + changes
            let next = try EngineError.wrap { try s.map.nextEpoch(all) }
            for store in stores { objects.attach(store) }
            try commitEpoch(next, into: &s, extra: records.map { .saveDevice($0) })
        }
    }

    static func checkDeviceChanges(_ changes: [MapChange], known: Set<DeviceID>) throws(EngineError) {
        for change in changes {
            switch change {
            case .setState(let id, _), .reweight(let id, _):
                if !known.contains(id) { throw .unknownDevice(id.rawValue) }
            case .rebalance: break
            default: throw .invalidArgument("only device state and weight changes can be applied this way")
            }
        }
    }

    /// Marks a device out: its shards are rebuilt elsewhere from the other members.
    public func failDevice(_ id: String) throws(EngineError) { try changeMap([.setState(DeviceID(id), .out)]) }

    /// Marks a device down (unreachable; its shards wait for it) or back up.
    public func setDeviceState(_ id: String, _ deviceState: DeviceState) throws(EngineError) {
        try changeMap([.setState(DeviceID(id), deviceState)])
    }

    /// Drains a device: weight 0, its shards are copied off while it stays readable.
    public func drainDevice(_ id: String) throws(EngineError) { try changeMap([.reweight(DeviceID(id), 0)]) }

    public func reweightDevice(_ id: String, weight: Double) throws(EngineError) { try changeMap([.reweight(DeviceID(id), weight)]) }

    /// Forgets a device. Refused while any shard is still located on it.
    public func removeDevice(_ id: String) throws(EngineError) {
        try adminLock.withLock { _ throws(EngineError) in
            var s = state.withLock { $0 }
            guard s.map.device(DeviceID(id)) != nil else { throw .unknownDevice(id) }
            let holding = s.locations.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.filter { $0 == DeviceID(id) }.count } }
            let pending = try EngineError.wrap { try database.cleanups() }.contains { $0.device == id }
            if holding > 0 || pending {
                throw .deviceInUse("device \"\(id)\" still holds \(holding) PG positions; drain or fail it and let the mover finish first")
            }
            let next = try EngineError.wrap { try s.map.nextEpoch([.removeDevice(DeviceID(id))]) }
            try commitEpoch(next, into: &s, extra: [.deleteDevice(id: id)])
            objects.detach(DeviceID(id))
        }
    }

    /// Applies map changes to existing devices (state, weight) as one epoch.
    public func changeMap(_ changes: [MapChange]) throws(EngineError) {
        try adminLock.withLock { _ throws(EngineError) in
            var s = state.withLock { $0 }
            try Self.checkDeviceChanges(changes, known: Set(s.map.devices.map(\.id)))
            let next = try EngineError.wrap { try s.map.nextEpoch(changes) }
            // An admin's state change is the admin's: the health check no longer undoes it,
            // and it ends a maintenance of the device.
            let admins: [ClusterChange] = changes.flatMap { change -> [ClusterChange] in
                if case .setState(let id, _) = change { return [.setHealthMark(device: id.rawValue, state: nil), .endMaintenance(device: id.rawValue)] }
                return []
            }
            try commitEpoch(next, into: &s, extra: admins)
            maintenanceWindows.withLock { windows in
                for case .setState(let id, _) in changes { windows[id] = nil }
            }
        }
    }

    /// Records a new epoch (and `extra` changes) in one transaction, with the totals of the
    /// movement it starts, then installs it.
    func commitEpoch(_ next: ClusterMap, into s: inout State, extra: [ClusterChange]) throws(EngineError) {
        // The movement it starts is counted from where shards are now (the mover may have
        // switched some since the caller's snapshot).
        s.locations = state.withLock { $0.locations }
        s.map = next
        s.placer = try EngineError.wrap { try Placer(map: next) }
        s.targets = try Self.targets(of: next, placer: s.placer)
        let pending = pendingPositions(s)
        var changes = extra + [.insertMap(next)]
        if !pending.isEmpty {
            let bytes = try movementBytes(pending.lazy.map { (pool: $0.pool, pg: $0.pg) })
            changes.append(.startMovement(MovementRecord(epoch: Int64(next.epoch), totalPositions: Int64(pending.count),
                                                         totalBytes: bytes, startedMs: Engine.nowMs())))
        }
        try EngineError.wrap { try database.commit(changes) }
        install(s)
    }
}
