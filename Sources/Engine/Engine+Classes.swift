import Foundation
import Metadata
import Placement
import Storage
import StorageClasses

/// What the engine knows about one storage class.
public struct ClassInfo: Sendable, Hashable {
    public var storageClass: StorageClass
    public var poolID: UInt32
}

extension Engine {
    public func classes() -> [ClassInfo] {
        state.withLock { s in
            s.classes.values.map { ClassInfo(storageClass: $0.storageClass, poolID: $0.poolID) }.sorted { $0.poolID < $1.poolID }
        }
    }

    public func storageClass(named name: String) -> StorageClass? {
        state.withLock { $0.classes[name]?.storageClass }
    }

    /// Adds or updates storage classes, all or nothing. A new class gets a pool, placed and
    /// balanced in a new epoch (refused if the cluster lacks the failure domains). An
    /// existing class may change only its reclaim policy and expansion flag.
    public func applyClasses(_ classes: [StorageClass]) throws(EngineError) {
        try adminLock.withLock { _ throws(EngineError) in
            var s = state.withLock { $0 }
            var names = Set<String>()
            var records: [StorageClassRecord] = []
            var newPools: [Pool] = []
            var nextPool = (s.classes.values.map(\.poolID).max() ?? 0) + 1
            for c in classes {
                guard names.insert(c.name).inserted else { throw .invalidArgument("storage class \"\(c.name)\" appears twice") }
                if let existing = s.classes[c.name] {
                    let old = existing.storageClass
                    if old.redundancy != c.redundancy || old.failureDomain != c.failureDomain
                        || old.chunkSizeBytes != c.chunkSizeBytes || old.pgCount != c.pgCount {
                        throw .classConflict("storage class \"\(c.name)\" exists with other redundancy, failure domain, chunk size or pgCount; these cannot change (create a class with a new name)")
                    }
                    s.classes[c.name]!.storageClass = c
                    records.append(try Self.record(c, poolID: existing.poolID))
                    continue
                }
                try EngineError.wrap { try c.check(against: s.map, source: "storage class \(c.name)") }
                let codec = try EngineError.wrap { try PoolCodec(poolID: nextPool, storageClass: c) }
                s.classes[c.name] = ClassEntry(storageClass: c, poolID: nextPool, codec: codec)
                newPools.append(Pool(id: nextPool, name: c.name, rule: c.rule, pgCount: c.pgCount))
                records.append(try Self.record(c, poolID: nextPool))
                nextPool += 1
            }
            var changes: [ClusterChange] = records.map { .saveClass($0) }
            if !newPools.isEmpty {
                let next = try EngineError.wrap { try s.map.nextEpoch(newPools.map { .addPool($0) }) }
                let placer = try EngineError.wrap { try Placer(map: next) }
                changes.append(.insertMap(next))
                for pool in newPools {
                    let table = try EngineError.wrap { try placer.table(pool: pool.id) }
                    changes.append(.setLocations(poolID: pool.id, table: table))
                    s.locations[pool.id] = (0..<table.pgCount).map { Array(table[$0]) }
                }
                s.map = next
                s.placer = placer
                s.targets = try Self.targets(of: next, placer: placer)
            }
            try EngineError.wrap { try database.commit(changes) }
            install(s)
        }
    }

    /// Removes a class and its pool; refused while any volume or snapshot uses it, or any
    /// object is still in its pool.
    public func deleteClass(named name: String) throws(EngineError) {
        try adminLock.withLock { _ throws(EngineError) in
            var s = state.withLock { $0 }
            guard let entry = s.classes[name] else { throw .unknownClass(name) }
            let volumes = try EngineError.wrap { try database.volumes() }
            if volumes.contains(where: { $0.className == name }) { throw .classInUse(name) }
            // A clone of another class may still read objects of this pool (Engine+CloneCopy).
            try EngineError.wrap { try index.flush() }
            if try EngineError.wrap({ try database.poolHasObjects(poolID: entry.poolID) }) {
                throw .classInUse(name + " (objects of clones still being copied)")
            }
            let next = try EngineError.wrap { try s.map.nextEpoch([.removePool(id: entry.poolID)]) }
            try EngineError.wrap { try database.commit([.deleteClass(name: name), .insertMap(next)]) }
            s.classes[name] = nil
            s.locations[entry.poolID] = nil
            s.map = next
            s.placer = try EngineError.wrap { try Placer(map: next) }
            s.targets = try Self.targets(of: next, placer: s.placer)
            install(s)
        }
    }

    static func record(_ c: StorageClass, poolID: UInt32) throws(EngineError) -> StorageClassRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = try EngineError.wrap { String(decoding: try encoder.encode(c), as: UTF8.self) }
        return StorageClassRecord(name: c.name, poolID: Int64(poolID), definition: json, createdMs: Engine.nowMs())
    }
}
