import CSIProtocol
import AdminProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport
import TestSupport
import Testing

/// A real `VolumeDriver` process on temporary sockets and a temporary state directory,
/// talked to over its Unix sockets with a real gRPC client.
final class RunningDaemon: @unchecked Sendable {
    let root: String
    let stateDirectory: String
    let csiSocket: String
    let adminSocket: String
    let nodeID: String
    let extraArguments: [String]
    private(set) var process: Process?
    private(set) var metricsPort: Int?
    /// Another build of the daemon to start instead (an upgrade); nil: this checkout's.
    var executable: String?
    private var errorLog: String { root + "/daemon.log" }

    static func binary(_ name: String) -> String { BuiltProduct.path(name) }

    /// Devices of 512 MiB: plenty for tests, small enough that "too big" is easy to ask for.
    /// Whether a STANDBY line fails the start (else it waits for READY, within 120 s).
    let standbyIsFailure: Bool

    init(nodeID: String = "node-a", arguments: [String] = [], deviceCapacity: String = "512Mi", standbyIsFailure: Bool = false) throws {
        self.standbyIsFailure = standbyIsFailure
        // Short paths: a Unix socket address holds at most 107 bytes.
        root = "/tmp/bt-" + UUID().uuidString.prefix(8).lowercased()
        stateDirectory = root + "/state"
        csiSocket = root + "/csi.sock"
        adminSocket = root + "/admin.sock"
        self.nodeID = nodeID
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try "embeddedDeviceCapacity: \(deviceCapacity)\n".write(toFile: root + "/config.yaml", atomically: true, encoding: .utf8)
        // On the suites' metadata backend (TestMetadata), unless the test chose one.
        extraArguments = arguments.contains("--metadata") ? arguments : arguments + TestMetadata.arguments(forStateDirectory: stateDirectory)
        try start()
    }

