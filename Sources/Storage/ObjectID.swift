import Glibc
import Placement
import Synchronization

/// The name of an immutable object: 128 bits, unique without coordination.
///
/// Layout: 48 bits of milliseconds since 1970, 16 bits of node id, 64 bits of sequence
/// (a random start per generator, then +1 per id). A retried write reuses its id, so the
/// retry rewrites the same shards (idempotent); two writers never pick the same id.
public struct ObjectID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let high: UInt64
    public let low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// 32 lowercase hex digits. (Every shard path is built from it: written straight into
    /// the string's storage, where `String(_:radix:)` and padding cost 9 k instructions.)
    public var description: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            for i in 0..<16 {
                let shift = UInt64(60 - 4 * i)
                buffer[i] = Self.digits[Int(truncatingIfNeeded: high >> shift) & 15]
                buffer[16 + i] = Self.digits[Int(truncatingIfNeeded: low >> shift) & 15]
            }
            return 32
        }
    }

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Parses the 32-hex-digit form; nil for anything else.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 32 else { return nil }
        func parse(_ s: ArraySlice<UInt8>) -> UInt64? {
            var v: UInt64 = 0
            for b in s {
                let d: UInt8
                switch b {
                case 0x30...0x39: d = b - 0x30
                case 0x61...0x66: d = b - 0x61 + 10
                default: return nil
                }
                v = v << 4 | UInt64(d)
            }
            return v
        }
        guard let h = parse(bytes[0..<16]), let l = parse(bytes[16..<32]) else { return nil }
        self.init(high: h, low: l)
    }

    public static func < (a: ObjectID, b: ObjectID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    /// The placement group of this object in a pool of `pgCount` PGs:
    /// `mix64(high ^ mix64(low)) mod pgCount` (fixed forever, like placement's hash).
    public func pg(count pgCount: Int) -> Int {
        Int(StableHash.mix64(high ^ StableHash.mix64(low)) % UInt64(pgCount))
    }

    /// Milliseconds since 1970 when the id was made.
    public var milliseconds: UInt64 { high >> 16 }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = ObjectID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an object id: \(text)"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Makes object ids for one node. Thread-safe.
public final class ObjectIDGenerator: Sendable {
    private let node: UInt16
    private let sequence: Mutex<UInt64>
    private let clock: @Sendable () -> UInt64

    /// `clockMilliseconds` defaults to the wall clock; `start` to a random sequence start.
    public init(node: UInt16, start: UInt64 = UInt64.random(in: 0...UInt64.max),
                clockMilliseconds: @escaping @Sendable () -> UInt64 = ObjectIDGenerator.wallClockMilliseconds) {
        self.node = node
        self.sequence = Mutex(start)
        self.clock = clockMilliseconds
    }

    public func next() -> ObjectID {
        let s = sequence.withLock { value -> UInt64 in
            value &+= 1
            return value
        }
        return ObjectID(high: (clock() & 0xFFFF_FFFF_FFFF) << 16 | UInt64(node), low: s)
    }

    public static func wallClockMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
    }
}
