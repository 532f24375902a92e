import AgentProtocol
import Codec
import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Placement
import Storage
import Synchronization

/// The node agent: this host's devices, served to the cluster (proto/agent.proto). Every
/// request is checked before it touches a device (known device, sane position and sizes);
/// a malformed one gets INVALID_ARGUMENT and the agent goes on serving others. Device I/O
/// runs on dispatch threads, never on the cooperative pool.
public final class AgentService: Berth_Agent_V1_NodeAgent.SimpleServiceProtocol {
    /// The node id this agent serves as (its certificate's).
    public let node: String
    let devices: [DeviceID: ShardStore]
    let startedMs = UInt64(Date().timeIntervalSince1970 * 1000)
    private let shutdown = ShutdownSignal()

    /// The largest shard payload a put may announce (an object limit of 256 MiB, replicated).
    public static let maxShardBytes = 256 << 20
    /// Payload bytes per streamed message.
    public static let pieceBytes = 1 << 20
    /// Shard positions are below this (the widest layout is far narrower).
    static let maxPosition: UInt32 = 255

    /// HTTP/2 frames and flow-control window of the agent's connections, both ways. The
    /// transport's defaults (16 KiB frames; a 64 KiB window on the server) made a 4 MiB
    /// shard's put wait for some 64 window updates, each a round trip through both hosts'
    /// event loops; a 16 MiB window lets a few shards stream at once. Frames of 256 KiB:
    /// with 16 KiB ones a 4 KiB read took three times as long (agent-bench, three rounds),
    /// and 1 MiB ones were no faster for 1–4 MiB transfers.
    public static let maxFrameBytes = 256 << 10
    public static let windowBytes = 16 << 20

    /// The agent's server transport settings: payload pieces are 1 MiB and a `finish`
    /// carries a 4 MiB shard's checksums (2 MiB per message); clients ping every 2 s.
    public static var transportConfig: HTTP2ServerTransport.Posix.Config {
        .defaults { config in
            config.http2.maxFrameSize = maxFrameBytes
            config.http2.targetWindowSize = windowBytes
            config.rpc.maxRequestPayloadSize = 2 << 20
            config.connection.keepalive.clientBehavior = .init(minPingIntervalWithoutCalls: .seconds(1), allowWithoutCalls: true)
            config.channelDebuggingCallbacks.onAcceptTCPConnection = PlaintextRepacker.install
        }
    }

