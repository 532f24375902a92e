import Foundation
import TestEngines
import Placement
import Storage
import Synchronization
import Testing
@testable import Engine

/// The health check's marks outlive the daemon: a host it marked out comes back in after a
/// restart, while a device an admin marked out stays out. (Hosts here are local directories
/// whose reachability the test switches, standing in for agents' heartbeats; ClusterTests
/// runs the real agents.)
@Suite struct HealthTests {
    /// Devices of "other hosts": shard stores whose reachability the test sets per host.
    final class Hosts: DeviceConnector {
        let root: String
        let silent = Mutex<Set<String>>([])
        init(root: String) {
            self.root = root
            try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        }

        func device(id: DeviceID, host: String, address: String, capacityBytes: Int, verify: Bool) throws(StorageError) -> any ShardDevice {
            Switched(store: try ShardStore(id: id, root: root + "/" + id.rawValue, capacityBytes: capacityBytes), host: host, hosts: self)
        }
    }

    final class Switched: ShardDevice {
        let store: ShardStore
        let host: String
        let hosts: Hosts
        init(store: ShardStore, host: String, hosts: Hosts) { (self.store, self.host, self.hosts) = (store, host, hosts) }

        var id: DeviceID { store.id }
        var capacityBytes: Int { store.capacityBytes }
        var usedBytes: Int { store.usedBytes }
        var isRemote: Bool { true }
        var isReachable: Bool { !hosts.silent.withLock { $0.contains(host) } }
        func write(object: ObjectID, position: Int, objectSize: Int, payload: UnsafeRawBufferPointer,
                   checksum: ShardStore.Checksum, renameAfter: Promise<Bool>?) throws(StorageError) {
            guard isReachable else { throw .deviceUnavailable(id, reason: "host \(host) is silent") }
            try store.write(object: object, position: position, objectSize: objectSize, payload: payload, checksum: checksum, renameAfter: renameAfter)
        }
        func read(object: ObjectID, position: Int) throws(StorageError) -> ShardStore.Shard {
            guard isReachable else { throw .deviceUnavailable(id, reason: "host \(host) is silent") }
            return try store.read(object: object, position: position)
        }
        func read(object: ObjectID, position: Int, range: Range<Int>) throws(StorageError) -> (bytes: [UInt8], objectSize: Int) {
            guard isReachable else { throw .deviceUnavailable(id, reason: "host \(host) is silent") }
            return try store.read(object: object, position: position, range: range)
        }
        func delete(_ shards: [(object: ObjectID, position: Int)]) -> [StorageError] { store.delete(shards) }
        func allShards() throws(StorageError) -> [(object: ObjectID, position: Int)] { try store.allShards() }
        func hasShard(object: ObjectID, position: Int) throws(StorageError) -> Bool { try store.hasShard(object: object, position: position) }
    }

    static func engine(_ dir: TemporaryDirectory, _ hosts: Hosts) throws -> Engine {
        var config = EngineConfiguration.testing(dir.path + "/state")
        config.connector = hosts
        return try Engine(configuration: config)
    }

    func state(_ engine: Engine, _ id: String) -> DeviceState? {
        (try? engine.devices())?.first { $0.id == id }?.state
    }

    @Test func aHostMarkedOutComesBackAfterARestart() throws {
        let dir = TemporaryDirectory()
        let hosts = Hosts(root: dir.path + "/hosts")
        let policy = HealthPolicy(downAfterMs: 0, outAfterMs: 1_000)
        do {
            let engine = try Self.engine(dir, hosts)
            try engine.addDevices((0..<7).flatMap { h in
                (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 256 << 20, agent: "h\(h):7440") }
            })
            try engine.applyClasses([Fixture.classes[0]])
            hosts.silent.withLock { _ = $0.insert("h6") }
            _ = engine.checkHealth(policy: policy, nowMs: 10_000)
            #expect(state(engine, "h6-d0") == .down)
            _ = engine.checkHealth(policy: policy, nowMs: 11_500)
            #expect(state(engine, "h6-d0") == .out)
            // An admin marks another device out by hand.
            try engine.failDevice("h5-d1")
            #expect(state(engine, "h5-d1") == .out)
        }
        // The daemon restarts while h6 is still silent; then h6 answers again.
        let engine = try Self.engine(dir, hosts)
        _ = engine.checkHealth(policy: policy, nowMs: 50_000)
        #expect(state(engine, "h6-d0") == .out)
        hosts.silent.withLock { $0 = [] }
        _ = engine.checkHealth(policy: policy, nowMs: 51_000)
        #expect(state(engine, "h6-d0") == .up)
        #expect(state(engine, "h6-d1") == .up)
        // The admin's mark is the admin's: it stays out.
        #expect(state(engine, "h5-d1") == .out)
    }
}

/// A silent host goes out whole: its devices in one epoch, or none of them.
@Suite struct HostOutTests {
    typealias Hosts = HealthTests.Hosts

    static let policy = HealthPolicy(downAfterMs: 0, outAfterMs: 1_000)

    /// `count` hosts of two devices each and a 3-copy class; `silent` stops answering and a
    /// first pass of the check (at 10 s) marks it down.
    func engine(_ dir: TemporaryDirectory, count: Int, silent: String) throws -> Engine {
        let hosts = Hosts(root: dir.path + "/hosts")
        let engine = try HealthTests.engine(dir, hosts)
        try engine.addDevices((0..<count).flatMap { h in
            (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 256 << 20, agent: "h\(h):7440") }
        })
        try engine.applyClasses([Fixture.classes[0]])  // replicated-3
        hosts.silent.withLock { _ = $0.insert(silent) }
        _ = engine.checkHealth(policy: Self.policy, nowMs: 10_000)
        return engine
    }

    func states(_ engine: Engine, _ host: String) -> [DeviceState?] {
        ["\(host)-d0", "\(host)-d1"].map { id in (try? engine.devices())?.first { $0.id == id }?.state }
    }

    @Test func itsDevicesGoOutInOneEpoch() throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir, count: 4, silent: "h3")
        #expect(states(engine, "h3") == [.down, .down])
        let before = try engine.status().epoch
        let said = engine.checkHealth(policy: Self.policy, nowMs: 11_500)
        #expect(states(engine, "h3") == [.out, .out])
        #expect(try engine.status().epoch == before + 1, "\(said)")
    }

    /// With three hosts a 3-copy class cannot do without one: the host stays down, and
    /// neither device goes out (one alone would have sent its shards to the other, down).
    @Test func aHostTheClassesNeedStaysDownWhole() throws {
        let dir = TemporaryDirectory()
        let engine = try engine(dir, count: 3, silent: "h2")
        let said = engine.checkHealth(policy: Self.policy, nowMs: 11_500)
        #expect(states(engine, "h2") == [.down, .down])
        #expect(said.count == 1 && said[0].contains("host h2"), "\(said)")
        // Said once, not every pass.
        #expect(engine.checkHealth(policy: Self.policy, nowMs: 12_500).isEmpty)
    }
}