    deinit {
        stop()
        // Anything still mounted under the root (a failed test) must go before the files.
        for line in String(decoding: FileHandle(forReadingAtPath: "/proc/self/mountinfo")?.readDataToEndOfFile() ?? Data(), as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[4].hasPrefix(root) { umount2(String(fields[4]), Int32(MNT_DETACH)) }
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable ?? Self.binary("VolumeDriver"))
        p.arguments = ["--endpoint", "unix://" + csiSocket, "--state-dir", stateDirectory, "--admin-socket", adminSocket,
                       "--node-id", nodeID, "--metrics-address", "127.0.0.1:0", "--config", root + "/config.yaml"] + extraArguments
        let out = Pipe()
        p.standardOutput = out
        _ = FileManager.default.createFile(atPath: errorLog, contents: nil)
        let logHandle = FileHandle(forWritingAtPath: errorLog)!
        logHandle.seekToEndOfFile()
        p.standardError = logHandle
        try p.run()
        process = p
        // Wait for the READY line (a daemon that has not said it within 120 s is killed, so
        // a hang fails the test instead of stalling the suite).
        let started = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            if started.wait(timeout: .now() + 120) == .timedOut { kill(p.processIdentifier, SIGKILL) }
        }
        defer { started.signal() }
        var line = Data()
        let handle = out.fileHandleForReading
        // A controller on PostgreSQL says STANDBY first while another holds the lead (a
        // predecessor's connection not closed yet): it leads once that one is gone.
        while true {
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                line.append(chunk)
            }
            guard !standbyIsFailure, line.starts(with: Data("STANDBY".utf8)), let end = line.firstIndex(of: UInt8(ascii: "\n")) else { break }
            line = Data(line[(end + 1)...])
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("READY") else {
            // Not left running (a standby controller would lead once the first one stops).
            kill(p.processIdentifier, SIGKILL)
            _ = Self.waitForExit(p.processIdentifier, seconds: 10)
            process = nil
            throw DaemonFailure("daemon did not start: \(text) \(log(tail: 20))")
        }
        metricsPort = text.split(separator: " ").first { $0.hasPrefix("metrics=") }.flatMap { Int($0.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Runs a VolumeDriver that is expected to refuse to start, with `arguments`: its exit
    /// status (nil: it kept running for 60 s, and was killed) and what it wrote to stderr.
    static func refusedStart(_ arguments: [String]) throws -> (status: Int32?, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary("VolumeDriver"))
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let exited = DispatchSemaphore(value: 0)
        DispatchQueue.global().async { process.waitUntilExit(); exited.signal() }
        let kept = exited.wait(timeout: .now() + 60) == .timedOut
        if kept { process.terminate(); process.waitUntilExit() }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (kept ? nil : process.terminationStatus, message)
    }

    /// SIGTERM and wait: in-flight calls finish, mounts are unmounted, sockets removed. A
    /// daemon still running a minute later has ignored the signal: a failure (and a
    /// SIGKILL), not a suite that hangs.
    func stop() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGTERM)
        if !Self.waitForExit(p.processIdentifier, seconds: 60) {
            Issue.record("the daemon did not stop on SIGTERM within 60 s: \(log(tail: 20))")
            kill(p.processIdentifier, SIGKILL)
            _ = Self.waitForExit(p.processIdentifier, seconds: 60)
        }
        process = nil
    }

    /// Whether process `pid` ended within `seconds`: gone or a zombie, read from /proc.
    /// (Foundation's `isRunning` and `waitUntilExit` learn of the exit on the run loop of
    /// the thread that launched the process; an async test resumes on any thread, whose
    /// run loop may never see it: `waitUntilExit` then spins for ever.)
    static func waitForExit(_ pid: Int32, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return true }
            let state = stat[stat.index(close, offsetBy: 2)]
            if state == "Z" || state == "X" { return true }
            usleep(10_000)
        } while Date() < deadline
        return false
    }

    func restart() throws {
        stop()
        try start()
    }

    /// SIGKILL, and wait for the process to end.
    func kill9() {
        guard let p = process else { return }
        kill(p.processIdentifier, SIGKILL)
        _ = Self.waitForExit(p.processIdentifier, seconds: 60)
        process = nil
    }

    func log(tail lines: Int = 1000) -> String {
        let text = (try? String(contentsOfFile: errorLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    // MARK: clients

    func csi<T: Sendable>(_ body: (Csi_V1_Identity.Client<HTTP2ClientTransport.Posix>, Csi_V1_Controller.Client<HTTP2ClientTransport.Posix>,
                                   Csi_V1_Node.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await withGRPCClient(transport: try Transports.client(path: csiSocket)) { client in
            try await body(Csi_V1_Identity.Client(wrapping: client), Csi_V1_Controller.Client(wrapping: client), Csi_V1_Node.Client(wrapping: client))
        }
    }

    func controller<T: Sendable>(_ body: (Csi_V1_Controller.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await csi { _, c, _ in try await body(c) }
    }

    func node<T: Sendable>(_ body: (Csi_V1_Node.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await csi { _, _, n in try await body(n) }
    }

    func admin<T: Sendable>(_ body: (Berth_Admin_V1_Admin.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        try await withGRPCClient(transport: try Transports.client(path: adminSocket)) { client in
            try await body(Berth_Admin_V1_Admin.Client(wrapping: client))
        }
    }
}

struct DaemonFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The code an RPC failed with (nil if it succeeded).
func code<T>(_ body: () async throws -> T) async -> RPCError.Code? {
    do {
        _ = try await body()
        return nil
    } catch let error as RPCError {
        return error.code
    } catch {
        return .unknown
    }
}

/// The error an RPC failed with.
func rpcError<T>(_ body: () async throws -> T) async -> RPCError? {
    do {
        _ = try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

// MARK: request builders

enum Requests {
    static func mountCapability(_ mode: Csi_V1_VolumeCapability.AccessMode.Mode = .singleNodeWriter) -> Csi_V1_VolumeCapability {
        var c = Csi_V1_VolumeCapability()
        c.mount = Csi_V1_VolumeCapability.MountVolume()
        c.accessMode.mode = mode
        return c
    }

    static func create(_ name: String, bytes: Int64 = 16 << 20, parameters: [String: String] = [:]) -> Csi_V1_CreateVolumeRequest {
        var r = Csi_V1_CreateVolumeRequest()
        r.name = name
        r.capacityRange.requiredBytes = bytes
        r.volumeCapabilities = [mountCapability()]
        r.parameters = parameters
        return r
    }

    static let replicated = ["redundancy": "replicated", "copies": "3", "failureDomain": "host", "chunkSize": "4Mi", "pgCount": "256"]
    static let erasure = ["redundancy": "erasure", "dataShards": "4", "parityShards": "2", "failureDomain": "host", "chunkSize": "4Mi", "pgCount": "256"]
    static let single = ["redundancy": "single", "failureDomain": "host", "chunkSize": "4Mi", "pgCount": "256"]

    static func stage(_ id: String, at path: String) -> Csi_V1_NodeStageVolumeRequest {
        var r = Csi_V1_NodeStageVolumeRequest()
        r.volumeID = id
        r.stagingTargetPath = path
        r.volumeCapability = mountCapability()
        return r
    }

    static func publish(_ id: String, staging: String, target: String, readOnly: Bool = false) -> Csi_V1_NodePublishVolumeRequest {
        var r = Csi_V1_NodePublishVolumeRequest()
        r.volumeID = id
        r.stagingTargetPath = staging
        r.targetPath = target
        r.volumeCapability = mountCapability()
        r.readonly = readOnly
        return r
    }

    static func unpublish(_ id: String, target: String) -> Csi_V1_NodeUnpublishVolumeRequest {
        var r = Csi_V1_NodeUnpublishVolumeRequest()
        r.volumeID = id
        r.targetPath = target
        return r
    }

    static func unstage(_ id: String, at path: String) -> Csi_V1_NodeUnstageVolumeRequest {
        var r = Csi_V1_NodeUnstageVolumeRequest()
        r.volumeID = id
        r.stagingTargetPath = path
        return r
    }
}

/// Records an issue unless `body` fails with `expected`.
func expect<T>(_ expected: RPCError.Code, _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation,
               _ body: () async throws -> T) async {
    let got = await rpcError(body)
    #expect(got?.code == expected, "\(comment) got \(got.map { "\($0.code): \($0.message)" } ?? "success")", sourceLocation: sourceLocation)
}
