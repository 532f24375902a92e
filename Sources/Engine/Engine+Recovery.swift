import Metadata
import Synchronization
import Placement
import Storage

/// Degraded writes and their recovery. A write whose PG has an unreachable member still
/// succeeds with `PoolCodec.minimumDurable` shards (`ObjectStore.put`); its PG is then
/// recorded (`pg_recovery`, durably, before the write is acknowledged), and the mover
/// rebuilds the missing shards once every member of the PG answers again — the delta,
/// not the PG: shards already there are kept.
extension Engine {
    /// Records that the object's PG holds an object with missing shards.
    func recordDegradedWrite(pool: UInt32, object: ObjectID) throws(EngineError) {
        let pgCount = state.withLock { $0.entry(pool: pool)?.codec.pgCount } ?? 1
        try EngineError.wrap { try database.markForRecovery(poolID: pool, pg: object.pg(count: pgCount)) }
    }

    /// PGs waiting for recovery (for status and tests).
    public func pgsNeedingRecovery() throws(EngineError) -> [(pool: UInt32, pg: Int)] {
        try EngineError.wrap { try database.pgsNeedingRecovery().map { ($0.poolID, $0.pg) } }
    }

    /// Rebuilds the missing shards of recorded PGs whose members all answer and are up;
    /// others wait (a member still down, or moving: the move itself writes every shard).
    /// Returns the bytes written and what failed.
    func recoverDegradedPGs(_ s: State) -> (bytes: Int64, failures: [String]) {
        guard let pending = try? database.pgsNeedingRecovery(), !pending.isEmpty else { return (0, []) }
        var bytes: Int64 = 0
        var failures: [String] = []
        for (pool, pg, generation) in pending {
            guard let targets = s.targets[pool], pg < targets.count, let locations = s.locations[pool], pg < locations.count else {
                _ = try? database.clearRecovery(poolID: pool, pg: pg)  // its pool is gone
                continue
            }
            let devices = targets[pg]
            guard locations[pg] == devices,
                  devices.allSatisfy({ s.map.device($0)?.state == .up && (objects.device($0)?.isReachable ?? false) }) else { continue }
            do throws(EngineError) {
                for object in try objectsIn(pool: pool, pg: pg) {
                    guard let id = ObjectID(object.id) else { continue }
                    for (position, device) in devices.enumerated() {
                        do {
                            let moved = Int64(try budgetedMove(pool: pool, object: id, shardBytes: object.shardBytes, position: position,
                                                               from: nil, to: device))
                            bytes += moved
                            recoveredBytes.add(moved, ordering: .relaxed)
                        } catch {
                            // Deleted (or failed and being taken away) meanwhile: nothing to rebuild.
                            if case .unreadable = error { continue }
                            throw .storage(error)
                        }
                    }
                }
                // Not if a degraded write marked it again meanwhile: the next pass takes it.
                _ = try EngineError.wrap { try database.clearRecovery(poolID: pool, pg: pg, generation: generation) }
            } catch {
                failures.append("recovery of pool \(pool) pg \(pg): \(error)")
            }
        }
        return (bytes, failures)
    }
}
