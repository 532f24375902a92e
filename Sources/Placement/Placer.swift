/// The placement function of one map: PG → ordered list of devices.
///
/// `place` is pure and deterministic: the same map gives the same answer on every run,
/// machine and release (see `StableHash`). A PG with an override maps to it; every other
/// PG maps by straw2 descent through the failure-domain tree, one independent draw per
/// position, retried on a collision at the rule's failure-domain level (so a position
/// keeps its device when another position's device changes, as EC needs).
public struct Placer: Sendable {
    public let map: ClusterMap
    let topology: Topology
    let pools: [CompiledPool]

    /// Rounds of independent draws per position before falling back to an exhaustive
    /// choice among the failure domains not yet used.
    static let maxRounds = 50

    /// Validates `map` and prepares it for placement. Throws if the map is malformed or a
    /// pool's rule cannot be satisfied (fewer failure domains with capacity than its width).
    public init(map: ClusterMap) throws(PlacementError) {
        let topology = try Topology(map: map)
        try self.init(map: map, topology: topology, withOverrides: true)
    }

    init(map: ClusterMap, topology: Topology, withOverrides: Bool) throws(PlacementError) {
        var pools: [CompiledPool] = []
        var ids = Set<UInt32>(), names = Set<String>()
        for pool in map.pools {
            if !ids.insert(pool.id).inserted { throw .duplicatePool("id \(pool.id)") }
            if !names.insert(pool.name).inserted { throw .duplicatePool("\"\(pool.name)\"") }
            let compiled = try CompiledPool(pool, topology: topology, withOverrides: withOverrides)
            let available = topology.eligibleDomainCount(level: compiled.level)
            if available < compiled.width {
                throw .insufficientDomains(
                    pool: pool.name, level: pool.rule.failureDomain, needed: compiled.width, available: available)
            }
            pools.append(compiled)
        }
        self.map = map
        self.topology = topology
        self.pools = pools
    }

    /// The devices of `pg` in pool `poolID`, in position order.
    public func devices(pool poolID: UInt32, pg: Int) throws(PlacementError) -> [DeviceID] {
        guard let index = poolIndex(id: poolID) else { throw .unknownPool("id \(poolID)") }
        guard pg >= 0 && pg < pools[index].pool.pgCount else {
            throw .invalidPool(pool: pools[index].pool.name, reason: "pg \(pg) out of range 0..<\(pools[index].pool.pgCount)")
        }
        var out: [Int32] = []
        place(poolIndex: index, pg: pg, into: &out)
        return out.map { topology.devices[Int($0)].id }
    }

    /// The whole pool's placement.
    public func table(pool poolID: UInt32) throws(PlacementError) -> PlacementTable {
        guard let index = poolIndex(id: poolID) else { throw .unknownPool("id \(poolID)") }
        let compiled = pools[index]
        var flat: [DeviceID] = []
        flat.reserveCapacity(compiled.pool.pgCount * compiled.width)
        var out: [Int32] = []
        for pg in 0..<compiled.pool.pgCount {
            place(poolIndex: index, pg: pg, into: &out)
            for d in out { flat.append(topology.devices[Int(d)].id) }
        }
        return PlacementTable(poolID: poolID, width: compiled.width, devices: flat)
    }

    /// Index of a pool in `map.pools`, for the allocation-free `place(poolIndex:pg:into:)`.
    public func poolIndex(id: UInt32) -> Int? { pools.firstIndex { $0.pool.id == id } }

    /// Number of device indices (`deviceID(at:)` accepts `0..<deviceCount`).
    public var deviceCount: Int { topology.deviceCount }

    /// The device at an index that `place(poolIndex:pg:into:)` returned.
    public func deviceID(at index: Int32) -> DeviceID { topology.devices[Int(index)].id }

