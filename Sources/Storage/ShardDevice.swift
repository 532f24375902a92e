import Placement

/// A device as the object store sees it: a place that keeps shards durably and hands them
/// back verified. `ShardStore` is the local one (a directory on this host); a device of
/// another host is reached through that host's node agent (`RemoteShardDevice` in the
/// NodeAgent module). The object store places, fans out, reads and rebuilds through this
/// protocol only, so the same code serves the embedded default and the cluster.
///
/// Calls block until the device answered (callers are FUSE worker threads, the mover and
/// device queues, never the cooperative thread pool). Errors are `StorageError`s that name
/// the device; an unreachable device says `deviceUnavailable`.
public protocol ShardDevice: AnyObject, Sendable {
    var id: DeviceID { get }
    var capacityBytes: Int { get }
    /// Bytes of shard files on the device (a remote device: as of its last report).
    var usedBytes: Int { get }
    /// Whether the device answers now (a remote device: its host's agent is not silent).
    /// Cheap: no I/O beyond a local access check.
    var isReachable: Bool { get }

    /// Stores one shard durably (data and name) before returning; a retry replaces it.
    /// `renameAfter`: the shard takes its name only once this says true, false abandons it
    /// (`ShardStore.write`).
    func write(object: ObjectID, position: Int, objectSize: Int, payload: UnsafeRawBufferPointer,
               checksum: ShardStore.Checksum, renameAfter: Promise<Bool>?) throws(StorageError)
    /// One shard, read back whole and verified.
    func read(object: ObjectID, position: Int) throws(StorageError) -> ShardStore.Shard
    /// Bytes `range` of one shard's payload, verified, with the object's size.
    func read(object: ObjectID, position: Int, range: Range<Int>) throws(StorageError) -> (bytes: [UInt8], objectSize: Int)
    /// Removes shards (absent ones count as removed) durably; what failed.
    func delete(_ shards: [(object: ObjectID, position: Int)]) -> [StorageError]
    /// Every shard on the device (scrub, recovery, garbage collection).
    func allShards() throws(StorageError) -> [(object: ObjectID, position: Int)]
    /// Whether the shard is there with a sound header and block table (its payload is not
    /// read: a cheap check for recovery and moves, where a remote read would carry it).
    func hasShard(object: ObjectID, position: Int) throws(StorageError) -> Bool
    /// Whether another host serves it (its reachability is its host's heartbeat).
    var isRemote: Bool { get }
}

extension ShardDevice {
    public var isRemote: Bool { false }

    public var freeBytes: Int { max(0, capacityBytes - usedBytes) }

    /// `write` with the checksums computed here and no rename condition.
    public func write(object: ObjectID, position: Int, objectSize: Int, bytes: [UInt8]) throws(StorageError) {
        // withUnsafeBytes rethrows untyped errors: carry ours out as a value.
        let failure = bytes.withUnsafeBytes { buffer -> StorageError? in
            do throws(StorageError) {
                try write(object: object, position: position, objectSize: objectSize, payload: buffer, checksum: .compute, renameAfter: nil)
                return nil
            } catch { return error }
        }
        if let failure { throw failure }
    }

    /// Removes one shard; removing one that is not there succeeds.
    public func delete(object: ObjectID, position: Int) throws(StorageError) {
        if let failure = delete([(object, position)]).first { throw failure }
    }
}

/// Opens devices that other hosts serve through their node agents. The engine is given one
/// when it runs in a cluster (the NodeAgent module's `AgentDirectory`); without one it has
/// local devices only.
public protocol DeviceConnector: Sendable {
    /// Device `id` of host `host`, whose agent listens at `address` (HOST:PORT).
    /// `verify`: ask the agent now and fail unless it serves the device (adding a device);
    /// otherwise the device is returned at once and reports itself unreachable while its
    /// agent is silent (a restart with a host down). `capacityBytes`: as recorded, until
    /// the agent reports its own.
    func device(id: DeviceID, host: String, address: String, capacityBytes: Int, verify: Bool) throws(StorageError) -> any ShardDevice
}
