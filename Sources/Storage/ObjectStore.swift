import Codec
import Placement
import Synchronization

/// Objects in, shards out: puts an object's shards on its PG's devices, reads it back from
/// whichever shards answer, and moves single shards for recovery and rebalance.
///
/// Thread-safe; every operation blocks until its device I/O is done (callers are FUSE
/// worker threads or the mover, never the cooperative thread pool).
public final class ObjectStore: Sendable {
    /// Where shards live: the current epoch's placement, and for positions whose shards
    /// have not moved there yet, where they still are. Reads fall back to those locations,
    /// deletes clean both, new objects go to the current placement.
    public struct Layout: Sendable {
        public var current: Placer
        /// Per pool, per PG still moving: the device holding each position's shards now.
        public var locations: [UInt32: [Int: [DeviceID]]]

        public init(current: Placer, locations: [UInt32: [Int: [DeviceID]]] = [:]) {
            self.current = current
            self.locations = locations
        }
    }

    /// An object read back, with what went wrong on the way (a degraded read when non-empty).
    public struct ReadResult: Sendable {
        public var bytes: [UInt8]
        /// Unreachable devices, missing shards, checksum failures met while reading.
        public var problems: [StorageError]
        public var isDegraded: Bool { !problems.isEmpty }
    }

    private struct State: Sendable {
        var layout: Layout
        var devices: [DeviceID: any ShardDevice]
        var codecs: [UInt32: PoolCodec]
    }

    private let state: Mutex<State>
    private let degradedReadCount = Atomic<Int>(0)

    /// Reads that had to avoid a device or a bad shard since start (for metrics).
    public var degradedReads: Int { degradedReadCount.load(ordering: .relaxed) }
    private let degradedWriteCount = Atomic<Int>(0)
    /// Puts acknowledged with unreachable members' shards missing since start (for metrics).
    public var degradedWrites: Int { degradedWriteCount.load(ordering: .relaxed) }
    /// How long `put` and `get` take (clients' I/O; the mover's copies are not counted).
    public let clientLatency = ClientLatency()
    private let queues = DeviceQueues()
    private let buffers = BufferPool()
    private let putsInFlight = PutsInFlight()
    /// Tests only: called by every put after it took its placement, before any shard is written.
    let afterPlacement = Mutex<(@Sendable (ObjectID) -> Void)?>(nil)
    /// Which surviving holder the next move reads from first (`moveShard`).
    private let sourceRotation = Atomic<Int>(0)
    /// Tests only: called by every delete before any shard is removed.
    let beforeDelete = Mutex<(@Sendable ([ObjectID]) -> Void)?>(nil)

