import Codec
import Foundation
import Metadata
import Placement
import Storage

/// Capacity per storage class, per device and per failure domain.
public struct CapacityReport: Sendable, Codable, Hashable {
    public struct ClassCapacity: Sendable, Codable, Hashable {
        public var name: String
        /// Raw bytes per data byte: 3.0, 1.5, 1.0.
        public var overhead: Double
        /// Capacity of the devices the class can place on.
        public var rawBytes: Int64
        /// Raw bytes the class's objects take on devices (redundancy and headers included).
        public var usedBytes: Int64
        /// Data bytes written (before redundancy).
        public var dataBytes: Int64
        /// Sum of the class's volumes' sizes (thin: not reserved).
        public var provisionedBytes: Int64
        /// Data bytes the class can still take before its first device reaches the full ratio.
        public var usableBytes: Int64
        /// usedBytes ÷ rawBytes × 100.
        public var percentUsed: Double
        public var warnings: [String]

        enum CodingKeys: String, CodingKey {
            case name, overhead, warnings
            case rawBytes = "raw_bytes"
            case usedBytes = "used_bytes"
            case dataBytes = "data_bytes"
            case provisionedBytes = "provisioned_bytes"
            case usableBytes = "usable_bytes"
            case percentUsed = "percent_used"
        }
    }

    public struct DeviceCapacity: Sendable, Codable, Hashable {
        public var id: String
        public var host: String
        public var rack: String?
        public var zone: String?
        public var state: String
        public var capacityBytes: Int64
        public var usedBytes: Int64
        public var percentUsed: Double

        enum CodingKeys: String, CodingKey {
            case id, host, rack, zone, state
            case capacityBytes = "capacity_bytes"
            case usedBytes = "used_bytes"
            case percentUsed = "percent_used"
        }
    }

    public struct DomainCapacity: Sendable, Codable, Hashable {
        public var level: String
        public var name: String
        public var devices: Int
        public var capacityBytes: Int64
        public var usedBytes: Int64

        enum CodingKeys: String, CodingKey {
            case level, name, devices
            case capacityBytes = "capacity_bytes"
            case usedBytes = "used_bytes"
        }
    }

    public var classes: [ClassCapacity]
    public var devices: [DeviceCapacity]
    public var domains: [DomainCapacity]
    public var fullRatio: Double

    enum CodingKeys: String, CodingKey {
        case classes, devices, domains
        case fullRatio = "full_ratio"
    }
}

extension Engine {
    /// The report `provisionctl capacity` prints.
    public func capacity() throws(EngineError) -> CapacityReport {
        let s = state.withLock { $0 }
        let records = try EngineError.wrap { try database.devices() }
        return try capacity(s, map: s.map, placer: s.placer, records: records)
    }

    func capacity(_ s: State, map: ClusterMap, placer: Placer, records: [DeviceRecord]) throws(EngineError) -> CapacityReport {
        var deviceStates: [CapacityModel.DeviceState] = []
        var deviceReports: [CapacityReport.DeviceCapacity] = []
        var domains: [String: CapacityReport.DomainCapacity] = [:]
        for record in records {
            let id = DeviceID(record.id)
            let store = objects.device(id)
            let used = Int64(store?.usedBytes ?? 0)
            let mapped = map.device(id)
            // A device proposed by a plan (no store yet, no path) is empty and answering.
            let proposed = store == nil && record.path.isEmpty
            // A device that does not answer has no room as far as new writes are concerned.
            let usedForRoom = (proposed || (store?.isReachable ?? false)) ? used : record.capacityBytes
            if mapped?.isEligible ?? false {
                deviceStates.append(.init(id: id, capacityBytes: record.capacityBytes, usedBytes: usedForRoom))
            }
            deviceReports.append(.init(id: record.id, host: record.host, rack: record.rack, zone: record.zone,
                                       state: (store?.isReachable ?? false) ? (mapped?.state.rawValue ?? "out") : "unreachable",
                                       capacityBytes: record.capacityBytes, usedBytes: used,
                                       percentUsed: Double(used) * 100 / Double(record.capacityBytes)))
            for (level, name) in [("host", record.host), ("rack", record.rack), ("zone", record.zone)] {
                guard let name else { continue }
                var d = domains["\(level)/\(name)"] ?? .init(level: level, name: name, devices: 0, capacityBytes: 0, usedBytes: 0)
                d.devices += 1
                d.capacityBytes += record.capacityBytes
                d.usedBytes += used
                domains["\(level)/\(name)"] = d
            }
        }
        let raw = deviceStates.reduce(Int64(0)) { $0 + $1.capacityBytes }
        var classes: [CapacityReport.ClassCapacity] = []
        for entry in s.classes.values.sorted(by: { $0.poolID < $1.poolID }) {
            let c = entry.storageClass
            guard map.pool(id: entry.poolID) != nil else { continue }
            let table = try EngineError.wrap { try placer.table(pool: entry.poolID) }
            let counts = table.counts()
            let usable = CapacityModel.usableBytes(shardCounts: counts, pgCount: c.pgCount, width: c.rule.width, overhead: c.overhead,
                                                   devices: deviceStates, fullRatio: configuration.fullRatio)
            let totals = classTotals(entry)
            let (used, data, provisioned) = (totals.storedBytes, totals.liveBytes, totals.provisionedBytes)
            classes.append(.init(name: c.name, overhead: c.overhead, rawBytes: raw, usedBytes: used, dataBytes: data,
                                 provisionedBytes: provisioned, usableBytes: usable,
                                 percentUsed: raw > 0 ? Double(used) * 100 / Double(raw) : 0,
                                 warnings: try warnings(for: entry, map: map, placer: placer, devices: deviceStates, counts: counts)))
        }
        return CapacityReport(classes: classes, devices: deviceReports,
                              domains: domains.values.sorted { ($0.level, $0.name) < ($1.level, $1.name) },
                              fullRatio: configuration.fullRatio)
    }

    private func warnings(for entry: ClassEntry, map: ClusterMap, placer: Placer, devices: [CapacityModel.DeviceState],
                          counts: [DeviceID: Int]) throws(EngineError) -> [String] {
        var result: [String] = []
        let c = entry.storageClass
        for d in devices where counts[d.id, default: 0] > 0 {
            let fill = Double(d.usedBytes) / Double(d.capacityBytes)
            if fill >= configuration.nearFullRatio {
                result.append("device \(d.id) is \(Int(fill * 100))% full (near-full ratio \(Int(configuration.nearFullRatio * 100))%)")
            }
        }
        // Failure domains with capacity at the rule's level.
        let domainOf = map.failureDomains(level: c.failureDomain)
        let domains = Set(domainOf.values)
        if domains.count == c.rule.width {
            result.append("only \(domains.count) \(c.failureDomain)s for \(c.rule.width) members: after a \(c.failureDomain) failure its shards cannot be rebuilt until one is added")
        }
        // A domain the rule cannot fill (one shard per PG) wastes capacity.
        let shares = try EngineError.wrap { try placer.targetShares(pool: entry.poolID) }
        var perDomain: [String: Double] = [:]
        for (device, domain) in domainOf { perDomain[domain, default: 0] += shares[device] ?? 0 }
        let saturated = perDomain.filter { $0.value >= Double(c.pgCount) - 0.5 }.keys.sorted()
        // With exactly `width` domains every one holds a shard of every PG: said above already.
        if !saturated.isEmpty && domains.count != c.rule.width {
            result.append("\(c.failureDomain)s \(saturated.joined(separator: ", ")) hold a shard of every PG: their weight exceeds what the rule can use")
        }
        return result
    }
}
