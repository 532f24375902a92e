import Placement
import TestSupport

/// Random but valid clusters: zones > racks > hosts > devices, some levels skipped.
enum RandomCluster {
    struct Shape {
        var zones: Int
        var racksPerZone: ClosedRange<Int>
        var hostsPerRack: ClosedRange<Int>
        var devicesPerHost: ClosedRange<Int>
        var weights: [Double]
    }

    static func make(_ shape: Shape, pools: [Pool], rng: inout SeededRandom) throws -> ClusterMap {
        var buckets: [Bucket] = []
        var devices: [Device] = []
        for z in 0..<shape.zones {
            let zone = "z\(z)"
            buckets.append(Bucket(id: zone, type: "zone"))
            for r in 0..<Int.random(in: shape.racksPerZone, using: &rng) {
                let rack = "\(zone)-r\(r)"
                buckets.append(Bucket(id: rack, type: "rack", parent: zone))
                for h in 0..<Int.random(in: shape.hostsPerRack, using: &rng) {
                    let host = "\(rack)-h\(h)"
                    buckets.append(Bucket(id: host, type: "host", parent: rack))
                    for d in 0..<Int.random(in: shape.devicesPerHost, using: &rng) {
                        devices.append(Device(id: DeviceID("\(host)-d\(d)"), parent: host,
                                              weight: shape.weights.randomElement(using: &rng)!))
                    }
                }
            }
        }
        // Shuffle: placement must not depend on the order the map lists things in.
        buckets.shuffle(using: &rng)
        devices.shuffle(using: &rng)
        return try ClusterMap.initial(buckets: buckets, devices: devices, pools: pools)
    }

    static func hosts(of map: ClusterMap) -> [String] {
        map.buckets.filter { $0.type == "host" }.map(\.id).sorted()
    }

    static func devices(of map: ClusterMap, host: String) -> [DeviceID] {
        map.devices.filter { $0.parent == host }.map(\.id).sorted()
    }
}

extension ClusterMap {
    /// Every pool's table, by pool id.
    func tables() throws -> [UInt32: PlacementTable] {
        let placer = try Placer(map: self)
        var result: [UInt32: PlacementTable] = [:]
        for pool in pools { result[pool.id] = try placer.table(pool: pool.id) }
        return result
    }
}
