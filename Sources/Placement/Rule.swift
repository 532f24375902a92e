/// How a pool spreads each PG over devices: how many members, and at which
/// failure-domain level the members must be distinct.
public struct Rule: Hashable, Sendable {
    public enum Redundancy: Hashable, Sendable {
        /// `copies` full copies; position 0 is the primary.
        case replicated(copies: Int)
        /// Reed–Solomon: positions 0..<k hold data, k..<k+m parity. A shard's position
        /// is part of its identity, so positions never shift.
        case erasure(k: Int, m: Int)
    }

    public var redundancy: Redundancy
    /// Bucket type (e.g. `"host"`) whose members must all differ, or `"device"`.
    public var failureDomain: String

    public init(_ redundancy: Redundancy, failureDomain: String) {
        self.redundancy = redundancy
        self.failureDomain = failureDomain
    }

    /// Number of devices each PG maps to.
    public var width: Int {
        switch redundancy {
        case .replicated(let copies): copies
        case .erasure(let k, let m): k + m
        }
    }

    /// Raw bytes stored per byte of data: 3.0 for three copies, 1.5 for 4+2.
    public var overhead: Double {
        switch redundancy {
        case .replicated(let copies): Double(copies)
        case .erasure(let k, let m): Double(k + m) / Double(k)
        }
    }

    /// The failure-domain level that names devices themselves.
    public static let deviceLevel = "device"
    /// The largest width a rule may have.
    public static let maxWidth = 32
}

extension Rule: Codable {
    private enum CodingKeys: String, CodingKey {
        case type, copies, k, m
        case failureDomain = "failure_domain"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let type = try c.decode(String.self, forKey: .type)
        let failureDomain = try c.decode(String.self, forKey: .failureDomain)
        switch type {
        case "replicated":
            self.init(.replicated(copies: try c.decode(Int.self, forKey: .copies)), failureDomain: failureDomain)
        case "erasure":
            self.init(
                .erasure(k: try c.decode(Int.self, forKey: .k), m: try c.decode(Int.self, forKey: .m)),
                failureDomain: failureDomain)
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c, debugDescription: "rule type must be \"replicated\" or \"erasure\", not \"\(type)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch redundancy {
        case .replicated(let copies):
            try c.encode("replicated", forKey: .type)
            try c.encode(copies, forKey: .copies)
        case .erasure(let k, let m):
            try c.encode("erasure", forKey: .type)
            try c.encode(k, forKey: .k)
            try c.encode(m, forKey: .m)
        }
        try c.encode(failureDomain, forKey: .failureDomain)
    }
}
