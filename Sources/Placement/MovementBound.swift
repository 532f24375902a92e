/// The least movement any placement could get away with for a change, to judge a plan by.
public enum MovementBound {
    /// For one pool between two maps, the larger of:
    /// - shards on devices that are gone, out or drained in `new` (they must move), and
    /// - the shards that devices must gain to reach their new share: the sum over devices
    ///   eligible in `new` of max(0, ⌊share⌋ − shards held before).
    /// A failure or drain is bounded by the first; an addition or reweight by the second.
    public static func minimumMoves(pool: UInt32, from old: ClusterMap, to new: ClusterMap) throws(PlacementError) -> Int {
        let oldPlacer = try Placer(map: old)
        let table = try oldPlacer.table(pool: pool)
        let before = table.counts()
        var lost = 0
        for (device, count) in before where !(new.device(device)?.isEligible ?? false) { lost += count }
        let eligible = new.devices.filter(\.isEligible)
        let totalWeight = eligible.reduce(0.0) { $0 + $1.weight }
        var deficit = 0
        if totalWeight > 0 {
            for d in eligible {
                let share = Double(table.devices.count) * d.weight / totalWeight
                deficit += max(0, Int(share) - (before[d.id] ?? 0))  // Int() truncates: ⌊share⌋
            }
        }
        return max(lost, deficit)
    }
}

/// How evenly a pool's shards sit on devices: each eligible device's shard count divided
/// by its weight-proportional share. 1.0 is perfect.
public struct Balance: Sendable, Hashable {
    public let max: Double
    public let min: Double

    public init(table: PlacementTable, map: ClusterMap) {
        let counts = table.counts()
        let eligible = map.devices.filter(\.isEligible)
        let totalWeight = eligible.reduce(0.0) { $0 + $1.weight }
        var hi = 0.0, lo = Double.infinity
        for d in eligible {
            let share = Double(table.devices.count) * d.weight / totalWeight
            let ratio = Double(counts[d.id] ?? 0) / share
            hi = Swift.max(hi, ratio)
            lo = Swift.min(lo, ratio)
        }
        self.max = hi
        self.min = eligible.isEmpty ? 0 : lo
    }
}
