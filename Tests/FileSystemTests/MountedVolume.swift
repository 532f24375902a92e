import Foundation
import TestSupport
import Testing

/// A volume served by a real `berth-engine mount` process at a real mount point.
final class MountedVolume: @unchecked Sendable {
    let root: String
    let state: String
    let mountpoint: String
    let volume: String
    let storageClass: String
    let size: Int64
    private var process: Process?
    /// Set before `mount()`: the daemon's environment added to ours, and a file its
    /// standard error goes to (else it shares the test's).
    var environment: [String: String] = [:]
    var daemonLog: String?

    static var tool: String { BuiltProduct.path("berth-engine") }

    init(storageClass: String = "replicated-3", size: Int64 = 8 << 30, chunk: Int = 64 << 10,
         environment: [String: String] = [:], logsToFile: Bool = false) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-fs-\(UUID().uuidString)").path
        state = root + "/state"
        mountpoint = root + "/mnt"
        volume = "vol"
        self.storageClass = storageClass
        self.size = size
        self.environment = environment
        if logsToFile { daemonLog = root + "/daemon.log" }
        try Self.run(["init", state, "--capacity", "\(16 << 30)", "--chunk", "\(chunk)"])
        try mount()
    }

    deinit {
        unmount()
        try? FileManager.default.removeItem(atPath: root)
    }

    @discardableResult
    static func run(_ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args + TestMetadata.arguments(forStateDirectory: args[1])  // args[1]: STATE
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw CocoaError(.executableLoad) }
        return String(decoding: data, as: UTF8.self)
    }

    /// A live mount: statfs reaches the daemon (a dead mount says ENOTCONN; stat may still
    /// be answered from the kernel's attribute cache) and reports our filesystem.
    var isMounted: Bool {
        var fs = statvfs()
        guard statvfs(mountpoint, &fs) == 0 else { return false }
        return Int64(fs.f_blocks) * Int64(fs.f_frsize) == size
    }

    /// `readOnly`: mounted with `--ro`.
    func mount(readOnly: Bool = false) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.tool)
        p.arguments = ["mount", state, volume, mountpoint, "--class", storageClass, "--size", "\(size)"] + (readOnly ? ["--ro"] : [])
            + TestMetadata.arguments(forStateDirectory: state)
        p.standardOutput = FileHandle.nullDevice
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let daemonLog {
            if !FileManager.default.fileExists(atPath: daemonLog) { FileManager.default.createFile(atPath: daemonLog, contents: nil) }
            let handle = FileHandle(forWritingAtPath: daemonLog)
            handle?.seekToEndOfFile()
            p.standardError = handle
        }
        try p.run()
        process = p
        for _ in 0..<200 where !isMounted { usleep(25_000) }
        guard isMounted else { throw CocoaError(.fileReadUnknown) }
    }

    /// SIGTERM: commit and unmount cleanly.
    func unmount() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        process = nil
    }

    /// SIGKILL: the daemon dies, leaving a dead mount behind.
    func crash() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
    }

    func path(_ relative: String) -> String { mountpoint + "/" + relative }

    /// Paths of the shard files on all of the volume's devices.
    func shardPaths() -> [String] {
        let devices = state + "/devices"
        guard let walker = FileManager.default.enumerator(atPath: devices) else { return [] }
        var paths: [String] = []
        while let path = walker.nextObject() as? String {
            guard path.contains("/shards/") else { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: devices + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                paths.append(devices + "/" + path)
            }
        }
        return paths
    }

    /// Shard files on all of the volume's devices.
    func shardFiles() -> Int {
        let devices = state + "/devices"
        guard let walker = FileManager.default.enumerator(atPath: devices) else { return 0 }
        var count = 0
        while let path = walker.nextObject() as? String {
            guard path.contains("/shards/") else { continue }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: devices + "/" + path, isDirectory: &isDirectory), !isDirectory.boolValue {
                count += 1
            }
        }
        return count
    }
}

/// errno of a failing call, or 0.
func errnoOf(_ result: Int32) -> Int32 { result < 0 ? errno : 0 }

/// Writes `bytes` at `offset` (with `write` when 0, `pwrite` otherwise) and closes.
func writeFile(_ path: String, _ bytes: [UInt8], flags: Int32 = O_WRONLY | O_CREAT | O_TRUNC, offset: Int = 0, sync: Bool = false) -> Int32 {
    let fd = open(path, flags, 0o644)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var done = 0
    while done < bytes.count {
        let n = bytes.withUnsafeBytes {
            offset == 0 ? write(fd, $0.baseAddress! + done, bytes.count - done)
                : pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done))
        }
        if n < 0 { return errno }
        done += n
    }
    if sync && fsync(fd) != 0 { return errno }
    return 0
}

func readFile(_ path: String) -> [UInt8]? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    return [UInt8](data)
}

func pattern(_ count: Int, seed: Int) -> [UInt8] {
    var state = UInt64(seed) &+ 12345
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// Byte comparison that reports sizes and the first difference, not the bytes.
func expectSame(_ actual: [UInt8]?, _ expected: [UInt8], _ what: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else {
        Issue.record("\(what): could not read (errno \(errno))", sourceLocation: sourceLocation)
        return
    }
    if actual == expected { return }
    let first = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    Issue.record("\(what): got \(actual.count) bytes, expected \(expected.count), first difference at \(first)", sourceLocation: sourceLocation)
}
