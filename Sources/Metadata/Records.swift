import GRDB

/// A storage class as stored: its pool id and its definition (JSON of `StorageClass`).
public struct StorageClassRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "storage_class"
    public var name: String
    public var poolID: Int64
    public var definition: String
    public var createdMs: Int64

    public init(name: String, poolID: Int64, definition: String, createdMs: Int64) {
        self.name = name
        self.poolID = poolID
        self.definition = definition
        self.createdMs = createdMs
    }

    enum CodingKeys: String, CodingKey {
        case name, definition
        case poolID = "pool_id"
        case createdMs = "created_ms"
    }
}

/// A device this node serves: where its directory is and how big it may grow.
public struct DeviceRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "device"
    public var id: String
    public var path: String
    public var capacityBytes: Int64
    public var host: String
    public var rack: String?
    public var zone: String?
    public var addedMs: Int64
    /// HOST:PORT of the node agent serving the device; nil: a directory on this machine.
    public var agent: String?

    public init(id: String, path: String, capacityBytes: Int64, host: String, rack: String? = nil, zone: String? = nil, addedMs: Int64,
                agent: String? = nil) {
        self.agent = agent
        self.id = id
        self.path = path
        self.capacityBytes = capacityBytes
        self.host = host
        self.rack = rack
        self.zone = zone
        self.addedMs = addedMs
    }

    enum CodingKeys: String, CodingKey {
        case id, path, host, rack, zone, agent
        case capacityBytes = "capacity_bytes"
        case addedMs = "added_ms"
    }
}

public struct ShardLocationRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "shard_location"
    public var poolID: Int64
    public var pg: Int64
    public var position: Int64
    public var device: String

    public init(poolID: Int64, pg: Int64, position: Int64, device: String) {
        self.poolID = poolID
        self.pg = pg
        self.position = position
        self.device = device
    }

    enum CodingKeys: String, CodingKey {
        case pg, position, device
        case poolID = "pool_id"
    }
}

public struct CleanupRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "cleanup"
    public var poolID: Int64
    public var pg: Int64
    public var position: Int64
    public var device: String

    public init(poolID: Int64, pg: Int64, position: Int64, device: String) {
        self.poolID = poolID
        self.pg = pg
        self.position = position
        self.device = device
    }

    enum CodingKeys: String, CodingKey {
        case pg, position, device
        case poolID = "pool_id"
    }
}

/// Progress of one burst of movement (the one started by epoch `epoch`).
public struct MovementRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "movement"
    public var epoch: Int64
    public var totalPositions: Int64
    public var totalBytes: Int64
    public var donePositions: Int64
    public var doneBytes: Int64
    public var startedMs: Int64
    public var finishedMs: Int64?

    public init(epoch: Int64, totalPositions: Int64, totalBytes: Int64, donePositions: Int64 = 0, doneBytes: Int64 = 0,
                startedMs: Int64, finishedMs: Int64? = nil) {
        self.epoch = epoch
        self.totalPositions = totalPositions
        self.totalBytes = totalBytes
        self.donePositions = donePositions
        self.doneBytes = doneBytes
        self.startedMs = startedMs
        self.finishedMs = finishedMs
    }

    enum CodingKeys: String, CodingKey {
        case epoch
        case totalPositions = "total_positions"
        case totalBytes = "total_bytes"
        case donePositions = "done_positions"
        case doneBytes = "done_bytes"
        case startedMs = "started_ms"
        case finishedMs = "finished_ms"
    }
}

public struct VolumeRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "volume"
    public enum State: String, Codable, Sendable, DatabaseValueConvertible {
        case creating, available, deleting
    }
    public var id: String
    public var name: String
    public var className: String
    public var capacityBytes: Int64
    public var state: State
    /// JSON object of the creation parameters (CSI CreateVolume's).
    public var parameters: String
    public var createdMs: Int64
    /// A volume (mountable, writable) or a snapshot (a read-only copy of a volume's namespace).
    public var kind: Kind
    /// What it was made from: `volume:ID` or `snapshot:ID` (nil: made empty).
    public var source: String?

    public enum Kind: String, Codable, Sendable, DatabaseValueConvertible {
        case volume, snapshot
    }

    public init(id: String, name: String, className: String, capacityBytes: Int64, state: State,
                parameters: String = "{}", createdMs: Int64, kind: Kind = .volume, source: String? = nil) {
        self.id = id
        self.name = name
        self.className = className
        self.capacityBytes = capacityBytes
        self.state = state
        self.parameters = parameters
        self.createdMs = createdMs
        self.kind = kind
        self.source = source
    }

    /// The id of the volume or snapshot it was made from, if it was made from `kind`.
    public func source(_ kind: Kind) -> String? {
        guard let source, source.hasPrefix(kind.rawValue + ":") else { return nil }
        return String(source.dropFirst(kind.rawValue.count + 1))
    }

    enum CodingKeys: String, CodingKey {
        case id, name, state, parameters, kind, source
        case className = "class_name"
        case capacityBytes = "capacity_bytes"
        case createdMs = "created_ms"
    }
}

/// One object of a volume's data.
public struct ObjectRecord: Codable, Hashable, Sendable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "object"
    public enum State: String, Codable, Sendable, DatabaseValueConvertible, CaseIterable {
        case writing, live, deleting
    }
    /// 32 hex digits (`Storage.ObjectID`).
    public var id: String
    public var poolID: Int64
    public var pg: Int64
    public var sizeBytes: Int64
    public var state: State
    public var createdMs: Int64

    public init(id: String, poolID: Int64, pg: Int64, sizeBytes: Int64, state: State, createdMs: Int64) {
        self.id = id
        self.poolID = poolID
        self.pg = pg
        self.sizeBytes = sizeBytes
        self.state = state
        self.createdMs = createdMs
    }

    enum CodingKeys: String, CodingKey {
        case id, pg, state
        case poolID = "pool_id"
        case sizeBytes = "size_bytes"
        case createdMs = "created_ms"
    }
}
