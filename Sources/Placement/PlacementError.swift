/// Why a map, a rule or a change was rejected. Every case names the offending item.
public enum PlacementError: Error, Equatable, Sendable, CustomStringConvertible {
    case emptyID(what: String)
    case duplicateID(String)
    case unknownParent(child: String, parent: String)
    case cycle(through: String)
    case nestedLevel(bucket: String, level: String)
    case invalidWeight(device: DeviceID, weight: Double)
    case invalidRule(pool: String, reason: String)
    case invalidPool(pool: String, reason: String)
    case duplicatePool(String)
    case unknownLevel(pool: String, level: String)
    case deviceOutsideDomain(device: DeviceID, level: String, pool: String)
    case insufficientDomains(pool: String, level: String, needed: Int, available: Int)
    case invalidOverride(pool: String, pg: Int, reason: String)
    case unknownDevice(DeviceID)
    case unknownBucket(String)
    case unknownPool(String)
    case deviceNotEmptyOfBuckets(String)

    public var description: String {
        switch self {
        case .emptyID(let what):
            "\(what) has an empty id"
        case .duplicateID(let id):
            "id \"\(id)\" is used more than once (bucket and device ids share one namespace)"
        case .unknownParent(let child, let parent):
            "\"\(child)\" names parent \"\(parent)\", which is not a bucket in the map"
        case .cycle(let id):
            "bucket \"\(id)\" is its own ancestor (the parent links form a cycle)"
        case .nestedLevel(let bucket, let level):
            "bucket \"\(bucket)\" of type \"\(level)\" sits inside another \"\(level)\"; a level may appear once on each path"
        case .invalidWeight(let device, let weight):
            "device \"\(device)\" has weight \(weight); weights must be finite, in 0...65535"
        case .invalidRule(let pool, let reason):
            "pool \"\(pool)\": invalid rule: \(reason)"
        case .invalidPool(let pool, let reason):
            "pool \"\(pool)\": \(reason)"
        case .duplicatePool(let what):
            "pool \(what) is defined more than once"
        case .unknownLevel(let pool, let level):
            "pool \"\(pool)\": failure domain \"\(level)\" is not a bucket type in the map (nor \"device\")"
        case .deviceOutsideDomain(let device, let level, let pool):
            "device \"\(device)\" has no ancestor of type \"\(level)\", which pool \"\(pool)\" separates replicas by"
        case .insufficientDomains(let pool, let level, let needed, let available):
            "pool \"\(pool)\" needs \(needed) distinct \"\(level)\" failure domains with capacity, but the map has \(available); add \(level)s or use a narrower rule"
        case .invalidOverride(let pool, let pg, let reason):
            "pool \"\(pool)\", pg \(pg): invalid override: \(reason)"
        case .unknownDevice(let id):
            "no device \"\(id)\" in the map"
        case .unknownBucket(let id):
            "no bucket \"\(id)\" in the map"
        case .unknownPool(let name):
            "no pool \"\(name)\" in the map"
        case .deviceNotEmptyOfBuckets(let id):
            "bucket \"\(id)\" still contains buckets or devices"
        }
    }
}
