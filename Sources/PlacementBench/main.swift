// placement-bench: data movement, balance and mapping throughput of Berth's placement.
//
//   swift run -c release placement-bench          human table
//   swift run -c release placement-bench --json   one JSON document (schema: docs/placement.md)
//
// Every scenario starts from the same map: 4 racks × 4 hosts × 4 devices (weight 1), a
// replicated-3 pool and an EC 4+2 pool of 4096 PGs each, both separating members by host.
import Foundation
import Placement

let arguments = Set(CommandLine.arguments.dropFirst())
let unknown = arguments.subtracting(["--json"])
if !unknown.isEmpty {
    FileHandle.standardError.write("usage: placement-bench [--json]\n".data(using: .utf8)!)
    exit(2)
}
let jsonOutput = arguments.contains("--json")

// MARK: cluster construction

func device(_ rack: Int, _ host: Int, _ d: Int, weight: Double = 1) -> Device {
    Device(id: DeviceID("r\(rack)-h\(host)-d\(d)"), parent: "r\(rack)-h\(host)", weight: weight)
}

func hostChanges(rack: Int, host: Int, devices: Int) -> [MapChange] {
    [.addBucket(Bucket(id: "r\(rack)-h\(host)", type: "host", parent: "r\(rack)"))]
        + (0..<devices).map { .addDevice(device(rack, host, $0)) }
}

func cluster(racks: Int, hostsPerRack: Int, devicesPerHost: Int, pgCount: Int) throws -> ClusterMap {
    var buckets: [Bucket] = []
    var devices: [Device] = []
    for r in 0..<racks {
        buckets.append(Bucket(id: "r\(r)", type: "rack"))
        for h in 0..<hostsPerRack {
            buckets.append(Bucket(id: "r\(r)-h\(h)", type: "host", parent: "r\(r)"))
            for d in 0..<devicesPerHost { devices.append(device(r, h, d)) }
        }
    }
    return try ClusterMap.initial(buckets: buckets, devices: devices, pools: pools(pgCount: pgCount))
}

func pools(pgCount: Int) -> [Pool] {
    [
        Pool(id: 1, name: "replicated-3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: pgCount),
        Pool(id: 2, name: "ec-4-2", rule: Rule(.erasure(k: 4, m: 2), failureDomain: "host"), pgCount: pgCount),
    ]
}

let hostDevices = (0..<4).map { DeviceID("r2-h1-d\($0)") }
let scenarios: [(name: String, changes: [MapChange])] = [
    ("add-host", hostChanges(rack: 0, host: 4, devices: 4)),
    ("add-rack", [.addBucket(Bucket(id: "r4", type: "rack"))] + (0..<4).flatMap { hostChanges(rack: 4, host: $0, devices: 4) }),
    ("fail-device", [.setState("r1-h2-d3", .out)]),
    ("fail-host", hostDevices.map { .setState($0, .out) }),
    ("replace-device", [.removeDevice("r1-h2-d3"), .addDevice(Device(id: "r1-h2-d3-new", parent: "r1-h2", weight: 1))]),
    ("reweight-host", hostDevices.map { .reweight($0, 2) }),
    ("drain-host", hostDevices.map { .reweight($0, 0) }),
]

struct ScenarioResult: Encodable {
    let scenario: String
    let rule: String
    let moved: Int
    let minimum: Int
    let ratio: Double
    let balanceBeforeMax: Double
    let balanceBeforeMin: Double
    let balanceAfterMax: Double
    let balanceAfterMin: Double

    enum CodingKeys: String, CodingKey {
        case scenario, rule, moved, minimum, ratio
        case balanceBeforeMax = "balance_before_max"
        case balanceBeforeMin = "balance_before_min"
        case balanceAfterMax = "balance_after_max"
        case balanceAfterMin = "balance_after_min"
    }
}

func measure(_ name: String, from start: ClusterMap, to next: ClusterMap) throws -> [ScenarioResult] {
    let plan = try MovementPlan(from: start, to: next)
    let before = try Placer(map: start)
    let after = try Placer(map: next)
    return try start.pools.map { pool in
        let moved = plan.moves(pool: pool.id).count
        let minimum = try MovementBound.minimumMoves(pool: pool.id, from: start, to: next)
        let b = try before.balance(pool: pool.id)
        let a = try after.balance(pool: pool.id)
        return ScenarioResult(
            scenario: name, rule: pool.name, moved: moved, minimum: minimum,
            ratio: minimum == 0 ? (moved == 0 ? 1 : .infinity) : Double(moved) / Double(minimum),
            balanceBeforeMax: b.max, balanceBeforeMin: b.min, balanceAfterMax: a.max, balanceAfterMin: a.min)
    }
}

// MARK: throughput

struct Throughput {
    let mappingsPerSecond: Double
    let hashOnlyPerSecond: Double
    let deviceCount: Int
    let overriddenFraction: Double
}

/// Single-threaded PG → devices mappings per second over every PG of both pools, repeated
/// until at least `minimumMappings` were made; the median of 5 runs.
func throughput(_ map: ClusterMap, minimumMappings: Int) throws -> Throughput {
    let placer = try Placer(map: map)
    let noOverrides = try Placer(map: ClusterMap(
        epoch: map.epoch, buckets: map.buckets, devices: map.devices,
        pools: map.pools.map { var p = $0; p.overrides = []; return p }))
    func run(_ p: Placer) -> Double {
        var out: [Int32] = []
        out.reserveCapacity(8)
        var checksum: Int64 = 0
        var samples: [Double] = []
        for _ in 0..<5 {
            var count = 0
            let clock = ContinuousClock()
            let start = clock.now
            while count < minimumMappings {
                for poolIndex in map.pools.indices {
                    for pg in 0..<map.pools[poolIndex].pgCount {
                        p.place(poolIndex: poolIndex, pg: pg, into: &out)
                        checksum &+= Int64(out[0])
                    }
                    count += map.pools[poolIndex].pgCount
                }
            }
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            samples.append(Double(count) / seconds)
        }
        if checksum == 42 { print("") }  // keeps the loop observable
        return samples.sorted()[samples.count / 2]
    }
    let overridden = map.pools.reduce(0) { $0 + $1.overrides.count }
    let total = map.pools.reduce(0) { $0 + $1.pgCount }
    return Throughput(
        mappingsPerSecond: run(placer), hashOnlyPerSecond: run(noOverrides),
        deviceCount: map.devices.count, overriddenFraction: Double(overridden) / Double(total))
}

func peakMemoryMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024  // Linux reports KiB
}

