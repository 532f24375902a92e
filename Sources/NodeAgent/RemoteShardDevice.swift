import AgentProtocol
import Foundation
import GRPCCore
import Placement
import Storage
import Synchronization

/// A device of another host, reached through its node agent (`AgentConnection`). Writes
/// stream the payload while the writer's object row commits, then send the checksums and
/// the commit decision (`PutShard`); reads are verified on the agent. A host that does not
/// answer makes its devices unreachable (reads go to other holders) within
/// `AgentConnection.silenceMs`, and every call has a deadline.
public final class RemoteShardDevice: ShardDevice {
    public let id: DeviceID
    let connection: AgentConnection
    private let recordedCapacity: Int
    /// Bytes used as the last put's reply said, and when (monotonic ms): newer than the
    /// last status report, it wins; older, the report does.
    private let used = Atomic<Int>(0)
    private let usedMs = Atomic<Int64>(0)

    static let deleteBatch = 10_000

    init(id: DeviceID, connection: AgentConnection, capacityBytes: Int) {
        self.id = id
        self.connection = connection
        recordedCapacity = capacityBytes
    }

    private var reported: Berth_Agent_V1_StatusReply.Device? {
        connection.status?.devices.first { $0.id == id.rawValue }
    }

    public var capacityBytes: Int { reported.map { Int($0.capacityBytes) } ?? recordedCapacity }
    public var usedBytes: Int {
        let fromPut = used.load(ordering: .relaxed)
        guard let reported else { return fromPut }
        return usedMs.load(ordering: .relaxed) > connection.statusArrivedMs ? fromPut : Int(reported.usedBytes)
    }
    public var isReachable: Bool { connection.isResponsive && (reported?.reachable ?? false) }
    public var isRemote: Bool { true }

    private func ref(_ object: ObjectID, _ position: Int) -> Berth_Agent_V1_ShardRef {
        Berth_Agent_V1_ShardRef(device: id.rawValue, object, position: position)
    }

    /// Fails at once while the host is silent, instead of waiting for a call's deadline.
    private func requireResponsive() throws(StorageError) {
        guard connection.isResponsive else {
            throw .deviceUnavailable(id, reason: "host \(connection.node) (\(connection.address)) is not answering")
        }
    }

    private func call<T: Sendable>(_ shard: String, _ work: @escaping @Sendable () async throws -> T) throws(StorageError) -> T {
        try outcome(AgentConnection.wait(work), shard: shard)
    }

    /// A call's answer, counted as a sign of life (or its failure, as the connection's and
    /// as the storage error it means for `shard`).
    private func outcome<T>(_ result: Result<T, any Error>, shard: String) throws(StorageError) -> T {
        switch result {
        case .success(let value):
            connection.heard()
            return value
        case .failure(let error):
            connection.failed(error)
            throw AgentErrors.storageError(error, device: id, shard: shard, agent: "\(connection.node) (\(connection.address))")
        }
    }

    public func write(object: ObjectID, position: Int, objectSize: Int, payload: UnsafeRawBufferPointer,
                      checksum: ShardStore.Checksum, renameAfter: Promise<Bool>?) throws(StorageError) {
        try requireResponsive()
        var start = Berth_Agent_V1_PutShardMessage()
        start.start.shard = ref(object, position)
        start.start.objectSize = UInt64(objectSize)
        start.start.payloadLength = UInt64(payload.count)
        // The payload is copied into messages now: the caller's buffer lives for this call only.
        var messages = [start]
        var offset = 0
        while offset < payload.count {
            let n = min(AgentService.pieceBytes, payload.count - offset)
            var piece = Berth_Agent_V1_PutShardMessage()
            piece.data = Data(UnsafeRawBufferPointer(rebasing: payload[offset..<(offset + n)]))
            messages.append(piece)
            offset += n
        }
        let (stream, continuation) = AsyncStream<Berth_Agent_V1_PutShardMessage>.makeStream()
        for message in messages { continuation.yield(message) }
        let agent = connection.agent
        let finished = Promise<Result<Berth_Agent_V1_PutShardReply, any Error>>()
        Task(executorPreference: AgentExecutor.shared) {
            do {
                let reply = try await agent.putShard(options: AgentConnection.options(AgentConnection.dataTimeout)) { writer in
                    for await message in stream { try await writer.write(message) }
                }
                finished.fulfill(.success(reply))
            } catch { finished.fulfill(.failure(error)) }
        }
        // While the payload travels: the checksums (computed by the caller meanwhile, or by
        // the agent) and whether the object's row is durable.
        var finish = Berth_Agent_V1_PutShardMessage()
        switch checksum {
        case .compute: break
        case .known(let table): finish.finish.blockChecksums = table
        case .promised(let promise): finish.finish.blockChecksums = promise.value()
        }
        finish.finish.commit = renameAfter?.value() ?? true
        continuation.yield(finish)
        continuation.finish()
        let shard = "\(object).\(position)"
        let reply = try outcome(finished.value(), shard: shard)
        used.store(Int(reply.deviceUsedBytes), ordering: .relaxed)
        usedMs.store(Monotonic.milliseconds(), ordering: .relaxed)
        if !reply.stored {
            throw .io(device: id, operation: "write of \(shard), abandoned: its object could not be recorded", errno: ECANCELED)
        }
    }

