import CSIProtocol
import Foundation
import Testing

/// Issue 30: an application that keeps a file open and appends, fsyncs and reads it back in
/// a loop sees no error while the daemon is restarted — stopped with SIGTERM, upgraded to
/// another build, or SIGKILLed — because the FUSE sessions outlive it (the keeper holds
/// their /dev/fuse descriptors and the next daemon serves them again).
@Suite(.serialized) struct MountsSurviveRestartTests {
    /// One application (`berth-file-loop`, a process of its own): keeps a file open and
    /// appends a line every 50 ms, fsyncs it and reads the whole file back.
    final class Writer {
        let path: String
        let stopFile: String
        let process = Process()
        let output = Pipe()

        init(path: String, stopFile: String) throws {
            self.path = path
            self.stopFile = stopFile
            process.executableURL = URL(fileURLWithPath: RunningDaemon.binary("berth-file-loop"))
            process.arguments = [path, stopFile]
            process.standardOutput = output
            try process.run()
        }

        /// Stops it (the stop file) and returns its report.
        func finish() -> (lines: Int, errors: [String], worstStall: Double) {
            _ = FileManager.default.createFile(atPath: stopFile, contents: nil)
            if !RunningDaemon.waitForExit(process.processIdentifier, seconds: 60) {
                kill(process.processIdentifier, SIGKILL)
                return (0, ["the writer of \(path) did not stop"], 0)
            }
            let data = output.fileHandleForReading.readDataToEndOfFile()
            guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                return (0, ["no report: \(String(decoding: data, as: UTF8.self))"], 0)
            }
            return (json["lines"] as? Int ?? 0, json["errors"] as? [String] ?? ["no errors field"], json["worst_stall_s"] as? Double ?? 0)
        }
    }

    static let classes = [("replicated-3", Requests.replicated), ("ec-4-2", Requests.erasure), ("remote-disk", Requests.single)]

    @Test func writersSeeNoErrorAcrossTermUpgradeAndKill() async throws {
        let daemon = try RunningDaemon()
        // The upgrade: another copy of the build, with its own keeper beside it.
        let upgrade = daemon.root + "/upgrade"
        try FileManager.default.createDirectory(atPath: upgrade, withIntermediateDirectories: true)
        for name in ["VolumeDriver", "berth-fuse-keeper"] {
            try FileManager.default.copyItem(atPath: RunningDaemon.binary(name), toPath: upgrade + "/" + name)
        }
        var targets: [String] = [], ids: [String] = []
        try await daemon.csi { _, c, n in
            for (name, parameters) in Self.classes {
                let staging = daemon.root + "/stage-" + name, target = daemon.root + "/pod-" + name
                try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
                let id = try await c.createVolume(Requests.create("app-" + name, bytes: 64 << 20, parameters: parameters)).volume.volumeID
                _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
                _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
                targets.append(target)
                ids.append(id)
            }
        }
        let writers = try targets.map { try Writer(path: $0 + "/app.log", stopFile: daemon.root + "/stop") }
        func pause() { usleep(1_500_000) }
        pause()

        // SIGTERM: bounded (the daemon promises 10 s).
        let stopping = Date()
        daemon.stop()
        let stopSeconds = Date().timeIntervalSince(stopping)
        #expect(stopSeconds < 10, "SIGTERM took \(stopSeconds) s")
        try daemon.start()
        #expect(daemon.log().contains("serving a session kept across the restart"))
        pause()

        // An upgrade: the other build takes the sessions over.
        daemon.stop()
        daemon.executable = upgrade + "/VolumeDriver"
        try daemon.start()
        pause()

        // SIGKILL, a few times (each lands somewhere else in the writers' write-fsync-read
        // loops): the sessions live on in the keeper; requests the killed daemon had read and
        // not answered are sent again to the next one, which first commits the writes the
        // killed one acknowledged (its journal).
        daemon.executable = nil
        for _ in 0..<3 {
            daemon.kill9()
            try daemon.start()
            pause()
        }

        for (writer, target) in zip(writers, targets) {
            let report = writer.finish()
            // No error at all, no line missing from a read-back: across the SIGKILLs too (a
            // line acknowledged and being fsynced when the daemon died is in its journal).
            #expect(report.errors.isEmpty, "\(target): \(report.errors.prefix(5))")
            #expect(report.lines > 40, "\(target): \(report.lines) lines")
            #expect(report.worstStall < 30, "\(target): stalled \(report.worstStall) s")
            // Every line, in order, once.
            let content = String(decoding: FileManager.default.contents(atPath: target + "/app.log") ?? Data(), as: UTF8.self)
            #expect(content == (0..<report.lines).map { "line \($0)\n" }.joined(), "\(target)")
        }
        // Unpublished and unstaged: the sessions end; with nothing held, the keeper ends
        // with the daemon.
        try await daemon.csi { _, _, n in
            for ((name, _), (id, target)) in zip(Self.classes, zip(ids, targets)) {
                _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
                _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: daemon.root + "/stage-" + name))
            }
        }
        let mounts = String(decoding: FileManager.default.contents(atPath: "/proc/self/mountinfo") ?? Data(), as: UTF8.self)
        #expect(!mounts.contains(daemon.root), "mounts left: \(mounts.split(separator: "\n").filter { $0.contains(daemon.root) })")
        daemon.stop()
        let keeperGone = (0..<100).contains { _ in
            usleep(50_000)
            return !FileManager.default.fileExists(atPath: daemon.stateDirectory + "/fuse-keeper.sock")
        }
        #expect(keeperGone, "the keeper still runs with nothing to hold")
    }
}
