import Foundation

/// One `VolumeDriver` process on the bench's state directory: started, waited for (its
/// READY line), measured (resident memory) and stopped (SIGTERM, timed).
final class DaemonProcess: @unchecked Sendable {
    let binary: String
    let arguments: [String]
    let logPath: String
    private(set) var process: Process?
    private(set) var metricsPort: Int?

    init(binary: String, arguments: [String], logPath: String) {
        self.binary = binary
        self.arguments = arguments
        self.logPath = logPath
    }

    var pid: Int32? { process?.processIdentifier }

    struct StartFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts the daemon and returns the seconds until its READY line. A daemon that has
    /// not said READY within `timeout` seconds is killed (a failure, not a hang).
    func start(timeout: Double) throws -> Double {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        p.standardError = log
        let clock = ContinuousClock()
        let began = clock.now
        try p.run()
        process = p
        let said = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            if said.wait(timeout: .now() + timeout) == .timedOut { kill(p.processIdentifier, SIGKILL) }
        }
        defer { said.signal() }
        var line = Data()
        let handle = out.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let seconds = Bench.seconds(clock.now - began)
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("READY") else {
            throw StartFailure(description: "VolumeDriver did not start (\(text.isEmpty ? "no READY line" : text)); log: \(logPath)\n\(logTail(20))")
        }
        metricsPort = text.split(separator: " ").first { $0.hasPrefix("metrics=") }
            .flatMap { Int($0.dropFirst(8).trimmingCharacters(in: .whitespacesAndNewlines)) }
        return seconds
    }

    /// SIGTERM, then the seconds until the process exits (SIGKILL after `timeout`: nil).
    @discardableResult
    func stop(timeout: Double = 300) -> Double? {
        guard let p = process else { return 0 }
        let clock = ContinuousClock()
        let began = clock.now
        kill(p.processIdentifier, SIGTERM)
        var exited = true
        while p.isRunning {
            if Bench.seconds(clock.now - began) > timeout {
                kill(p.processIdentifier, SIGKILL)
                exited = false
                break
            }
            usleep(5_000)
        }
        p.waitUntilExit()
        process = nil
        return exited ? Bench.seconds(clock.now - began) : nil
    }

    /// VmRSS of the running daemon, in bytes.
    func residentBytes() -> Int64? {
        guard let pid, let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int64($0) }
            return kb.map { $0 * 1024 }
        }
        return nil
    }

    /// How many descriptors the running daemon holds.
    func openFiles() -> Int? {
        guard let pid else { return nil }
        return (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
    }

    func logTail(_ lines: Int) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func logLineCount() -> Int {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").count
    }
}
