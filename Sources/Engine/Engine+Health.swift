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

/// What the health check remembers between calls: since when each device is silent, and
/// which states it set itself (an admin's `device down` is never undone by it).
final class HealthTracker: Sendable {
    struct State: Sendable {
        var silentSinceMs: [DeviceID: Int64] = [:]
        var markedByHealth: Set<DeviceID> = []
        /// The last change that could not be applied (said once, not every second).
        var lastRefusal: String?
    }
    let state = Mutex(State())
}

extension Engine {
    /// One pass of the health check at `nowMs` (monotonic): the state changes it made, as
    /// "device: from → to" lines. Only devices of other hosts are judged; a local device
    /// whose directory is gone is the admin's to fail.
    public func checkHealth(policy: HealthPolicy, nowMs: Int64) -> [String] {
        let s = state.withLock { $0 }
        var changes: [(DeviceID, DeviceState)] = []
        health.state.withLock { h in
            for device in s.map.devices {
                guard let store = objects.device(device.id), store.isRemote else { continue }
                if store.isReachable {
                    h.silentSinceMs[device.id] = nil
                    if device.state != .up && h.markedByHealth.contains(device.id) { changes.append((device.id, .up)) }
                    continue
                }
                let since = h.silentSinceMs[device.id] ?? nowMs
                h.silentSinceMs[device.id] = since
                let silent = nowMs - since
                if device.state == .up && silent >= policy.downAfterMs {
                    changes.append((device.id, .down))
                } else if device.state == .down && h.markedByHealth.contains(device.id) && silent >= policy.outAfterMs {
                    changes.append((device.id, .out))
                }
            }
        }
        guard !changes.isEmpty else { return [] }
        do {
            try changeMap(changes.map { .setState($0.0, $0.1) })
        } catch {
            let refusal = "health: cannot apply \(changes.map { "\($0.0) → \($0.1.rawValue)" }.joined(separator: ", ")): \(error)"
            let repeated = health.state.withLock { h in
                defer { h.lastRefusal = refusal }
                return h.lastRefusal == refusal
            }
            return repeated ? [] : [refusal]
        }
        health.state.withLock { h in
            h.lastRefusal = nil
            for (id, to) in changes { if to == .up { h.markedByHealth.remove(id) } else { h.markedByHealth.insert(id) } }
        }
        return changes.map { id, to in "\(id): \(s.map.device(id)?.state.rawValue ?? "?") → \(to.rawValue)" }
    }
}
