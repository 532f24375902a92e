// storage-bench: throughput of Berth's storage engine next to plain files on the same disk.
//
//   swift run -c release storage-bench [--json] [--objects N] [--rounds R] [--dir PATH] [--class NAME] [--verbose]
//
// Per class: put and get of 4 MiB objects through Engine.writeObject / readObject (SQLite
// rows, shards fsynced, directory fsynced). Beside them, in the same run and directory:
// plain files of the same bytes, each written and fsynced, then read. A virtual disk's
// speed drifts a lot from one second to the next, so each of R rounds runs, per class and
// object by object: plain write, put; then (page cache dropped) plain read, get — and the
// figures are the medians over rounds, ratios taken within a round. Page cache is dropped when running as root. Also: Reed–Solomon 4+2 encode and decode
// per core next to memcpy of the same bytes, and the mover's recovery throughput after a
// host fails. Schema of --json: docs/storage.md.
import Codec
import Engine
import Foundation
import Placement
import Storage
import StorageClasses

var arguments = Array(CommandLine.arguments.dropFirst())
let json = arguments.contains("--json")
arguments.removeAll { $0 == "--json" }
@MainActor func value(_ name: String) -> String? {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return nil }
    return arguments[i + 1]
}
let objectCount = Int(value("--objects") ?? "32") ?? 32
let rounds = Int(value("--rounds") ?? "5") ?? 5
let root = value("--dir") ?? FileManager.default.temporaryDirectory.appendingPathComponent("berth-storage-bench-\(getpid())").path
let objectBytes = 4 << 20
try? FileManager.default.removeItem(atPath: root)
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: root) }

func log(_ s: String) { if !json { print(s) } }

let clock = ContinuousClock()
func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }
func time(_ body: () throws -> Void) rethrows -> Double {
    let start = clock.now
    try body()
    return seconds(clock.now - start)
}

/// Drops the page cache so reads come from the disk (root only; otherwise reads may be cached).
func dropCaches() -> Bool {
    sync()
    guard let handle = FileHandle(forWritingAtPath: "/proc/sys/vm/drop_caches") else { return false }
    defer { try? handle.close() }
    do { try handle.write(contentsOf: Data("3\n".utf8)); return true } catch { return false }
}

let payloads: [[UInt8]] = (0..<8).map { seed in
    var state = UInt64(seed) &+ 1
    return (0..<objectBytes).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

// MARK: plain files

/// Writes `bytes` to a new file and fsyncs it.
func writePlainFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { fatalError("create \(path): errno \(errno)") }
    bytes.withUnsafeBytes { b in
        var off = 0
        while off < b.count {
            let n = write(fd, b.baseAddress! + off, b.count - off)
            guard n > 0 else { fatalError("write \(path): errno \(errno)") }
            off += n
        }
    }
    guard fsync(fd) == 0 else { fatalError("fsync \(path): errno \(errno)") }
    close(fd)
}

func readPlainFile(_ path: String, into buffer: inout [UInt8]) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { fatalError("open \(path): errno \(errno)") }
    var off = 0
    buffer.withUnsafeMutableBytes { b in
        while off < b.count {
            let n = read(fd, b.baseAddress! + off, b.count - off)
            if n <= 0 { break }
            off += n
        }
    }
    close(fd)
}

// MARK: engine

let engine = try Engine(configuration: EngineConfiguration(stateDirectory: root + "/state"))
try engine.addDevices((0..<7).flatMap { h in (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 64 << 30) } })
let classes = [
    StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: objectBytes, pgCount: 128),
    StorageClass(name: "ec-4-2", redundancy: .erasure(dataShards: 4, parityShards: 2), chunkSizeBytes: objectBytes, pgCount: 128),
    StorageClass(name: "remote-disk", redundancy: .single, chunkSizeBytes: objectBytes, pgCount: 128),
]
try engine.applyClasses(classes)

