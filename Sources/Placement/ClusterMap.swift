/// The whole placement state of a cluster at one epoch: the failure-domain tree, the
/// devices with their weights and states, and the pools with their rules and overrides.
///
/// A value type: every change makes a new map with `epoch + 1` (see `nextEpoch`). The JSON
/// form (Codable, snake_case keys, arrays in a fixed order) is documented in
/// docs/placement.md and is stable.
public struct ClusterMap: Codable, Hashable, Sendable {
    public var epoch: UInt64
    public var buckets: [Bucket]
    public var devices: [Device]
    public var pools: [Pool]

    public init(epoch: UInt64 = 0, buckets: [Bucket] = [], devices: [Device] = [], pools: [Pool] = []) {
        self.epoch = epoch
        self.buckets = buckets
        self.devices = devices
        self.pools = pools
    }

    public func device(_ id: DeviceID) -> Device? { devices.first { $0.id == id } }

    /// The failure domain at `level` of every eligible device: its nearest ancestor bucket of
    /// that type, or the device itself for `"device"`. Devices without such an ancestor are
    /// left out. Each walk is bounded by the bucket count, so a malformed map cannot loop.
    public func failureDomains(level: String) -> [DeviceID: String] {
        let byID = Dictionary(buckets.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var result: [DeviceID: String] = [:]
        for device in devices where device.isEligible {
            if level == Rule.deviceLevel { result[device.id] = device.id.rawValue; continue }
            var node: String? = device.parent
            var steps = 0
            while let id = node, let bucket = byID[id], steps <= buckets.count {
                if bucket.type == level { result[device.id] = id; break }
                node = bucket.parent
                steps += 1
            }
        }
        return result
    }
    public func pool(named name: String) -> Pool? { pools.first { $0.name == name } }
    public func pool(id: UInt32) -> Pool? { pools.first { $0.id == id } }
}
