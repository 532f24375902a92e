import Testing
import TestSupport
@testable import Placement

/// Properties of `nextEpoch` over random topologies and changes. A failing case names its
/// seed; rerun that seed alone to replay it.
@Suite struct EpochTransitionTests {
    enum Kind: String, CaseIterable { case failDevice, failHost, removeDevice, drainHost, downDevice }

    static func pick<T>(_ items: [T], _ rng: inout SeededRandom) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }

    /// The next epoch, or nil when the change would leave too few failure domains (which
    /// must be refused with `insufficientDomains`, never co-located).
    static func nextUnlessTooSmall(_ map: ClusterMap, _ change: [MapChange]) throws -> ClusterMap? {
        do {
            return try map.nextEpoch(change)
        } catch {
            if case .insufficientDomains = error { return nil }
            throw error
        }
    }

    /// A random change that only takes capacity away.
    static func lossChange(_ kind: Kind, map: ClusterMap, rng: inout SeededRandom) -> [MapChange] {
        let host = pick(RandomCluster.hosts(of: map).filter { !RandomCluster.devices(of: map, host: $0).isEmpty }, &rng)
        let devices = RandomCluster.devices(of: map, host: host)
        switch kind {
        case .failDevice: return [.setState(pick(devices, &rng), .out)]
        case .failHost: return devices.map { .setState($0, .out) }
        case .removeDevice: return [.removeDevice(pick(devices, &rng))]
        case .drainHost: return devices.map { .reweight($0, 0) }
        case .downDevice: return [.setState(pick(devices, &rng), .down)]
        }
    }

    /// Failures, removals and drains move exactly the shards that were on the lost
    /// devices: no surviving shard changes device or position (EC positions included).
    @Test(arguments: Array(UInt64(1)...60))
    func lossMovesOnlyLostShards(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let map = try RandomCluster.make(PlacerTests.shape, pools: PlacerTests.randomPools(&rng), rng: &rng)
        let kind = Kind.allCases[Int(seed) % Kind.allCases.count]
        let change = Self.lossChange(kind, map: map, rng: &rng)
        // A small random cluster may lose its last spare domain: refused, as it should be.
        guard let next = try Self.nextUnlessTooSmall(map, change) else { return }
        #expect(next.epoch == map.epoch + 1)
        try PlacerTests.checkRules(next, seed: seed)
        let before = try map.tables(), after = try next.tables()
        for (id, old) in before {
            let new = after[id]!
            var moved = 0, lost = 0
            for slot in old.devices.indices {
                let stillThere = next.device(old.devices[slot])?.isEligible ?? false
                if stillThere {
                    #expect(new.devices[slot] == old.devices[slot], "seed \(seed) \(kind): surviving shard moved")
                } else {
                    lost += 1
                }
                if new.devices[slot] != old.devices[slot] { moved += 1 }
            }
            #expect(moved == lost, "seed \(seed) \(kind)")
            #expect(moved == (try MovementBound.minimumMoves(pool: id, from: map, to: next)), "seed \(seed) \(kind)")
        }
    }

    /// Adding capacity moves shards onto it, close to the minimum, and leaves every
    /// device within one shard of its share where the rule allows it.
    @Test(arguments: Array(UInt64(1)...40))
    func additionsAreNearMinimalAndBalanced(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let shape = RandomCluster.Shape(zones: 2, racksPerZone: 2...3, hostsPerRack: 3...4, devicesPerHost: 2...3, weights: [1, 2])
        let pools = [
            Pool(id: 1, name: "r3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 512),
            Pool(id: 2, name: "ec", rule: Rule(.erasure(k: 4, m: 2), failureDomain: "host"), pgCount: 512),
        ]
        let map = try RandomCluster.make(shape, pools: pools, rng: &rng)
        let rack = Self.pick(map.buckets.filter { $0.type == "rack" }, &rng).id
        let change: [MapChange]
        switch seed % 3 {
        case 0:  // a new host with two devices
            change = [.addBucket(Bucket(id: "new-host", type: "host", parent: rack)),
                      .addDevice(Device(id: "new-d0", parent: "new-host", weight: 1)),
                      .addDevice(Device(id: "new-d1", parent: "new-host", weight: 1))]
        case 1:  // one host's devices double their weight
            let host = Self.pick(RandomCluster.hosts(of: map), &rng)
            change = RandomCluster.devices(of: map, host: host).map { .reweight($0, map.device($0)!.weight * 2) }
        default:  // a device is added to an existing host
            let host = Self.pick(RandomCluster.hosts(of: map), &rng)
            change = [.addDevice(Device(id: "extra", parent: host, weight: 1))]
        }
        let next = try map.nextEpoch(change)
        try PlacerTests.checkRules(next, seed: seed)
        let plan = try MovementPlan(from: map, to: next)
        for pool in pools {
            let moved = plan.moves(pool: pool.id).count
            let minimum = try MovementBound.minimumMoves(pool: pool.id, from: map, to: next)
            #expect(Double(moved) <= 1.05 * Double(minimum) + 2, "seed \(seed) \(pool.name): moved \(moved), minimum \(minimum)")
            let placer = try Placer(map: next)
            let counts = try placer.table(pool: pool.id).counts()
            for (d, share) in try placer.targetShares(pool: pool.id) {
                #expect(abs(Double(counts[d] ?? 0) - share) < 1.0 + 1e-9,
                        "seed \(seed) \(pool.name): \(d) holds \(counts[d] ?? 0), share \(share)")
            }
        }
    }

    /// A long random history keeps every invariant, and each epoch's plan turns the old
    /// placement into the new one exactly.
    @Test(arguments: Array(UInt64(1)...12))
    func historiesKeepInvariants(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        var map = try RandomCluster.make(PlacerTests.shape, pools: PlacerTests.randomPools(&rng), rng: &rng)
        var added = 0
        for step in 0..<12 {
            var change: [MapChange]
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                change = Self.lossChange(Self.pick(Kind.allCases, &rng), map: map, rng: &rng)
            case 1:
                let host = Self.pick(RandomCluster.hosts(of: map), &rng)
                change = [.addDevice(Device(id: DeviceID("added-\(added)"), parent: host, weight: Self.pick([1, 2], &rng)))]
                added += 1
            case 2:
                let d = Self.pick(map.devices, &rng)
                change = [.reweight(d.id, Self.pick([0.5, 1, 3], &rng))]
            default:
                let out = map.devices.filter { $0.state != .up }
                change = out.isEmpty ? [.rebalance] : [.setState(Self.pick(out, &rng).id, .up)]
            }
            guard let next = try Self.nextUnlessTooSmall(map, change) else { continue }
            try PlacerTests.checkRules(next, seed: seed)
            let plan = try MovementPlan(from: map, to: next)
            let before = try map.tables(), after = try next.tables()
            for (id, table) in before {
                #expect(plan.applied(to: table) == after[id]!, "seed \(seed) step \(step)")
            }
            #expect(plan.moves.prefix(plan.recoveryCount).allSatisfy { $0.kind == .recovery })
            map = next
        }
    }

    /// A replacement device takes exactly the failed device's shards.
    @Test func replacementTakesTheFailedDevicesShards() throws {
        var rng = SeededRandom(seed: 7)
        let shape = RandomCluster.Shape(zones: 1, racksPerZone: 3...3, hostsPerRack: 3...3, devicesPerHost: 3...3, weights: [1])
        let pools = PlacerTests.randomPools(&rng).filter { $0.rule.failureDomain != "rack" }
        let map = try RandomCluster.make(shape, pools: pools, rng: &rng)
        let old = map.devices.sorted { $0.id < $1.id }[4]
        let next = try map.nextEpoch([.removeDevice(old.id), .addDevice(Device(id: "fresh", parent: old.parent, weight: 1))])
        let plan = try MovementPlan(from: map, to: next)
        #expect(!plan.moves.isEmpty)
        #expect(plan.moves.allSatisfy { $0.from == old.id && $0.to == "fresh" && $0.kind == .recovery })
    }

    /// Draining copies from the device (it is still up); failing rebuilds.
    @Test func planKinds() throws {
        var rng = SeededRandom(seed: 8)
        let map = try RandomCluster.make(PlacerTests.shape, pools: PlacerTests.randomPools(&rng), rng: &rng)
        let d = map.devices.sorted { $0.id < $1.id }[2].id
        let drained = try MovementPlan(from: map, to: map.nextEpoch([.reweight(d, 0)]))
        #expect(drained.moves.allSatisfy { $0.kind == .rebalance && $0.from == d })
        let failed = try MovementPlan(from: map, to: map.nextEpoch([.setState(d, .out)]))
        #expect(failed.moves.allSatisfy { $0.kind == .recovery && $0.from == d })
        #expect(drained.moves.count == failed.moves.count)
        #expect(failed.bytes { _, _ in 1000 } == UInt64(failed.moves.count) * 1000)
    }
}
