import Foundation
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
        // One device at a time: a change the map refuses (a class that cannot do without
        // the device) does not hold back the others.
        for change in wanted {
            do {
                guard try changeDeviceState(change.id, from: change.from, to: change.to, byHealth: true) else { continue }
                health.state.withLock { h in
                    h.lastRefusal[change.id] = nil
                    if change.to == .up { h.setByHealth[change.id] = nil } else { h.setByHealth[change.id] = change.to }
                }
                said.append("\(change.id): \(change.from.rawValue) → \(change.to.rawValue)")
            } catch {
                let refusal = "health: cannot mark \(change.id) \(change.to.rawValue): \(error)"
                let repeated = health.state.withLock { h in
                    defer { h.lastRefusal[change.id] = refusal }
                    return h.lastRefusal[change.id] == refusal
                }
                if !repeated { said.append(refusal) }
            }
        }
        return said
    }

    /// Sets a device's state as one epoch, if it is still `from` (checked under the admin
    /// lock: an admin's change made meanwhile wins). Whether it changed. `byHealth`: the
    /// health check's change, marked as such in the same transaction (an admin's clears the mark).
    func changeDeviceState(_ id: DeviceID, from: DeviceState, to: DeviceState, byHealth: Bool = false) throws(EngineError) -> Bool {
        try adminLock.withLock { _ throws(EngineError) -> Bool in
            var s = state.withLock { $0 }
            guard s.map.device(id)?.state == from else { return false }
            let next = try EngineError.wrap { try s.map.nextEpoch([.setState(id, to)]) }
            let mark = byHealth && to != .up ? to.rawValue : nil
            try commitEpoch(next, into: &s, extra: [.setHealthMark(device: id.rawValue, state: mark)])
            return true
        }
    }
}
