import Foundation
import TestEngines
import Metadata
import Placement
@testable import Storage
import StorageClasses
import Synchronization
import Testing
import TestSupport
@testable import Engine

@Suite struct EngineTests {
    let dir = TemporaryDirectory()

    /// Writes objects of many sizes into a volume of each class; returns (volume, id, seed, size).
    func fill(_ engine: Engine, perClass: Int = 12) throws -> [(String, ObjectID, UInt64, Int)] {
        var written: [(String, ObjectID, UInt64, Int)] = []
        for c in Fixture.classes {
            let volume = try engine.createVolume(name: "pvc-\(c.name)", className: c.name, capacityBytes: 16 << 20)
            for i in 0..<perClass {
                let sizes = [0, 1, Fixture.chunk - 1, Fixture.chunk, 4097]
                let size = i < sizes.count ? sizes[i] : 1000 * i + 7
                let seed = UInt64(written.count)
                written.append((volume.id, try engine.writeObject(volume: volume.id, bytes: Fixture.bytes(size, seed: seed)), seed, size))
            }
        }
        return written
    }

    func verify(_ engine: Engine, _ written: [(String, ObjectID, UInt64, Int)], allowDegraded: Bool = false) throws {
        for (volume, id, seed, size) in written {
            let result = try engine.readObject(volume: volume, id: id)
            expectSame(result.bytes, Fixture.bytes(size, seed: seed), "object \(id)")
            let degraded = result.isDegraded  // not the whole result in a failure's message
            if !allowDegraded { #expect(!degraded, "\(id): \(result.problems)") }
        }
    }

    @Test func roundTripsForEveryClassAndSurviveRestart() throws {
        let written: [(String, ObjectID, UInt64, Int)]
        do {
            let engine = try Fixture.engine(dir)
            written = try fill(engine)
            try verify(engine, written)
            #expect(engine.map.epoch == 2)  // devices, then classes
        }
        let reopened = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        #expect(reopened.classes().map(\.storageClass.name) == Fixture.classes.map(\.name))
        #expect(try reopened.volumes().count == 3)
        try verify(reopened, written)
    }

    /// A device going down degrades exactly the objects whose PG it serves; back up, none.
    @Test func degradedObjectsFollowTheirPGs() throws {
        let engine = try Fixture.engine(dir)
        let written = try fill(engine, perClass: 6)
        #expect(try engine.degradedObjects() == 0)
        let device = engine.map.devices[0].id
        try engine.setDeviceState(device.rawValue, .down)
        var expected = 0
        for (volume, id, _, _) in written {
            let className = try engine.storageClass(ofVolume: volume).name
            let entry = try #require(engine.state.withLock { $0.classes[className] })
            let pg = id.pg(count: entry.storageClass.pgCount)
            if engine.state.withLock({ $0.locations[entry.poolID]?[pg].contains(device) ?? false }) { expected += 1 }
        }
        #expect(expected > 0)
        #expect(try engine.degradedObjects() == expected)
        #expect(try engine.status().pgsDegraded > 0)
        try engine.setDeviceState(device.rawValue, .up)
        #expect(try engine.degradedObjects() == 0)
    }

    @Test func shippedManifestsApply() throws {
        let engine = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        try engine.addDevices(Fixture.devices(hosts: 0..<6))
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var classes: [StorageClass] = []
        for name in ["replicated-3", "ec-4-2", "remote-disk"] {
            let yaml = try String(contentsOf: root.appendingPathComponent("storageclasses/\(name).yaml"), encoding: .utf8)
            classes += try StorageClassManifest.parse(yaml: yaml, source: name)
        }
        try engine.applyClasses(classes)
        #expect(engine.classes().map(\.storageClass.overhead) == [3.0, 1.5, 1.0])
        let v = try engine.createVolume(name: "big", className: "ec-4-2", capacityBytes: 1 << 30)
        let bytes = Fixture.bytes(4 << 20, seed: 1)
        let id = try engine.writeObject(volume: v.id, bytes: bytes)
        expectSame(try engine.readObject(volume: v.id, id: id).bytes, bytes)
    }

    /// Adding a host moves shards onto it; failing a host rebuilds its shards elsewhere.
    /// After the mover finishes, every object reads cleanly with the failed devices gone.
    @Test func addAHostAndFailAHostWhileDataIsPresent() throws {
        let engine = try Fixture.engine(dir)
        let written = try fill(engine)
        // Add a host.
        try engine.addDevices(Fixture.devices(hosts: 7..<8))
        let added = engine.pendingPositions()
        #expect(!added.isEmpty && added.allSatisfy { !$0.recovery && $0.to.rawValue.hasPrefix("h7-") })
        let firstMove = engine.move()
        #expect(firstMove.failures.isEmpty, "\(firstMove.failures)")
        #expect(firstMove.remaining == 0)
        #expect(engine.objects.device("h7-d0")!.usedBytes > 0)
        try verify(engine, written)
        // Fail a host: its directories vanish, then it is marked out.
        // (Single copies on it are gone for good: that is what the class promises.)
        let lostSingles = Set(try written.filter { w in
            guard try engine.volume(id: w.0)?.className == "remote-disk" else { return false }
            return try engine.objects.placement(pool: 3, object: w.1).current[0].rawValue.hasPrefix("h2-")
        }.map(\.1))
        for d in ["h2-d0", "h2-d1"] { try FileManager.default.removeItem(atPath: dir.path + "/state/devices/\(d)") }
        for d in ["h2-d0", "h2-d1"] { try engine.failDevice(d) }
        let pending = engine.pendingPositions()
        #expect(pending.allSatisfy { $0.recovery && $0.from.rawValue.hasPrefix("h2-") })
        let survivors = written.filter { !lostSingles.contains($0.1) }
        let second = engine.move()
        // Positions of the single-copy class on the dead host cannot be rebuilt.
        #expect(second.failures.allSatisfy { $0.hasPrefix("pool 3 ") }, "\(second.failures)")
        for (volume, id, seed, size) in survivors {
            guard try engine.volume(id: volume)?.className != "remote-disk" else { continue }
            let result = try engine.readObject(volume: volume, id: id)
            expectSame(result.bytes, Fixture.bytes(size, seed: seed))
            #expect(!result.isDegraded, "\(result.problems)")
        }
        let status = try engine.status()
        #expect(status.devicesOut == 2)
        #expect(status.movement?.donePositions ?? 0 > 0)
    }

    /// The mover switches shard locations without the admin lock: epochs committed while
    /// it runs (health marking a device down and up again) must not undo its switches in
    /// memory, or the next move starts from a device the database says it left.
    @Test func epochsCommittedWhileTheMoverRunsKeepItsSwitches() throws {
        let engine = try Fixture.engine(dir) { $0.moverConcurrency = 1; $0.moverBytesPerSecond = 512 << 10 }
        let written = try fill(engine)
        try engine.addDevices(Fixture.devices(hosts: 7..<8))
        #expect(!engine.pendingPositions().isEmpty)
        let finished = Atomic<Bool>(false)
        let mover = Thread { _ = engine.move(); finished.store(true, ordering: .releasing) }
        mover.start()
        var epochs = 0
        while !finished.load(ordering: .acquiring) {
            try engine.setDeviceState("h0-d0", .down)
            try engine.setDeviceState("h0-d0", .up)
            epochs += 2
        }
        #expect(epochs > 0)
        let live = engine.state.withLock { $0.locations }
        for (pool, locations) in live { #expect(try engine.database.locations(poolID: pool) == locations, "pool \(pool)") }
        let again = engine.move()
        #expect(again.failures.isEmpty, "\(again.failures.prefix(3))")
        #expect(again.remaining == 0)
        try verify(engine, written)
    }

    /// `plan` predicts exactly the positions the mover then moves.
    @Test func planPredictsTheMovement() throws {
        let engine = try Fixture.engine(dir)
        _ = try fill(engine)
        let newHost = Fixture.devices(hosts: 7..<8)
        let before = engine.map
        let report = try engine.plan([], adding: newHost)
        #expect(engine.map == before)  // plan changes nothing
        try engine.addDevices(newHost)
        let pending = engine.pendingPositions()
        for c in report.classes {
            let pool = engine.classes().first { $0.storageClass.name == c.name }!.poolID
            #expect(c.movedPositions == pending.count { $0.pool == pool }, "\(c.name)")
            #expect(c.movedPositions <= Int(Double(c.minimumPositions) * 1.05) + 1)
        }
        let result = engine.move()
        #expect(result.positions == report.classes.reduce(0) { $0 + $1.movedPositions })
        #expect(result.bytes == report.classes.reduce(Int64(0)) { $0 + $1.movedBytes })
    }

    @Test func drainThenRemove() throws {
        let engine = try Fixture.engine(dir)
        let written = try fill(engine)
        #expect(throws: EngineError.self) { try engine.removeDevice("h3-d1") }
        try engine.drainDevice("h3-d1")
        #expect(engine.pendingPositions().allSatisfy { !$0.recovery && $0.from == "h3-d1" })
        #expect(engine.move().failures.isEmpty)
        #expect(engine.objects.device("h3-d1")!.usedBytes == 0)
        try engine.removeDevice("h3-d1")
        #expect(engine.map.device("h3-d1") == nil)
        try verify(engine, written)
    }

    @Test func badRequestsAreRefusedAndChangeNothing() throws {
        let engine = try Fixture.engine(dir)
        let epoch = engine.map.epoch
        #expect(throws: EngineError.unknownDevice("nope")) { try engine.failDevice("nope") }
        #expect(throws: EngineError.unknownClass("gold")) { _ = try engine.createVolume(name: "x", className: "gold", capacityBytes: 1) }
        #expect(throws: EngineError.self) { try engine.addDevices([DeviceSpec(id: "../evil", host: "h0", capacityBytes: 1 << 20)]) }
        #expect(throws: EngineError.self) { try engine.addDevices([DeviceSpec(id: "h0-d0", host: "h0", capacityBytes: 1 << 20)]) }
        var changed = Fixture.classes[0]
        changed.redundancy = .replicated(copies: 2)
        #expect(throws: EngineError.self) { try engine.applyClasses([changed]) }
        // A class wider than the cluster is refused, and the batch with it.
        let wide = StorageClass(name: "ec-8-3", redundancy: .erasure(dataShards: 8, parityShards: 3), chunkSizeBytes: Fixture.chunk, pgCount: 8)
        let fine = StorageClass(name: "r2", redundancy: .replicated(copies: 2), chunkSizeBytes: Fixture.chunk, pgCount: 8)
        #expect(throws: EngineError.self) { try engine.applyClasses([fine, wide]) }
        #expect(engine.storageClass(named: "r2") == nil)
        #expect(engine.map.epoch == epoch)
        let v = try engine.createVolume(name: "pvc", className: "ec-4-2", capacityBytes: 1 << 20)
        #expect(throws: EngineError.classInUse("ec-4-2")) { try engine.deleteClass(named: "ec-4-2") }
        let limit = Fixture.chunk * StorageClass.chunksPerObject
        #expect(throws: EngineError.storage(.objectTooLarge(sizeBytes: limit + 1, limitBytes: limit))) {
            _ = try engine.writeObject(volume: v.id, bytes: Fixture.bytes(limit + 1, seed: 0))
        }
        #expect(throws: EngineError.unknownVolume("vol-missing")) { _ = try engine.writeObject(volume: "vol-missing", bytes: []) }
        try engine.deleteVolume(id: "vol-missing")  // unknown: succeeds
    }

    /// Admission control: a class never accepts more than it can store.
    @Test func admissionControl() throws {
        let engine = try Fixture.engine(dir)
        let report = try engine.capacity()
        let ec = report.classes.first { $0.name == "ec-4-2" }!
        #expect(ec.usableBytes > 0)
        _ = try engine.createVolume(name: "fits", className: "ec-4-2", capacityBytes: ec.usableBytes / 2)
        #expect(throws: EngineError.self) { _ = try engine.createVolume(name: "too-big", className: "ec-4-2", capacityBytes: ec.usableBytes / 2 + (1 << 20)) }
    }

    /// With uneven failure domains the usable capacity is below raw ÷ overhead, and the
    /// report's numbers add up.
    @Test func capacityReflectsPlacement() throws {
        let even = try Fixture.engine(dir)
        let evenReport = try even.capacity()
        let dir2 = TemporaryDirectory()
        let uneven = try Engine(configuration: EngineConfiguration.testing(dir2.path + "/state"))
        // Six hosts, one of them four times bigger: 3-copy cannot use most of it.
        try uneven.addDevices(Fixture.devices(hosts: 0..<5) + [DeviceSpec(id: "big-d0", host: "big", capacityBytes: 2 << 30)])
        try uneven.applyClasses(Fixture.classes)
        let report = try uneven.capacity()
        for c in report.classes {
            #expect(Double(c.usableBytes) < Double(c.rawBytes) / c.overhead * uneven.configuration.fullRatio)
        }
        let r3 = report.classes.first { $0.name == "replicated-3" }!
        #expect(r3.warnings.contains { $0.contains("big") }, "\(r3.warnings)")
        // Even tree, empty devices of one size: the device with the most shards fills first,
        // so usable = full ratio × capacity × pgCount × width ÷ (most shards × overhead).
        let placer = try Placer(map: even.map)
        for c in evenReport.classes {
            let info = even.classes().first { $0.storageClass.name == c.name }!
            let most = try placer.table(pool: info.poolID).counts().values.max()!
            let expected = 0.95 * Double(256 << 20) * Double(32 * info.storageClass.rule.width) / (Double(most) * c.overhead)
            #expect(abs(Double(c.usableBytes) - expected) <= 1, "\(c.name)")
        }
        // Writing data uses raw bytes at the class's overhead.
        let v = try even.createVolume(name: "pvc", className: "replicated-3", capacityBytes: 1 << 20)
        _ = try even.writeObject(volume: v.id, bytes: Fixture.bytes(10_000, seed: 1))
        let after = try even.capacity().classes.first { $0.name == "replicated-3" }!
        #expect(after.dataBytes == 10_000)
        #expect(after.usedBytes == 3 * (10_000 + 64 + 4 * 3))  // header, 3 block checksums, payload
        #expect(after.provisionedBytes == 1 << 20)
        #expect(after.usedBytes == Int64(even.objects.devices.reduce(0) { $0 + $1.usedBytes }))
    }

    @Test func capacityModelArithmetic() {
        // Two devices, one holding twice the shards: it fills first.
        let usable = CapacityModel.usableBytes(
            shardCounts: ["a": 20, "b": 10], pgCount: 10, width: 3, overhead: 3,
            devices: [.init(id: "a", capacityBytes: 1000, usedBytes: 0), .init(id: "b", capacityBytes: 1000, usedBytes: 0)],
            fullRatio: 1)
        // Device a gains X × 20 × 3 / 30 = 2X: full at X = 500.
        #expect(usable == 500)
    }

    @Test func deletingAVolumeFreesItsSpace() throws {
        let engine = try Fixture.engine(dir)
        _ = try fill(engine)
        let used = engine.objects.devices.reduce(0) { $0 + $1.usedBytes }
        #expect(used > 0)
        for v in try engine.volumes() { try engine.deleteVolume(id: v.id) }
        #expect(engine.objects.devices.reduce(0) { $0 + $1.usedBytes } == 0)
        #expect(try engine.volumes().isEmpty)
    }

    /// Concurrent writers on volumes nobody has written yet: the first writes race to open
    /// each volume's database (they once both ran its migrations, and one failed), and then
    /// share it. Every acknowledged object reads back, also after a restart.
    @Test func concurrentFirstWritesToFreshVolumes() throws {
        let written = Mutex<[(String, ObjectID, UInt64, Int)]>([])
        let failures = Mutex<[String]>([])
        do {
            let engine = try Fixture.engine(dir)
            let volumes = try Fixture.classes.map { try engine.createVolume(name: "pvc-\($0.name)", className: $0.name, capacityBytes: 16 << 20).id }
            // Threads, not concurrentPerform (which runs as many at once as there are cores),
            // released together so their first writes meet.
            let gate = DispatchSemaphore(value: 0), done = DispatchGroup()
            for worker in 0..<8 {
                done.enter()
                Thread {
                defer { done.leave() }
                gate.wait()
                for i in 0..<6 {
                    let volume = volumes[i % volumes.count]  // all threads start on the same volume
                    let seed = UInt64(worker * 100 + i), size = 1000 * (worker + i) + 1
                    do {
                        let id = try engine.writeObject(volume: volume, bytes: Fixture.bytes(size, seed: seed))
                        written.withLock { $0.append((volume, id, seed, size)) }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
                }.start()
            }
            for _ in 0..<8 { gate.signal() }
            done.wait()
            #expect(failures.withLock { $0 } == [])
            try verify(engine, written.withLock { $0 })
        }
        #expect(written.withLock { $0.count } == 48)
        try verify(try Engine(configuration: EngineConfiguration.testing(dir.path + "/state")), written.withLock { $0 })
    }

    /// Records a write as a crash would leave it: the row (settling, or staged as the
    /// filesystem writes), and the shards `keep` selects.
    func interruptedWrite(_ engine: Engine, volume: String, seed: UInt64, settling: Bool,
                          keep: (Int) -> Bool) throws -> (String, ObjectID, UInt64, Int) {
        let vdb = try engine.namespace(volume: volume)
        let pool = try engine.pool(ofVolume: volume)
        let id = engine.generator.next()
        let bytes = Fixture.bytes(5000, seed: seed)
        try vdb.beginObject(ObjectRecord(id: id.description, poolID: Int64(pool), pg: Int64(id.pg(count: 32)),
                                         sizeBytes: Int64(bytes.count), state: .writing, createdMs: 1), settling: settling)
        try engine.objects.put(pool: pool, object: id, bytes: bytes)
        for (position, device) in try engine.objects.placement(pool: pool, object: id).current.enumerated() where !keep(position) {
            try engine.objects.device(device)!.delete(object: id, position: position)
        }
        return (volume, id, seed, bytes.count)
    }

    /// A crash between a write's durable row and making it live (the two flushes of a
    /// write overlap, so either may be on disk alone) is settled at start: an object that
    /// reads back is kept (it may have been acknowledged), one whose shards are provably
    /// incomplete is collected; the filesystem's staged objects ('writing', never
    /// acknowledged on their own) are collected as before.
    @Test func interruptedWritesSettleAtStart() throws {
        var kept: [(String, ObjectID, UInt64, Int)] = []
        var collected: [(volume: String, id: ObjectID)] = []
        var volumes: [String: String] = [:]
        do {
            let engine = try Fixture.engine(dir)
            for c in Fixture.classes {
                volumes[c.name] = try engine.createVolume(name: "pvc-\(c.name)", className: c.name, capacityBytes: 16 << 20).id
            }
            func interrupted(_ className: String, seed: UInt64, settling: Bool, keep: (Int) -> Bool) throws -> (String, ObjectID, UInt64, Int) {
                try interruptedWrite(engine, volume: volumes[className]!, seed: seed, settling: settling, keep: keep)
            }
            // Every shard durable, or enough of them: kept.
            kept.append(try interrupted("replicated-3", seed: 1, settling: true) { _ in true })
            kept.append(try interrupted("replicated-3", seed: 2, settling: true) { $0 == 1 })
            kept.append(try interrupted("ec-4-2", seed: 3, settling: true) { $0 != 5 })
            kept.append(try interrupted("remote-disk", seed: 4, settling: true) { _ in true })
            // Too few shards on reachable devices: never acknowledged, collected.
            for (className, seed) in [("replicated-3", UInt64(5)), ("ec-4-2", 6), ("remote-disk", 7)] {
                let (volume, id, _, _) = try interrupted(className, seed: seed, settling: true) { className == "ec-4-2" && $0 < 3 }
                collected.append((volume, id))
            }
            // Staged by the filesystem (not settling): collected even though complete.
            let (volume, id, _, _) = try interrupted("replicated-3", seed: 8, settling: false) { _ in true }
            collected.append((volume, id))
        }
        let reopened = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        try verify(reopened, kept, allowDegraded: true)  // two lack a shard
        for (volume, id) in collected {
            #expect(try reopened.namespace(volume: volume).object(id: id.description) == nil, "\(id) should be collected")
            #expect(reopened.objects.devices.allSatisfy { store in (0..<6).allSatisfy { !(store as! ShardStore).contains(object: id, position: $0) } })
        }
        for volume in volumes.values { #expect(try reopened.namespace(volume: volume).settlingObjects().isEmpty) }
    }

    /// A settling object whose only device is down at start cannot be judged: it waits,
    /// and is kept at the first start that finds its device again.
    @Test func anInterruptedWriteWaitsForItsDevice() throws {
        let waiting: (String, ObjectID, UInt64, Int), deviceRoot: String
        do {
            let engine = try Fixture.engine(dir)
            let volume = try engine.createVolume(name: "pvc", className: "remote-disk", capacityBytes: 16 << 20).id
            waiting = try interruptedWrite(engine, volume: volume, seed: 9, settling: true) { _ in true }
            let device = try engine.objects.placement(pool: try engine.pool(ofVolume: volume), object: waiting.1).current[0]
            deviceRoot = (engine.objects.device(device) as! ShardStore).root
        }
        let state = dir.path + "/state"
        try FileManager.default.moveItem(atPath: deviceRoot, toPath: deviceRoot + ".away")
        do {
            let reopened = try Engine(configuration: EngineConfiguration.testing(state))
            #expect(try reopened.namespace(volume: waiting.0).settlingObjects().map(\.id) == [waiting.1.description])
        }
        try FileManager.default.moveItem(atPath: deviceRoot + ".away", toPath: deviceRoot)
        let reopened = try Engine(configuration: EngineConfiguration.testing(state))
        try verify(reopened, [waiting])
        #expect(try reopened.namespace(volume: waiting.0).settlingObjects().isEmpty)
    }

    /// An acknowledged write is live at once for every query, though its 'live' commit
    /// rides on a later commit (`settleLater`); a write deleted before that stays deleted.
    @Test func acknowledgedWritesAreLiveAtOnce() throws {
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "pvc", className: "replicated-3", capacityBytes: 16 << 20).id
        let vdb = try engine.namespace(volume: volume)
        var ids: [ObjectID] = []
        for i in 0..<5 {
            let bytes = Fixture.bytes(1000 + i, seed: UInt64(i))
            let id = try engine.writeObject(volume: volume, bytes: bytes)
            #expect(try vdb.object(id: id.description)?.state == .live)
            expectSame(try engine.readObject(volume: volume, id: id).bytes, bytes)
            ids.append(id)
        }
        #expect(try engine.objectIDs(volume: volume) == ids.sorted { $0.description < $1.description })
        #expect(try vdb.settlingObjects().isEmpty)
        let gone = try engine.writeObject(volume: volume, bytes: [1, 2, 3])
        try engine.deleteObject(volume: volume, id: gone)
        try vdb.settleDeferred()
        #expect(try vdb.object(id: gone.description) == nil)
        #expect(try engine.objectIDs(volume: volume).count == 5)
    }

    /// While writes go on (each commit carrying earlier writes' deferred settles), a
    /// lookup of any acknowledged object finds it live, every time.
    /// A write completes while every thread of the global queue is busy: its row, its
    /// shards' leaf directories and the deferred settle run on queues of their own (the
    /// hang this guards against: writers blocked on the global queue waiting for work
    /// queued behind them). The 60 s bound only keeps a hang from stalling the suite.
    @Test func writesDoNotNeedTheGlobalQueue() throws {
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "pvc", className: "ec-4-2", capacityBytes: 16 << 20).id
        let written = GlobalQueueHold.run {
            Result { () throws(EngineError) -> ObjectID in try engine.writeObject(volume: volume, bytes: Fixture.bytes(5000, seed: 4)) }
        }
        #expect(written != nil, "the write waited for the global queue")
        let id = try #require(try written?.get())
        expectSame(try engine.readObject(volume: volume, id: id).bytes, Fixture.bytes(5000, seed: 4))
    }

    @Test func lookupsNeverMissAnAcknowledgedWrite() throws {
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "pvc", className: "remote-disk", capacityBytes: 16 << 20).id
        let vdb = try engine.namespace(volume: volume)
        let acknowledged = Mutex<[ObjectID]>([])
        let writing = Atomic<Bool>(true)
        let misses = Atomic<Int>(0), lookups = Atomic<Int>(0)
        // A thread of its own: it spins, and on a global-queue thread it would hold one of
        // the pool's few threads (one per CPU) for the whole test.
        let reader = DispatchGroup()
        reader.enter()
        Thread {
            defer { reader.leave() }
            var i = 0
            while writing.load(ordering: .acquiring) {
                let ids = acknowledged.withLock { $0 }
                guard !ids.isEmpty else { continue }
                let id = ids[ids.count - 1 - (i % min(3, ids.count))]  // the newest few
                i += 1
                lookups.add(1, ordering: .relaxed)
                if (try? vdb.object(id: id.description))??.state != .live { misses.add(1, ordering: .relaxed) }
            }
        }.start()
        for i in 0..<60 {
            let id = try engine.writeObject(volume: volume, bytes: Fixture.bytes(100, seed: UInt64(i)))
            acknowledged.withLock { $0.append(id) }
        }
        writing.store(false, ordering: .releasing)
        reader.wait()
        #expect(lookups.load(ordering: .relaxed) > 0)
        #expect(misses.load(ordering: .relaxed) == 0)
    }

    /// A write in flight while a new epoch moves its PG: it took its placement from the
    /// old epoch, so its shard goes to the position's old device. The mover must not list
    /// the PG before that shard is down, or it neither copies it nor keeps it (the old
    /// device is then cleaned and removed, and the object is lost). The write is paused
    /// between taking its placement and writing; its PG's first device is drained
    /// meanwhile and the mover started; then the write goes on. Engine writes and the
    /// filesystem's staged writes, every class.
    @Test(arguments: ["replicated-3", "ec-4-2", "remote-disk"], [false, true])
    func aWriteInFlightAcrossAnEpochChangeIsMoved(className: String, staged: Bool) throws {
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "pvc", className: className, capacityBytes: 16 << 20).id
        var written: [(String, ObjectID, UInt64, Int)] = []
        for i in 0..<8 {
            written.append((volume, try engine.writeObject(volume: volume, bytes: Fixture.bytes(3000 + i, seed: UInt64(i))), UInt64(i), 3000 + i))
        }
        let paused = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0)
        let placed = Mutex<ObjectID?>(nil)
        engine.objects.afterPlacement.withLock { hook in
            hook = { id in
                placed.withLock { $0 = id }
                paused.signal()
                resume.wait()
            }
        }
        let bytes = Fixture.bytes(5000, seed: 99)
        let writeResult = Mutex<Result<ObjectID, EngineError>?>(nil)
        // Threads of their own, not global-queue ones: the write blocks here, and the pool's
        // few threads (one per CPU) are shared with the test runner.
        let threads = DispatchGroup()
        threads.enter()
        Thread {
            defer { threads.leave() }
            let result = Result { () throws(EngineError) -> ObjectID in
                if !staged { return try engine.writeObject(volume: volume, bytes: bytes) }
                let id = try engine.stageObject(volume: volume, bytes: bytes)
                // What the filesystem's slice commit does once the shards are written.
                try EngineError.wrap { try engine.namespace(volume: volume).setState(object: id.description, .live) }
                return id
            }
            writeResult.withLock { $0 = result }
        }.start()
        paused.wait()
        engine.objects.afterPlacement.withLock { $0 = nil }
        let id = try #require(placed.withLock { $0 })
        let pool = try engine.pool(ofVolume: volume)
        let drained = try engine.objects.placement(pool: pool, object: id).current[0]
        try engine.drainDevice(drained.rawValue)
        let pg = id.pg(count: 32)
        #expect(engine.pendingPositions().contains { $0.pool == pool && $0.pg == pg && $0.from == drained })
        let firstMove = Mutex<MoveResult?>(nil)
        threads.enter()
        Thread { defer { threads.leave() }; let result = engine.move(); firstMove.withLock { $0 = result } }.start()
        // Go on once the mover waits for the write, or (were it not to wait) has finished.
        while engine.objects.waitingForPuts == 0 && firstMove.withLock({ $0 }) == nil { Thread.sleep(forTimeInterval: 0.001) }
        resume.signal()
        threads.wait()
        written.append((volume, try #require(try writeResult.withLock { $0 }?.get()), 99, bytes.count))
        #expect(firstMove.withLock { $0 }?.failures == [])
        let rest = engine.move()
        #expect(rest.failures.isEmpty && rest.remaining == 0, "\(rest)")
        // The drained device goes away for good: everything must be elsewhere.
        let root = try #require(engine.objects.device(drained) as? ShardStore).root
        try engine.removeDevice(drained.rawValue)
        try FileManager.default.removeItem(atPath: root)
        try verify(engine, written)
    }
}
