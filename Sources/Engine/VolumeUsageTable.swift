import Synchronization

/// Per volume: its class, provisioned bytes, and usage as last measured (bytes its live
/// objects store on devices, and their data); with running totals per class, so admission
/// and capacity reports cost the same at 10 volumes and at 10,000. Only a mounted volume's
/// usage changes; the others' figures come from the cluster database at start.
final class VolumeUsageTable: Sendable {
    struct Usage: Sendable {
        var className: String
        var storedBytes: Int64
        var liveBytes: Int64
        /// `VolumeDatabase.writesEnded` when measured: an open volume is measured again only
        /// once it has changed (nil: not measured from an open database).
        var writes: Int? = nil
    }

    struct Totals: Sendable, Equatable {
        var storedBytes: Int64 = 0
        var liveBytes: Int64 = 0
        var provisionedBytes: Int64 = 0
    }

    private struct State {
        var usage: [String: Usage] = [:]
        var capacity: [String: (className: String, bytes: Int64)] = [:]
        var totals: [String: Totals] = [:]
    }

    private let state = Mutex(State())

    func usage(_ volume: String) -> Usage? { state.withLock { $0.usage[volume] } }

    func className(_ volume: String) -> String? {
        state.withLock { $0.capacity[volume]?.className ?? $0.usage[volume]?.className }
    }

    func totals(className: String) -> Totals { state.withLock { $0.totals[className] ?? Totals() } }

    func setUsage(_ volume: String, _ usage: Usage) {
        state.withLock { s in
            if let old = s.usage[volume] {
                s.totals[old.className, default: Totals()].storedBytes -= old.storedBytes
                s.totals[old.className, default: Totals()].liveBytes -= old.liveBytes
            }
            s.usage[volume] = usage
            s.totals[usage.className, default: Totals()].storedBytes += usage.storedBytes
            s.totals[usage.className, default: Totals()].liveBytes += usage.liveBytes
        }
    }

    func setCapacity(_ volume: String, className: String, bytes: Int64) {
        state.withLock { s in
            if let old = s.capacity[volume] { s.totals[old.className, default: Totals()].provisionedBytes -= old.bytes }
            s.capacity[volume] = (className, bytes)
            s.totals[className, default: Totals()].provisionedBytes += bytes
        }
    }

    /// Forgets a deleted volume.
    func remove(_ volume: String) {
        state.withLock { s in
            if let old = s.usage.removeValue(forKey: volume) {
                s.totals[old.className, default: Totals()].storedBytes -= old.storedBytes
                s.totals[old.className, default: Totals()].liveBytes -= old.liveBytes
            }
            if let old = s.capacity.removeValue(forKey: volume) { s.totals[old.className, default: Totals()].provisionedBytes -= old.bytes }
        }
    }
}
