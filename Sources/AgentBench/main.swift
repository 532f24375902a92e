// agent-bench: the cost of one shard operation between hosts, without FUSE or the engine.
//
//   swift run -c release agent-bench [--count N] [--only TEXT] [--json]
//
// Starts a real node agent (`VolumeDriver --role node`, found next to this executable) on
// loopback with a fresh cluster CA and mutual TLS, serving one device in a temporary
// directory, and drives it through `RemoteShardDevice` exactly as the engine does (blocking
// callers, `AgentConnection.wait`): one operation at a time, N times each, then the same
// reads from 4 threads at once. Prints per operation the median and 99th percentile latency
// in microseconds and the throughput; with --json one line {"operations": {NAME: {"p50_us",
// "p99_us", "ops_s", "mb_s"}}}. The shards sit in the agent's page cache: what is measured
// is the way there and back (TLS, HTTP/2, threads), not the disk.
import ClusterTLS
import Dispatch
import Foundation
import NodeAgent
import Placement
import Storage

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) else { return fallback }
    return v
}
let count = option("--count", 2000)
let json = arguments.contains("--json")
/// `--only TEXT`: only the operations whose name contains TEXT.
let only: String? = arguments.firstIndex(of: "--only").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("agent-bench: \(message)\n".utf8))
    exit(1)
}

// MARK: the agent

let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-agent-bench-\(getpid())").path
try? FileManager.default.removeItem(atPath: root)
do {
    let ca = try ClusterCA.make()
    for node in ["a1", "bench"] { _ = try TLSDirectory.write(node: node, ca: ca, to: root + "/tls/" + node) }
    try FileManager.default.createDirectory(atPath: root + "/dev", withIntermediateDirectories: true)
} catch { fail("making the cluster CA: \(error)") }

let driver = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    .appendingPathComponent("VolumeDriver").path
guard FileManager.default.isExecutableFile(atPath: driver) else { fail("\(driver) is missing: build VolumeDriver first") }
let agent = Process()
agent.executableURL = URL(fileURLWithPath: driver)
agent.arguments = ["--role", "node", "--tls-dir", root + "/tls/a1", "--listen", "127.0.0.1:0",
                   "--device", "a1-d1=\(root)/dev/d1,4Gi", "--init-devices"]
let ready = Pipe()
agent.standardOutput = ready
agent.standardError = FileHandle(forWritingAtPath: "/dev/null")
do { try agent.run() } catch { fail("starting \(driver): \(error)") }
defer {
    agent.terminate()
    agent.waitUntilExit()
    try? FileManager.default.removeItem(atPath: root)
}
// "READY agent=HOST:PORT node=… devices=…"
var line = Data()
while !line.contains(UInt8(ascii: "\n")) {
    let more = ready.fileHandleForReading.availableData
    if more.isEmpty { fail("the agent exited before it was ready") }
    line.append(more)
}
guard let text = String(data: line, encoding: .utf8), let field = text.split(separator: " ").first(where: { $0.hasPrefix("agent=") }) else {
    fail("unexpected agent output: \(String(decoding: line, as: UTF8.self))")
}
let address = String(field.dropFirst("agent=".count)).trimmingCharacters(in: .whitespacesAndNewlines)

let directory: AgentDirectory
let device: any ShardDevice
do {
    directory = AgentDirectory(tls: try TLSDirectory(path: root + "/tls/bench"))
    device = try directory.device(id: DeviceID("a1-d1"), host: "a1", address: address, capacityBytes: 4 << 30, verify: true)
} catch { fail("connecting to the agent at \(address): \(error)") }
defer { directory.close() }

// MARK: measuring

struct Figure: Encodable {
    let p50_us: Double, p99_us: Double, ops_s: Double, mb_s: Double
}
nonisolated(unsafe) var figures: [(String, Figure)] = []

/// Runs `operation` `count` times on each of `threads` threads; latencies of every call.
func measure(_ name: String, bytes: Int, threads: Int = 1, times: Int = count, _ operation: @escaping @Sendable (Int) throws -> Void) {
    if let only, !name.contains(only) { return }
    let count = times
    nonisolated(unsafe) let latencies = UnsafeMutableBufferPointer<Int64>.allocate(capacity: count * threads)
    defer { latencies.deallocate() }
    let start = Monotonic.nanoseconds()
    DispatchQueue.concurrentPerform(iterations: threads) { t in
        for i in 0..<count {
            let begin = Monotonic.nanoseconds()
            do { try operation(t * count + i) } catch { fail("\(name): \(error)") }
            latencies[t * count + i] = Monotonic.nanoseconds() - begin
        }
    }
    let seconds = Double(Monotonic.nanoseconds() - start) / 1e9
    let sorted = latencies.sorted()
    let ops = Double(count * threads) / seconds
    let figure = Figure(p50_us: Double(sorted[sorted.count / 2]) / 1e3, p99_us: Double(sorted[sorted.count * 99 / 100]) / 1e3,
                        ops_s: ops, mb_s: ops * Double(bytes) / 1e6)
    figures.append((name, figure))
    if !json {
        print(name.padding(toLength: 22, withPad: " ", startingAt: 0)
              + String(format: "p50 %8.1f µs  p99 %8.1f µs  %9.0f ops/s  %8.1f MB/s", figure.p50_us, figure.p99_us, figure.ops_s, figure.mb_s))
    }
}

let objects = 64
let shardBytes = 4 << 20
let payload = (0..<shardBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
let smallPayload = Array(payload[0..<4096])
let id: @Sendable (Int) -> ObjectID = { ObjectID(high: 7, low: UInt64($0 % objects)) }

// 4 MiB shards to read from (and warm in the agent's page cache).
for i in 0..<objects {
    do { try device.write(object: id(i), position: 0, objectSize: shardBytes, bytes: payload) } catch { fail("put: \(error)") }
}
for i in 0..<objects { _ = try? device.read(object: id(i), position: 0, range: 0..<shardBytes) }

let dev = device
measure("read 4 KiB", bytes: 4096) { i in
    let at = (i * 7919 % 1024) * 4096
    _ = try dev.read(object: id(i), position: 0, range: at..<(at + 4096))
}
measure("read 4 KiB × 4 threads", bytes: 4096, threads: 4) { i in
    let at = (i * 7919 % 1024) * 4096
    _ = try dev.read(object: id(i), position: 0, range: at..<(at + 4096))
}
measure("read 1 MiB", bytes: 1 << 20, times: max(1, count / 4)) { i in
    let at = (i % 4) << 20
    _ = try dev.read(object: id(i), position: 0, range: at..<(at + (1 << 20)))
}
measure("read 4 MiB", bytes: shardBytes, times: max(1, count / 10)) { i in _ = try dev.read(object: id(i), position: 0) }
measure("put 4 KiB", bytes: 4096, times: max(1, count / 4)) { i in
    try dev.write(object: ObjectID(high: 8, low: UInt64(i % objects)), position: 1, objectSize: 4096, bytes: smallPayload)
}
measure("put 4 MiB", bytes: shardBytes, times: max(1, count / 20)) { i in
    try dev.write(object: ObjectID(high: 9, low: UInt64(i % 8)), position: 1, objectSize: shardBytes, bytes: payload)
}

if json {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let table = Dictionary(uniqueKeysWithValues: figures)
    struct Report: Encodable { let operations: [String: Figure] }
    print(String(decoding: try! encoder.encode(Report(operations: table)), as: UTF8.self))
}