    public init(node: String, devices: [ShardStore]) {
        self.node = node
        self.devices = Dictionary(devices.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private func store(_ id: String) throws(RPCError) -> ShardStore {
        guard let store = devices[DeviceID(id)] else {
            throw RPCError(code: .failedPrecondition, message: "this agent (node \(node)) serves no device \"\(id)\"; it serves \(devices.keys.map(\.rawValue).sorted())")
        }
        return store
    }

    private func shard(_ ref: Berth_Agent_V1_ShardRef) throws(RPCError) -> (ShardStore, ObjectID, Int) {
        guard ref.position <= Self.maxPosition else { throw AgentErrors.invalid("shard position \(ref.position) is out of range") }
        return (try store(ref.device), ref.object, Int(ref.position))
    }

    // MARK: put

    public func putShard(request: RPCAsyncSequence<Berth_Agent_V1_PutShardMessage, any Error>,
                         context: ServerContext) async throws -> Berth_Agent_V1_PutShardReply {
        var messages = request.makeAsyncIterator()
        guard case .start(let start)? = try await messages.next()?.kind else {
            throw AgentErrors.invalid("a put begins with a `start` message")
        }
        let (store, object, position) = try shard(start.shard)
        guard start.payloadLength <= UInt64(Self.maxShardBytes) else {
            throw AgentErrors.invalid("a \(start.payloadLength)-byte shard exceeds the agent's limit of \(Self.maxShardBytes) bytes")
        }
        guard start.objectSize <= UInt64(Int.max) else { throw AgentErrors.invalid("object size \(start.objectSize) is out of range") }
        let length = Int(start.payloadLength)
        var payload = [UInt8]()
        payload.reserveCapacity(length)
        while payload.count < length {
            guard let message = try await messages.next() else {
                throw AgentErrors.invalid("the put ended after \(payload.count) of \(length) payload bytes")
            }
            guard case .data(let piece) = message.kind, payload.count + piece.count <= length else {
                throw AgentErrors.invalid("a put sends exactly \(length) payload bytes in `data` messages, then `finish`")
            }
            payload.append(contentsOf: piece)
        }
        // The payload goes to disk now; the header waits for the writer's checksums and the
        // name for its commit, both in `finish`. Whatever happens, both promises are kept,
        // so the write never waits forever: a broken put abandons the shard.
        let checksums = Promise<[UInt32]>()
        let commit = Promise<Bool>()
        let stored = payload
        let writing = Task(executorPreference: AgentExecutor.shared) { () -> StorageError? in
            await Blocking.run {
                // withUnsafeBytes rethrows untyped errors: carry ours out as a value.
                stored.withUnsafeBytes { buffer -> StorageError? in
                    do throws(StorageError) {
                        try store.write(object: object, position: position, objectSize: Int(start.objectSize), payload: buffer,
                                        checksum: .promised(checksums), renameAfter: commit)
                        return nil
                    } catch { return error }
                }
            }
        }
        let blocks = ShardHeader.blockCount(payloadLength: length)
        func computed() -> [UInt32] { stored.withUnsafeBytes { CRC32C.blockChecksums($0, blockSize: ShardHeader.blockSize) } }
        var refusal: RPCError? = nil
        var committed = false
        do {
            guard case .finish(let finish)? = try await messages.next()?.kind else {
                throw AgentErrors.invalid("a put ends with a `finish` message after its \(length) payload bytes")
            }
            if finish.blockChecksums.isEmpty {
                checksums.fulfill(computed())
            } else if finish.blockChecksums.count == blocks {
                checksums.fulfill(finish.blockChecksums)
            } else {
                checksums.fulfill(computed())
                throw AgentErrors.invalid("\(finish.blockChecksums.count) block checksums for a payload of \(blocks) blocks")
            }
            committed = finish.commit
            commit.fulfill(finish.commit)
        } catch {
            refusal = (error as? RPCError) ?? RPCError(code: .cancelled, message: "the put's stream failed: \(error)")
            checksums.fulfill(computed())
            commit.fulfill(false)
        }
        let failure = await writing.value
        if let refusal { throw refusal }
        if let failure {
            // An abandoned write reports ECANCELED: what the writer asked for.
            if !committed, case .io(_, _, let e) = failure, e == ECANCELED {} else { throw AgentErrors.status(failure) }
        }
        var reply = Berth_Agent_V1_PutShardReply()
        reply.stored = committed
        reply.deviceUsedBytes = UInt64(store.usedBytes)
        return reply
    }

    // MARK: read

    /// Ranged reads of at most this many bytes run on the thread that received the request
    /// (a page-cache hit takes microseconds; a hop to another thread costs more than that on
    /// this machine kind); longer ones, and whole shards, on a thread of their own.
    static let inlineReadBytes: UInt64 = 64 << 10
    /// The longest range a read through `exchange` may ask for (one reply message).
    public static let maxExchangeRead: UInt64 = 1 << 20

    /// Checks a read request and reads the shard or its range on the device.
    private func read(_ request: Berth_Agent_V1_ReadShardRequest) async throws(RPCError) -> (bytes: [UInt8], objectSize: Int) {
        let (store, object, position) = try shard(request.shard)
        if request.ranged {
            guard request.offset <= UInt64(Self.maxShardBytes), request.length <= UInt64(Self.maxShardBytes) else {
                throw AgentErrors.invalid("range \(request.offset)+\(request.length) is out of range")
            }
        }
        let work = { @Sendable () -> Result<(bytes: [UInt8], objectSize: Int), StorageError> in
            do throws(StorageError) {
                if request.ranged {
                    let lower = Int(request.offset)
                    return .success(try store.read(object: object, position: position, range: lower..<(lower + Int(request.length))))
                }
                let shard = try store.read(object: object, position: position)
                return .success((shard.payload, shard.objectSize))
            } catch { return .failure(error) }
        }
        let small = request.ranged && request.length <= Self.inlineReadBytes
        switch small ? work() : await Blocking.run(work) {
        case .success(let value): return value
        case .failure(let error): throw AgentErrors.status(error)
        }
    }

    public func readShard(request: Berth_Agent_V1_ReadShardRequest, response: RPCWriter<Berth_Agent_V1_ReadShardReply>,
                          context: ServerContext) async throws {
        let (bytes, objectSize) = try await read(request)
        var start = 0
        repeat {
            let end = min(bytes.count, start + Self.pieceBytes)
            var reply = Berth_Agent_V1_ReadShardReply()
            if start == 0 { reply.objectSize = UInt64(objectSize) }
            reply.data = Data(bytes[start..<end])
            try await response.write(reply)
            start = end
        } while start < bytes.count
    }

    // MARK: exchange

    /// Serves the requests of one client's exchange stream as they come: small ones at
    /// once, others concurrently; every reply carries its request's id. A bad request gets
    /// an error reply and the stream goes on. The call ends when the client ends the stream,
    /// or when the agent shuts down (`beginShutdown`): it then stops taking requests and
    /// answers those it has first.
    public func exchange(request: RPCAsyncSequence<Berth_Agent_V1_ExchangeRequest, any Error>,
                         response: RPCWriter<Berth_Agent_V1_ExchangeReply>, context: ServerContext) async throws {
        // One writer: replies finish in any order, the stream takes them one at a time.
        let (replies, sink) = AsyncStream<Berth_Agent_V1_ExchangeReply>.makeStream()
        let writer = Task(executorPreference: AgentExecutor.shared) {
            for await reply in replies { try await response.write(reply) }
        }
        let pending = PendingCalls()
        await withTaskGroup(of: Void.self) { race in
            race.addTask { await self.shutdown.wait() }
            race.addTask {
                do {
                    for try await message in request {
                        let id = message.id
                        guard case .read(let read)? = message.kind else {
                            sink.yield(Self.failure(id, AgentErrors.invalid("an exchange request carries a read")))
                            continue
                        }
                        guard read.ranged, read.length <= Self.maxExchangeRead else {
                            sink.yield(Self.failure(id, AgentErrors.invalid("an exchange reads a range of at most \(Self.maxExchangeRead) bytes")))
                            continue
                        }
                        if read.length <= Self.inlineReadBytes {
                            sink.yield(await self.answer(id, read))
                        } else {
                            pending.start { sink.yield(await self.answer(id, read)) }
                        }
                    }
                } catch {
                    // The client went away (or the agent is stopping): nobody more to answer.
                }
            }
            // Whichever ends first ends the other: the client's end of the stream, or shutdown.
            await race.next()
            race.cancelAll()
        }
        await pending.finish()
        sink.finish()
        try await writer.value
    }

    /// Ends the open exchange streams (each answers what it has taken first); new ones end
    /// at once. Call before the server's graceful shutdown, which waits for every open call.
    public func beginShutdown() { shutdown.signal() }

    private func answer(_ id: UInt64, _ request: Berth_Agent_V1_ReadShardRequest) async -> Berth_Agent_V1_ExchangeReply {
        do throws(RPCError) {
            let (bytes, objectSize) = try await read(request)
            var reply = Berth_Agent_V1_ExchangeReply()
            reply.id = id
            reply.read.objectSize = UInt64(objectSize)
            reply.read.data = Data(bytes)
            return reply
        } catch {
            return Self.failure(id, error)
        }
    }

    private static func failure(_ id: UInt64, _ error: RPCError) -> Berth_Agent_V1_ExchangeReply {
        var reply = Berth_Agent_V1_ExchangeReply()
        reply.id = id
        reply.error.code = Int32(error.code.rawValue)
        reply.error.message = error.message
        return reply
    }

    // MARK: delete, list, status

    public func deleteShards(request: Berth_Agent_V1_DeleteShardsRequest, context: ServerContext) async throws -> Berth_Agent_V1_DeleteShardsReply {
        let store = try store(request.device)
        var shards: [(object: ObjectID, position: Int)] = []
        for shard in request.shards {
            guard shard.position <= Self.maxPosition else { throw AgentErrors.invalid("shard position \(shard.position) is out of range") }
            shards.append((shard.object, Int(shard.position)))
        }
        let doomed = shards
        let failures = await Blocking.run { store.delete(doomed) }
        var reply = Berth_Agent_V1_DeleteShardsReply()
        reply.failures = failures.map(\.description)
        return reply
    }

    public func listShards(request: Berth_Agent_V1_ListShardsRequest, response: RPCWriter<Berth_Agent_V1_ListShardsReply>,
                           context: ServerContext) async throws {
        let store = try store(request.device)
        let listed = await Blocking.run { () -> Result<[(object: ObjectID, position: Int)], StorageError> in
            do throws(StorageError) { return .success(try store.allShards()) } catch { return .failure(error) }
        }
        let shards: [(object: ObjectID, position: Int)]
        switch listed {
        case .success(let all): shards = all
        case .failure(let error): throw AgentErrors.status(error)
        }
        var start = 0
        repeat {
            let end = min(shards.count, start + 8192)
            var reply = Berth_Agent_V1_ListShardsReply()
            reply.shards = shards[start..<end].map { Berth_Agent_V1_ShardID($0.object, position: $0.position) }
            try await response.write(reply)
            start = end
        } while start < shards.count
    }

    public func status(request: Berth_Agent_V1_StatusRequest, context: ServerContext) async throws -> Berth_Agent_V1_StatusReply {
        var reply = Berth_Agent_V1_StatusReply()
        reply.node = node
        reply.startedMs = startedMs
        reply.devices = devices.values.sorted { $0.id.rawValue < $1.id.rawValue }.map { store in
            var device = Berth_Agent_V1_StatusReply.Device()
            device.id = store.id.rawValue
            device.capacityBytes = UInt64(store.capacityBytes)
            device.usedBytes = UInt64(store.usedBytes)
            device.reachable = store.isReachable
            return device
        }
        return reply
    }
}

/// Blocking device work, run on a serial queue of its own per call while the calling task
/// waits: each gets a thread of libdispatch's overcommitting pool, so writes parked on their
/// commit (`putShard`) never hold the threads the handlers that commit them need. (Custom
/// concurrent queues, like the global queue, share a pool of one thread per CPU.)
enum Blocking {
    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue(label: "berth.agent.io", qos: .userInitiated).async { continuation.resume(returning: work()) }
        }
    }
}

/// The calls of one exchange stream answered on threads of their own, until each is done.
final class PendingCalls: Sendable {
    private let calls = Mutex<(next: Int, running: [Int: Task<Void, Never>])>((0, [:]))

    func start(_ work: @escaping @Sendable () async -> Void) {
        calls.withLock { c in
            c.next += 1
            let key = c.next
            c.running[key] = Task(executorPreference: AgentExecutor.shared) {
                await work()
                self.calls.withLock { _ = $0.running.removeValue(forKey: key) }
            }
        }
    }

    /// Returns when every call started so far is done.
    func finish() async {
        for call in calls.withLock({ Array($0.running.values) }) { await call.value }
    }
}
