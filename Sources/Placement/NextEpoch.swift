extension ClusterMap {
    /// The map of the next epoch: `changes` applied, and each pool's placement changed as
    /// little as the change allows.
    ///
    /// Starting from this epoch's placement (not from the hash of the new map):
    /// 1. Positions on devices that are gone, out or drained (weight 0), or that now share
    ///    a failure domain with another member, become holes; every other position stays.
    /// 2. Holes go to the least-filled eligible devices that keep members distinct. This is
    ///    the only movement a failure, a removal or a drain causes.
    /// 3. If capacity was added or reweighted (a device became eligible or changed weight),
    ///    or a pool is new, or `.rebalance` is among the changes, the balancer moves shards
    ///    from over-full to under-full devices until each is within one shard of its share.
    /// 4. PGs whose placement differs from the new map's hash become overrides.
    ///
    /// Existing pools keep their rule and PG count (changing either re-places all data:
    /// make a new pool instead). Throws when the result could not satisfy a rule.
    public func nextEpoch(_ changes: [MapChange]) throws(PlacementError) -> ClusterMap {
        let proposed = try applying(changes)
        let forceBalance = changes.contains(.rebalance)
        return try Self.transition(from: self, to: proposed, forceBalance: forceBalance)
    }

    /// A new epoch-1 map with `pools` placed and balanced over the given tree.
    public static func initial(buckets: [Bucket], devices: [Device], pools: [Pool]) throws(PlacementError) -> ClusterMap {
        let empty = ClusterMap(epoch: 0, buckets: buckets, devices: devices, pools: [])
        return try empty.nextEpoch(pools.map { .addPool($0) })
    }

    static func transition(from old: ClusterMap, to proposed: ClusterMap, forceBalance: Bool) throws(PlacementError)
        -> ClusterMap
    {
        let topology = try Topology(map: proposed)
        // The new map's hash placement (no overrides) also validates every pool.
        let hash = try Placer(map: proposed, topology: topology, withOverrides: false)
        let oldPlacer: Placer? = old.pools.isEmpty ? nil : try Placer(map: old)
        let capacityChanged = Self.capacityChanged(from: old, to: proposed)

        var pools: [Pool] = []
        var buffer: [Int32] = []
        for compiled in hash.pools {
            var pool = compiled.pool
            let width = compiled.width
            var hashSlots = [Int32](repeating: -1, count: pool.pgCount * width)
            for pg in 0..<pool.pgCount {
                hash.hashPlace(compiled, pg: pg, into: &buffer)
                for (position, d) in buffer.enumerated() { hashSlots[pg * width + position] = d }
            }

            let slots: [Int32]
            let balance: Bool
            if let oldPlacer, let oldIndex = oldPlacer.poolIndex(id: pool.id) {
                let oldPool = oldPlacer.pools[oldIndex].pool
                if oldPool.rule != pool.rule || oldPool.pgCount != pool.pgCount {
                    throw .invalidPool(
                        pool: pool.name, reason: "an existing pool's rule and pg_count cannot change; create a new pool")
                }
                slots = Self.carriedOver(
                    oldPlacer, poolIndex: oldIndex, into: topology, level: compiled.level, width: width)
                balance = forceBalance || capacityChanged
            } else {
                slots = hashSlots
                balance = true
            }

            var layout = ShardLayout(
                topology: topology, width: width, level: compiled.level, slots: slots, hashSlots: hashSlots)
            layout.fillHoles()
            if balance { layout.balance() }

            var overrides: [Pool.Override] = []
            for pg in 0..<pool.pgCount {
                let range = (pg * width)..<((pg + 1) * width)
                if layout.slots[range] != hashSlots[range] {
                    overrides.append(.init(pg: pg, devices: layout.slots[range].map { topology.devices[Int($0)].id }))
                }
            }
            pool.overrides = overrides
            pools.append(pool)
        }

        var next = proposed
        next.epoch = old.epoch + 1
        next.pools = pools
        return next
    }

    /// The old epoch's placement expressed in the new topology's device indices, with a
    /// hole (-1) wherever the device is gone or ineligible, or where a member now shares
    /// a failure domain with an earlier position.
    private static func carriedOver(
        _ oldPlacer: Placer, poolIndex: Int, into topology: Topology, level: Int32, width: Int
    ) -> [Int32] {
        let pgCount = oldPlacer.pools[poolIndex].pool.pgCount
        let domainOf = topology.domainOf[Int(level)]
        var slots = [Int32](repeating: -1, count: pgCount * width)
        var buffer: [Int32] = []
        var domains: [Int32] = []
        for pg in 0..<pgCount {
            oldPlacer.place(poolIndex: poolIndex, pg: pg, into: &buffer)
            domains.removeAll(keepingCapacity: true)
            for (position, oldDevice) in buffer.enumerated() {
                let id = oldPlacer.topology.devices[Int(oldDevice)].id
                guard let d = topology.deviceIndex[id], topology.devices[Int(d)].isEligible else { continue }
                let domain = domainOf[Int(d)]
                if domains.contains(domain) { continue }
                domains.append(domain)
                slots[pg * width + position] = d
            }
        }
        return slots
    }

    /// Whether some device is eligible in `new` with a weight it did not have in `old`
    /// (added, brought back in, or reweighted to a non-zero weight).
    private static func capacityChanged(from old: ClusterMap, to new: ClusterMap) -> Bool {
        var oldWeights: [DeviceID: Double] = [:]
        for d in old.devices where d.isEligible { oldWeights[d.id] = d.weight }
        for d in new.devices where d.isEligible {
            if oldWeights[d.id] != d.weight { return true }
        }
        return false
    }
}
