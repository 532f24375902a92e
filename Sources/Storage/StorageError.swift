import Glibc
import Placement

/// An operating error of the storage engine. Every case names the device or object.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The device has no room for the shard (its configured capacity, or the disk itself).
    case noSpace(device: DeviceID, neededBytes: Int, freeBytes: Int)
    /// The shard is not on the device.
    case shardNotFound(device: DeviceID, shard: String)
    /// The shard's bytes fail their checksum or header checks.
    case corruptShard(device: DeviceID, shard: String, reason: String)
    /// A system call failed on the device.
    case io(device: DeviceID, operation: String, errno: Int32)
    /// The device is not reachable (its directory is gone, or it was never opened).
    case deviceUnavailable(DeviceID, reason: String)
    /// Too few shards could be read to rebuild the object.
    case unreadable(object: String, reason: String)
    /// The object is larger than the class allows (`StorageClass.objectLimitBytes`).
    case objectTooLarge(sizeBytes: Int, limitBytes: Int)
    case unknownClass(String)
    case invalidDevice(String)

    public var description: String {
        switch self {
        case .noSpace(let d, let needed, let free): "device \(d): no space (need \(needed) bytes, \(free) free)"
        case .shardNotFound(let d, let s): "device \(d): shard \(s) not found"
        case .corruptShard(let d, let s, let why): "device \(d): shard \(s) is corrupt: \(why)"
        case .io(let d, let op, let e): "device \(d): \(op) failed: \(String(cString: strerror(e))) (errno \(e))"
        case .deviceUnavailable(let d, let why): "device \(d) is unavailable: \(why)"
        case .unreadable(let o, let why): "object \(o) cannot be read: \(why)"
        case .objectTooLarge(let size, let limit): "object of \(size) bytes exceeds the class's object limit of \(limit) bytes"
        case .unknownClass(let name): "no storage class \"\(name)\""
        case .invalidDevice(let why): "invalid device: \(why)"
        }
    }
}
