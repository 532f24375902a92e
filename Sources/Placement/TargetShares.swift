/// How many shards each device of a pool should hold when perfectly balanced.
///
/// Weight-proportional, with one correction the rule forces: a failure domain holds at
/// most one shard of each PG, so it can never take more than `pgCount` shards of a pool.
/// A domain whose weight would ask for more is capped there and the excess is shared
/// among the others by weight (water-filling, repeated until no domain is over its cap).
/// Within a domain, devices split its share by weight.
enum TargetShares {
    static func compute(topology: Topology, level: Int32, width: Int, pgCount: Int) -> [Double] {
        let total = Double(pgCount * width)
        let cap = Double(pgCount)
        let domains = topology.nodesAt[Int(level)].filter { topology.nodeWeight[Int($0)] > 0 }
        var domainShare = [Int32: Double]()
        var open = domains
        var remaining = total
        // Each pass caps at least one domain or finishes: at most domains.count passes.
        while !open.isEmpty {
            let weight = open.reduce(0.0) { $0 + Double(topology.nodeWeight[Int($1)]) }
            let over = open.filter { remaining * Double(topology.nodeWeight[Int($0)]) / weight > cap }
            if over.isEmpty {
                for d in open { domainShare[d] = remaining * Double(topology.nodeWeight[Int(d)]) / weight }
                break
            }
            for d in over { domainShare[d] = cap }
            remaining -= cap * Double(over.count)
            let capped = Set(over)
            open.removeAll { capped.contains($0) }
        }
        var shares = [Double](repeating: 0, count: topology.deviceCount)
        let domainOf = topology.domainOf[Int(level)]
        for i in 0..<topology.deviceCount where topology.devices[i].isEligible {
            let domain = domainOf[i]
            let domainWeight = Double(topology.nodeWeight[Int(domain)])
            shares[i] = (domainShare[domain] ?? 0) * Double(topology.nodeWeight[i]) / domainWeight
        }
        return shares
    }
}

extension Placer {
    /// The balanced shard count of every eligible device for a pool (see `TargetShares`).
    public func targetShares(pool poolID: UInt32) throws(PlacementError) -> [DeviceID: Double] {
        guard let index = poolIndex(id: poolID) else { throw .unknownPool("id \(poolID)") }
        let compiled = pools[index]
        let shares = TargetShares.compute(
            topology: topology, level: compiled.level, width: compiled.width, pgCount: compiled.pool.pgCount)
        var result: [DeviceID: Double] = [:]
        for (i, d) in topology.devices.enumerated() where d.isEligible { result[d.id] = shares[i] }
        return result
    }

    /// How evenly the pool's shards sit on its eligible devices.
    public func balance(pool poolID: UInt32) throws(PlacementError) -> Balance {
        let counts = try table(pool: poolID).counts()
        let shares = try targetShares(pool: poolID)
        var hi = 0.0, lo = Double.infinity
        for (device, share) in shares where share > 0 {
            let ratio = Double(counts[device] ?? 0) / share
            hi = Swift.max(hi, ratio)
            lo = Swift.min(lo, ratio)
        }
        return Balance(max: hi, min: lo == .infinity ? 0 : lo)
    }
}

/// How evenly a pool's shards sit on devices: each eligible device's shard count divided
/// by its target share (`Placer.targetShares`). 1.0 is perfect.
public struct Balance: Sendable, Hashable {
    public let max: Double
    public let min: Double
}
