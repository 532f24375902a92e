import CSIProtocol
import Foundation
import Testing

/// The real `provisionctl` binary against a real daemon.
@Suite(.serialized) struct ProvisionctlTests {
    struct Run {
        var status: Int32
        var out: String
        var err: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:] }
    }

    static func ctl(_ daemon: RunningDaemon?, _ arguments: String...) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: RunningDaemon.binary("provisionctl"))
        var args = arguments
        let offline = arguments.starts(with: ["class", "validate"])
        if let daemon, !offline { args += ["--socket", daemon.adminSocket] }
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static func devices(_ daemon: RunningDaemon) throws -> [[String: Any]] {
        try ctl(daemon, "device", "list", "--output", "json").json["devices"] as? [[String: Any]] ?? []
    }

    /// Waits until the daemon's mover has nothing left.
    static func waitForMovement(_ daemon: RunningDaemon) throws -> [String: Any] {
        for _ in 0..<600 {
            let status = try ctl(daemon, "status", "--output", "json").json
            if let m = status["movement"] as? [String: Any], (m["remaining_positions"] as? Int) == 0 { return m }
            if status["movement"] == nil { return [:] }
            usleep(100_000)
        }
        Issue.record("movement did not finish")
        return [:]
    }

    @Test func classesValidateApplyListAndRefuseBadInput() throws {
        let daemon = try RunningDaemon()
        let offline = try Self.ctl(nil, "class", "validate", Self.repository + "/storageclasses/ec-4-2.yaml")
        #expect(offline.status == 0)
        #expect(offline.out.contains("ec-4-2"))
        try "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: broken}\nprovisioner: csi.berth.dev\nparameters: {redundancy: erasure, dataShards: \"4\", parityShards: \"2\", chunkSize: \"3Mi\"}\n"
            .write(toFile: daemon.root + "/broken.yaml", atomically: true, encoding: .utf8)
        let broken = try Self.ctl(nil, "class", "validate", daemon.root + "/broken.yaml")
        #expect(broken.status == 2)
        #expect(broken.err.contains("chunkSize"))
        #expect(broken.err.split(separator: "\n").count == 1)
        try "bad: [".write(toFile: daemon.root + "/bad.yaml", atomically: true, encoding: .utf8)
        #expect(try Self.ctl(daemon, "class", "apply", daemon.root + "/bad.yaml").status == 2)

        // The shipped classes apply again cleanly (the embedded cluster already has them).
        #expect(try Self.ctl(daemon, "class", "apply", Self.repository + "/storageclasses").status == 0)
        try "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: replicated-2}\nprovisioner: csi.berth.dev\nparameters: {redundancy: replicated, copies: \"2\"}\n"
            .write(toFile: daemon.root + "/r2.yaml", atomically: true, encoding: .utf8)
        #expect(try Self.ctl(daemon, "class", "apply", daemon.root + "/r2.yaml").status == 0)
        let names = (try Self.ctl(daemon, "class", "list", "--output", "json").json["classes"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
        #expect(names.sorted() == ["ec-4-2", "remote-disk", "replicated-2", "replicated-3"])
        #expect(try Self.ctl(daemon, "class", "show", "replicated-2").out.contains("copies"))
        // In use: refused; unused: deleted.
        _ = try Self.ctl(daemon, "volume", "create", "user", "--class", "replicated-2", "--size", "1Mi")
        let inUse = try Self.ctl(daemon, "class", "delete", "replicated-2", "--yes")
        #expect(inUse.status == 1)
        #expect(inUse.err.contains("used by volumes"))
        #expect(try Self.ctl(daemon, "volume", "delete", "user", "--yes").status == 0)
        #expect(try Self.ctl(daemon, "class", "delete", "replicated-2", "--yes").status == 0)
        #expect(try Self.ctl(daemon, "class", "show", "replicated-2").status == 1)
    }

    @Test func devicesCapacityPlanApplyDrainRemove() async throws {
        let daemon = try RunningDaemon(deviceCapacity: "256Mi")
        // Volumes of each class with data in them, written through CSI mounts.
        try await daemon.csi { _, c, n in
            for (i, parameters) in [Requests.replicated, Requests.erasure, Requests.single].enumerated() {
                let id = try await c.createVolume(Requests.create("v\(i)", bytes: 64 << 20, parameters: parameters)).volume.volumeID
                let staging = daemon.root + "/s\(i)", target = daemon.root + "/t\(i)"
                try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
                _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
                _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
                try Data(repeating: UInt8(i + 1), count: 6 << 20).write(to: URL(fileURLWithPath: target + "/data"))
                _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
                _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: staging))
            }
        }
        // Capacity: raw is the devices' sum; used follows the overhead; usable < raw / overhead.
        let devices = try Self.devices(daemon)
        #expect(devices.count == 12)
        for d in devices { for key in ["id", "host", "rack", "state", "capacity_bytes", "used_bytes"] { #expect(d[key] != nil, "device list lacks \(key)") } }
        let raw = devices.reduce(0) { $0 + ($1["capacity_bytes"] as? Int64 ?? Int64($1["capacity_bytes"] as? Int ?? 0)) }
        var capacity = try Self.ctl(daemon, "capacity", "--output", "json").json["classes"] as? [[String: Any]] ?? []
        #expect(capacity.count == 3)
        for c in capacity {
            for key in ["name", "raw_bytes", "used_bytes", "provisioned_bytes", "usable_bytes", "overhead", "warnings"] { #expect(c[key] != nil) }
            #expect((c["raw_bytes"] as? Int64 ?? Int64(c["raw_bytes"] as? Int ?? 0)) == raw)
            #expect((c["provisioned_bytes"] as? Int ?? 0) == 64 << 20)
            let used = Double(c["used_bytes"] as? Int ?? 0), overhead = c["overhead"] as? Double ?? 0
            #expect(used >= Double(6 << 20) * overhead && used < Double(6 << 20) * overhead * 1.05, "\(c["name"]!): used \(used)")
        }
        // Uneven failure domains: one host gets a much larger device.
        let add = try Self.ctl(daemon, "device", "add", "--id", "big", "--host", "host-1", "--rack", "rack-1", "--capacity", "2Gi")
        #expect(add.status == 0, "\(add.err)")
        _ = try Self.waitForMovement(daemon)
        capacity = try Self.ctl(daemon, "capacity", "--output", "json").json["classes"] as? [[String: Any]] ?? []
        let rawNow = Double(raw + (2 << 30))
        for c in capacity {
            let usable = Double(c["usable_bytes"] as? Int ?? 0), overhead = c["overhead"] as? Double ?? 1
            #expect(usable < rawNow / overhead, "\(c["name"]!): usable \(usable) vs raw/overhead \(rawNow / overhead)")
        }

        // plan for a new host predicts exactly what the mover then moves.
        let plan = try Self.ctl(daemon, "plan", "--add-host", "host-7", "--devices", "2", "--capacity", "256Mi", "--output", "json").json
        let predictedClasses = plan["classes"] as? [[String: Any]] ?? []
        let predicted = predictedClasses.reduce(0) { $0 + ($1["moved_positions"] as? Int ?? 0) }
        let predictedBytes = predictedClasses.reduce(0) { $0 + ($1["moved_bytes"] as? Int ?? 0) }
        #expect(predicted > 0)
        #expect(try Self.devices(daemon).count == 13)  // plan changed nothing
        let apply = try Self.ctl(daemon, "apply", "--add-host", "host-7", "--devices", "2", "--capacity", "256Mi", "--output", "json")
        #expect(apply.status == 0, "\(apply.err)")
        let movement = try Self.waitForMovement(daemon)
        #expect(movement["total_positions"] as? Int == predicted)
        #expect(movement["done_positions"] as? Int == predicted)
        #expect(movement["done_bytes"] as? Int == predictedBytes)
        #expect(try Self.ctl(daemon, "status").out.contains("movement"))

        // Drain a device to empty, then remove it; removing one with data is refused.
        let busy = try Self.ctl(daemon, "device", "remove", "h2-d1", "--yes")
        #expect(busy.status == 1)
        #expect(busy.err.contains("h2-d1"))
        #expect(try Self.ctl(daemon, "device", "drain", "h2-d1").status == 0)
        _ = try Self.waitForMovement(daemon)
        let drained = try Self.devices(daemon).first { $0["id"] as? String == "h2-d1" }
        #expect(drained?["used_bytes"] as? Int == 0)
        let removed = try Self.ctl(daemon, "device", "remove", "h2-d1", "--yes")
        #expect(removed.status == 0, "\(removed.err)")
        #expect(try Self.devices(daemon).contains { $0["id"] as? String == "h2-d1" } == false)

        // Unknown device: clear error, non-zero, nothing changed.
        let before = try Self.devices(daemon).count
        let unknown = try Self.ctl(daemon, "device", "fail", "no-such-device", "--yes")
        #expect(unknown.status == 1)
        #expect(unknown.err.contains("no-such-device"))
        #expect(try Self.devices(daemon).count == before)

        // The data is all still there.
        let volumes = try Self.ctl(daemon, "volume", "list", "--output", "json").json["volumes"] as? [[String: Any]] ?? []
        #expect(volumes.count == 3)
        let show = try Self.ctl(daemon, "volume", "show", "v1", "--output", "json").json
        #expect(show["degraded_objects"] as? Int == 0)
        #expect((show["objects"] as? Int ?? 0) > 0)
    }

    @Test func snapshotsAndClones() throws {
        let daemon = try RunningDaemon()
        #expect(try Self.ctl(daemon, "volume", "create", "db", "--class", "replicated-3", "--size", "32Mi").status == 0)
        let made = try Self.ctl(daemon, "snapshot", "create", "nightly", "--volume", "db", "--output", "json")
        #expect(made.status == 0, "\(made.err)")
        let id = try #require(made.json["id"] as? String)
        #expect(id.hasPrefix("snap-") && made.json["kind"] as? String == "snapshot")
        let again = try Self.ctl(daemon, "snapshot", "create", "nightly", "--volume", "db")
        #expect(again.status == 1 && again.err.contains("exists"))
        let unknown = try Self.ctl(daemon, "snapshot", "create", "other", "--volume", "nope")
        #expect(unknown.status == 1 && unknown.err.contains("no volume"))
        let table = try Self.ctl(daemon, "snapshot", "list")
        #expect(table.status == 0 && table.out.contains("nightly") && table.out.contains("32.0 MiB"), "\(table.out)")
        #expect((try Self.ctl(daemon, "snapshot", "list", "--volume", "db", "--output", "json").json["snapshots"] as? [Any])?.count == 1)

        // A clone of the snapshot by name: its class and size by default.
        let clone = try Self.ctl(daemon, "volume", "create", "db-copy", "--from", "nightly", "--output", "json")
        #expect(clone.status == 0, "\(clone.err)")
        #expect(clone.json["source"] as? String == "snapshot:" + id && clone.json["capacity_bytes"] as? Int == 32 << 20)
        #expect(clone.json["class_name"] as? String == "replicated-3")
        let other = try Self.ctl(daemon, "volume", "create", "db-ec", "--from", "db", "--class", "ec-4-2", "--output", "json")
        #expect(other.status == 0 && other.json["class_name"] as? String == "ec-4-2", "\(other.err)")
        #expect(try Self.ctl(daemon, "volume", "create", "empty").status == 2)  // neither --size nor --from
        let volumes = try Self.ctl(daemon, "volume", "list", "--output", "json").json["volumes"] as? [[String: Any]] ?? []
        #expect(Set(volumes.compactMap { $0["name"] as? String }) == ["db", "db-copy", "db-ec"])

        #expect(try Self.ctl(daemon, "snapshot", "delete", "nightly", "--yes").status == 0)
        #expect(try Self.ctl(daemon, "snapshot", "delete", "nightly", "--yes").status == 1)
        #expect((try Self.ctl(daemon, "snapshot", "list", "--output", "json").json["snapshots"] as? [Any])?.isEmpty == true)
    }

    @Test func maintenanceStartListStatusStop() throws {
        let daemon = try RunningDaemon()
        let started = try Self.ctl(daemon, "maintenance", "start", "host-2", "--for", "1h30m", "--output", "json")
        #expect(started.status == 0, "\(started.err)")
        let windows = started.json["maintenance"] as? [[String: Any]] ?? []
        #expect(Set(windows.compactMap { $0["device"] as? String }) == ["h2-d1", "h2-d2"], "\(started.out)")
        let until = windows.first?["until_ms"] as? Int ?? 0, since = windows.first?["started_ms"] as? Int ?? 0
        #expect(until - since == 5_400_000)
        #expect(try Self.devices(daemon).filter { ($0["host"] as? String) == "host-2" }.allSatisfy { $0["state"] as? String == "down" })
        let status = try Self.ctl(daemon, "status")
        #expect(status.out.contains("maintenance: h2-d1 (host host-2)"), "\(status.out)")
        #expect((try Self.ctl(daemon, "status", "--output", "json").json["maintenance"] as? [Any])?.count == 2)
        #expect(try Self.ctl(daemon, "maintenance", "list").out.contains("h2-d2"))
        #expect(try Self.ctl(daemon, "maintenance", "start", "no-such-host").status == 1)
        #expect(try Self.ctl(daemon, "maintenance", "start", "host-3", "--for", "soon").status == 2)
        let stopped = try Self.ctl(daemon, "maintenance", "stop", "host-2")
        #expect(stopped.status == 0 && stopped.out.contains("h2-d1, h2-d2"), "\(stopped.out)")
        #expect(try Self.devices(daemon).allSatisfy { $0["state"] as? String == "up" })
        #expect((try Self.ctl(daemon, "maintenance", "list", "--output", "json").json["maintenance"] as? [Any])?.isEmpty == true)
    }

    /// On a terminal, a destructive command asks first; "n" changes nothing (exit 4).
    @Test func destructiveCommandsAskOnATerminal() throws {
        let daemon = try RunningDaemon()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        // script gives the command a pseudo-terminal; -e passes its exit status on.
        p.arguments = ["-q", "-e", "-c", "\(RunningDaemon.binary("provisionctl")) device fail h1-d1 --socket \(daemon.adminSocket)", "/dev/null"]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = output
        try p.run()
        input.fileHandleForWriting.write(Data("n\n".utf8))
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 4, "\(text)")
        #expect(text.contains("[y/N]"))
        let device = try Self.devices(daemon).first { $0["id"] as? String == "h1-d1" }
        #expect(device?["state"] as? String == "up")
    }

    @Test func aClearErrorWhenTheDaemonIsNotRunning() throws {
        let daemon = try RunningDaemon()
        daemon.stop()
        let r = try Self.ctl(daemon, "capacity", "--output", "json")
        #expect(r.status == 3)
        #expect(r.err.contains("cannot reach the Berth daemon"))
        #expect(r.err.split(separator: "\n").count == 1)
        #expect(r.out.isEmpty)
    }
}
