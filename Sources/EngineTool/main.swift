// berth-engine: drives the storage engine on a state directory without the daemon.
// For operators poking at a node, and for the crash tests, which kill it mid-operation.
//
//   berth-engine init STATE [--hosts N] [--devices-per-host M] [--capacity BYTES] [--chunk BYTES] [--pgs N]
//   berth-engine write STATE --class NAME [--count N] [--size BYTES]   prints "ACK <volume> <object> <index>" per durable object
//   berth-engine fail STATE DEVICE...
//   berth-engine add-host STATE HOST [--devices M] [--capacity BYTES]
//   berth-engine move STATE [--rate BYTES_PER_S] [--concurrency N]     prints "MOVED <positions> <bytes> <remaining>" per step
//   berth-engine status STATE
//   berth-engine capacity STATE                                       the capacity report (JSON)
//   berth-engine snapshots STATE --class NAME [--rounds N]              snapshot/clone/delete work; prints "STEP n" after each step
//   berth-engine mount STATE VOLUME MOUNTPOINT [--class NAME] [--size BYTES] [--ro] [--journal]
//                                     creates the volume if needed; serves it until SIGTERM
// Every command takes --metadata URL (sqlite:///PATH or postgres://…, as VolumeDriver's):
// the cluster state there instead of STATE/cluster.sqlite; with postgres, volumes'
// namespaces too, under leases (docs/cluster.md).
import Engine
import FileSystem
import Foundation
import Metadata
import Placement
import StorageClasses

func fail(_ message: String) -> Never {
    FileHandle.standardError.write((message + "\n").data(using: .utf8)!)
    exit(2)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 2 else { fail("usage: berth-engine init|write|fail|add-host|move|status STATE [options]") }
let command = arguments.removeFirst()
let stateDirectory = arguments.removeFirst()

@MainActor func option(_ name: String, _ fallback: Int64) -> Int64 {
    guard let i = arguments.firstIndex(of: name) else { return fallback }
    guard i + 1 < arguments.count, let value = Int64(arguments[i + 1]) else { fail("\(name) needs a number") }
    arguments.removeSubrange(i...(i + 1))
    return value
}

@MainActor func stringOption(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name) else { return nil }
    guard i + 1 < arguments.count else { fail("\(name) needs a value") }
    defer { arguments.removeSubrange(i...(i + 1)) }
    return arguments[i + 1]
}

let metadataURL = stringOption("--metadata")

/// Settings for the engine on STATE, with `--metadata URL` if given.
@MainActor func configured(moverBytesPerSecond: Int64? = nil, moverConcurrency: Int = 2) -> EngineConfiguration {
    var configuration = EngineConfiguration(stateDirectory: stateDirectory, moverBytesPerSecond: moverBytesPerSecond, moverConcurrency: moverConcurrency)
    if let url = metadataURL {
        do { configuration.metadata = try MetadataLocation.parse(url, environment: ProcessInfo.processInfo.environment) } catch {
            fail("--metadata: \(error)")
        }
    }
    return configuration
}