    public func read(object: ObjectID, position: Int) throws(StorageError) -> ShardStore.Shard {
        let (bytes, size) = try read(object, position, range: nil)
        return ShardStore.Shard(payload: bytes, objectSize: size)
    }

    public func read(object: ObjectID, position: Int, range: Range<Int>) throws(StorageError) -> (bytes: [UInt8], objectSize: Int) {
        try read(object, position, range: range)
    }

    private func read(_ object: ObjectID, _ position: Int, range: Range<Int>?) throws(StorageError) -> ([UInt8], Int) {
        try requireResponsive()
        var request = Berth_Agent_V1_ReadShardRequest()
        request.shard = ref(object, position)
        if let range {
            request.ranged = true
            request.offset = UInt64(range.lowerBound)
            request.length = UInt64(range.count)
            if UInt64(range.count) <= AgentService.maxExchangeRead && connection.exchange.isSupported {
                let answer = connection.exchange.call(.read(request), timeout: AgentConnection.dataTimeout)
                // An agent of an older version answers UNIMPLEMENTED: one RPC per read then.
                if case .failure(let error as RPCError) = answer, error.code == .unimplemented {} else {
                    let reply = try outcome(answer, shard: "\(object).\(position)")
                    return ([UInt8](reply.read.data), Int(reply.read.objectSize))
                }
            }
        }
        let agent = connection.agent
        let message = request
        return try call("\(object).\(position)") {
            try await agent.readShard(message, options: AgentConnection.options(AgentConnection.dataTimeout)) { response in
                var bytes: [UInt8] = []
                var objectSize = 0
                var first = true
                for try await reply in response.messages {
                    if first {
                        objectSize = Int(reply.objectSize)
                        first = false
                        // No shard's payload is larger than its object: room for all of it
                        // at once, not a copy per doubling (pages not written are never touched).
                        bytes.reserveCapacity(min(max(objectSize, 0), AgentService.maxShardBytes))
                    }
                    bytes.append(contentsOf: reply.data)
                }
                return (bytes, objectSize)
            }
        }
    }

    public func hasShard(object: ObjectID, position: Int) throws(StorageError) -> Bool {
        do {
            // An empty range: the agent opens the shard and checks its header and table only.
            _ = try read(object, position, range: 0..<0)
            return true
        } catch {
            if case .shardNotFound = error { return false }
            if case .corruptShard = error { return false }
            throw error
        }
    }

    public func delete(_ shards: [(object: ObjectID, position: Int)]) -> [StorageError] {
        if shards.isEmpty { return [] }
        // Requests stay far below the agent's 2 MiB message limit.
        if shards.count > Self.deleteBatch {
            return stride(from: 0, to: shards.count, by: Self.deleteBatch).flatMap { start in
                delete(Array(shards[start..<min(shards.count, start + Self.deleteBatch)]))
            }
        }
        var request = Berth_Agent_V1_DeleteShardsRequest()
        request.device = id.rawValue
        request.shards = shards.map { Berth_Agent_V1_ShardID($0.object, position: $0.position) }
        let agent = connection.agent
        let message = request
        do throws(StorageError) {
            let reply = try call("\(shards.count) shards") {
                try await agent.deleteShards(message, options: AgentConnection.options(AgentConnection.dataTimeout))
            }
            return reply.failures.map { .io(device: id, operation: "delete on host \(connection.node): \($0)", errno: EIO) }
        } catch {
            return [error]
        }
    }

    public func allShards() throws(StorageError) -> [(object: ObjectID, position: Int)] {
        var request = Berth_Agent_V1_ListShardsRequest()
        request.device = id.rawValue
        let agent = connection.agent
        let message = request
        let listed: [Berth_Agent_V1_ShardID] = try call("every shard") {
            try await agent.listShards(message, options: AgentConnection.options(.seconds(300))) { response in
                var all: [Berth_Agent_V1_ShardID] = []
                for try await reply in response.messages { all += reply.shards }
                return all
            }
        }
        return listed.map { ($0.object, Int($0.position)) }
    }
}