struct ClassResult: Encodable {
    let `class`: String
    let overhead: Double
    let putMBs: Double
    let getMBs: Double
    let plainWriteMBs: Double
    let plainReadMBs: Double
    /// Median over rounds of put ÷ (plain write ÷ overhead), and of get ÷ plain read.
    let putRatio: Double
    let getRatio: Double
    enum CodingKeys: String, CodingKey {
        case `class`, overhead
        case putRatio = "put_ratio"
        case getRatio = "get_ratio"
        case putMBs = "put_mb_s"
        case getMBs = "get_mb_s"
        case plainWriteMBs = "plain_write_mb_s"
        case plainReadMBs = "plain_read_mb_s"
    }
}

var results: [ClassResult] = []
var cacheDropped = true
var perRound: [String: [(put: Double, get: Double, plainWrite: Double, plainRead: Double)]] = [:]
var volumes: [String: String] = [:]
for c in classes {
    volumes[c.name] = try engine.createVolume(name: "bench-\(c.name)", className: c.name, capacityBytes: 16 << 30).id
}
let only = value("--class")
var readBuffer = [UInt8](repeating: 0, count: objectBytes)
for _ in 0..<rounds {
    for c in classes where only == nil || c.name == only {
        let volume = volumes[c.name]!
        let dir = root + "/plain"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // Object by object, a plain file then a put (and below a plain read then a get): on
        // this VM, memory freed by a delete or a cache drop is slow to touch again (free
        // page reporting returned it to the host), so whichever of two long phases runs
        // first pays for it. Alternating gives both the same conditions.
        var plainWriteSeconds = 0.0, putSeconds = 0.0, plainReadSeconds = 0.0, getSeconds = 0.0
        var ids: [ObjectID] = []
        for i in 0..<objectCount {
            let bytes = payloads[i % payloads.count]
            plainWriteSeconds += time { writePlainFile(dir + "/f\(i)", bytes) }
            putSeconds += try time { ids.append(try engine.writeObject(volume: volume, bytes: bytes)) }
        }
        cacheDropped = dropCaches() && cacheDropped
        for (i, id) in ids.enumerated() {
            plainReadSeconds += time { readPlainFile(dir + "/f\(i)", into: &readBuffer) }
            getSeconds += try time { _ = try engine.readObject(volume: volume, id: id) }
        }
        let mb = Double(objectCount * objectBytes) / 1e6
        let (put, get, plainWrite, plainRead) = (mb / putSeconds, mb / getSeconds, mb / plainWriteSeconds, mb / plainReadSeconds)
        perRound[c.name, default: []].append((put, get, plainWrite, plainRead))
        if arguments.contains("--verbose") {
            log("  round: \(c.name) put \(Int(put)) plain write \(Int(plainWrite)) get \(Int(get)) plain read \(Int(plainRead)) MB/s")
        }
        try FileManager.default.removeItem(atPath: dir)
        for id in ids { try engine.deleteObject(volume: volume, id: id) }  // keep the disk footprint flat
    }
}
func median(_ samples: [Double]) -> Double { samples.sorted()[samples.count / 2] }
for c in classes {
    guard let r = perRound[c.name] else { continue }  // not selected with --class
    results.append(ClassResult(class: c.name, overhead: c.overhead, putMBs: median(r.map(\.put)), getMBs: median(r.map(\.get)),
                               plainWriteMBs: median(r.map(\.plainWrite)), plainReadMBs: median(r.map(\.plainRead)),
                               putRatio: median(r.map { $0.put / ($0.plainWrite / c.overhead) }),
                               getRatio: median(r.map { $0.get / $0.plainRead })))
}

// MARK: codec, per core (this thread only)

