import Foundation
import Placement
import Storage
import Testing
@testable import Engine

/// Planned maintenance and short outages: a host away for a while under writes is never
/// taken out, nothing is rebuilt, and on its return exactly the shards it missed are
/// written — the delta, in bytes — and every PG is clean.
@Suite struct MaintenanceTests {
    typealias Hosts = HealthTests.Hosts
    static let policy = HealthPolicy(downAfterMs: 0, outAfterMs: 1_000)

    /// Seven hosts of two agent-served devices, the three classes, a volume of each class
    /// that keeps redundancy (a single copy on a host that is away cannot be written at all).
    func cluster(_ dir: TemporaryDirectory) throws -> (Engine, Hosts, [String]) {
        let hosts = Hosts(root: dir.path + "/hosts")
        let engine = try HealthTests.engine(dir, hosts)
        try engine.addDevices((0..<7).flatMap { h in
            (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 256 << 20, agent: "h\(h):7440") }
        })
        try engine.applyClasses(Fixture.classes)
        let volumes = try Fixture.classes.filter { $0.name != "remote-disk" }
            .map { try engine.createVolume(name: "v-\($0.name)", className: $0.name, capacityBytes: 64 << 20).id }
        return (engine, hosts, volumes)
    }

    /// Writes `count` objects to each volume; returns (volume, id, bytes).
    func write(_ engine: Engine, _ volumes: [String], count: Int, seed: UInt64) throws -> [(String, ObjectID, [UInt8])] {
        var written: [(String, ObjectID, [UInt8])] = []
        for volume in volumes {
            for i in 0..<count {
                let bytes = Fixture.bytes(30_000 + i * 97, seed: seed &+ UInt64(i) &+ UInt64(volume.hashValue & 0xffff))
                written.append((volume, try engine.writeObject(volume: volume, bytes: bytes), bytes))
            }
        }
        return written
    }

    /// Bytes of the shards `host`'s devices should hold for `objects`: one shard file per
    /// position of the object's PG placed there.
    func shardBytes(on host: String, _ engine: Engine, _ objects: [(String, ObjectID, [UInt8])]) throws -> Int64 {
        try engine.index.flush()
        var total: Int64 = 0
        for (volume, id, _) in objects {
            let pool = try engine.pool(ofVolume: volume)
            let onHost = try engine.objects.placement(pool: pool, object: id).current.filter { $0.rawValue.hasPrefix(host + "-") }.count
            let indexed = try #require(try engine.database.indexedObject(id: id.description))
            total += Int64(onHost) * indexed.shardBytes
        }
        return total
    }

    func states(_ engine: Engine, _ host: String) -> [DeviceState?] {
        ["\(host)-d0", "\(host)-d1"].map { id in (try? engine.devices())?.first { $0.id == id }?.state }
    }

    @Test func aHostInMaintenanceIsNeverTakenOutAndResyncsOnlyWhatItMissed() throws {
        let dir = TemporaryDirectory()
        let (engine, hosts, volumes) = try cluster(dir)
        let before = try write(engine, volumes, count: 10, seed: 1)
        let windows = try engine.startMaintenance("h6")
        #expect(windows.map(\.device) == ["h6-d0", "h6-d1"] && windows.allSatisfy { $0.host == "h6" && $0.untilMs == nil })
        #expect(states(engine, "h6") == [.down, .down])
        #expect(try engine.status().maintenance.count == 2)
        let epoch = try engine.status().epoch

        // The host goes away (a reboot) while clients write; the health check runs for far
        // longer than the grace period.
        hosts.silent.withLock { _ = $0.insert("h6") }
        let during = try write(engine, volumes, count: 30, seed: 2)
        for now in stride(from: Int64(10_000), through: 200_000, by: 10_000) { _ = engine.checkHealth(policy: Self.policy, nowMs: now) }
        #expect(states(engine, "h6") == [.down, .down], "never out while in maintenance")
        #expect(try engine.status().epoch == epoch, "no map change: nothing is rebuilt")
        let away = engine.move()
        #expect(away.positions == 0 && away.bytes == 0)
        for (volume, id, bytes) in before + during { #expect(try engine.readObject(volume: volume, id: id).bytes == bytes) }

        // Back, still in maintenance: the check leaves it alone.
        hosts.silent.withLock { $0 = [] }
        _ = engine.checkHealth(policy: Self.policy, nowMs: 210_000)
        #expect(states(engine, "h6") == [.down, .down])
        #expect(try engine.stopMaintenance("h6") == ["h6-d0", "h6-d1"])
        #expect(states(engine, "h6") == [.up, .up])
        let missed = try shardBytes(on: "h6", engine, during)
        #expect(missed > 0, "nothing was placed on h6: the test shows nothing")
        let back = engine.move()
        #expect(back.failures.isEmpty, "\(back.failures)")
        #expect(back.positions == 0, "no PG moved")
        #expect(back.bytes == missed, "resynced exactly the shards written while it was away")
        #expect(try engine.status().recoveredBytes == missed)
        let status = try engine.status()
        #expect(status.pgsDegraded == 0 && status.pgsMoving == 0 && status.maintenance.isEmpty)
        #expect(try engine.pgsNeedingRecovery().isEmpty)
        for (volume, id, bytes) in before + during {
            let read = try engine.readObject(volume: volume, id: id)
            #expect(read.bytes == bytes && !read.isDegraded)
        }
    }

    @Test func aShortOutageWithoutMaintenanceResyncsOnlyTheDelta() throws {
        let dir = TemporaryDirectory()
        let (engine, hosts, volumes) = try cluster(dir)
        _ = try write(engine, volumes, count: 10, seed: 3)
        hosts.silent.withLock { _ = $0.insert("h2") }
        _ = engine.checkHealth(policy: Self.policy, nowMs: 10_000)
        #expect(states(engine, "h2") == [.down, .down])
        let during = try write(engine, volumes, count: 20, seed: 4)
        _ = engine.checkHealth(policy: Self.policy, nowMs: 10_600)  // within the grace period
        hosts.silent.withLock { $0 = [] }
        _ = engine.checkHealth(policy: Self.policy, nowMs: 10_700)
        #expect(states(engine, "h2") == [.up, .up])
        let missed = try shardBytes(on: "h2", engine, during)
        #expect(missed > 0)
        let back = engine.move()
        #expect(back.failures.isEmpty && back.positions == 0)
        #expect(back.bytes == missed)
        #expect(try engine.status().pgsDegraded == 0)
    }

    @Test func maintenanceEndsByItselfSurvivesARestartAndRefusesWhatItCannotDo() throws {
        let dir = TemporaryDirectory()
        do {
            let (engine, _, _) = try cluster(dir)
            #expect(throws: EngineError.self) { try engine.startMaintenance("nowhere") }
            #expect(throws: EngineError.self) { try engine.startMaintenance("h1", durationMs: 0) }
            try engine.failDevice("h1-d1")
            #expect(throws: EngineError.self) { try engine.startMaintenance("h1") }  // h1-d1 is out
            try engine.startMaintenance("h5-d0", durationMs: 60_000)
            try engine.startMaintenance("h4")
            #expect(engine.endExpiredMaintenance().isEmpty, "not due yet")
        }
        // A restart keeps it, the check still leaves it alone.
        let hosts = Hosts(root: dir.path + "/hosts")
        let engine = try HealthTests.engine(dir, hosts)
        #expect(engine.maintenance().map(\.device) == ["h4-d0", "h4-d1", "h5-d0"])
        hosts.silent.withLock { _ = $0.insert("h4") }
        for now in stride(from: Int64(10_000), through: 50_000, by: 5_000) { _ = engine.checkHealth(policy: Self.policy, nowMs: now) }
        #expect(states(engine, "h4") == [.down, .down])
        // Its time comes: up again.
        #expect(engine.endExpiredMaintenance(nowMs: Engine.nowMs() + 61_000) == ["h5-d0"])
        #expect((try engine.devices()).first { $0.id == "h5-d0" }?.state == .up)
        // An admin's own state change ends it too; a stop of what is not in maintenance is empty.
        try engine.setDeviceState("h4-d0", .up)
        #expect(engine.maintenance().map(\.device) == ["h4-d1"])
        #expect(try engine.stopMaintenance("h3").isEmpty)
        // Ended while h4 is still silent: the health check takes it from there.
        try engine.stopMaintenance("h4")
        _ = engine.checkHealth(policy: Self.policy, nowMs: 60_000)
        #expect(states(engine, "h4") == [.down, .down])
        _ = engine.checkHealth(policy: Self.policy, nowMs: 61_500)
        #expect(states(engine, "h4") == [.out, .out])
    }
}
