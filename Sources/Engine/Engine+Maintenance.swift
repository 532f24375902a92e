import Foundation
import Metadata
import Placement
import Storage

/// One device in maintenance, as `status` and `provisionctl maintenance list` show it.
public struct MaintenanceWindow: Sendable, Codable, Hashable {
    public var device: String
    public var host: String
    public var startedMs: Int64
    /// When it ends by itself (wall clock, ms); nil: when stopped.
    public var untilMs: Int64?

    enum CodingKeys: String, CodingKey {
        case device, host
        case startedMs = "started_ms"
        case untilMs = "until_ms"
    }
}

/// Planned maintenance of a host or device (docs/cluster.md, "Maintenance"): its devices
/// are `down` — reads go to the other members, writes that cannot reach them are degraded
/// writes whose PGs are recorded — and the health check never takes them `out`, however
/// long they are silent: nothing is rebuilt. When maintenance ends (`stop`, or its
/// duration passes) they are `up` again and the mover resyncs the delta: the shards of the
/// objects written while they were away, nothing else. A device still silent then is the
/// health check's again (down at once, out after the grace period).
extension Engine {
    /// Puts a host's devices (`target` names a host) or one device into maintenance, for
    /// `durationMs` (nil: until stopped); a repeat changes the end. Devices that are out
    /// are refused (they hold nothing to come back to).
    @discardableResult
    public func startMaintenance(_ target: String, durationMs: Int64? = nil) throws(EngineError) -> [MaintenanceWindow] {
        if let durationMs, durationMs <= 0 { throw .invalidArgument("a maintenance duration must be positive") }
        return try adminLock.withLock { _ throws(EngineError) -> [MaintenanceWindow] in
            var s = state.withLock { $0 }
            let devices = try Self.maintenanceTargets(target, s.map)
            if let out = devices.first(where: { $0.state == .out }) {
                throw .invalidArgument("device \(out.id) is out: its shards were rebuilt elsewhere; bring it up, not into maintenance")
            }
            let now = Engine.nowMs()
            let until = durationMs.map { now + $0 }
            let started = maintenanceWindows.withLock { w in Dictionary(devices.map { ($0.id, w[$0.id]?.startedMs ?? now) }, uniquingKeysWith: { a, _ in a }) }
            // The health check's own mark goes: the device is the admin's now.
            let records: [ClusterChange] = devices.flatMap { d -> [ClusterChange] in
                [.startMaintenance(device: d.id.rawValue, startedMs: started[d.id] ?? now, untilMs: until), .setHealthMark(device: d.id.rawValue, state: nil)]
            }
            try commit(devices.filter { $0.state == .up }.map { MapChange.setState($0.id, .down) }, with: records, into: &s)
            maintenanceWindows.withLock { w in for d in devices { w[d.id] = (started[d.id] ?? now, until) } }
            health.state.withLock { h in for d in devices { h.setByHealth[d.id] = nil; h.silentSinceMs[d.id] = nil } }
            return maintenance().filter { window in devices.contains { $0.id.rawValue == window.device } }
        }
    }

    /// Ends the maintenance of a host's devices or of one device: they are up again (one
    /// epoch) and the mover resyncs what they missed. Returns the devices it ended for.
    @discardableResult
    public func stopMaintenance(_ target: String) throws(EngineError) -> [String] {
        try adminLock.withLock { _ throws(EngineError) -> [String] in
            let s = state.withLock { $0 }
            let named = Set(try Self.maintenanceTargets(target, s.map).map(\.id))
            let ending = maintenanceWindows.withLock { w in named.filter { w[$0] != nil } }
            return try endMaintenanceLocked(ending)
        }
    }

    /// Ends every maintenance whose time has come (called by the daemon's mover loop).
    @discardableResult
    public func endExpiredMaintenance(nowMs: Int64? = nil) -> [String] {
        let nowMs = nowMs ?? Engine.nowMs()
        let due = maintenanceWindows.withLock { w in Set(w.filter { ($0.value.untilMs ?? .max) <= nowMs }.keys) }
        if due.isEmpty { return [] }
        return (try? adminLock.withLock { _ throws(EngineError) -> [String] in try endMaintenanceLocked(due) }) ?? []
    }

    /// Devices in maintenance.
    public func maintenance() -> [MaintenanceWindow] {
        let s = state.withLock { $0 }
        return maintenanceWindows.withLock { w in
            w.map { MaintenanceWindow(device: $0.key.rawValue, host: s.map.device($0.key)?.parent ?? "", startedMs: $0.value.startedMs, untilMs: $0.value.untilMs) }
        }.sorted { $0.device < $1.device }
    }

    /// Whether the health check must leave `device` alone.
    func inMaintenance(_ device: DeviceID) -> Bool { maintenanceWindows.withLock { $0[device] != nil } }

    /// Under the admin lock: `devices` leave maintenance; those down come up in one epoch.
    private func endMaintenanceLocked(_ devices: Set<DeviceID>) throws(EngineError) -> [String] {
        if devices.isEmpty { return [] }
        var s = state.withLock { $0 }
        let records: [ClusterChange] = devices.sorted { $0.rawValue < $1.rawValue }.map { .endMaintenance(device: $0.rawValue) }
        let coming = devices.filter { s.map.device($0)?.state == .down }.sorted { $0.rawValue < $1.rawValue }.map { MapChange.setState($0, .up) }
        try commit(coming, with: records, into: &s)
        maintenanceWindows.withLock { w in for d in devices { w[d] = nil } }
        return devices.map(\.rawValue).sorted()
    }

    /// Under the admin lock: state changes as one epoch with `records` in its transaction,
    /// or `records` alone when no state changes.
    private func commit(_ changes: [MapChange], with records: [ClusterChange], into s: inout State) throws(EngineError) {
        if changes.isEmpty {
            try EngineError.wrap { try database.commit(records) }
        } else {
            let next = try EngineError.wrap { try s.map.nextEpoch(changes) }
            try commitEpoch(next, into: &s, extra: records)
        }
    }

    /// The devices `target` names: a device id, else every device of a host of that name.
    static func maintenanceTargets(_ target: String, _ map: ClusterMap) throws(EngineError) -> [Device] {
        if let device = map.device(DeviceID(target)) { return [device] }
        let onHost = map.devices.filter { $0.parent == target }
        guard !onHost.isEmpty else { throw .unknownDevice("\(target) (neither a device nor a host)") }
        return onHost
    }
}
