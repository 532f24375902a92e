import Placement

/// How much more data a storage class can take. Pure arithmetic, no I/O.
///
/// Writing X bytes of data to a pool spreads it evenly over its PGs, X / pgCount each;
/// each PG stores `width` shards of (X / pgCount) × overhead / width bytes. So a device
/// holding `n` of the pool's shards gains X × n × overhead / (pgCount × width). The pool
/// can take X until the first device reaches `fullRatio` of its capacity:
///
///     usable = min over devices with n > 0 of (fullRatio × capacity − used) × pgCount × width / (n × overhead)
///
/// That is the real distribution and the failure-domain rule at work, not raw ÷ overhead:
/// a host that the rule cannot fill (one shard per PG at most) or an uneven tree lowers it.
public enum CapacityModel {
    public struct DeviceState: Sendable {
        public var id: DeviceID
        public var capacityBytes: Int64
        public var usedBytes: Int64
        public init(id: DeviceID, capacityBytes: Int64, usedBytes: Int64) {
            self.id = id
            self.capacityBytes = capacityBytes
            self.usedBytes = usedBytes
        }
    }

    /// Bytes of data (before redundancy) the pool can still take.
    public static func usableBytes(shardCounts: [DeviceID: Int], pgCount: Int, width: Int, overhead: Double,
                                   devices: [DeviceState], fullRatio: Double) -> Int64 {
        var best = Double.infinity
        for device in devices {
            guard let n = shardCounts[device.id], n > 0 else { continue }
            let room = max(0, fullRatio * Double(device.capacityBytes) - Double(device.usedBytes))
            best = min(best, room * Double(pgCount * width) / (Double(n) * overhead))
        }
        return best.isFinite ? Int64(best) : 0
    }
}