let rs = try ReedSolomon(k: 4, m: 2)
let shardLength = rs.shardLength(objectSize: objectBytes)
var stripe = [UInt8](repeating: 0, count: 6 * shardLength)
payloads[0].withUnsafeBytes { source in stripe.withUnsafeMutableBytes { $0.copyMemory(from: source) } }
let codecRounds = 64
var encodeSamples: [Double] = []
for _ in 0..<5 {
    encodeSamples.append(Double(codecRounds * objectBytes) / 1e9 / (stripe.withUnsafeMutableBytes { buffer in
        time { for _ in 0..<codecRounds { rs.encodeParity(stripe: buffer, shardLength: shardLength) } }
    }))
}
let shards = rs.encode(payloads[0])
let survivors: [Int: [UInt8]] = [2: shards[2], 3: shards[3], 4: shards[4], 5: shards[5]]  // data shards 0 and 1 lost
var decodeSamples: [Double] = []
for _ in 0..<5 {
    decodeSamples.append(Double(codecRounds * objectBytes) / 1e9 / (try time { for _ in 0..<codecRounds { _ = try rs.reconstruct(available: survivors, wanted: [0, 1]) } }))
}
var target = [UInt8](repeating: 0, count: objectBytes)
var memcpySamples: [Double] = []
for _ in 0..<5 {
    memcpySamples.append(Double(codecRounds * objectBytes) / 1e9 / (payloads[0].withUnsafeBytes { source in
        target.withUnsafeMutableBytes { destination in
            time { for _ in 0..<codecRounds { memcpy(destination.baseAddress!, source.baseAddress!, objectBytes) } }
        }
    }))
}

// MARK: recovery

// Data for the mover: the same objects again, left in place.
for c in classes {
    for i in 0..<objectCount { _ = try engine.writeObject(volume: volumes[c.name]!, bytes: payloads[i % payloads.count]) }
}
try engine.failDevice("h2-d0")
try engine.failDevice("h2-d1")
var recovered: Int64 = 0
let recoverySeconds = time { recovered = engine.move().bytes }
let recoveryMBs = Double(recovered) / 1e6 / recoverySeconds

// MARK: report

if json {
    struct Document: Encodable {
        let classes: [ClassResult]
        let ecEncodeGBsPerCore: Double
        let ecDecodeGBsPerCore: Double
        let memcpyGBs: Double
        let recoveryMBs: Double
        enum CodingKeys: String, CodingKey {
            case classes
            case ecEncodeGBsPerCore = "ec_encode_gb_s_per_core"
            case ecDecodeGBsPerCore = "ec_decode_gb_s_per_core"
            case memcpyGBs = "memcpy_gb_s"
            case recoveryMBs = "recovery_mb_s"
        }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    print(String(decoding: try encoder.encode(Document(
        classes: results, ecEncodeGBsPerCore: median(encodeSamples), ecDecodeGBsPerCore: median(decodeSamples),
        memcpyGBs: median(memcpySamples), recoveryMBs: recoveryMBs)), as: UTF8.self))
} else {
    func f(_ x: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", x) }
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
    print("storage-bench: \(rounds) rounds × \(objectCount) objects of 4 MiB per class, 7 hosts × 2 directory devices under \(root)")
    print("medians over rounds; ratios are medians of per-round ratios")
    print("page cache dropped before reads: \(cacheDropped ? "yes" : "no (not root): reads may be cached")")
    if let delay = try? String(contentsOfFile: "/sys/module/page_reporting/parameters/min_free_ms", encoding: .utf8)
        .trimmingCharacters(in: .whitespacesAndNewlines) {
        // docs/storage.md, "Benchmark": at 0, freed memory goes back to the host at once and
        // page-cache writes that need fresh pages run 10× slower, on whichever side gets them.
        print("free page reporting min_free_ms: \(delay)\(delay == "0" ? " (freed memory returns to the host at once: ratios are noisy)" : "")")
    }
    print(pad("class", 14) + pad("put MB/s", 10) + pad("plain write", 13) + pad("put ÷ (plain ÷ overhead)", 26)
          + pad("get MB/s", 10) + pad("plain read", 12) + "get ÷ plain")
    for r in results {
        print(pad(r.class, 14) + pad(f(r.putMBs), 10) + pad(f(r.plainWriteMBs), 13)
              + pad(f(r.putRatio * 100, 0) + " %", 26)
              + pad(f(r.getMBs), 10) + pad(f(r.plainReadMBs), 12) + f(r.getRatio * 100, 0) + " %")
    }
    print("RS 4+2 encode: \(f(median(encodeSamples), 2)) GB/s per core; decode (2 data shards lost): \(f(median(decodeSamples), 2)) GB/s; memcpy: \(f(median(memcpySamples), 2)) GB/s")
    print("recovery after a 2-device host fails: \(f(recoveryMBs)) MB/s (\(recovered) bytes in \(f(recoverySeconds, 2)) s)")
}
