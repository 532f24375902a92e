import Dispatch
import Foundation
import Metadata
import Placement
import Storage
import Synchronization

/// One (pool, PG, position) whose shards are not where the current map places them.
public struct PendingPosition: Sendable, Hashable {
    public var pool: UInt32
    public var pg: Int
    public var position: Int
    public var from: DeviceID
    public var to: DeviceID
    /// The shards must be rebuilt (their device is not up) rather than copied.
    public var recovery: Bool
}

/// What one `move` call did.
public struct MoveResult: Sendable, Equatable {
    public var positions: Int
    public var bytes: Int64
    public var failures: [String]
    /// Positions still pending when it returned.
    public var remaining: Int
}

extension Engine {
    /// Every position to move, recovery (lost redundancy) first, then balance moves.
    func pendingPositions(_ s: State) -> [PendingPosition] {
        var recovery: [PendingPosition] = [], balance: [PendingPosition] = []
        for pool in s.locations.keys.sorted() {
            guard let locations = s.locations[pool], let targets = s.targets[pool] else { continue }
            for (pg, devices) in locations.enumerated() where pg < targets.count {
                for (position, from) in devices.enumerated() where position < targets[pg].count && from != targets[pg][position] {
                    let up = s.map.device(from)?.state == .up && (objects.device(from)?.isReachable ?? false)
                    let p = PendingPosition(pool: pool, pg: pg, position: position, from: from, to: targets[pg][position], recovery: !up)
                    if up { balance.append(p) } else { recovery.append(p) }
                }
            }
        }
        return recovery + balance
    }

    public func pendingPositions() -> [PendingPosition] { pendingPositions(state.withLock { $0 }) }

    /// The mover's budget now (`RebuildBudget`): bytes per second (nil: unlimited), and the
    /// clients' p99 without movement, in seconds (nil: not seen yet).
    public var moverBudget: (bytesPerSecond: Double?, baselineP99Seconds: Double?) {
        (throttle.bytesPerSecond, throttle.budget.baseline)
    }

    /// The objects of one PG, over every volume of its class, from the object index
    /// (after its pending changes are committed): every object whose shards may be on the
    /// PG's devices, in any state. What the mover copies (an object being deleted meanwhile
    /// is skipped), and what cleaning a device after a move deletes.
    func objectsIn(pool: UInt32, pg: Int) throws(EngineError) -> [IndexedObject] {
        try index.flush()
        return try EngineError.wrap { try database.indexedObjects(poolID: pool, pg: pg) }
    }

    /// Bytes each of `positions` holds (shard files, headers included), added up: one
    /// query per pool, whatever the number of volumes.
    func movementBytes<S: Sequence>(_ positions: S) throws(EngineError) -> Int64 where S.Element == (pool: UInt32, pg: Int) {
        try index.flush()
        var byPool: [UInt32: [Int: Int64]] = [:]
        var total: Int64 = 0
        for (pool, pg) in positions {
            if byPool[pool] == nil { byPool[pool] = try EngineError.wrap { try database.positionBytes(poolID: pool) } }
            total += byPool[pool]?[pg] ?? 0
        }
        return total
    }

    /// Executes pending movement under the node's budget (`moverBytesPerSecond`,
    /// `moverConcurrency`): for each position, every live object's shard is copied or
    /// rebuilt on the new device and verified, then the position's location switches in
    /// one transaction and the old shards are deleted. Safe to interrupt at any point
    /// (a crash included): the next call redoes at most the positions not yet switched,
    /// and copies already made are kept. Stops after `maxPositions` if given.
    @discardableResult
    public func move(maxPositions: Int? = nil) -> MoveResult {
        // Volumes a dead node left in use: their index made exact before anything moves
        // (every 10 s at most: each is a lease to try).
        let due = abandonedSweep.withLock { last in
            defer { if last == nil || ContinuousClock.now - last! >= .seconds(10) { last = .now } }
            return last == nil || ContinuousClock.now - last! >= .seconds(10)
        }
        if due { _ = try? reconcileAbandonedVolumes() }
        return moverLock.withLock { _ in
            let s = state.withLock { $0 }
            // A put that took its placement from an older epoch may still be writing a
            // shard to a position's old device; listing the PG before it ends would miss it.
            objects.waitForPuts(before: s.map.epoch)
            let all = pendingPositions(s)
            let jobs = maxPositions.map { Array(all.prefix($0)) } ?? all
            let epoch = Int64(s.map.epoch)
            let next = Mutex(0)
            let results = Mutex(MoveResult(positions: 0, bytes: 0, failures: [], remaining: 0))
            let group = DispatchGroup()
            // One serial queue per worker (libdispatch's overcommitting pool): a concurrent
            // queue shares the global pool's one thread per CPU with Swift concurrency, and
            // workers blocked in I/O there would starve it and the work they wait for.
            for worker in 0..<min(configuration.moverConcurrency, max(1, jobs.count)) {
                DispatchQueue(label: "berth.mover.\(worker)").async(group: group) {
                    while true {
                        let index = next.withLock { i -> Int in defer { i += 1 }; return i }
                        guard index < jobs.count else { return }
                        do throws(EngineError) {
                            let bytes = try self.moveOne(jobs[index], epoch: epoch)
                            results.withLock { $0.positions += 1; $0.bytes += bytes }
                        } catch {
                            let job = jobs[index]
                            results.withLock { $0.failures.append("pool \(job.pool) pg \(job.pg) position \(job.position): \(error)") }
                        }
                    }
                }
            }
            group.wait()
            try? processCleanups()
            var result = results.withLock { $0 }
            // Then what degraded writes left missing, where every member answers again.
            let recovered = recoverDegradedPGs(state.withLock { $0 })
            result.bytes += recovered.bytes
            result.failures += recovered.failures
            result.remaining = pendingPositions().count
            if result.remaining == 0, let movement = try? database.latestMovement(), movement.finishedMs == nil {
                try? database.recordProgress(epoch: movement.epoch, positions: 0, bytes: 0, finished: true)
            }
            return result
        }
    }