/// The deterministic bytes of object `index` (the crash tests recompute them).
func content(_ index: Int, size: Int) -> [UInt8] {
    var state = UInt64(index) &+ 0x9e37_79b9_7f4a_7c15
    return (0..<size).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// Unbuffered: a line is out before the next operation starts (the crash tests rely on it).
func say(_ line: String) {
    FileHandle.standardOutput.write((line + "\n").data(using: .utf8)!)
}

do {
    switch command {
    case "init":
        let hosts = option("--hosts", 7), perHost = option("--devices-per-host", 2)
        let capacity = option("--capacity", 1 << 30), chunk = option("--chunk", 64 << 10), pgs = option("--pgs", 32)
        let engine = try Engine(configuration: configured())
        try engine.addDevices((0..<hosts).flatMap { h in
            (0..<perHost).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: capacity) }
        })
        try engine.applyClasses([
            StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: Int(chunk), pgCount: Int(pgs)),
            StorageClass(name: "ec-4-2", redundancy: .erasure(dataShards: 4, parityShards: 2), chunkSizeBytes: Int(chunk), pgCount: Int(pgs)),
            StorageClass(name: "remote-disk", redundancy: .single, chunkSizeBytes: Int(chunk), pgCount: Int(pgs)),
        ])
        say("epoch \(engine.map.epoch)")
    case "write":
        guard let className = stringOption("--class") else { fail("write needs --class") }
        let count = option("--count", 100), size = option("--size", 4096)
        let engine = try Engine(configuration: configured())
        let name = "crash-\(className)"
        let volume = try engine.volume(named: name) ?? engine.createVolume(name: name, className: className, capacityBytes: 1 << 30)
        let start = try engine.objectIDs(volume: volume.id).count
        for index in start..<(start + Int(count)) {
            let id = try engine.writeObject(volume: volume.id, bytes: content(index, size: Int(size)))
            say("ACK \(volume.id) \(id) \(index)")
        }
    case "fail":
        let engine = try Engine(configuration: configured())
        for device in arguments { try engine.failDevice(device) }
        say("epoch \(engine.map.epoch)")
    case "add-host":
        guard let host = arguments.first else { fail("add-host needs a host name") }
        arguments.removeFirst()
        let devices = option("--devices", 2), capacity = option("--capacity", 1 << 30)
        let engine = try Engine(configuration: configured())
        try engine.addDevices((0..<devices).map { DeviceSpec(id: "\(host)-d\($0)", host: host, capacityBytes: capacity) })
        say("epoch \(engine.map.epoch)")
    case "move":
        let rate = option("--rate", 0), concurrency = option("--concurrency", 2)
        let engine = try Engine(configuration: configured(moverBytesPerSecond: rate > 0 ? rate : nil, moverConcurrency: Int(concurrency)))
        while true {
            let result = engine.move(maxPositions: 1)
            for failure in result.failures { say("FAILED \(failure)") }
            say("MOVED \(result.positions) \(result.bytes) \(result.remaining)")
            if result.remaining == 0 || result.positions == 0 { break }
        }
    case "status":
        let engine = try Engine(configuration: configured())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        say(String(decoding: try encoder.encode(engine.status()), as: UTF8.self))
    case "capacity":
        let engine = try Engine(configuration: configured())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        say(String(decoding: try encoder.encode(engine.capacity()), as: UTF8.self))
    case "snapshots":
        // Rounds of every step a snapshot's life has, for the crash tests (which kill this
        // between and inside steps): the source changes, is snapshotted and cloned, clones
        // change, and the oldest snapshots and clones go.
        guard let className = stringOption("--class") else { fail("snapshots needs --class") }
        let rounds = option("--rounds", 100_000)
        let engine = try Engine(configuration: configured())
        let name = "snapshot-source-\(className)"
        let source = try engine.volume(named: name) ?? engine.createVolume(name: name, className: className, capacityBytes: 64 << 20)
        var step = 0
        func done() {
            step += 1
            say("STEP \(step)")
        }
        let run = UInt64.random(in: 0..<(1 << 40))
        for round in 0..<Int(rounds) {
            let tag = "\(run)-\(round)"
            _ = try engine.writeObject(volume: source.id, bytes: content(round, size: 20_000))
            done()
            let snapshot = try engine.createSnapshot(name: "s-\(tag)", sourceVolumeID: source.id)
            done()
            let clone = try engine.createVolume(name: "c-\(tag)", className: className, capacityBytes: 64 << 20, source: .snapshot(snapshot.id))
            done()
            _ = try engine.writeObject(volume: clone.id, bytes: content(round + 1_000_000, size: 20_000))
            if let shared = try engine.objectIDs(volume: clone.id).first { try engine.deleteObject(volume: clone.id, id: shared) }
            done()
            if let oldest = try engine.objectIDs(volume: source.id).first { try engine.deleteObject(volume: source.id, id: oldest) }
            done()
            let snapshots = try engine.snapshots(after: nil, limit: nil).sorted { ($0.createdMs, $0.id) < ($1.createdMs, $1.id) }
            if snapshots.count > 3 { try engine.deleteSnapshot(id: snapshots[0].id) }
            done()
            let clones = try engine.volumes().filter { $0.source != nil && $0.className == className }
                .sorted { ($0.createdMs, $0.id) < ($1.createdMs, $1.id) }
            if clones.count > 3 { try engine.deleteVolume(id: clones[0].id) }
            done()
            // A clone into the other class, its data copied a step at a time.
            let other = className == "ec-4-2" ? "replicated-3" : "ec-4-2"
            _ = try engine.createVolume(name: "x-\(tag)", className: other, capacityBytes: 64 << 20, source: .snapshot(snapshot.id))
            done()
            engine.copyClones(maxBytes: 50_000)
            done()
            let elsewhere = try engine.volumes().filter { $0.className == other }.sorted { ($0.createdMs, $0.id) < ($1.createdMs, $1.id) }
            if elsewhere.count > 2 { try engine.deleteVolume(id: elsewhere[0].id) }
            done()
        }
    case "mount":
        guard arguments.count >= 2 else { fail("mount needs VOLUME and MOUNTPOINT") }
        let className = stringOption("--class") ?? "replicated-3"
        let size = option("--size", 1 << 30)
        let readOnly = arguments.contains("--ro")
        // Writes journaled for a successor, as the node daemon's kept sessions' are (nothing
        // takes this mount over, but a mount after a SIGKILL commits what it acknowledged).
        let journaled = arguments.contains("--journal")
        arguments.removeAll { $0 == "--ro" || $0 == "--journal" }
        let (name, mountpoint) = (arguments[0], arguments[1])
        let engine = try Engine(configuration: configured())
        let volume = try engine.volume(named: name) ?? engine.createVolume(name: name, className: className, capacityBytes: size)
        let fileSystem = try VolumeFileSystem(engine: engine, volume: volume.id,
                                              journal: stateDirectory + "/journal/" + volume.id, journaling: journaled)
        // A dead mount left by a crash answers ENOTCONN, so clear it before anything looks
        // at the directory (creating it would fail with EEXIST).
        FuseMount.clearStaleMount(mountpoint)
        try FileManager.default.createDirectory(atPath: mountpoint, withIntermediateDirectories: true)
        say("mounting \(volume.id) at \(mountpoint)")
        try FuseMount(fileSystem: fileSystem, mountpoint: mountpoint, readOnly: readOnly).run()
        fileSystem.endJournal()
        say("unmounted")
    default:
        fail("unknown command \(command)")
    }
} catch {
    fail("berth-engine \(command): \(error)")
}
