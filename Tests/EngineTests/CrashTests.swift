import Foundation
import TestEngines
import Placement
import Storage
import TestSupport
import Testing
@testable import Engine

/// SIGKILL the engine in a child process in the middle of work, restart it in this
/// process, and find every acknowledged object intact and nothing left over.
@Suite(.serialized) struct CrashTests {
    let dir = TemporaryDirectory("berth-crash")
    var state: String { dir.path + "/state" }

    static var tool: String { BuiltProduct.path("berth-engine") }

    /// Runs the tool to completion; returns its stdout lines.
    @discardableResult
    func run(_ args: [String]) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.tool)
        process.arguments = args + TestMetadata.arguments(forStateDirectory: args[1])  // args[1]: STATE
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "berth-engine \(args) exited \(process.terminationStatus)")
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Starts the tool, reads lines until `enough` says stop, then SIGKILLs it mid-flight.
    func runAndKill(_ args: [String], enough: ([String]) -> Bool) throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.tool)
        process.arguments = args + TestMetadata.arguments(forStateDirectory: args[1])  // args[1]: STATE
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var buffer = Data()
        var lines: [String] = []
        while !enough(lines) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }  // exited by itself
            buffer += chunk
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: buffer[buffer.startIndex..<newline], as: UTF8.self))
                buffer = Data(buffer[(newline + 1)...])
            }
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return lines
    }

    struct Ack { let volume: String; let object: ObjectID; let index: Int }

    func acks(_ lines: [String]) -> [Ack] {
        lines.compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 4, parts[0] == "ACK", let id = ObjectID(String(parts[2])), let index = Int(parts[3]) else { return nil }
            return Ack(volume: String(parts[1]), object: id, index: index)
        }
    }

    func shardCount(_ engine: Engine) throws -> Int {
        try engine.objects.devices.reduce(0) { $0 + (try $1.allShards().count) }
    }

    @Test(arguments: ["replicated-3", "ec-4-2"])
    func killedInTheMiddleOfWrites(className: String) throws {
        try run(["init", state])
        let size = 60_000
        let lines = try runAndKill(["write", state, "--class", className, "--count", "100000", "--size", "\(size)"]) {
            $0.count >= 25
        }
        let acknowledged = acks(lines)
        #expect(acknowledged.count >= 25)
        let engine = try Engine(configuration: EngineConfiguration.testing(state))
        for ack in acknowledged {
            let result = try engine.readObject(volume: ack.volume, id: ack.object)
            expectSame(result.bytes, Fixture.bytes(size, seed: UInt64(ack.index)), "acknowledged object \(ack.index)")
            #expect(!result.isDegraded)
        }
        // The object in flight was either finished or collected: no orphans.
        let live = try engine.objectIDs(volume: acknowledged[0].volume)
        #expect(live.count >= acknowledged.count && live.count <= acknowledged.count + 1)
        let width = className == "replicated-3" ? 3 : 6
        #expect(try shardCount(engine) == live.count * width)
        for store in engine.objects.devices {
            #expect(ShardStoreEntries.tmp(store as! ShardStore).isEmpty, "\(store.id) has leftover temporary files")
        }
    }

    @Test func killedInTheMiddleOfAMove() throws {
        try run(["init", state])
        let size = 50_000
        var all: [Ack] = []
        for className in ["replicated-3", "ec-4-2"] {
            all += acks(try run(["write", state, "--class", className, "--count", "40", "--size", "\(size)"]))
        }
        #expect(all.count == 80)
        try run(["fail", state, "h3-d0", "h3-d1"])
        try FileManager.default.removeItem(atPath: state + "/devices/h3-d0")
        try FileManager.default.removeItem(atPath: state + "/devices/h3-d1")
        try run(["add-host", state, "h9"])
        // Slow mover: about 1 MB/s, killed after a few positions.
        let lines = try runAndKill(["move", state, "--rate", "1000000", "--concurrency", "2"]) {
            $0.filter { $0.hasPrefix("MOVED 1 ") }.count >= 3
        }
        #expect(lines.contains { $0.hasPrefix("MOVED 1 ") })
        let engine = try Engine(configuration: EngineConfiguration.testing(state))
        let before = engine.pendingPositions().count
        #expect(before > 0)
        let result = engine.move()
        #expect(result.failures.isEmpty, "\(result.failures)")
        #expect(result.remaining == 0)
        for ack in all {
            let read = try engine.readObject(volume: ack.volume, id: ack.object)
            expectSame(read.bytes, Fixture.bytes(size, seed: UInt64(ack.index)), "object \(ack.index)")
            #expect(!read.isDegraded, "\(read.problems)")
        }
        let status = try engine.status()
        #expect(status.pgsClean == 64 + 32)  // every PG of the two used classes and the empty one
        #expect(status.movement?.finished == true)
        // Old shards of finished moves are gone: exactly width shards per live object.
        #expect(try shardCount(engine) == 40 * 3 + 40 * 6)
    }

    /// SIGKILL between and inside the steps of making and deleting snapshots and clones,
    /// letting go of shared objects and writing to clones, again and again (each run also
    /// recovers from the kill before it); then: no namespace half made or half deleted,
    /// every object any namespace holds reads back whole, and the devices hold the shards
    /// of exactly those objects — no leak, no dangling reference.
    @Test(arguments: ["replicated-3", "ec-4-2"])
    func killedInTheMiddleOfSnapshotsAndClones(className: String) throws {
        try run(["init", state])
        // BERTH_CRASH_SEED: other kill points, to search by hand.
        let seed = ProcessInfo.processInfo.environment["BERTH_CRASH_SEED"].flatMap(UInt64.init) ?? (className == "ec-4-2" ? 7 : 3)
        var random = SeededRandom(seed: seed)
        var steps = 0
        for _ in 0..<10 {
            let wanted = Int.random(in: 1...40, using: &random)
            steps += try runAndKill(["snapshots", state, "--class", className]) { $0.count >= wanted }.count
        }
        #expect(steps >= 8)
        let engine = try Engine(configuration: EngineConfiguration.testing(state))
        let namespaces = try engine.database.volumes()
        #expect(namespaces.allSatisfy { $0.state == .available }, "\(namespaces.filter { $0.state != .available })")
        #expect(namespaces.contains { $0.kind == .snapshot })
        var held: [String: Set<String>] = [:]  // object → holders
        var poolOf: [String: UInt32] = [:]
        for namespace in namespaces {
            let vdb = try engine.temporaryVolumeDatabase(namespace.id)
            for row in try vdb.objects() {
                #expect(row.state == .live, "\(namespace.id) has \(row.id) \(row.state)")
                let read = try engine.objects.get(pool: UInt32(row.poolID), object: try #require(ObjectID(row.id)))
                #expect(read.bytes.count == Int(row.sizeBytes) && !read.isDegraded, "\(namespace.id): \(row.id)")
                held[row.id, default: []].insert(namespace.id)
                poolOf[row.id] = UInt32(row.poolID)
            }
        }
        #expect(namespaces.contains { $0.kind == .volume && $0.className != className }, "clones into the other class were made")
        #expect(held.count >= 3)
        // The index names each object once, under one of its holders (the mover finds it).
        for (object, holders) in held {
            let indexed = try engine.database.indexedObject(id: object)
            #expect(indexed.map { holders.contains($0.volumeID) } == true, "\(object) indexed under \(indexed?.volumeID ?? "nothing")")
        }
        let widths = engine.state.withLock { s in Dictionary(uniqueKeysWithValues: s.classes.values.map { ($0.poolID, $0.storageClass.rule.width) }) }
        #expect(try shardCount(engine) == held.keys.reduce(0) { $0 + widths[poolOf[$1]!]! })
        // No database left of a namespace that is gone.
        let files = try FileManager.default.contentsOfDirectory(atPath: state + "/volumes").filter { $0.hasSuffix(".sqlite") || $0.contains(".copying") }
        #expect(Set(files) == Set(namespaces.map { $0.id + ".sqlite" }))
    }
}

enum ShardStoreEntries {
    static func tmp(_ store: ShardStore) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: store.root + "/tmp")) ?? []
    }
}
