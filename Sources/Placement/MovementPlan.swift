/// Exactly what changes between two epochs: which (pool, PG, position) goes from which
/// device to which. The storage engine executes it; `provisionctl plan` prints it.
public struct MovementPlan: Sendable, Hashable {
    public enum Kind: String, Codable, Sendable {
        /// The old device is not up in the new map: rebuild the shard from the other members.
        case recovery
        /// The old device is up: copy the shard from it.
        case rebalance
    }

    public struct Move: Sendable, Hashable, Codable {
        public var pool: UInt32
        public var pg: Int
        public var position: Int
        public var from: DeviceID
        public var to: DeviceID
        public var kind: Kind
    }

    public let fromEpoch: UInt64
    public let toEpoch: UInt64
    /// Recovery moves first (they restore lost redundancy), then rebalance moves; each
    /// group in (pool, pg, position) order.
    public let moves: [Move]

    /// Compares the placement of every pool present in both maps. Pools only in `new`
    /// hold no data yet; pools only in `old` are being deleted: neither moves anything.
    public init(from old: ClusterMap, to new: ClusterMap) throws(PlacementError) {
        let oldPlacer = try Placer(map: old)
        let newPlacer = try Placer(map: new)
        var recovery: [Move] = []
        var rebalance: [Move] = []
        var a: [Int32] = [], b: [Int32] = []
        for newIndex in newPlacer.pools.indices {
            let pool = newPlacer.pools[newIndex].pool
            guard let oldIndex = oldPlacer.poolIndex(id: pool.id) else { continue }
            precondition(oldPlacer.pools[oldIndex].pool.pgCount == pool.pgCount, "pg_count of a pool changed")
            for pg in 0..<pool.pgCount {
                oldPlacer.place(poolIndex: oldIndex, pg: pg, into: &a)
                newPlacer.place(poolIndex: newIndex, pg: pg, into: &b)
                for position in 0..<min(a.count, b.count) {
                    let from = oldPlacer.deviceID(at: a[position])
                    let to = newPlacer.deviceID(at: b[position])
                    if from == to { continue }
                    let readable = new.device(from)?.state == .up
                    let move = Move(pool: pool.id, pg: pg, position: position, from: from, to: to,
                                    kind: readable ? .rebalance : .recovery)
                    if readable { rebalance.append(move) } else { recovery.append(move) }
                }
            }
        }
        self.fromEpoch = old.epoch
        self.toEpoch = new.epoch
        self.moves = recovery + rebalance
    }

    public var recoveryCount: Int { moves.count { $0.kind == .recovery } }
    public var rebalanceCount: Int { moves.count { $0.kind == .rebalance } }

    /// Moves of one pool.
    public func moves(pool: UInt32) -> [Move] { moves.filter { $0.pool == pool } }

    /// Bytes the plan implies, given the bytes one shard of a PG holds.
    public func bytes(shardBytes: (_ pool: UInt32, _ pg: Int) -> UInt64) -> UInt64 {
        moves.reduce(0) { $0 + shardBytes($1.pool, $1.pg) }
    }

    /// `table` (the old epoch's placement of one pool) with this plan's moves applied.
    public func applied(to table: PlacementTable) -> PlacementTable {
        var result = table
        for move in moves where move.pool == table.poolID {
            precondition(result.devices[move.pg * table.width + move.position] == move.from, "plan does not match the table")
            result.devices[move.pg * table.width + move.position] = move.to
        }
        return result
    }
}
