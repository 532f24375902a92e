import Foundation
import Testing
import TestSupport
@testable import Placement

@Suite struct PlacerTests {
    static let seeds: [UInt64] = Array(1...40)

    static func randomPools(_ rng: inout SeededRandom, map: ClusterMap? = nil) -> [Pool] {
        [
            Pool(id: 1, name: "r3-host", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 128),
            Pool(id: 2, name: "ec42-host", rule: Rule(.erasure(k: 4, m: 2), failureDomain: "host"), pgCount: 128),
            Pool(id: 3, name: "r2-rack", rule: Rule(.replicated(copies: 2), failureDomain: "rack"), pgCount: 64),
            Pool(id: 4, name: "r1-device", rule: Rule(.replicated(copies: 1), failureDomain: "device"), pgCount: 64),
        ]
    }

    static let shape = RandomCluster.Shape(
        zones: 2, racksPerZone: 1...3, hostsPerRack: 3...5, devicesPerHost: 1...4, weights: [1, 1, 2, 4])

    /// Members of every PG are distinct at the rule's level, eligible, and as many as the width.
    static func checkRules(_ map: ClusterMap, seed: UInt64) throws {
        let placer = try Placer(map: map)
        var ancestor: [String: [String: String]] = [:]  // device -> level -> bucket
        let bucketByID = Dictionary(uniqueKeysWithValues: map.buckets.map { ($0.id, $0) })
        for d in map.devices {
            var levels = ["device": d.id.rawValue]
            var node: String? = d.parent
            while let id = node, let b = bucketByID[id] {
                levels[b.type] = b.id
                node = b.parent
            }
            ancestor[d.id.rawValue] = levels
        }
        for pool in map.pools {
            let table = try placer.table(pool: pool.id)
            #expect(table.devices.count == pool.pgCount * pool.rule.width)
            for pg in 0..<pool.pgCount {
                let members = table[pg]
                let domains = members.map { ancestor[$0.rawValue]![pool.rule.failureDomain]! }
                #expect(Set(domains).count == domains.count, "seed \(seed) pool \(pool.name) pg \(pg): \(members)")
                for m in members {
                    #expect(map.device(m)!.isEligible, "seed \(seed): \(m) is not eligible")
                }
            }
        }
    }

    @Test(arguments: seeds)
    func membersAreDistinctAtTheFailureDomain(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let map = try RandomCluster.make(Self.shape, pools: Self.randomPools(&rng), rng: &rng)
        try Self.checkRules(map, seed: seed)
    }

    /// Same map, listed in another order or sent through JSON: same placement.
    @Test(arguments: seeds.prefix(10))
    func placementIsDeterministic(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let map = try RandomCluster.make(Self.shape, pools: Self.randomPools(&rng), rng: &rng)
        var shuffled = map
        shuffled.buckets.shuffle(using: &rng)
        shuffled.devices.shuffle(using: &rng)
        let json = try JSONEncoder().encode(map)
        let decoded = try JSONDecoder().decode(ClusterMap.self, from: json)
        let tables = try map.tables()
        #expect(try shuffled.tables() == tables)
        #expect(try decoded.tables() == tables)
        // Computing the epoch again from the same inputs gives the same map.
        let again = try RandomCluster.make(Self.shape, pools: Self.randomPools(&rng), rng: &rng)
        #expect(try again.nextEpoch([.rebalance]) == again.nextEpoch([.rebalance]))
    }

    /// The hash alone (no balancer) is weight-proportional: straw2's defining property.
    @Test func hashIsWeightProportional() throws {
        let weights: [Double] = [1, 1, 2, 2, 3, 3, 4, 4, 0.5, 8]
        let buckets = weights.indices.map { Bucket(id: "h\($0)", type: "host") }
        let devices = weights.enumerated().map { Device(id: DeviceID("h\($0.offset)-d"), parent: "h\($0.offset)", weight: $0.element) }
        let pool = Pool(id: 9, name: "r1", rule: Rule(.replicated(copies: 1), failureDomain: "host"), pgCount: 200_000)
        let placer = try Placer(map: ClusterMap(buckets: buckets, devices: devices, pools: [pool]))
        let counts = try placer.table(pool: 9).counts()
        let total = weights.reduce(0, +)
        for (i, w) in weights.enumerated() {
            let expected = 200_000 * w / total
            let got = Double(counts[DeviceID("h\(i)-d")] ?? 0)
            // Binomial sd is at most sqrt(expected) ≈ 1.2 % of 7000; 5 % is over 4 sd.
            #expect(abs(got - expected) / expected < 0.05, "device h\(i) weight \(w): \(got) vs \(expected)")
        }
    }

    /// A device that is down keeps its shards; one that is out keeps none.
    @Test func downKeepsOutLoses() throws {
        var rng = SeededRandom(seed: 99)
        let map = try RandomCluster.make(Self.shape, pools: Self.randomPools(&rng), rng: &rng)
        let victim = map.devices.sorted { $0.id < $1.id }[3].id
        let before = try map.tables()
        let down = try map.nextEpoch([.setState(victim, .down)])
        #expect(try down.tables() == before)
        let out = try map.nextEpoch([.setState(victim, .out)])
        for table in try out.tables().values { #expect(!table.devices.contains(victim)) }
    }

    @Test func initialMapIsBalancedWithinOneShard() throws {
        var rng = SeededRandom(seed: 5)
        let shape = RandomCluster.Shape(zones: 1, racksPerZone: 4...4, hostsPerRack: 4...4, devicesPerHost: 4...4, weights: [1])
        let pool = Pool(id: 1, name: "r3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 1024)
        let map = try RandomCluster.make(shape, pools: [pool], rng: &rng)
        let counts = try Placer(map: map).table(pool: 1).counts()
        #expect(counts.count == 64)
        #expect(counts.values.allSatisfy { $0 == 48 })  // 1024 × 3 / 64
    }

    @Test func unknownPoolAndPGAreErrors() throws {
        var rng = SeededRandom(seed: 3)
        let map = try RandomCluster.make(Self.shape, pools: Self.randomPools(&rng), rng: &rng)
        let placer = try Placer(map: map)
        #expect(throws: PlacementError.unknownPool("id 77")) { _ = try placer.devices(pool: 77, pg: 0) }
        #expect(throws: PlacementError.self) { _ = try placer.devices(pool: 1, pg: 128) }
        #expect(throws: PlacementError.self) { _ = try placer.devices(pool: 1, pg: -1) }
    }
}
