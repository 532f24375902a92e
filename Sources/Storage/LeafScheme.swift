import Placement

/// How a device spreads its shards over the 65,536 leaf directories `shards/xx/yy`
/// (leaf number `xxyy` in hex). Recorded per device in its `leaf-scheme` file, so a device
/// keeps the scheme it was made with.
enum LeafScheme: Equatable, Sendable {
    /// By when the object id was made: 4.096 s of ids to a leaf, the cycle through all
    /// leaves taking 3.1 days. Objects written together share a leaf, so a device makes a
    /// leaf (a mkdir and a parent fsync) once per window rather than for nearly every shard
    /// while it is young, and deleting objects written together syncs one directory; over
    /// days of writing every leaf takes its share, so directories stay small.
    case byTime
    /// By a hash of the id: devices made before the `leaf-scheme` file existed.
    case hashed

    static let file = "leaf-scheme"
    /// What `file` holds for each scheme; a device without the file is `hashed`.
    static let byTimeName = "time-4096ms"

    /// The scheme named in the file's contents (surrounding white space ignored); nil if unknown.
    init?(fileContents: String) {
        switch Self.name(in: fileContents) {
        case Self.byTimeName: self = .byTime
        case "hashed": self = .hashed
        default: return nil
        }
    }

    /// The file's contents without surrounding white space.
    static func name(in fileContents: String) -> String { fileContents.trimmingWhitespace() }

    var fileContents: String { self == .byTime ? Self.byTimeName : "hashed" }

    /// Which leaf holds the object's shards.
    func leaf(_ object: ObjectID) -> Int {
        switch self {
        case .byTime: Int(truncatingIfNeeded: (object.milliseconds >> 12) & 0xffff)
        case .hashed: Int(StableHash.mix64(object.high ^ object.low) >> 48)
        }
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
