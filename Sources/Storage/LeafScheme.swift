import Foundation
import Placement

/// How a device spreads its shards over the 65,536 leaf directories `shards/xx/yy`
/// (leaf number `xxyy` in hex). Recorded per device in its `leaf-scheme` file (the raw
/// value), so a device keeps the scheme it was made with; a device without the file is
/// `hashed`.
enum LeafScheme: String, Sendable {
    /// By when the object id was made: 4.096 s of ids to a leaf, the cycle through all
    /// leaves taking 3.1 days. Objects written together share a leaf, so a device makes a
    /// leaf (a mkdir and a parent fsync) once per window rather than for nearly every shard
    /// while it is young, and deleting objects written together syncs one directory; over
    /// days of writing every leaf takes its share, so directories stay small.
    case byTime = "time-4096ms"
    /// By a hash of the id: devices made before the `leaf-scheme` file existed.
    case hashed

    static let file = "leaf-scheme"

    /// The scheme name a `leaf-scheme` file holds: its contents without surrounding white space.
    static func name(in fileContents: String) -> String { fileContents.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// Which leaf holds the object's shards.
    func leaf(_ object: ObjectID) -> Int {
        switch self {
        case .byTime: Int(truncatingIfNeeded: (object.milliseconds >> 12) & 0xffff)
        case .hashed: Int(StableHash.mix64(object.high ^ object.low) >> 48)
        }
    }
}
