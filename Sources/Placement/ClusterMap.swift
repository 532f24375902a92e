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
    public func pool(named name: String) -> Pool? { pools.first { $0.name == name } }
    public func pool(id: UInt32) -> Pool? { pools.first { $0.id == id } }
}
