/// The least movement any placement could get away with for a change, to judge a plan by.
public enum MovementBound {
    /// For one pool between two maps, the larger of two lower bounds:
    /// - lost: shards on devices that are gone, out or drained in `new` (each must move);
    /// - gained: shards that the devices the change added or reweighted must gain to hold
    ///   their balanced share, Σ max(0, ⌊target share⌋ − shards held before).
    /// A failure or drain is bounded by the first; an addition or reweight by the second;
    /// a replacement by both (the lost shards are the ones the new device must gain).
    public static func minimumMoves(pool: UInt32, from old: ClusterMap, to new: ClusterMap) throws(PlacementError) -> Int {
        let before = try Placer(map: old).table(pool: pool).counts()
        let shares = try Placer(map: new).targetShares(pool: pool)
        var lost = 0
        for (device, count) in before where !(new.device(device)?.isEligible ?? false) { lost += count }
        var oldWeight: [DeviceID: Double] = [:]
        for d in old.devices where d.isEligible { oldWeight[d.id] = d.weight }
        var gained = 0
        for d in new.devices where d.isEligible && oldWeight[d.id] != d.weight {
            let share = shares[d.id] ?? 0
            gained += max(0, Int(share) - (before[d.id] ?? 0))  // Int() truncates: ⌊share⌋
        }
        return max(lost, gained)
    }
}
