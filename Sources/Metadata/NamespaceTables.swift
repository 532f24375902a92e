import Foundation

/// The tables of a volume's database that a `NamespaceStore` keeps a copy of: the
/// namespace (inodes, names, slices, xattrs) and the objects holding its data. The order is
/// the one in which rows may be inserted (a name after its inode, a settling mark after
/// its object); deletions go the other way.
public enum NamespaceTable: Int, CaseIterable, Sendable, Hashable {
    case inode = 0, object, dentry, slice, xattr, settlingObject

    /// A column's type, the same on both backends (SQLite INTEGER/BLOB/TEXT, PostgreSQL
    /// BIGINT/BYTEA/TEXT).
    public enum Kind: Sendable { case int, blob, text }

    public struct Column: Sendable {
        public let name: String
        public let kind: Kind
        public let nullable: Bool
    }

    /// The name of the table in a volume's SQLite database.
    public var sqliteName: String {
        switch self {
        case .inode: "inode"
        case .object: "object"
        case .dentry: "dentry"
        case .slice: "slice"
        case .xattr: "xattr"
        case .settlingObject: "settling_object"
        }
    }

    /// Every column, keys first (`keyCount` of them).
    public var columns: [Column] {
        func c(_ name: String, _ kind: Kind, _ nullable: Bool = false) -> Column { Column(name: name, kind: kind, nullable: nullable) }
        switch self {
        case .inode:
            return [c("ino", .int), c("kind", .int), c("mode", .int), c("uid", .int), c("gid", .int), c("size", .int),
                    c("nlink", .int), c("rdev", .int), c("atime_ns", .int), c("mtime_ns", .int), c("ctime_ns", .int),
                    c("target", .blob, true)]
        case .object:
            return [c("id", .text), c("pool_id", .int), c("pg", .int), c("size_bytes", .int), c("state", .text), c("created_ms", .int)]
        case .dentry:
            return [c("parent", .int), c("name", .blob), c("ino", .int)]
        case .slice:
            return [c("id", .int), c("ino", .int), c("chunk", .int), c("pos", .int), c("len", .int), c("object", .text, true),
                    c("object_off", .int)]
        case .xattr:
            return [c("ino", .int), c("name", .blob), c("value", .blob)]
        case .settlingObject:
            return [c("id", .text)]
        }
    }

    /// How many of the first `columns` make the key.
    public var keyCount: Int {
        switch self {
        case .dentry, .xattr: 2
        default: 1
        }
    }

    public var keyColumns: ArraySlice<Column> { columns.prefix(keyCount) }
}

/// One value of a namespace row.
public enum NamespaceValue: Sendable, Hashable {
    case null
    case int(Int64)
    case blob(Data)
    case text(String)
}

/// A row: its values in the order of `NamespaceTable.columns`.
public typealias NamespaceRow = [NamespaceValue]

/// What changed in a volume's namespace since its last shipment: per table, the rows as
/// they now stand (inserted or changed) and the keys of rows that are gone.
public struct NamespaceChanges: Sendable, Equatable {
    public var upserts: [NamespaceTable: [NamespaceRow]] = [:]
    public var deletions: [NamespaceTable: [NamespaceRow]] = [:]

    public init() {}

    public var isEmpty: Bool { upserts.values.allSatisfy(\.isEmpty) && deletions.values.allSatisfy(\.isEmpty) }
    public var rowCount: Int { upserts.values.reduce(0) { $0 + $1.count } + deletions.values.reduce(0) { $0 + $1.count } }
}

/// A volume's whole namespace as the store has it, at `version` (0: never shipped).
public struct NamespaceImage: Sendable, Equatable {
    public var version: Int64
    public var rows: [NamespaceTable: [NamespaceRow]]

    public init(version: Int64, rows: [NamespaceTable: [NamespaceRow]]) {
        self.version = version
        self.rows = rows
    }
}
