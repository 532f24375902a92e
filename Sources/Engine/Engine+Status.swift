import Foundation
import Metadata
import Placement
import Synchronization

/// Cluster health: devices by state, PGs by state, movement progress.
public struct ClusterStatus: Sendable, Codable, Hashable {
    public struct Movement: Sendable, Codable, Hashable {
        public var epoch: Int64
        public var totalPositions: Int64
        public var donePositions: Int64
        public var remainingPositions: Int
        public var totalBytes: Int64
        public var doneBytes: Int64
        public var bytesPerSecond: Double
        /// nil when nothing is moving or no rate is known yet.
        public var etaSeconds: Double?
        public var finished: Bool

        enum CodingKeys: String, CodingKey {
            case epoch, finished
            case totalPositions = "total_positions"
            case donePositions = "done_positions"
            case remainingPositions = "remaining_positions"
            case totalBytes = "total_bytes"
            case doneBytes = "done_bytes"
            case bytesPerSecond = "bytes_per_second"
            case etaSeconds = "eta_seconds"
        }
    }

    public var epoch: UInt64
    public var devicesUp: Int
    public var devicesDown: Int
    public var devicesOut: Int
    public var devicesUnreachable: Int
    public var pgsClean: Int
    public var pgsMoving: Int
    public var pgsDegraded: Int
    public var movement: Movement?
    /// Devices in maintenance (down, never taken out; docs/cluster.md).
    public var maintenance: [MaintenanceWindow] = []
    /// PGs holding degraded writes whose missing shards are still to be written (the delta
    /// a returning device resyncs), and the shard bytes resynced so since the daemon started.
    public var pgsRecovering: Int = 0
    public var recoveredBytes: Int64 = 0

    enum CodingKeys: String, CodingKey {
        case epoch, movement, maintenance
        case pgsRecovering = "pgs_recovering"
        case recoveredBytes = "recovered_bytes"
        case devicesUp = "devices_up"
        case devicesDown = "devices_down"
        case devicesOut = "devices_out"
        case devicesUnreachable = "devices_unreachable"
        case pgsClean = "pgs_clean"
        case pgsMoving = "pgs_moving"
        case pgsDegraded = "pgs_degraded"
    }
}

extension Engine {
    public func status() throws(EngineError) -> ClusterStatus {
        let s = state.withLock { $0 }
        var up = 0, down = 0, out = 0, unreachable = 0
        for d in s.map.devices {
            switch d.state {
            case .up: up += 1
            case .down: down += 1
            case .out: out += 1
            }
            if d.state != .out && !(objects.device(d.id)?.isReachable ?? false) { unreachable += 1 }
        }
        var clean = 0, moving = 0, degraded = 0
        var degradedPGs = degradedPGs(s)
        // PGs still missing shards of degraded writes.
        let recovering = try pgsNeedingRecovery()
        for (pool, pg) in recovering { degradedPGs[pool, default: []].insert(pg) }
        for (pool, locations) in s.locations {
            guard let targets = s.targets[pool] else { continue }
            for (pg, devices) in locations.enumerated() where pg < targets.count {
                let lost = degradedPGs[pool]?.contains(pg) ?? false
                if lost { degraded += 1 } else if devices != targets[pg] { moving += 1 } else { clean += 1 }
            }
        }
        var movement: ClusterStatus.Movement? = nil
        if let m = try EngineError.wrap({ try database.latestMovement() }) {
            let end = m.finishedMs ?? Engine.nowMs()
            let seconds = max(0.001, Double(end - m.startedMs) / 1000)
            let rate = Double(m.doneBytes) / seconds
            let remaining = pendingPositions(s).count
            let leftBytes = Double(max(0, m.totalBytes - m.doneBytes))
            movement = .init(epoch: m.epoch, totalPositions: m.totalPositions, donePositions: m.donePositions,
                             remainingPositions: remaining, totalBytes: m.totalBytes, doneBytes: m.doneBytes,
                             bytesPerSecond: rate, etaSeconds: remaining == 0 ? 0 : (rate > 0 ? leftBytes / rate : nil),
                             finished: m.finishedMs != nil || remaining == 0)
        }
        var report = ClusterStatus(epoch: s.map.epoch, devicesUp: up, devicesDown: down, devicesOut: out, devicesUnreachable: unreachable,
                                   pgsClean: clean, pgsMoving: moving, pgsDegraded: degraded, movement: movement)
        report.maintenance = maintenance()
        report.pgsRecovering = recovering.count
        report.recoveredBytes = recoveredBytes.load(ordering: .relaxed)
        return report
    }
}

extension Engine {
    /// Per pool, the PGs with a member that is down, out or unreachable.
    func degradedPGs(_ s: State) -> [UInt32: Set<Int>] {
        var result: [UInt32: Set<Int>] = [:]
        for (pool, locations) in s.locations {
            for (pg, devices) in locations.enumerated()
            where devices.contains(where: { s.map.device($0)?.state != .up || !(objects.device($0)?.isReachable ?? false) }) {
                result[pool, default: []].insert(pg)
            }
        }
        return result
    }

    /// Objects that are readable with less redundancy than their class promises (a member of
    /// their PG is down, out or unreachable), from the object index: one query per pool
    /// with degraded PGs, none on a healthy cluster.
    public func degradedObjects() throws(EngineError) -> Int {
        let s = state.withLock { $0 }
        let degraded = degradedPGs(s)
        guard !degraded.isEmpty else { return 0 }
        try index.flush()
        var count = 0
        for (pool, pgs) in degraded {
            count += try EngineError.wrap { try database.indexedObjectCount(poolID: pool, pgs: pgs) }
        }
        return count
    }
}
