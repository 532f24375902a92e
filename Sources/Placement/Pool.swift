/// One storage class's slice of the cluster: a rule and a fixed number of placement groups.
///
/// `overrides` pins PGs whose devices differ from what the hash alone would choose. They
/// are how an epoch keeps the previous epoch's placement where nothing needed to move,
/// and how the balancer evens out what the hash leaves uneven (Ceph's upmap plays the
/// same part). Every PG not listed maps by the hash.
public struct Pool: Codable, Hashable, Sendable {
    public var id: UInt32
    public var name: String
    public var rule: Rule
    public var pgCount: Int
    /// Sorted by `pg`, at most one per PG, each with exactly `rule.width` devices.
    public var overrides: [Override]

    public struct Override: Codable, Hashable, Sendable {
        public var pg: Int
        public var devices: [DeviceID]
        public init(pg: Int, devices: [DeviceID]) {
            self.pg = pg
            self.devices = devices
        }
    }

    public init(id: UInt32, name: String, rule: Rule, pgCount: Int, overrides: [Override] = []) {
        self.id = id
        self.name = name
        self.rule = rule
        self.pgCount = pgCount
        self.overrides = overrides
    }

    /// The largest PG count a pool may have.
    public static let maxPGCount = 1 << 24

    private enum CodingKeys: String, CodingKey {
        case id, name, rule, overrides
        case pgCount = "pg_count"
    }
}
