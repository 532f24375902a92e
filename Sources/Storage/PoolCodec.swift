import Codec
import Placement
import StorageClasses

/// How one pool turns an object into the shards its PG's devices store, and back.
public struct PoolCodec: Sendable {
    public enum Scheme: Sendable {
        /// `copies` identical shards (a single copy is `copies == 1`).
        case replicated(copies: Int)
        case erasure(ReedSolomon)
    }

    public let poolID: UInt32
    public let pgCount: Int
    public let scheme: Scheme
    /// The largest object `ObjectStore.put` takes (`StorageClass.objectLimitBytes`).
    public let objectLimitBytes: Int

    public init(poolID: UInt32, pgCount: Int, scheme: Scheme, objectLimitBytes: Int) {
        self.poolID = poolID
        self.pgCount = pgCount
        self.scheme = scheme
        self.objectLimitBytes = objectLimitBytes
    }

    /// The codec of a storage class's pool.
    public init(poolID: UInt32, storageClass: StorageClass) throws(StorageError) {
        let scheme: Scheme
        switch storageClass.redundancy {
        case .replicated(let copies): scheme = .replicated(copies: copies)
        case .single: scheme = .replicated(copies: 1)
        case .erasure(let k, let m):
            do { scheme = .erasure(try ReedSolomon(k: k, m: m)) } catch {
                throw .unknownClass("\(storageClass.name): \(error)")
            }
        }
        self.init(poolID: poolID, pgCount: storageClass.pgCount, scheme: scheme, objectLimitBytes: storageClass.objectLimitBytes)
    }

    public var width: Int {
        switch scheme {
        case .replicated(let copies): copies
        case .erasure(let rs): rs.k + rs.m
        }
    }

    /// Shards a write must make durable to be acknowledged while members are unreachable
    /// (a degraded write): all but one copy (one of one), or k + 1 of an erasure code
    /// (k of k + 0), so that one more failure still leaves the object readable.
    public var minimumDurable: Int {
        switch scheme {
        case .replicated(let copies): max(1, copies - 1)
        case .erasure(let rs): rs.m == 0 ? rs.k : rs.k + 1
        }
    }

    /// Shards needed to read the object back.
    public var needed: Int {
        switch scheme {
        case .replicated: 1
        case .erasure(let rs): rs.k
        }
    }

    /// Bytes stored on one device for an object of `size` bytes (payload, without header).
    public func shardPayloadBytes(objectSize size: Int) -> Int {
        switch scheme {
        case .replicated: size
        case .erasure(let rs): rs.shardLength(objectSize: size)
        }
    }

    /// The object from the shards read (position → payload).
    func decode(_ shards: [Int: [UInt8]], objectSize: Int, object: ObjectID) throws(StorageError) -> [UInt8] {
        switch scheme {
        case .replicated:
            guard let any = shards.values.first else { throw .unreadable(object: "\(object)", reason: "no replica could be read") }
            return any
        case .erasure(let rs):
            do { return try rs.decode(available: shards, objectSize: objectSize) } catch {
                throw .unreadable(object: "\(object)", reason: "\(error)")
            }
        }
    }

    /// One position's shard rebuilt from the others read (position → payload).
    func rebuild(position: Int, from shards: [Int: [UInt8]], object: ObjectID) throws(StorageError) -> [UInt8] {
        if let own = shards[position] { return own }
        switch scheme {
        case .replicated:
            guard let any = shards.values.first else { throw .unreadable(object: "\(object)", reason: "no replica could be read") }
            return any
        case .erasure(let rs):
            do { return try rs.reconstruct(available: shards, wanted: [position])[position]! } catch {
                throw .unreadable(object: "\(object)", reason: "\(error)")
            }
        }
    }
}