    private func moveOne(_ job: PendingPosition, epoch: Int64) throws(EngineError) -> Int64 {
        var bytes: Int64 = 0
        for object in try objectsIn(pool: job.pool, pg: job.pg) {
            guard let id = ObjectID(object.id) else { continue }
            do {
                bytes += Int64(try budgetedMove(pool: job.pool, object: id, shardBytes: object.shardBytes, position: job.position,
                                                from: job.from, to: job.to))
            } catch {
                if case .unreadable = error {
                    // Deleted while we moved it (or being deleted): nothing to keep.
                    guard let now = try objectRecord(object), now.state != .deleting else { continue }
                    // Still writing and nowhere to be read: a put of this epoch writing to the
                    // new device itself, or one that failed and is taking its row away.
                    if now.state == .writing { continue }
                }
                throw .storage(error)
            }
        }
        try EngineError.wrap {
            try database.switchLocation(poolID: job.pool, pg: job.pg, position: job.position, from: job.from, to: job.to,
                                        movedBytes: bytes, epoch: epoch)
        }
        // Under the state lock so concurrent workers install layouts in order.
        state.withLock { st in
            st.locations[job.pool]?[job.pg][job.position] = job.to
            objects.setLayout(Self.layout(st))
        }
        return bytes
    }

    /// Copies (or, `from` nil, rebuilds) one shard within the mover's budget: the shard's
    /// bytes are taken from the budget first and given back when it was already in place (a
    /// copy made before an interruption; most shards of a recovery pass). Bytes written.
    func budgetedMove(pool: UInt32, object: ObjectID, shardBytes: Int64, position: Int, from: DeviceID?,
                      to: DeviceID) throws(StorageError) -> Int {
        throttle.acquire(Int(shardBytes))
        let moved = try objects.moveShard(pool: pool, object: object, position: position, from: from, to: to)
        if moved == 0 { throttle.refund(Int(shardBytes)) }
        return moved
    }

    /// The record of an indexed object in its volume's database (nil: gone, or its volume is).
    private func objectRecord(_ object: IndexedObject) throws(EngineError) -> ObjectRecord? {
        guard let volume = try EngineError.wrap({ try database.volume(id: object.volumeID) }), volume.state == .available else { return nil }
        if let store = database.namespaceStore, volumeDatabases.withLock({ $0[object.volumeID] }) == nil {
            // Mounted on another node (or nowhere): this node's copy may be stale or absent;
            // the store's is what its last writer shipped. An object it does not know yet may
            // be one written since: not skipped, the move is tried again later.
            guard let state = try EngineError.wrap({ try store.objectState(volumeID: object.volumeID, objectID: object.id) }) else {
                throw .busy("object \(object.id) of volume \(object.volumeID) is unreadable and not shipped yet")
            }
            return ObjectRecord(id: object.id, poolID: object.poolID, pg: object.pg, sizeBytes: object.sizeBytes, state: state, createdMs: 0)
        }
        return try EngineError.wrap { try temporaryVolumeDatabase(object.volumeID).object(id: object.id) }
    }

    /// Deletes shards left on devices by finished moves, then forgets each cleanup row.
    /// A device that cannot be reached keeps its row until it can (or is removed).
    func processCleanups() throws(EngineError) {
        let s = state.withLock { $0 }
        for cleanup in try EngineError.wrap({ try database.cleanups() }) {
            let device = DeviceID(cleanup.device)
            let stillLocated = s.locations[UInt32(cleanup.poolID)]?[Int(cleanup.pg)][Int(cleanup.position)] == device
            if !stillLocated {
                if let store = objects.device(device) {
                    guard store.isReachable else { continue }
                    for object in try objectsIn(pool: UInt32(cleanup.poolID), pg: Int(cleanup.pg)) {
                        guard let id = ObjectID(object.id) else { continue }
                        // Keep it if the device holds this position again in the current placement.
                        if s.targets[UInt32(cleanup.poolID)]?[Int(cleanup.pg)][Int(cleanup.position)] == device { break }
                        try? store.delete(object: id, position: Int(cleanup.position))
                    }
                } else if s.map.device(device) != nil {
                    continue  // known but not attached here: wait for it
                }
            }
            try EngineError.wrap { try database.commit([.removeCleanup(cleanup)]) }
        }
    }
}
