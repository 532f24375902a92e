import Foundation
import Testing
import Placement

/// A fixed map whose placement is written down here. If the placement function, the hash,
/// the balancer or the tie-breaking ever changes, this fails: deployed clusters would move.
@Suite struct GoldenPlacementTests {
    static func map() throws -> ClusterMap {
        var buckets: [Bucket] = [], devices: [Device] = []
        for r in 0..<2 {
            buckets.append(Bucket(id: "r\(r)", type: "rack"))
            for h in 0..<3 {
                buckets.append(Bucket(id: "r\(r)-h\(h)", type: "host", parent: "r\(r)"))
                for d in 0..<2 { devices.append(Device(id: DeviceID("r\(r)-h\(h)-d\(d)"), parent: "r\(r)-h\(h)", weight: d == 0 ? 1 : 2)) }
            }
        }
        return try ClusterMap.initial(buckets: buckets, devices: devices, pools: [
            Pool(id: 1, name: "r3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 32),
            Pool(id: 2, name: "ec", rule: Rule(.erasure(k: 4, m: 2), failureDomain: "host"), pgCount: 32),
        ])
    }

    @Test func placementOfTheGoldenMap() throws {
        let placer = try Placer(map: Self.map())
        var lines: [String] = []
        for pool: UInt32 in [1, 2] {
            for pg in [0, 1, 2, 31] {
                lines.append("\(pool)/\(pg): " + (try placer.devices(pool: pool, pg: pg)).map(\.rawValue).joined(separator: " "))
            }
        }
        #expect(lines == GOLDEN)
    }

    @Test func goldenMapIsBalanced() throws {
        let placer = try Placer(map: Self.map())
        for pool: UInt32 in [1, 2] {
            let counts = try placer.table(pool: pool).counts()
            for (d, share) in try placer.targetShares(pool: pool) {
                #expect(abs(Double(counts[d] ?? 0) - share) < 1 + 1e-9)
            }
        }
    }

    /// The JSON form is documented in docs/placement.md: snake_case keys, rules tagged by `type`.
    @Test func jsonForm() throws {
        let map = ClusterMap(
            epoch: 3, buckets: [Bucket(id: "h0", type: "host")],
            devices: [Device(id: "h0-d0", parent: "h0", weight: 1.5, state: .down)],
            pools: [Pool(id: 1, name: "ec", rule: Rule(.erasure(k: 4, m: 2), failureDomain: "host"), pgCount: 8,
                         overrides: [.init(pg: 2, devices: ["h0-d0"])])])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(data: try encoder.encode(map), encoding: .utf8)!
        #expect(json == #"{"buckets":[{"id":"h0","type":"host"}],"devices":[{"id":"h0-d0","parent":"h0","state":"down","weight":1.5}],"epoch":3,"pools":[{"id":1,"name":"ec","overrides":[{"devices":["h0-d0"],"pg":2}],"pg_count":8,"rule":{"failure_domain":"host","k":4,"m":2,"type":"erasure"}}]}"#)
        #expect(try JSONDecoder().decode(ClusterMap.self, from: Data(json.utf8)) == map)
        let replicated = #"{"type":"replicated","copies":3,"failure_domain":"rack"}"#
        #expect(try JSONDecoder().decode(Rule.self, from: Data(replicated.utf8)) == Rule(.replicated(copies: 3), failureDomain: "rack"))
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Rule.self, from: Data(#"{"type":"mirror","failure_domain":"host"}"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(DeviceState.self, from: Data(#""sideways""#.utf8))
        }
    }

    /// A domain that would deserve more than one shard per PG is capped at one per PG,
    /// and the rest is shared by the others.
    @Test func targetSharesAreCappedAtOneShardPerPG() throws {
        let buckets = (0..<4).map { Bucket(id: "h\($0)", type: "host") }
        let devices = (0..<4).map { Device(id: DeviceID("h\($0)-d"), parent: "h\($0)", weight: $0 == 0 ? 10 : 1) }
        let pool = Pool(id: 1, name: "r3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 100)
        let map = try ClusterMap.initial(buckets: buckets, devices: devices, pools: [pool])
        let placer = try Placer(map: map)
        let shares = try placer.targetShares(pool: 1)
        #expect(shares["h0-d"] == 100)
        #expect(shares["h1-d"] == (300 - 100) / 3.0)
        let counts = try placer.table(pool: 1).counts()
        #expect(counts["h0-d"] == 100)  // every PG has a member there
        #expect(try placer.balance(pool: 1).max < 1.02)
    }
}

private let GOLDEN = [
    "1/0: r0-h0-d0 r1-h1-d0 r0-h1-d1",
    "1/1: r0-h0-d0 r1-h0-d1 r1-h2-d1",
    "1/2: r0-h0-d1 r1-h0-d1 r1-h2-d1",
    "1/31: r1-h0-d0 r1-h1-d1 r0-h0-d1",
    "2/0: r0-h0-d1 r1-h0-d0 r1-h2-d1 r1-h1-d0 r0-h1-d0 r0-h2-d1",
    "2/1: r0-h0-d1 r1-h0-d0 r0-h2-d1 r0-h1-d0 r1-h1-d1 r1-h2-d1",
    "2/2: r0-h0-d1 r1-h0-d1 r1-h2-d0 r0-h1-d1 r0-h2-d0 r1-h1-d1",
    "2/31: r0-h1-d0 r0-h0-d0 r0-h2-d1 r1-h1-d0 r1-h2-d1 r1-h0-d0",
]
