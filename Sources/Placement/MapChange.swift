/// One edit to a cluster map's topology or pools. `ClusterMap.nextEpoch(_:)` applies a
/// list of them and computes the placement of the next epoch.
public enum MapChange: Sendable, Hashable {
    case addBucket(Bucket)
    /// `removeBucket` refuses a bucket that still contains buckets or devices.
    case removeBucket(String)
    case addDevice(Device)
    /// Forgets a device. Its shards are rebuilt elsewhere (drain it first to copy them off instead).
    case removeDevice(DeviceID)
    case setState(DeviceID, DeviceState)
    /// New weight; 0 drains the device (its shards move off; it stays readable meanwhile).
    case reweight(DeviceID, Double)
    /// A new pool, placed and balanced from scratch. Its `overrides` are ignored.
    case addPool(Pool)
    case removePool(id: UInt32)
    /// Runs the balancer even if no capacity changed (e.g. after failures left the
    /// survivors slightly uneven). Moves surviving shards; never part of a failure.
    case rebalance
}

extension ClusterMap {
    /// The map with `changes` applied to its buckets, devices and pools, placement
    /// untouched (same epoch, same overrides). Throws on an unknown or duplicate name.
    public func applying(_ changes: [MapChange]) throws(PlacementError) -> ClusterMap {
        var map = self
        for change in changes {
            switch change {
            case .addBucket(let b):
                if map.buckets.contains(where: { $0.id == b.id }) || map.devices.contains(where: { $0.id.rawValue == b.id }) {
                    throw .duplicateID(b.id)
                }
                map.buckets.append(b)
            case .removeBucket(let id):
                guard let i = map.buckets.firstIndex(where: { $0.id == id }) else { throw .unknownBucket(id) }
                if map.buckets.contains(where: { $0.parent == id }) || map.devices.contains(where: { $0.parent == id }) {
                    throw .deviceNotEmptyOfBuckets(id)
                }
                map.buckets.remove(at: i)
            case .addDevice(let d):
                if map.devices.contains(where: { $0.id == d.id }) || map.buckets.contains(where: { $0.id == d.id.rawValue }) {
                    throw .duplicateID(d.id.rawValue)
                }
                map.devices.append(d)
            case .removeDevice(let id):
                guard let i = map.devices.firstIndex(where: { $0.id == id }) else { throw .unknownDevice(id) }
                map.devices.remove(at: i)
            case .setState(let id, let state):
                guard let i = map.devices.firstIndex(where: { $0.id == id }) else { throw .unknownDevice(id) }
                map.devices[i].state = state
            case .reweight(let id, let weight):
                guard let i = map.devices.firstIndex(where: { $0.id == id }) else { throw .unknownDevice(id) }
                if !weight.isFinite || weight < 0 || weight > 65535 { throw .invalidWeight(device: id, weight: weight) }
                map.devices[i].weight = weight
            case .addPool(var pool):
                if map.pools.contains(where: { $0.id == pool.id }) { throw .duplicatePool("id \(pool.id)") }
                if map.pools.contains(where: { $0.name == pool.name }) { throw .duplicatePool("\"\(pool.name)\"") }
                pool.overrides = []
                map.pools.append(pool)
            case .removePool(let id):
                guard let i = map.pools.firstIndex(where: { $0.id == id }) else { throw .unknownPool("id \(id)") }
                map.pools.remove(at: i)
            case .rebalance:
                break
            }
        }
        return map
    }
}
