import Testing
@testable import Placement

@Suite struct MapValidationTests {
    let r3 = Pool(id: 1, name: "r3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 16)

    func hosts(_ n: Int, devices: Int = 1) -> ([Bucket], [Device]) {
        var buckets: [Bucket] = [], list: [Device] = []
        for h in 0..<n {
            buckets.append(Bucket(id: "h\(h)", type: "host"))
            for d in 0..<devices { list.append(Device(id: DeviceID("h\(h)-d\(d)"), parent: "h\(h)", weight: 1)) }
        }
        return (buckets, list)
    }

    func rejects(_ expected: PlacementError, _ map: ClusterMap) {
        #expect(throws: expected) { _ = try Placer(map: map) }
    }

    @Test func validMapPlaces() throws {
        let (b, d) = hosts(3)
        let placer = try Placer(map: ClusterMap(buckets: b, devices: d, pools: [r3]))
        #expect(try placer.devices(pool: 1, pg: 0).count == 3)
    }

    @Test func duplicateIDs() {
        var (b, d) = hosts(3)
        d.append(Device(id: "h0-d0", parent: "h1", weight: 1))
        rejects(.duplicateID("h0-d0"), ClusterMap(buckets: b, devices: d, pools: [r3]))
        (b, d) = hosts(3)
        b.append(Bucket(id: "h1", type: "rack"))
        rejects(.duplicateID("h1"), ClusterMap(buckets: b, devices: d, pools: [r3]))
        (b, d) = hosts(3)
        d.append(Device(id: "h2", parent: "h1", weight: 1))  // device named like a bucket
        rejects(.duplicateID("h2"), ClusterMap(buckets: b, devices: d, pools: [r3]))
    }

    @Test(arguments: [-1.0, .nan, .infinity, -.infinity, 65536])
    func badWeights(weight: Double) {
        var (b, d) = hosts(3)
        d[1].weight = weight
        let map = ClusterMap(buckets: b, devices: d, pools: [r3])
        #expect(throws: PlacementError.self) { _ = try Placer(map: map) }
        do { _ = try Placer(map: map) } catch {
            guard case .invalidWeight(let device, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(device == "h1-d0")
        }
    }

    @Test func unknownParents() {
        var (b, d) = hosts(3)
        d.append(Device(id: "x", parent: "nowhere", weight: 1))
        rejects(.unknownParent(child: "x", parent: "nowhere"), ClusterMap(buckets: b, devices: d, pools: [r3]))
        (b, d) = hosts(3)
        b.append(Bucket(id: "rack", type: "rack", parent: "zone-that-is-not"))
        rejects(.unknownParent(child: "rack", parent: "zone-that-is-not"), ClusterMap(buckets: b, devices: d, pools: [r3]))
    }

    @Test func cycles() {
        var (b, d) = hosts(3)
        b[0].parent = "ra"
        b += [Bucket(id: "ra", type: "rack", parent: "za"), Bucket(id: "za", type: "zone", parent: "ra")]
        let map = ClusterMap(buckets: b, devices: d, pools: [r3])
        #expect(throws: PlacementError.self) { _ = try Placer(map: map) }
        do { _ = try Placer(map: map) } catch {
            guard case .cycle(let through) = error else { Issue.record("wrong error \(error)"); return }
            #expect(["ra", "za"].contains(through))
        }
        (b, d) = hosts(3)
        b.append(Bucket(id: "self", type: "rack", parent: "self"))
        rejects(.cycle(through: "self"), ClusterMap(buckets: b, devices: d, pools: [r3]))
    }

    @Test func nestedLevel() {
        var (b, d) = hosts(3)
        b.append(Bucket(id: "inner", type: "host", parent: "h0"))
        d.append(Device(id: "inner-d", parent: "inner", weight: 1))
        rejects(.nestedLevel(bucket: "inner", level: "host"), ClusterMap(buckets: b, devices: d, pools: [r3]))
    }

    @Test func emptyIDs() {
        var (b, d) = hosts(3)
        d.append(Device(id: "", parent: "h0", weight: 1))
        rejects(.emptyID(what: "a device"), ClusterMap(buckets: b, devices: d, pools: [r3]))
        (b, d) = hosts(3)
        b.append(Bucket(id: "", type: "rack"))
        rejects(.emptyID(what: "a bucket"), ClusterMap(buckets: b, devices: d, pools: [r3]))
    }

    @Test func badRules() {
        let (b, d) = hosts(8)
        for (rule, fragment) in [
            (Rule(.replicated(copies: 0), failureDomain: "host"), "copies"),
            (Rule(.erasure(k: 0, m: 2), failureDomain: "host"), "k >= 1"),
            (Rule(.erasure(k: 4, m: -1), failureDomain: "host"), "m >= 0"),
            (Rule(.replicated(copies: 33), failureDomain: "host"), "width 33"),
        ] {
            let pool = Pool(id: 1, name: "p", rule: rule, pgCount: 8)
            do {
                _ = try Placer(map: ClusterMap(buckets: b, devices: d, pools: [pool]))
                Issue.record("accepted \(rule)")
            } catch {
                #expect("\(error)".contains(fragment), "\(error)")
            }
        }
        rejects(.unknownLevel(pool: "p", level: "rack"),
                ClusterMap(buckets: b, devices: d, pools: [Pool(id: 1, name: "p", rule: Rule(.replicated(copies: 2), failureDomain: "rack"), pgCount: 8)]))
        rejects(.invalidPool(pool: "p", reason: "pg_count must be in 1...\(Pool.maxPGCount), not 0"),
                ClusterMap(buckets: b, devices: d, pools: [Pool(id: 1, name: "p", rule: r3.rule, pgCount: 0)]))
    }

    @Test func duplicatePools() {
        let (b, d) = hosts(3)
        var other = r3
        other.name = "other"
        rejects(.duplicatePool("id 1"), ClusterMap(buckets: b, devices: d, pools: [r3, other]))
        other = r3
        other.id = 2
        rejects(.duplicatePool("\"r3\""), ClusterMap(buckets: b, devices: d, pools: [r3, other]))
    }

    @Test func deviceWithoutFailureDomain() {
        var (b, d) = hosts(3)
        b.append(Bucket(id: "rack", type: "rack"))
        d.append(Device(id: "loose", parent: "rack", weight: 1))  // in a rack but no host
        rejects(.deviceOutsideDomain(device: "loose", level: "host", pool: "r3"), ClusterMap(buckets: b, devices: d, pools: [r3]))
    }

    /// The rule cannot be met: say so instead of co-locating members.
    @Test func insufficientDomains() throws {
        let (b, d) = hosts(5, devices: 3)
        let ec = Pool(id: 2, name: "ec", rule: Rule(.erasure(k: 4, m: 2), failureDomain: "host"), pgCount: 8)
        rejects(.insufficientDomains(pool: "ec", level: "host", needed: 6, available: 5),
                ClusterMap(buckets: b, devices: d, pools: [ec]))
        #expect(throws: PlacementError.insufficientDomains(pool: "ec", level: "host", needed: 6, available: 5)) {
            _ = try ClusterMap.initial(buckets: b, devices: d, pools: [ec])
        }
        // Six hosts, but one is out: still five with capacity.
        let (b6, d6) = hosts(6)
        let map = try ClusterMap.initial(buckets: b6, devices: d6, pools: [ec])
        #expect(throws: PlacementError.insufficientDomains(pool: "ec", level: "host", needed: 6, available: 5)) {
            _ = try map.nextEpoch([.setState("h5-d0", .out)])
        }
        // Down is not out: the PG waits for the device.
        _ = try map.nextEpoch([.setState("h5-d0", .down)])
    }