    /// The hot path: fills `out` with device indices for `pg`, reusing its storage.
    /// `poolIndex` and `pg` must be in range (a broken invariant otherwise).
    @inline(__always)
    public func place(poolIndex: Int, pg: Int, into out: inout [Int32]) {
        let pool = pools[poolIndex]
        precondition(pg >= 0 && pg < pool.pool.pgCount, "pg out of range")
        let offset = pool.overrideOffset[pg]
        if offset >= 0 {
            out.removeAll(keepingCapacity: true)
            for i in 0..<pool.width { out.append(pool.overrideDevices[Int(offset) + i]) }
            return
        }
        hashPlace(pool, pg: pg, into: &out)
    }

    /// Placement by the hash alone, ignoring overrides.
    func hashPlace(_ pool: CompiledPool, pg: Int, into out: inout [Int32]) {
        out.removeAll(keepingCapacity: true)
        let level = pool.level
        let root = topology.root
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: pool.width) { used in
            for position in 0..<pool.width {
                var domain: Int32 = -1
                var key: UInt64 = 0
                for round in 0..<Self.maxRounds {
                    key = StableHash.drawKey(seed: pool.seed, pg: UInt32(pg), position: UInt8(position), round: UInt8(round))
                    let candidate = topology.descend(from: root, to: level, key: key)
                    if candidate >= 0 && !Self.contains(used, count: position, candidate) {
                        domain = candidate
                        break
                    }
                }
                if domain < 0 {
                    key = StableHash.drawKey(
                        seed: pool.seed, pg: UInt32(pg), position: UInt8(position), round: UInt8(Self.maxRounds))
                    domain = chooseUnused(level: level, used: used, count: position, key: key)
                }
                precondition(domain >= 0, "no failure domain left although init checked there are enough")
                used[position] = domain
                out.append(topology.descend(from: domain, to: Topology.deviceLevelIndex, key: key))
            }
        }
    }

    @inline(__always)
    private static func contains(_ buffer: UnsafeMutableBufferPointer<Int32>, count: Int, _ value: Int32) -> Bool {
        for i in 0..<count where buffer[i] == value { return true }
        return false
    }

    /// straw2 over every positive-weight node of `level` not in `used`.
    private func chooseUnused(level: Int32, used: UnsafeMutableBufferPointer<Int32>, count: Int, key: UInt64) -> Int32 {
        let nodes = topology.nodesAt[Int(level)]
        var weight: UInt64 = 0
        var uniform = true
        for n in nodes where topology.nodeWeight[Int(n)] > 0 && !Self.contains(used, count: count, n) {
            if weight == 0 { weight = topology.nodeWeight[Int(n)] } else if weight != topology.nodeWeight[Int(n)] { uniform = false }
        }
        var best: Int32 = -1
        var bestStraw = Int64.min
        for n in nodes where topology.nodeWeight[Int(n)] > 0 && !Self.contains(used, count: count, n) {
            let hash = StableHash.straw(key: key, child: topology.nodeHash[Int(n)])
            // Uniform: compare the raw hash (order-preserving); otherwise weighted straw2.
            let straw = uniform ? Int64(bitPattern: hash >> 1) : Topology.straw2(hash, weight: topology.nodeWeight[Int(n)])
            if best < 0 || straw > bestStraw {
                best = n
                bestStraw = straw
            }
        }
        return best
    }
}

/// A pool's full placement: `devices[pg * width + position]`.
public struct PlacementTable: Sendable, Hashable {
    public let poolID: UInt32
    public let width: Int
    public var devices: [DeviceID]

    public init(poolID: UInt32, width: Int, devices: [DeviceID]) {
        precondition(width > 0 && devices.count % width == 0, "table size must be a multiple of the width")
        self.poolID = poolID
        self.width = width
        self.devices = devices
    }

    public var pgCount: Int { devices.count / width }

    public subscript(pg: Int) -> ArraySlice<DeviceID> {
        devices[(pg * width)..<((pg + 1) * width)]
    }

    /// Shards per device.
    public func counts() -> [DeviceID: Int] {
        var result: [DeviceID: Int] = [:]
        for d in devices { result[d, default: 0] += 1 }
        return result
    }
}