    public init(layout: Layout, devices: [any ShardDevice], codecs: [PoolCodec]) {
        state = Mutex(State(
            layout: layout,
            devices: Dictionary(devices.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a }),
            codecs: Dictionary(codecs.map { ($0.poolID, $0) }, uniquingKeysWith: { a, _ in a })))
    }

    public var layout: Layout {
        get { state.withLock { $0.layout } }
    }

    public func setLayout(_ layout: Layout) { state.withLock { $0.layout = layout } }
    public func setCodec(_ codec: PoolCodec) { state.withLock { $0.codecs[codec.poolID] = codec } }
    public func attach(_ device: any ShardDevice) { state.withLock { $0.devices[device.id] = device } }
    public func detach(_ device: DeviceID) { state.withLock { _ = $0.devices.removeValue(forKey: device) } }
    public func device(_ id: DeviceID) -> (any ShardDevice)? { state.withLock { $0.devices[id] } }
    public var devices: [any ShardDevice] { state.withLock { Array($0.devices.values) } }

    private func snapshot(_ pool: UInt32) throws(StorageError) -> (State, PoolCodec) {
        let s = state.withLock { $0 }
        return (s, try Self.codec(s, pool))
    }

    private static func codec(_ s: State, _ pool: UInt32) throws(StorageError) -> PoolCodec {
        guard let codec = s.codecs[pool] else { throw .unknownClass("pool \(pool)") }
        return codec
    }

    /// The devices of an object's PG in the current epoch, and where its shards still are if it is moving.
    public func placement(pool: UInt32, object: ObjectID) throws(StorageError) -> (current: [DeviceID], previous: [DeviceID]?) {
        let (s, codec) = try snapshot(pool)
        return try Self.placement(s, codec, object)
    }

    private static func placement(_ s: State, _ codec: PoolCodec, _ object: ObjectID) throws(StorageError)
        -> (current: [DeviceID], previous: [DeviceID]?)
    {
        let pg = object.pg(count: codec.pgCount)
        do {
            let current = try s.layout.current.devices(pool: codec.poolID, pg: pg)
            return (current, s.layout.locations[codec.poolID]?[pg])
        } catch {
            throw .unknownClass("pool \(codec.poolID): \(error)")
        }
    }

    /// Where an object's shards may be: each position on its current device, then, while
    /// its PG moves, on its previous device where that differs.
    private static func locations(_ current: [DeviceID], _ previous: [DeviceID]?) -> [(position: Int, device: DeviceID)] {
        var result = current.enumerated().map { (position: $0.offset, device: $0.element) }
        for (position, device) in (previous ?? []).enumerated() where device != current[position] { result.append((position, device)) }
        return result
    }

    // MARK: put

    /// Stores `bytes` as object `object` of `pool`: every shard written in parallel and
    /// fsynced; returns once they are durable. A degraded write succeeds too: when the only
    /// failures are unreachable devices and at least `PoolCodec.minimumDurable` shards are
    /// durable, it returns the positions left unwritten (the caller records the PG for
    /// recovery). On any other failure the shards already written are removed and the error
    /// is thrown (a full device first, as `noSpace`). Putting the same id again rewrites the
    /// same shards (a retry is idempotent). `renameAfter`: see `ShardStore.write`.
    @discardableResult
    public func put(pool: UInt32, object: ObjectID, bytes: [UInt8], renameAfter: Promise<Bool>? = nil) throws(StorageError) -> [Int] {
        let started = Monotonic.nanoseconds()
        defer { clientLatency.record(since: started) }
        let (s, epoch) = putsInFlight.begin { let s = state.withLock { $0 }; return (s, s.layout.current.map.epoch) }
        defer { putsInFlight.end(epoch: epoch) }
        let codec = try Self.codec(s, pool)
        if let hook = afterPlacement.withLock({ $0 }) { hook(object) }
        guard bytes.count <= codec.objectLimitBytes else {
            throw .objectTooLarge(sizeBytes: bytes.count, limitBytes: codec.objectLimitBytes)
        }
        let targets = try Self.placement(s, codec, object).current
        let errors: [StorageError?]
        switch codec.scheme {
        case .replicated where targets.count == 1:
            // One copy: on this thread when its device is idle (`runOrdered`), its checksums
            // computed as its pieces go out.
            errors = bytes.withUnsafeBytes { payload in
                writeShards(s, object, targets, objectSize: bytes.count, renameAfter: renameAfter) { _ in (SharedBytes(payload), .compute) }
            }
        case .replicated:
            // Every copy is the caller's buffer itself; its block checksums are computed once, here,
            // while the device threads copy the payload into their files.
            errors = bytes.withUnsafeBytes { payload in
                let shared = SharedBytes(payload)
                let promise = Promise<[UInt32]>()
                return writeShards(s, object, targets, objectSize: bytes.count, renameAfter: renameAfter,
                                   meanwhile: { promise.fulfill(CRC32C.blockChecksums(payload, blockSize: ShardHeader.blockSize)) }) { _ in (shared, .promised(promise)) }
            }
        case .erasure(let rs):
            // Encoded into a pooled stripe (no fresh pages to fault in), written from it.
            let length = rs.shardLength(objectSize: bytes.count)
            errors = try buffers.with(size: (rs.k + rs.m) * length) { stripe in
                bytes.withUnsafeBytes { if $0.count > 0 { stripe.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
                // Only the padding after the data needs zeros; parity is overwritten.
                UnsafeMutableRawBufferPointer(rebasing: stripe[bytes.count..<(rs.k * length)]).initializeMemory(as: UInt8.self, repeating: 0)
                rs.encodeParity(stripe: stripe, shardLength: length)
                return writeShards(s, object, targets, objectSize: bytes.count, renameAfter: renameAfter) { position in
                    (SharedBytes(UnsafeRawBufferPointer(rebasing: stripe[(position * length)..<((position + 1) * length)])), .compute)
                }
            }
        }
        let failed = errors.compactMap { $0 }
        guard !failed.isEmpty else { return [] }
        let unreachableOnly = failed.allSatisfy { if case .deviceUnavailable = $0 { true } else { false } }
        if unreachableOnly && targets.count - failed.count >= codec.minimumDurable {
            degradedWriteCount.add(1, ordering: .relaxed)
            return errors.indices.filter { errors[$0] != nil }
        }
        for (position, device) in targets.enumerated() where errors[position] == nil {
            try? s.devices[device]?.delete(object: object, position: position)
        }
        throw failed.first { if case .noSpace = $0 { true } else { false } } ?? failed[0]
    }

    /// Writes shard `position` (bytes given by `shard`) to each target in parallel; the
    /// error of each position, nil where it is durable. The bytes must outlive the call.
    private func writeShards(_ s: State, _ object: ObjectID, _ targets: [DeviceID], objectSize: Int,
                             renameAfter: Promise<Bool>?, meanwhile: (() -> Void)? = nil,
                             shard: (Int) -> (SharedBytes, ShardStore.Checksum)) -> [StorageError?] {
        let jobs: [(device: DeviceID, work: @Sendable () -> StorageError?)] = targets.enumerated().map { position, device in
            let store = s.devices[device]
            let (bytes, crc) = shard(position)
            return (device, {
                guard let store else { return .deviceUnavailable(device, reason: "not attached to this node") }
                do throws(StorageError) {
                    try store.write(object: object, position: position, objectSize: objectSize, payload: bytes.buffer, checksum: crc,
                                    renameAfter: renameAfter)
                    return nil
                } catch { return error }
            })
        }
        if jobs.count == 1 && meanwhile == nil { return [queues.runOrdered(jobs[0].device, jobs[0].work)] }
        return queues.run(jobs, meanwhile: meanwhile)
    }

    /// Blocks until no put placed by an epoch before `epoch` is still writing. The mover
    /// calls it once the new epoch is installed, before listing what a PG holds: from then
    /// on every put writes where `epoch` (or a later one) places it, and every earlier put's
    /// object is listed with its shards complete.
    public func waitForPuts(before epoch: UInt64) { putsInFlight.waitForPuts(before: epoch) }

    /// Tests only: callers blocked in `waitForPuts` now.
    var waitingForPuts: Int { putsInFlight.waiting }

    // MARK: get

    /// Reads the object back. Replicated: the first copy that reads and verifies.
    /// Erasure coded: the k data shards in parallel, then parity (reconstructing) for any
    /// that fail. A PG still moving also looks where its shards were.
    public func get(pool: UInt32, object: ObjectID) throws(StorageError) -> ReadResult {
        let started = Monotonic.nanoseconds()
        defer { clientLatency.record(since: started) }
        return try readWhole(pool: pool, object: object)
    }

    /// `get`, untimed: also the range read's fallback, which its caller times once.
    private func readWhole(pool: UInt32, object: ObjectID) throws(StorageError) -> ReadResult {
        let (s, codec) = try snapshot(pool)
        let (current, previous) = try Self.placement(s, codec, object)
        let (shards, objectSize, problems) = readShards(s, codec, object, candidates: Self.locations(current, previous), need: codec.needed,
                                                        moving: previous != nil)
        guard shards.count >= codec.needed, let objectSize else {
            throw .unreadable(object: "\(object)", reason: "\(shards.count) of \(codec.needed) needed shards readable; "
                + problems.map { "\($0)" }.joined(separator: "; "))
        }
        if !problems.isEmpty { degradedReadCount.add(1, ordering: .relaxed) }
        return ReadResult(bytes: try codec.decode(shards, objectSize: objectSize, object: object), problems: problems)
    }

    /// Reads bytes `range` of the object, verifying only the blocks read: one replica's
    /// range, or for erasure coding the range's pieces of the data shards. `objectSize`
    /// (needed for erasure coding, where it fixes the shard length) comes from the object's
    /// record; without it, or when a piece cannot be read, this reads the whole object the
    /// way `get` does (reconstructing, and counting a degraded read) and cuts the range out.
    public func get(pool: UInt32, object: ObjectID, range: Range<Int>, objectSize: Int?) throws(StorageError) -> ReadResult {
        let started = Monotonic.nanoseconds()
        defer { clientLatency.record(since: started) }
        let (s, codec) = try snapshot(pool)
        let (current, previous) = try Self.placement(s, codec, object)
        func whole(_ problems: [StorageError]) throws(StorageError) -> ReadResult {
            var result = try readWhole(pool: pool, object: object)
            guard range.lowerBound >= 0, range.upperBound <= result.bytes.count else {
                throw .unreadable(object: "\(object)", reason: "range \(range) is outside the \(result.bytes.count)-byte object")
            }
            result.bytes = Array(result.bytes[range])
            result.problems = problems + result.problems
            return result
        }
        if range.isEmpty { return ReadResult(bytes: [], problems: []) }
        switch codec.scheme {
        case .replicated:
            var problems: [StorageError] = []
            for (position, device) in Self.locations(current, previous) {
                guard let store = s.devices[device] else {
                    problems.append(.deviceUnavailable(device, reason: "not attached to this node"))
                    continue
                }
                do throws(StorageError) {
                    let bytes = try store.read(object: object, position: position, range: range).bytes
                    if !problems.isEmpty { degradedReadCount.add(1, ordering: .relaxed) }
                    return ReadResult(bytes: bytes, problems: problems)
                } catch {
                    if previous != nil, case .shardNotFound = error { continue }
                    problems.append(error)
                }
            }
            throw .unreadable(object: "\(object)", reason: "no replica could be read: " + problems.map { "\($0)" }.joined(separator: "; "))
        case .erasure(let rs):
            guard let objectSize, range.upperBound <= objectSize else { return try whole([]) }
            let length = rs.shardLength(objectSize: objectSize)
            // The data shards the range touches, and which bytes of each.
            var pieces: [(position: Int, within: Range<Int>)] = []
            for position in (range.lowerBound / length)...((range.upperBound - 1) / length) {
                let shardRange = (position * length)..<((position + 1) * length)
                let overlap = range.clamped(to: shardRange)
                pieces.append((position, (overlap.lowerBound - shardRange.lowerBound)..<(overlap.upperBound - shardRange.lowerBound)))
            }
            let results = queues.run(pieces.map { piece in
                let device = current[piece.position]
                let store = s.devices[device]
                return (device, { @Sendable () -> Result<[UInt8], StorageError> in
                    guard let store else { return .failure(.deviceUnavailable(device, reason: "not attached to this node")) }
                    do throws(StorageError) { return .success(try store.read(object: object, position: piece.position, range: piece.within).bytes) } catch {
                        return .failure(error)
                    }
                })
            })
            var bytes: [UInt8] = []
            bytes.reserveCapacity(range.count)
            var problems: [StorageError] = []
            for result in results {
                switch result {
                case .success(let part): bytes += part
                case .failure(let error):
                    // Not yet copied to its new device while the PG moves: not a problem.
                    if previous != nil, case .shardNotFound = error {} else { problems.append(error) }
                }
            }
            if bytes.count == range.count && problems.isEmpty { return ReadResult(bytes: bytes, problems: []) }
            return try whole(problems)
        }
    }

    /// Reads shards from `candidates` until `need` distinct positions verified. Positions
    /// are tried in order: the first `need` in parallel, then the rest in parallel.
    private func readShards(_ s: State, _ codec: PoolCodec, _ object: ObjectID,
                            candidates: [(position: Int, device: DeviceID)], need: Int, moving: Bool)
        -> (shards: [Int: [UInt8]], objectSize: Int?, problems: [StorageError])
    {
        var shards: [Int: [UInt8]] = [:]
        var objectSize: Int? = nil
        var problems: [StorageError] = []
        var remaining = candidates[...]
        while shards.count < need && !remaining.isEmpty {
            // Replicated reads go one copy at a time; EC reads the missing count at once.
            let width = codec.needed == 1 ? 1 : max(1, need - shards.count)
            var batch: [(position: Int, device: DeviceID)] = []
            while batch.count < width, let next = remaining.first {
                remaining = remaining.dropFirst()
                if shards[next.position] == nil && !batch.contains(where: { $0.position == next.position }) { batch.append(next) }
            }
            if batch.isEmpty { continue }
            let results = queues.run(batch.map { candidate in
                let store = s.devices[candidate.device]
                return (candidate.device, { @Sendable () -> Result<ShardStore.Shard, StorageError> in
                    guard let store else { return .failure(.deviceUnavailable(candidate.device, reason: "not attached to this node")) }
                    do throws(StorageError) { return .success(try store.read(object: object, position: candidate.position)) } catch {
                        return .failure(error)
                    }
                })
            })
            for (candidate, result) in zip(batch, results) {
                switch result {
                case .success(let shard):
                    shards[candidate.position] = shard.payload
                    objectSize = objectSize ?? shard.objectSize
                case .failure(let error):
                    // A shard not yet copied to its new device is expected while its PG moves.
                    if moving, case .shardNotFound = error { continue }
                    problems.append(error)
                }
            }
        }
        return (shards, objectSize, problems)
    }

    // MARK: delete

    /// Removes every shard of the object, on the current devices and (while its PG moves)
    /// where its shards still are. Returns the devices that could not be reached: their shards are
    /// orphans for garbage collection.
    @discardableResult
    public func delete(pool: UInt32, object: ObjectID) throws(StorageError) -> [StorageError] {
        try delete(pool: pool, objects: [object])
    }

    /// Removes every shard of each object, as `delete(pool:object:)` does for one: each
    /// device removes all of its shards at once, the devices in parallel, and syncs each
    /// directory once (`ShardStore.delete(_:)`). Returns what failed.
    @discardableResult
    public func delete(pool: UInt32, objects: [ObjectID]) throws(StorageError) -> [StorageError] {
        if let hook = beforeDelete.withLock({ $0 }) { hook(objects) }
        let (s, codec) = try snapshot(pool)
        var perDevice: [DeviceID: [(object: ObjectID, position: Int)]] = [:]
        for object in objects {
            let (current, previous) = try Self.placement(s, codec, object)
            for target in Self.locations(current, previous) {
                perDevice[target.device, default: []].append((object, target.position))
            }
        }
        let results = queues.run(perDevice.map { device, shards in
            let store = s.devices[device]
            return (device, { @Sendable () -> [StorageError] in
                guard let store else { return [.deviceUnavailable(device, reason: "not attached to this node")] }
                return store.delete(shards)
            })
        })
        return results.flatMap { $0 }
    }

    // MARK: moving one shard

    /// Puts shard `position` of the object on device `to`: copied from `from` when that
    /// device still answers and its copy verifies, otherwise rebuilt from the object's
    /// other shards (any copy, or any k for EC) on the current and previous devices.
    /// Idempotent: a shard already on `to` with a sound header and block table is kept
    /// (`ShardDevice.hasShard`: its payload is not read, so a remote one does not travel;
    /// scrubbing verifies payloads). Returns the bytes written (the shard file: header and
    /// payload), 0 if it was already there.
    @discardableResult
    public func moveShard(pool: UInt32, object: ObjectID, position: Int, from: DeviceID?, to: DeviceID) throws(StorageError) -> Int {
        let (s, codec) = try snapshot(pool)
        guard let target = s.devices[to] else { throw .deviceUnavailable(to, reason: "not attached to this node") }
        if try target.hasShard(object: object, position: position) { return 0 }
        var payload: [UInt8]
        var objectSize: Int
        if let from, let source = s.devices[from], let shard = try? source.read(object: object, position: position) {
            payload = shard.payload
            objectSize = shard.objectSize
        } else {
            let (current, previous) = try Self.placement(s, codec, object)
            // The other positions' holders, each move starting with the next in turn, so a
            // rebuild reads from all of them evenly rather than from the first copy of every
            // PG (by object id it was uneven: ids of one PG share bits; a CI run read 31 of 40
            // from one holder); the position's own device (lost, or being left) last.
            var candidates: [(position: Int, device: DeviceID)] = current.enumerated().filter { $0.offset != position }.map { ($0.offset, $0.element) }
            if candidates.count > 1 {
                let first = sourceRotation.add(1, ordering: .relaxed).oldValue % candidates.count
                candidates = Array(candidates[first...] + candidates[..<first])
            }
            if position < current.count && current[position] != to { candidates.append((position, current[position])) }
            for (p, d) in (previous ?? []).enumerated() where d != current[p] && d != to { candidates.append((p, d)) }
            if let from { candidates.append((position, from)) }
            let (shards, size, problems) = readShards(s, codec, object, candidates: candidates, need: codec.needed, moving: true)
            guard shards.count >= codec.needed, let size else {
                throw .unreadable(object: "\(object)", reason: "cannot rebuild shard \(position): "
                    + problems.map { "\($0)" }.joined(separator: "; "))
            }
            payload = try codec.rebuild(position: position, from: shards, object: object)
            objectSize = size
        }
        try target.write(object: object, position: position, objectSize: objectSize, bytes: payload)
        return ShardHeader.fileBytes(payloadLength: payload.count)
    }
}

/// A borrowed buffer handed to device queues; `DeviceQueues.run` waits for every job, so
/// the bytes outlive their use.
struct SharedBytes: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer
    init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }
}
