/// The name of a storage device in the cluster map, e.g. `"h1-d0"`.
public struct DeviceID: RawRepresentable, Hashable, Comparable, Codable, Sendable,
    ExpressibleByStringLiteral, CustomStringConvertible
{
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }
    /// Byte order of the UTF-8 form: stable across Unicode versions, unlike `String`'s `<`.
    public static func < (a: DeviceID, b: DeviceID) -> Bool { StableHash.precedes(a.rawValue, b.rawValue) }
}

/// Whether a device serves data and whether placement counts on it.
public enum DeviceState: String, Codable, Sendable, CaseIterable {
    /// Serving; holds its share of shards.
    case up
    /// Not answering. Its shards stay mapped to it (reads degrade, nothing moves yet).
    case down
    /// Gone for placement: its shards are rebuilt elsewhere.
    case out
}

/// A leaf of the cluster map: one shard store with a weight (its capacity share).
public struct Device: Codable, Hashable, Sendable {
    public var id: DeviceID
    /// The bucket (usually a host) the device sits in.
    public var parent: String
    /// Relative capacity, e.g. TiB. 0 drains the device: its shards move off while it stays readable.
    public var weight: Double
    public var state: DeviceState

    public init(id: DeviceID, parent: String, weight: Double, state: DeviceState = .up) {
        self.id = id
        self.parent = parent
        self.weight = weight
        self.state = state
    }

    /// Whether placement may put shards on this device: not out and weight above zero.
    /// Down devices stay eligible: their shards wait for them rather than move.
    public var isEligible: Bool { state != .out && weight > 0 }
}

/// An inner node of the cluster map: a failure domain such as a zone, rack or host.
public struct Bucket: Codable, Hashable, Sendable {
    public var id: String
    /// The failure-domain level, e.g. `"rack"` or `"host"`. Rules name these levels.
    public var type: String
    /// The enclosing bucket; `nil` for a top-level bucket.
    public var parent: String?

    public init(id: String, type: String, parent: String? = nil) {
        self.id = id
        self.type = type
        self.parent = parent
    }
}
