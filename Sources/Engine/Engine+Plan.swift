import Foundation
import Metadata
import Placement

/// What a proposed change would do, computed without applying it.
public struct PlanReport: Sendable, Codable, Hashable {
    public struct ClassPlan: Sendable, Codable, Hashable {
        public var name: String
        /// (PG, position) pairs whose shards would move.
        public var movedPositions: Int
        /// Of those, the ones rebuilt because their device is lost.
        public var recoveryPositions: Int
        public var movedBytes: Int64
        /// The least any placement could move (`MovementBound`).
        public var minimumPositions: Int
        public var usableBytesBefore: Int64
        public var usableBytesAfter: Int64

        enum CodingKeys: String, CodingKey {
            case name
            case movedPositions = "moved_positions"
            case recoveryPositions = "recovery_positions"
            case movedBytes = "moved_bytes"
            case minimumPositions = "minimum_positions"
            case usableBytesBefore = "usable_bytes_before"
            case usableBytesAfter = "usable_bytes_after"
        }
    }

    public var fromEpoch: UInt64
    public var toEpoch: UInt64
    public var classes: [ClassPlan]

    enum CodingKeys: String, CodingKey {
        case classes
        case fromEpoch = "from_epoch"
        case toEpoch = "to_epoch"
    }
}

extension Engine {
    /// The what-if of `changes` (and of devices `adding`): movement per class and capacity
    /// before and after. Changes nothing.
    public func plan(_ changes: [MapChange], adding devices: [DeviceSpec] = []) throws(EngineError) -> PlanReport {
        let s = state.withLock { $0 }
        try Self.checkDeviceChanges(changes, known: Set(s.map.devices.map(\.id)).union(devices.map { DeviceID($0.id) }))
        var all = try deviceChanges(devices, in: s.map)
        all += changes
        let next = try EngineError.wrap { try s.map.nextEpoch(all) }
        let placer = try EngineError.wrap { try Placer(map: next) }
        let plan = try EngineError.wrap { try MovementPlan(from: s.map, to: next) }
        let current = try EngineError.wrap { try database.devices() }
        let proposed = current + devices.map {
            DeviceRecord(id: $0.id, path: "", capacityBytes: $0.capacityBytes, host: $0.host, rack: $0.rack, zone: $0.zone, addedMs: 0)
        }
        let before = try capacity(s, map: s.map, placer: s.placer, records: current)
        let after = try capacity(s, map: next, placer: placer, records: proposed)
        var classes: [PlanReport.ClassPlan] = []
        for entry in s.classes.values.sorted(by: { $0.poolID < $1.poolID }) {
            let moves = plan.moves(pool: entry.poolID)
            let bytes = try movementBytes(moves.lazy.map { (pool: entry.poolID, pg: $0.pg) })
            let minimum = try EngineError.wrap { try MovementBound.minimumMoves(pool: entry.poolID, from: s.map, to: next) }
            classes.append(.init(name: entry.storageClass.name, movedPositions: moves.count,
                                 recoveryPositions: moves.count { $0.kind == .recovery }, movedBytes: bytes, minimumPositions: minimum,
                                 usableBytesBefore: before.classes.first { $0.name == entry.storageClass.name }?.usableBytes ?? 0,
                                 usableBytesAfter: after.classes.first { $0.name == entry.storageClass.name }?.usableBytes ?? 0))
        }
        return PlanReport(fromEpoch: s.map.epoch, toEpoch: next.epoch, classes: classes)
    }

    /// The map changes that add `specs` (their buckets included) to `map`.
    func deviceChanges(_ specs: [DeviceSpec], in map: ClusterMap) throws(EngineError) -> [MapChange] {
        var changes: [MapChange] = []
        var known = Dictionary(map.buckets.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for spec in specs {
            try Self.validName(spec.id, "device id")
            try Self.validName(spec.host, "host")
            if let rack = spec.rack { try Self.validName(rack, "rack") }
            if let zone = spec.zone { try Self.validName(zone, "zone") }
            guard spec.capacityBytes > 0 else { throw .invalidArgument("device \(spec.id): capacity must be positive") }
            let weight = spec.weight ?? Double(spec.capacityBytes) / Double(1 << 30)
            guard weight > 0 && weight <= 65535 else { throw .invalidArgument("device \(spec.id): weight \(weight) is outside (0, 65535]") }
            var parent: String? = nil
            for (id, type) in [(spec.zone, "zone"), (spec.rack, "rack"), (spec.host, "host")] {
                guard let id else { continue }
                if let existing = known[id] {
                    if existing.type != type || existing.parent != parent {
                        throw .invalidArgument("\(type) \"\(id)\" already exists as a \(existing.type) under \(existing.parent ?? "the root")")
                    }
                } else {
                    let bucket = Bucket(id: id, type: type, parent: parent)
                    known[id] = bucket
                    changes.append(.addBucket(bucket))
                }
                parent = id
            }
            changes.append(.addDevice(Device(id: DeviceID(spec.id), parent: spec.host, weight: weight)))
        }
        return changes
    }
}
