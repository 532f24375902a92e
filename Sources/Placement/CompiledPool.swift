/// A pool checked against a topology, with its overrides as device indices.
struct CompiledPool: Sendable {
    let pool: Pool
    let seed: UInt64
    let width: Int
    let level: Int32
    /// Per PG: the offset of its override in `overrideDevices`, or -1.
    let overrideOffset: [Int32]
    let overrideDevices: [Int32]

    /// Validates the pool's rule and PG count against `topology`; overrides are checked
    /// (and kept) only when `withOverrides` is true.
    init(_ pool: Pool, topology: Topology, withOverrides: Bool = true) throws(PlacementError) {
        try Self.validate(rule: pool.rule, pool: pool)
        if pool.pgCount < 1 || pool.pgCount > Pool.maxPGCount {
            throw .invalidPool(pool: pool.name, reason: "pg_count must be in 1...\(Pool.maxPGCount), not \(pool.pgCount)")
        }
        guard let level = topology.levelIndex(pool.rule.failureDomain) else {
            throw .unknownLevel(pool: pool.name, level: pool.rule.failureDomain)
        }
        if level != Topology.deviceLevelIndex {
            for (i, d) in topology.devices.enumerated() where topology.domainOf[Int(level)][i] < 0 {
                throw .deviceOutsideDomain(device: d.id, level: pool.rule.failureDomain, pool: pool.name)
            }
        }
        let width = pool.rule.width
        var offsets = [Int32](repeating: -1, count: pool.pgCount)
        var devices: [Int32] = []
        if withOverrides {
            var previous = -1
            for o in pool.overrides {
                func reject(_ reason: String) -> PlacementError { .invalidOverride(pool: pool.name, pg: o.pg, reason: reason) }
                if o.pg < 0 || o.pg >= pool.pgCount { throw reject("pg out of range 0..<\(pool.pgCount)") }
                if o.pg <= previous { throw reject("overrides must be sorted by pg, one per pg") }
                previous = o.pg
                if o.devices.count != width { throw reject("\(o.devices.count) devices for a rule of width \(width)") }
                var domains: [Int32] = []
                offsets[o.pg] = Int32(devices.count)
                for id in o.devices {
                    guard let d = topology.deviceIndex[id] else { throw reject("unknown device \"\(id)\"") }
                    if !topology.devices[Int(d)].isEligible { throw reject("device \"\(id)\" is out or has weight 0") }
                    let domain = topology.domainOf[Int(level)][Int(d)]
                    if domains.contains(domain) { throw reject("two members share a \"\(pool.rule.failureDomain)\"") }
                    domains.append(domain)
                    devices.append(d)
                }
            }
        }
        self.pool = pool
        self.seed = StableHash.poolSeed(pool.id)
        self.width = width
        self.level = level
        self.overrideOffset = offsets
        self.overrideDevices = devices
    }

    static func validate(rule: Rule, pool: Pool) throws(PlacementError) {
        if pool.name.isEmpty { throw .emptyID(what: "pool \(pool.id)") }
        switch rule.redundancy {
        case .replicated(let copies) where copies < 1:
            throw .invalidRule(pool: pool.name, reason: "copies must be at least 1, not \(copies)")
        case .erasure(let k, let m) where k < 1 || m < 0:
            throw .invalidRule(pool: pool.name, reason: "erasure coding needs k >= 1 and m >= 0, not k=\(k) m=\(m)")
        default: break
        }
        if rule.width > Rule.maxWidth {
            throw .invalidRule(pool: pool.name, reason: "width \(rule.width) exceeds \(Rule.maxWidth)")
        }
        if rule.failureDomain.isEmpty { throw .invalidRule(pool: pool.name, reason: "failure_domain is empty") }
    }
}
