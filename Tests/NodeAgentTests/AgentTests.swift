import AgentProtocol
import ClusterTLS
import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
@testable import NodeAgent
import Placement
@testable import Storage
import StorageClasses
import Synchronization
import Testing

/// The node agent over real gRPC on TCP loopback with mutual TLS: shards round-trip through
/// `RemoteShardDevice` exactly as through a local `ShardStore`, errors keep their kind, and
/// peers without the cluster's certificate (or with another node's) are refused.
@Suite struct AgentTests {
    /// A CA, certificates for nodes "a", "b", "c" and "ctl", and one agent per node of
    /// `agents` (node N serves devices N-d1 and N-d2), each on an ephemeral port.
    final class Fixture: Sendable {
        let root: String
        let ca: ClusterCA
        let servers: [GRPCServer<HTTP2ServerTransport.Posix>]
        let addresses: [String]
        /// Per agent, its devices.
        let devices: [[ShardStore]]
        let serving: [Task<Void, Never>]
        let services: [AgentService]
        var address: String { addresses[0] }
        var stores: [ShardStore] { devices[0] }

        init(agents: [String] = ["a"]) async throws {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-agent-\(UUID().uuidString)").path
            self.root = root
            let ca = try ClusterCA.make()
            self.ca = ca
            for name in ["a", "b", "c", "ctl"] { try TLSDirectory.write(node: name, ca: ca, to: root + "/tls/" + name) }
            try FileManager.default.createDirectory(atPath: root + "/dev", withIntermediateDirectories: true)
            var servers: [GRPCServer<HTTP2ServerTransport.Posix>] = [], addresses: [String] = [], devices: [[ShardStore]] = [], serving: [Task<Void, Never>] = []
            var services: [AgentService] = []
            for node in agents {
                let stores = try (1...2).map { try ShardStore(id: DeviceID("\(node)-d\($0)"), root: root + "/dev/\(node)-d\($0)", capacityBytes: 64 << 20) }
                let tls = try TLSDirectory(path: root + "/tls/" + node)
                let service = AgentService(node: node, devices: stores)
                services.append(service)
                let server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: tls.serverSecurity,
                                                                             config: AgentService.transportConfig),
                                        services: [service])
                serving.append(Task(executorPreference: AgentExecutor.shared) { try? await server.serve() })
                let bound = try await server.listeningAddress
                addresses.append("127.0.0.1:\(bound!.ipv4!.port)")
                servers.append(server)
                devices.append(stores)
            }
            (self.servers, self.addresses, self.devices, self.serving, self.services) = (servers, addresses, devices, serving, services)
        }

        func tls(_ node: String) throws -> TLSDirectory { try TLSDirectory(path: root + "/tls/" + node) }

        /// Stops agent `index` as its daemon does (its connections close; clients see silence).
        func stop(agent index: Int) async {
            services[index].beginShutdown()
            servers[index].beginGracefulShutdown()
            await serving[index].value
        }

        func stop() async {
            for i in servers.indices { await stop(agent: i) }
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// Runs blocking client calls off the cooperative pool (they wait for tasks of their own).
    static func off<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
            }
        }
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

    @Test func shardsRoundTripThroughTheAgent() async throws {
        let f = try await Fixture()
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let address = f.address
        let sizes = [0, 5_000, 3 << 20]
        let ids = sizes.indices.map { ObjectID(high: 1, low: UInt64($0)) }
        try await Self.off {
            let device = try directory.device(id: DeviceID("a-d1"), host: "a", address: address, capacityBytes: 1, verify: true)
            #expect(device.capacityBytes == 64 << 20)  // the agent's figure, not the recorded one
            #expect(device.isReachable)
            for (id, size) in zip(ids, sizes) {
                try device.write(object: id, position: 2, objectSize: size * 3, bytes: Self.bytes(size, seed: UInt8(size & 0xff)))
            }
            for (id, size) in zip(ids, sizes) {
                let shard = try device.read(object: id, position: 2)
                #expect(shard.payload == Self.bytes(size, seed: UInt8(size & 0xff)))
                #expect(shard.objectSize == size * 3)
            }
            let range = try device.read(object: ids[2], position: 2, range: 1_000_000..<1_200_001)
            #expect(range.bytes == Array(Self.bytes(3 << 20, seed: 0)[1_000_000..<1_200_001]))
            #expect(Set(try device.allShards().map { "\($0.object).\($0.position)" }) == Set(ids.map { "\($0).2" }))
            #expect(device.usedBytes == f.stores[0].usedBytes)
            #expect(device.delete([(ids[1], 2), (ObjectID(high: 9, low: 9), 0)]).isEmpty)  // absent counts as removed
            #expect(throws: StorageError.shardNotFound(device: DeviceID("a-d1"), shard: "\(ids[1]).2")) {
                try device.read(object: ids[1], position: 2)
            }
            #expect(try device.hasShard(object: ids[2], position: 2))
            #expect(try !device.hasShard(object: ids[1], position: 2))
            // Usage follows deletes too, once the next status report arrives.
            let deadline = Date().addingTimeInterval(20)
            while device.usedBytes != f.stores[0].usedBytes && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
            #expect(device.usedBytes == f.stores[0].usedBytes)
        }
        await f.stop()
    }

    @Test func errorsKeepTheirKindAcrossTheWire() async throws {
        let f = try await Fixture()
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let address = f.address
        let id = ObjectID(high: 2, low: 2)
        try f.stores[1].write(object: id, position: 0, objectSize: 10_000, bytes: Self.bytes(10_000, seed: 7))
        // Flip one payload byte on the agent's disk.
        let file = f.stores[1].path(id, 0)
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        try handle.seek(toOffset: UInt64(ShardHeader.fileBytes(payloadLength: 10_000) - 5))
        try handle.write(contentsOf: [0xFF])
        try handle.close()
        try await Self.off {
            let device = try directory.device(id: DeviceID("a-d2"), host: "a", address: address, capacityBytes: 1, verify: true)
            do {
                _ = try device.read(object: id, position: 0)
                Issue.record("a corrupt shard read back")
            } catch let error as StorageError {
                guard case .corruptShard(let d, _, _) = error else { Issue.record("expected corruptShard, got \(error)"); return }
                #expect(d == DeviceID("a-d2"))
            }
            // Larger than the device: no space, said as such.
            do {
                try device.write(object: ObjectID(high: 3, low: 3), position: 0, objectSize: 1, bytes: [UInt8](repeating: 1, count: 65 << 20))
                Issue.record("a shard larger than the device was stored")
            } catch let error as StorageError {
                guard case .noSpace = error else { Issue.record("expected noSpace, got \(error)"); return }
            }
            // A device the agent does not serve is refused when added; the host's connection,
            // which a-d2 uses, stays.
            #expect(throws: StorageError.self) {
                _ = try directory.device(id: DeviceID("a-d9"), host: "a", address: address, capacityBytes: 1, verify: true)
            }
            #expect(directory.connectionCount == 1)
            #expect(device.isReachable)
            // A device added with the wrong host for the address (the agent's certificate
            // names "a", not "b"): refused, and the connection it opened is closed again.
            #expect(throws: StorageError.self) {
                _ = try directory.device(id: DeviceID("b-d1"), host: "b", address: address, capacityBytes: 1, verify: true)
            }
            #expect(directory.connectionCount == 1)
            #expect(try device.hasShard(object: ObjectID(high: 4, low: 4), position: 0) == false)
        }
        await f.stop()
    }

    @Test func anAbandonedWriteLeavesNothing() async throws {
        let f = try await Fixture()
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let address = f.address
        let stores = f.stores
        try await Self.off {
            let device = try directory.device(id: DeviceID("a-d1"), host: "a", address: address, capacityBytes: 1, verify: true)
            let id = ObjectID(high: 4, low: 4)
            let decision = Promise<Bool>()
            decision.fulfill(false)
            let payload = Self.bytes(200_000, seed: 3)
            let failure = payload.withUnsafeBytes { buffer -> StorageError? in
                do throws(StorageError) {
                    try device.write(object: id, position: 1, objectSize: 200_000, payload: buffer, checksum: .compute, renameAfter: decision)
                    return nil
                } catch { return error }
            }
            guard case .io(_, _, let e)? = failure, e == ECANCELED else { Issue.record("expected an abandoned write, got \(String(describing: failure))"); return }
            #expect(try stores[0].allShards().isEmpty)
            #expect(stores[0].usedBytes == 0)
        }
        await f.stop()
    }

    /// A client with `tls` dialling the agent as node `expecting`: whether `Status` answers.
    static func statusAnswers(_ f: Fixture, tls: HTTP2ClientTransport.Posix.TransportSecurity, expecting node: String) async -> Bool {
        do {
            let transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: "127.0.0.1", port: Int(f.address.split(separator: ":")[1])!),
                                                           transportSecurity: tls,
                                                           config: .defaults { $0.http2.authority = node })
            return try await withTaskExecutorPreference(AgentExecutor.shared) { try await withGRPCClient(transport: transport) { client in
                var options = CallOptions.defaults
                options.timeout = .seconds(20)
                let reply = try await Berth_Agent_V1_NodeAgent.Client(wrapping: client).status(Berth_Agent_V1_StatusRequest(), options: options)
                return reply.node == "a"
            } }
        } catch {
            return false
        }
    }

    @Test func peersWithoutTheClusterCertificateAreRefused() async throws {
        let f = try await Fixture()
        let ctl = try f.tls("ctl")
        // The cluster's own certificate, dialling node a: served.
        #expect(await Self.statusAnswers(f, tls: ctl.clientSecurity, expecting: "a"))
        // Node a's agent dialled as node b: its certificate says a, so the client refuses it.
        #expect(await !Self.statusAnswers(f, tls: ctl.clientSecurity, expecting: "b"))
        // A certificate from another CA (same node name): the agent refuses it.
        let foreign = f.root + "/foreign"
        try TLSDirectory.write(node: "ctl", ca: try ClusterCA.make(name: "someone else's CA"), to: foreign)
        var stranger = try TLSDirectory(path: foreign).clientSecurity
        #expect(await !Self.statusAnswers(f, tls: stranger, expecting: "a"))
        // No client certificate at all, but trusting the cluster CA: refused.
        stranger = .tls { $0.trustRoots = .certificates([.file(path: f.root + "/tls/ctl/ca.pem", format: .pem)]) }
        #expect(await !Self.statusAnswers(f, tls: stranger, expecting: "a"))
        // Plain text: refused.
        #expect(await !Self.statusAnswers(f, tls: .plaintext, expecting: "a"))
        // And it still serves the cluster afterwards.
        #expect(await Self.statusAnswers(f, tls: ctl.clientSecurity, expecting: "a"))
        await f.stop()
    }

    /// An agent whose certificate comes from another CA (or names another node) is refused
    /// by the daemon's side: adding its device fails, nothing is written to it.
    @Test func anAgentWithoutTheClusterCertificateIsRefused() async throws {
        let f = try await Fixture()
        let foreign = f.root + "/tls/foreign-a"
        try TLSDirectory.write(node: "a", ca: try ClusterCA.make(name: "someone else's CA"), to: foreign)
        let store = try ShardStore(id: DeviceID("a-d9"), root: f.root + "/dev/a-d9", capacityBytes: 1 << 20)
        let server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0),
                                                                     transportSecurity: try TLSDirectory(path: foreign).serverSecurity,
                                                                     config: AgentService.transportConfig),
                                services: [AgentService(node: "a", devices: [store])])
        let serving = Task(executorPreference: AgentExecutor.shared) { try? await server.serve() }
        let address = "127.0.0.1:\(try await server.listeningAddress!.ipv4!.port)"
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let fixtureAddress = f.address
        try await Self.off {
            #expect(throws: StorageError.self) {
                _ = try directory.device(id: DeviceID("a-d9"), host: "a", address: address, capacityBytes: 1, verify: true)
            }
            // The real node a, dialled as node b: its certificate says a, refused too.
            #expect(throws: StorageError.self) {
                _ = try directory.device(id: DeviceID("a-d1"), host: "b", address: fixtureAddress, capacityBytes: 1, verify: true)
            }
        }
        #expect(try store.allShards().isEmpty)
        server.beginGracefulShutdown()
        await serving.value
        await f.stop()
    }

    /// A node's TLS directory with a file missing, or a certificate that is not one, is
    /// refused with a message naming the file.
    @Test func tlsDirectoriesAreChecked() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-tls-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        do {
            _ = try TLSDirectory(path: root)
            Issue.record("an empty directory was accepted")
        } catch { #expect("\(error)".contains("ca.pem is missing")) }
        try TLSDirectory.write(node: "n1", ca: try ClusterCA.make(), to: root)
        #expect(try TLSDirectory(path: root).node == "n1")
        let key = try FileManager.default.attributesOfItem(atPath: root + "/node-key.pem")[.posixPermissions] as? Int
        #expect(key == 0o600)
        try "not a certificate".write(toFile: root + "/node.pem", atomically: true, encoding: .utf8)
        do {
            _ = try TLSDirectory(path: root)
            Issue.record("a corrupt certificate was accepted")
        } catch { #expect("\(error)".contains("node.pem is not a PEM certificate")) }
        #expect(throws: TLSSetupError.self) { try NodeName.check("-bad-") }
        #expect(throws: TLSSetupError.self) { try NodeName.check("has space") }
    }

    @Test func malformedRequestsAreRefusedAndTheAgentGoesOn() async throws {
        let f = try await Fixture()
        let ctl = try f.tls("ctl")
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: "127.0.0.1", port: Int(f.address.split(separator: ":")[1])!),
                                                       transportSecurity: ctl.clientSecurity, config: .defaults { $0.http2.authority = "a" })
        try await withTaskExecutorPreference(AgentExecutor.shared) { try await withGRPCClient(transport: transport) { client in
            let agent = Berth_Agent_V1_NodeAgent.Client(wrapping: client)
            func code(_ messages: [Berth_Agent_V1_PutShardMessage]) async -> RPCError.Code? {
                do {
                    _ = try await agent.putShard { writer in for m in messages { try await writer.write(m) } }
                    return nil
                } catch { return (error as? RPCError)?.code }
            }
            var start = Berth_Agent_V1_PutShardMessage()
            start.start.shard.device = "a-d1"
            start.start.shard.objectLow = 1
            start.start.payloadLength = 10
            var data = Berth_Agent_V1_PutShardMessage()
            data.data = Data(repeating: 1, count: 10)
            var finish = Berth_Agent_V1_PutShardMessage()
            finish.finish.commit = true
            // No start.
            #expect(await code([data, finish]) == .invalidArgument)
            // More payload than announced.
            var long = data
            long.data = Data(repeating: 1, count: 11)
            #expect(await code([start, long, finish]) == .invalidArgument)
            // Ends inside the payload.
            #expect(await code([start]) == .invalidArgument)
            // A wrong number of block checksums.
            var badTable = finish
            badTable.finish.blockChecksums = [1, 2, 3]
            #expect(await code([start, data, badTable]) == .invalidArgument)
            // An oversized shard.
            var huge = start
            huge.start.payloadLength = UInt64(AgentService.maxShardBytes + 1)
            #expect(await code([huge]) == .invalidArgument)
            // An oversized message (the gRPC limit).
            var big = data
            big.data = Data(repeating: 1, count: 3 << 20)
            var bigStart = start
            bigStart.start.payloadLength = 3 << 20
            #expect(await code([bigStart, big, finish]) != nil)
            // Unknown device, bad position.
            var unknown = start
            unknown.start.shard.device = "z-d1"
            #expect(await code([unknown, data, finish]) == .failedPrecondition)
            var position = start
            position.start.shard.position = 100_000
            #expect(await code([position, data, finish]) == .invalidArgument)
            // None of that left a shard, and a good put still works.
            let leftovers = (try? f.stores[0].allShards().count) ?? -1
            #expect(leftovers == 0)
            #expect(await code([start, data, finish]) == nil)
        } }
        #expect(try f.stores[0].read(object: ObjectID(high: 0, low: 1), position: 0).payload == [UInt8](repeating: 1, count: 10))
        await f.stop()
    }

    /// Ranged reads travel on the exchange stream: many threads at once each get their own
    /// bytes back (replies come in any order, matched by id).
    @Test func concurrentRangedReadsGetTheirOwnBytes() async throws {
        let f = try await Fixture()
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let address = f.address
        let shards = (0..<3).map { (ObjectID(high: 6, low: UInt64($0)), Self.bytes(2 << 20, seed: UInt8(40 + $0))) }
        try await Self.off {
            let device = try directory.device(id: DeviceID("a-d1"), host: "a", address: address, capacityBytes: 1, verify: true)
            for (id, bytes) in shards { try device.write(object: id, position: 0, objectSize: bytes.count, bytes: bytes) }
            let wrong = Mutex(0)
            DispatchQueue.concurrentPerform(iterations: 6) { t in
                var seed = UInt64(t + 1)
                for _ in 0..<40 {
                    seed = seed &* 6364136223846793005 &+ 1442695040888963407
                    let (id, bytes) = shards[Int(seed >> 60) % shards.count]
                    let length = [1, 4096, 65_536, 300_000, Int(AgentService.maxExchangeRead)][Int(seed >> 20) % 5]
                    let lower = Int(seed >> 33) % (bytes.count - length)
                    let read = try? device.read(object: id, position: 0, range: lower..<(lower + length))
                    if read?.bytes != Array(bytes[lower..<(lower + length)]) || read?.objectSize != bytes.count { wrong.withLock { $0 += 1 } }
                }
            }
            #expect(wrong.withLock { $0 } == 0)
        }
        await f.stop()
    }

    /// On one exchange stream, requests the agent cannot serve get an error reply with their
    /// id and kind, and the requests after them are still answered.
    @Test func badExchangeRequestsGetErrorsAndTheStreamGoesOn() async throws {
        let f = try await Fixture()
        try f.stores[0].write(object: ObjectID(high: 0, low: 7), position: 0, objectSize: 8192, bytes: Self.bytes(8192, seed: 9))
        let ctl = try f.tls("ctl")
        let transport = try HTTP2ClientTransport.Posix(target: .ipv4(host: "127.0.0.1", port: Int(f.address.split(separator: ":")[1])!),
                                                       transportSecurity: ctl.clientSecurity, config: .defaults { $0.http2.authority = "a" })
        func read(_ device: String, low: UInt64, position: UInt32 = 0, ranged: Bool = true, offset: UInt64 = 100, length: UInt64 = 50) -> Berth_Agent_V1_ExchangeRequest.OneOf_Kind {
            var r = Berth_Agent_V1_ReadShardRequest()
            r.shard.device = device
            r.shard.objectLow = low
            r.shard.position = position
            r.ranged = ranged
            r.offset = offset
            r.length = length
            return .read(r)
        }
        let good = read("a-d1", low: 7)
        let cases: [(Berth_Agent_V1_ExchangeRequest.OneOf_Kind?, RPCError.Code?)] = [
            (good, nil),
            (nil, .invalidArgument),                                            // no request at all
            (read("a-d1", low: 7, ranged: false), .invalidArgument),            // whole shards are not exchanged
            (read("a-d1", low: 7, length: AgentService.maxExchangeRead + 1), .invalidArgument),
            (read("z-d1", low: 7), .failedPrecondition),                       // a device not served here
            (read("a-d1", low: 7, position: 100_000), .invalidArgument),
            (read("a-d1", low: 8), .notFound),                                 // no such shard
            (read("a-d1", low: 7, offset: 8000, length: 1000), .dataLoss),     // past the payload: not the shard the caller knows
            (good, nil),
        ]
        let replies = try await withTaskExecutorPreference(AgentExecutor.shared) { try await withGRPCClient(transport: transport) { client in
            try await Berth_Agent_V1_NodeAgent.Client(wrapping: client).exchange(requestProducer: { writer in
                for (i, (kind, _)) in cases.enumerated() {
                    var request = Berth_Agent_V1_ExchangeRequest()
                    request.id = UInt64(1000 + i)
                    request.kind = kind
                    try await writer.write(request)
                }
            }, onResponse: { response in
                var all: [UInt64: Berth_Agent_V1_ExchangeReply] = [:]
                for try await reply in response.messages { all[reply.id] = reply }
                return all
            })
        } }
        #expect(replies.count == cases.count)
        for (i, (_, expected)) in cases.enumerated() {
            let reply = replies[UInt64(1000 + i)]
            switch reply?.kind {
            case .read(let r)?:
                #expect(expected == nil, "request \(i) was answered, expected \(String(describing: expected))")
                #expect([UInt8](r.data) == Array(Self.bytes(8192, seed: 9)[100..<150]))
                #expect(r.objectSize == 8192)
            case .error(let e)?:
                #expect(expected.map { Int32($0.rawValue) } == e.code, "request \(i): \(e.message)")
            case nil:
                Issue.record("request \(i) got no reply")
            }
        }
        await f.stop()
    }

    /// Readers waiting on the exchange stream when the agent goes away get an error within
    /// seconds, not the 30 s deadline; the device then reports the host unreachable.
    @Test func exchangeReadersFailFastWhenTheAgentStops() async throws {
        let f = try await Fixture()
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let address = f.address
        let id = ObjectID(high: 6, low: 9)
        let device = try await Self.off { () -> any ShardDevice in
            let device = try directory.device(id: DeviceID("a-d1"), host: "a", address: address, capacityBytes: 1, verify: true)
            try device.write(object: id, position: 0, objectSize: 4096, bytes: Self.bytes(4096, seed: 1))
            #expect(try device.read(object: id, position: 0, range: 0..<4096).bytes == Self.bytes(4096, seed: 1))
            return device
        }
        await f.stop(agent: 0)
        let started = ContinuousClock.now
        let failure = try await Self.off { () -> StorageError? in
            do throws(StorageError) {
                _ = try device.read(object: id, position: 0, range: 0..<4096)
                return nil
            } catch { return error }
        }
        guard case .deviceUnavailable? = failure else { Issue.record("expected deviceUnavailable, got \(String(describing: failure))"); return }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    /// An agent of an older version, without `Exchange` (a rolling upgrade): ranged reads
    /// fall back to one `ReadShard` call each and return the same bytes.
    @Test func rangedReadsFallBackOnAnAgentWithoutExchange() async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-agent-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let ca = try ClusterCA.make()
        for name in ["a", "ctl"] { try TLSDirectory.write(node: name, ca: ca, to: root + "/tls/" + name) }
        try FileManager.default.createDirectory(atPath: root + "/dev", withIntermediateDirectories: true)
        let store = try ShardStore(id: DeviceID("a-d1"), root: root + "/dev/a-d1", capacityBytes: 64 << 20)
        let server = GRPCServer(transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0),
                                                                     transportSecurity: try TLSDirectory(path: root + "/tls/a").serverSecurity,
                                                                     config: AgentService.transportConfig),
                                services: [AgentWithoutExchange(AgentService(node: "a", devices: [store]))])
        let serving = Task(executorPreference: AgentExecutor.shared) { try? await server.serve() }
        let address = "127.0.0.1:\(try await server.listeningAddress!.ipv4!.port)"
        let directory = AgentDirectory(tls: try TLSDirectory(path: root + "/tls/ctl"))
        defer { directory.close() }
        let id = ObjectID(high: 6, low: 10)
        let bytes = Self.bytes(100_000, seed: 4)
        try store.write(object: id, position: 0, objectSize: bytes.count, bytes: bytes)
        try await Self.off {
            let device = try directory.device(id: DeviceID("a-d1"), host: "a", address: address, capacityBytes: 1, verify: true)
            for _ in 0..<3 {
                #expect(try device.read(object: id, position: 0, range: 1000..<5096).bytes == Array(bytes[1000..<5096]))
            }
        }
        server.beginGracefulShutdown()
        await serving.value
    }

    /// A replicated object over three hosts' agents: one agent stops, the object still
    /// reads (from the others), and the stopped host's devices report themselves unreachable.
    @Test func objectsReadWhenAHostStops() async throws {
        let f = try await Fixture(agents: ["a", "b", "c"])
        let directory = AgentDirectory(tls: try f.tls("ctl"))
        defer { directory.close() }
        let addresses = f.addresses
        let store = try await Self.off { () -> ObjectStore in
            var devices: [any ShardDevice] = []
            var members: [Device] = []
            for (node, address) in zip(["a", "b", "c"], addresses) {
                for d in 1...2 {
                    let id = DeviceID("\(node)-d\(d)")
                    devices.append(try directory.device(id: id, host: node, address: address, capacityBytes: 1, verify: true))
                    members.append(Device(id: id, parent: node, weight: 1))
                }
            }
            let r3 = StorageClass(name: "r3", redundancy: .replicated(copies: 3), chunkSizeBytes: 64 << 10, pgCount: 16)
            let map = try ClusterMap.initial(buckets: ["a", "b", "c"].map { Bucket(id: $0, type: "host") }, devices: members,
                                             pools: [Pool(id: 1, name: r3.name, rule: r3.rule, pgCount: r3.pgCount)])
            return ObjectStore(layout: .init(current: try Placer(map: map)), devices: devices, codecs: [try PoolCodec(poolID: 1, storageClass: r3)])
        }
        let objects = (0..<8).map { (ObjectID(high: 5, low: UInt64($0)), Self.bytes(100_000 + $0, seed: UInt8($0))) }
        try await Self.off { for (id, bytes) in objects { try store.put(pool: 1, object: id, bytes: bytes) } }
        await f.stop(agent: 1)
        for (id, bytes) in objects {
            let read = try await Self.off { try store.get(pool: 1, object: id) }
            #expect(read.bytes == bytes)
        }
        // Silence makes b's devices unreachable within the heartbeat's window.
        let deadline = ContinuousClock.now + .seconds(30)
        while store.device(DeviceID("b-d1"))!.isReachable && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!store.device(DeviceID("b-d1"))!.isReachable)
        #expect(store.device(DeviceID("a-d1"))!.isReachable)
        await f.stop()
    }
}