    @Test func badOverrides() throws {
        let (b, d) = hosts(4)
        func map(_ o: Pool.Override) -> ClusterMap {
            var pool = r3
            pool.overrides = [o]
            return ClusterMap(buckets: b, devices: d, pools: [pool])
        }
        for (override, fragment) in [
            (Pool.Override(pg: 16, devices: ["h0-d0", "h1-d0", "h2-d0"]), "out of range"),
            (Pool.Override(pg: 1, devices: ["h0-d0", "h1-d0"]), "2 devices"),
            (Pool.Override(pg: 1, devices: ["h0-d0", "h1-d0", "nope"]), "unknown device"),
            (Pool.Override(pg: 1, devices: ["h0-d0", "h1-d0", "h0-d0"]), "share"),
        ] {
            #expect(throws: PlacementError.self) { _ = try Placer(map: map(override)) }
            do { _ = try Placer(map: map(override)) } catch { #expect("\(error)".contains(fragment), "\(error)") }
        }
    }

    @Test func changesNamingUnknownThingsAreRejected() throws {
        let (b, d) = hosts(3)
        let map = try ClusterMap.initial(buckets: b, devices: d, pools: [r3])
        #expect(throws: PlacementError.unknownDevice("zz")) { _ = try map.nextEpoch([.setState("zz", .out)]) }
        #expect(throws: PlacementError.unknownBucket("zz")) { _ = try map.nextEpoch([.removeBucket("zz")]) }
        #expect(throws: PlacementError.deviceNotEmptyOfBuckets("h0")) { _ = try map.nextEpoch([.removeBucket("h0")]) }
        #expect(throws: PlacementError.duplicateID("h0-d0")) {
            _ = try map.nextEpoch([.addDevice(Device(id: "h0-d0", parent: "h1", weight: 1))])
        }
        #expect(throws: PlacementError.invalidWeight(device: "h0-d0", weight: -2)) { _ = try map.nextEpoch([.reweight("h0-d0", -2)]) }
        var changed = r3
        changed.rule = Rule(.replicated(copies: 2), failureDomain: "host")
        let edited = ClusterMap(epoch: map.epoch, buckets: map.buckets, devices: map.devices, pools: [changed])
        #expect(throws: PlacementError.self) { _ = try ClusterMap.transition(from: map, to: edited, forceBalance: false) }
    }

    @Test func errorsReadWell() {
        #expect("\(PlacementError.insufficientDomains(pool: "ec", level: "host", needed: 6, available: 5))"
            == "pool \"ec\" needs 6 distinct \"host\" failure domains with capacity, but the map has 5; add hosts or use a narrower rule")
    }
}