// MARK: run

let start = try cluster(racks: 4, hostsPerRack: 4, devicesPerHost: 4, pgCount: 4096)
var results: [ScenarioResult] = []
for scenario in scenarios {
    let next = try start.nextEpoch(scenario.changes)
    results += try measure(scenario.name, from: start, to: next)
}
// Not in the JSON: the replacement arriving after recovery already re-homed the shards.
let recovered = try start.nextEpoch([.setState("r1-h2-d3", .out)])
let replacedLate = try recovered.nextEpoch([
    .removeDevice("r1-h2-d3"), .addDevice(Device(id: "r1-h2-d3-new", parent: "r1-h2", weight: 1)),
])
let lateResults = try measure("replace-after-recovery", from: recovered, to: replacedLate)

let small = try throughput(start, minimumMappings: 2_000_000)
let bigMap = try cluster(racks: 25, hostsPerRack: 20, devicesPerHost: 20, pgCount: 4096)
let big = try throughput(bigMap, minimumMappings: 200_000)
let peak = peakMemoryMiB()

if jsonOutput {
    struct Document: Encodable {
        let scenarios: [ScenarioResult]
        let throughput: [String: Double]
        let peakMemoryMiB: Double
        enum CodingKeys: String, CodingKey {
            case scenarios, throughput
            case peakMemoryMiB = "peak_memory_mib"
        }
    }
    let document = Document(
        scenarios: results,
        throughput: [
            // The hash path: every PG computed, none answered from an override. The
            // conservative figure, independent of how many overrides a map carries.
            "mappings_per_second_64": small.hashOnlyPerSecond.rounded(),
            "mappings_per_second_10000": big.hashOnlyPerSecond.rounded(),
        ],
        peakMemoryMiB: (peak * 10).rounded() / 10)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(data: try encoder.encode(document), encoding: .utf8)!)
} else {
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    func f(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }
    print("Placement: 4 racks × 4 hosts × 4 devices (weight 1), 4096 PGs per pool, members on distinct hosts")
    print(pad("scenario", 24) + pad("rule", 14) + pad("moved", 8) + pad("minimum", 9) + pad("ratio", 7)
        + pad("before max/min", 16) + "after max/min")
    for r in results + lateResults {
        print(pad(r.scenario, 24) + pad(r.rule, 14) + pad("\(r.moved)", 8) + pad("\(r.minimum)", 9) + pad(f(r.ratio, 3), 7)
            + pad(f(r.balanceBeforeMax) + "/" + f(r.balanceBeforeMin), 16) + f(r.balanceAfterMax) + "/" + f(r.balanceAfterMin))
    }
    // The same starting map placed by the hash alone, without the balancer's overrides.
    let hashOnly = try Placer(map: ClusterMap(
        epoch: start.epoch, buckets: start.buckets, devices: start.devices,
        pools: start.pools.map { var p = $0; p.overrides = []; return p }))
    for pool in start.pools {
        let b = try hashOnly.balance(pool: pool.id)
        print("without the balancer (straw2 alone), \(pool.name): max/min \(f(b.max))/\(f(b.min))")
    }
    print("")
    for t in [small, big] {
        print("throughput, \(t.deviceCount) devices: \(Int(t.hashOnlyPerSecond)) mappings/s on one core by hash alone; "
            + "\(Int(t.mappingsPerSecond))/s on the balanced map (\(f(t.overriddenFraction * 100, 1)) % of PGs overridden)")
    }
    print("peak memory: \(f(peak, 1)) MiB")
}
