import Foundation
import Metadata
import Placement
import Storage
import Synchronization

/// How the engine reacts to hosts that stop answering (devices served by node agents):
/// silent for `downAfterMs` → `down` (reads degrade, nothing moves); still silent
/// `outAfterMs` after it went silent → `out` (its shards are rebuilt on other hosts). A
/// device this marked down or out that answers again is marked up: a down one resumes
/// as it was (degraded writes' shards are then recovered), an out one rejoins and the
/// mover brings its share back, keeping every shard it still holds (objects are
/// immutable: a shard it kept is never stale).
public struct HealthPolicy: Sendable {
    public var downAfterMs: Int64
    public var outAfterMs: Int64

    public init(downAfterMs: Int64 = 0, outAfterMs: Int64 = 600_000) {
        self.downAfterMs = max(0, downAfterMs)
        self.outAfterMs = max(self.downAfterMs, outAfterMs)
    }
}

/// What the health check remembers between passes: since when each device is silent, the
/// state it set on each device (an admin's own change is never undone: once a device's
/// state differs from what the check set, the check forgets it), and the last refusal
/// said per device (said once, not every second).
final class HealthTracker: Sendable {
    struct State: Sendable {
        var silentSinceMs: [DeviceID: Int64] = [:]
        var setByHealth: [DeviceID: DeviceState] = [:]
        var lastRefusal: [DeviceID: String] = [:]
        var seeded = false
    }
    let state = Mutex(State())
}

extension Engine {
    /// One pass of the health check at `nowMs` (monotonic): the state changes it made (and
    /// new refusals), as lines for the log. Only devices of other hosts are judged; a local
    /// device whose directory is gone is the admin's to fail. When the check first runs (a
    /// daemon restart) it takes back the marks it left in the database (`health_mark`, kept
    /// with each change it makes), and remote devices found `down` count as set by it too.
    public func checkHealth(policy: HealthPolicy, nowMs: Int64) -> [String] {
        let s = state.withLock { $0 }
        var wanted: [(id: DeviceID, from: DeviceState, to: DeviceState)] = []
        let marks = health.state.withLock { $0.seeded } ? [:] : ((try? database.healthMarks()) ?? [:])
        health.state.withLock { h in
            for device in s.map.devices {
                guard let store = objects.device(device.id), store.isRemote else { continue }
                // Maintenance is the admin's: silent or not, it is left alone (never out).
                if inMaintenance(device.id) {
                    h.silentSinceMs[device.id] = nil
                    continue
                }
                if !h.seeded {
                    if device.state == .down { h.setByHealth[device.id] = .down }
                    if let mark = marks[device.id.rawValue], mark == device.state.rawValue { h.setByHealth[device.id] = device.state }
                }
                if let set = h.setByHealth[device.id], set != device.state { h.setByHealth[device.id] = nil }
                let ours = h.setByHealth[device.id] != nil
                if store.isReachable {
                    h.silentSinceMs[device.id] = nil
                    if device.state != .up && ours { wanted.append((device.id, device.state, .up)) }
                    continue
                }
                let since = h.silentSinceMs[device.id] ?? nowMs
                h.silentSinceMs[device.id] = since
                let silent = nowMs - since
                if device.state == .up && silent >= policy.downAfterMs {
                    wanted.append((device.id, .up, .down))
                } else if device.state == .down && ours && silent >= policy.outAfterMs {
                    wanted.append((device.id, .down, .out))
                }
            }
            h.seeded = true
        }
        var said: [String] = []
        // A silent host goes out whole, its devices in one epoch: one at a time, the first
        // one's shards were placed on its sibling (down, not yet out), where no move could
        // put them (seen: a rebuild stalled on them, retrying with back-off, for a minute;
        // and with a class that could not do without the host, for good). If the map refuses
        // (a class that cannot do without the host), all of them stay down. Other changes go
        // one device at a time: a refusal for one does not hold back the others.
        let hosts = Dictionary(s.map.devices.map { ($0.id, $0.parent) }, uniquingKeysWith: { a, _ in a })
        var groups: [[(id: DeviceID, from: DeviceState, to: DeviceState)]] = []
        var outByHost: [String: Int] = [:]
        for change in wanted {
            if change.to == .out, let host = hosts[change.id] {
                if let index = outByHost[host] { groups[index].append(change); continue }
                outByHost[host] = groups.count
            }
            groups.append([change])
        }
        for group in groups {
            let name = group.count == 1 ? "\(group[0].id)" : "host \(hosts[group[0].id] ?? "?") (\(group.map(\.id.rawValue).joined(separator: ", ")))"
            do {
                guard try changeDeviceStates(group, byHealth: true) else { continue }
                health.state.withLock { h in
                    for change in group {
                        h.lastRefusal[change.id] = nil
                        if change.to == .up { h.setByHealth[change.id] = nil } else { h.setByHealth[change.id] = change.to }
                    }
                }
                said.append("\(name): \(group[0].from.rawValue) → \(group[0].to.rawValue)")
            } catch {
                let refusal = "health: cannot mark \(name) \(group[0].to.rawValue): \(error)"
                let repeated = health.state.withLock { h in
                    defer { for change in group { h.lastRefusal[change.id] = refusal } }
                    return group.allSatisfy { h.lastRefusal[$0.id] == refusal }
                }
                if !repeated { said.append(refusal) }
            }
        }
        return said
    }

    /// Sets devices' states as one epoch, if each is still its `from` (checked under the
    /// admin lock: an admin's change made meanwhile wins, and then none changes). Whether
    /// they changed. `byHealth`: the health check's changes, marked as such in the same
    /// transaction (an admin's clears the mark).
    func changeDeviceStates(_ changes: [(id: DeviceID, from: DeviceState, to: DeviceState)], byHealth: Bool) throws(EngineError) -> Bool {
        try adminLock.withLock { _ throws(EngineError) -> Bool in
            var s = state.withLock { $0 }
            guard changes.allSatisfy({ s.map.device($0.id)?.state == $0.from }) else { return false }
            let next = try EngineError.wrap { try s.map.nextEpoch(changes.map { .setState($0.id, $0.to) }) }
            let marks: [ClusterChange] = changes.map { .setHealthMark(device: $0.id.rawValue, state: byHealth && $0.to != .up ? $0.to.rawValue : nil) }
            try commitEpoch(next, into: &s, extra: marks)
            return true
        }
    }
}