/// The agent as a version before `Exchange` served it: that call is unimplemented.
final class AgentWithoutExchange: Berth_Agent_V1_NodeAgent.SimpleServiceProtocol {
    let inner: AgentService
    init(_ inner: AgentService) { self.inner = inner }
    func putShard(request: RPCAsyncSequence<Berth_Agent_V1_PutShardMessage, any Error>, context: ServerContext) async throws -> Berth_Agent_V1_PutShardReply {
        try await inner.putShard(request: request, context: context)
    }
    func readShard(request: Berth_Agent_V1_ReadShardRequest, response: RPCWriter<Berth_Agent_V1_ReadShardReply>, context: ServerContext) async throws {
        try await inner.readShard(request: request, response: response, context: context)
    }
    func deleteShards(request: Berth_Agent_V1_DeleteShardsRequest, context: ServerContext) async throws -> Berth_Agent_V1_DeleteShardsReply {
        try await inner.deleteShards(request: request, context: context)
    }
    func listShards(request: Berth_Agent_V1_ListShardsRequest, response: RPCWriter<Berth_Agent_V1_ListShardsReply>, context: ServerContext) async throws {
        try await inner.listShards(request: request, response: response, context: context)
    }
    func status(request: Berth_Agent_V1_StatusRequest, context: ServerContext) async throws -> Berth_Agent_V1_StatusReply {
        try await inner.status(request: request, context: context)
    }
    func exchange(request: RPCAsyncSequence<Berth_Agent_V1_ExchangeRequest, any Error>, response: RPCWriter<Berth_Agent_V1_ExchangeReply>,
                  context: ServerContext) async throws {
        throw RPCError(code: .unimplemented, message: "unknown method berth.agent.v1.NodeAgent/Exchange")
    }
}
