import Foundation
import Synchronization
import Testing
import TestSupport

enum NetworkNamespaces {
    /// Root, nsenter and iproute2: what `scripts/cluster.sh` needs.
    static var usable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/nsenter")
            && ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Berth across real hosts: `scripts/cluster.sh` makes each host a network namespace with
/// its node agent (and n1 the daemon), and these tests drive it as an operator would —
/// CSI calls (berth-csi), FUSE mounts, `provisionctl`, SIGKILL, nftables partitions.
/// Needs root and `ip netns` (CI has both); skipped elsewhere.
@Suite(.serialized, .enabled(if: NetworkNamespaces.usable, "needs root and ip netns"))
struct ClusterTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let directory = "/tmp/berth-cluster-test"

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Runs a command in the repository (`Spawned`: this script's daemons live on after
    /// it); its standard output, or a failure with its output.
    @discardableResult
    static func run(_ arguments: [String], environment extra: [String: String] = [:], allowFailure: Bool = false,
                    timeoutSeconds: Double = 600) throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["BERTH_CLUSTER_DIR"] = directory
        environment["BERTH_BIN"] = URL(fileURLWithPath: BuiltProduct.path("VolumeDriver")).deletingLastPathComponent().path
        for (k, v) in extra { environment[k] = v }
        let finished: Spawned.Finished
        do {
            // In the repository (env --chdir).
            finished = try Spawned.run(["/usr/bin/env", "-C", repository] + arguments, environment: environment, timeoutSeconds: timeoutSeconds)
        } catch let error as Spawned.Failure {
            throw Failure(description: error.description)
        }
        if finished.code != 0 && !allowFailure {
            throw Failure(description: "\(arguments.joined(separator: " ")) exited \(finished.code): \(finished.errors.suffix(2000)) \(finished.output.suffix(1000))")
        }
        return finished.output
    }

    static func cluster(_ arguments: String...) throws -> String { try run(["bash", "scripts/cluster.sh"] + arguments) }

    static var admin: String { directory + "/n1/admin.sock" }
    static var csi: String { "unix://" + directory + "/n1/csi.sock" }

    static func status() throws -> [String: Any] {
        let text = try run([BuiltProduct.path("provisionctl"), "status", "--socket", admin, "--output", "json"])
        return try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }

    /// Polls `condition` every 250 ms for up to `seconds`.
    static func waitFor(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if (try? condition()) == true { return }
            Thread.sleep(forTimeInterval: 0.25)
        }
        if try condition() { return }
        let log = (try? String(contentsOfFile: directory + "/n1/daemon.log", encoding: .utf8)) ?? ""
        let warnings = log.split(separator: "\n").filter { $0.contains("warning") || $0.contains("error") || $0.contains("health") }.suffix(15)
        throw Failure(description: "timed out after \(seconds) s waiting for \(what); status: \((try? status()) ?? [:]); daemon: \(warnings.joined(separator: "\n"))")
    }

    /// A volume of `parameters`, staged and published at a directory of its own.
    static func unmountAndDelete(_ name: String, id: String) throws {
        try run([BuiltProduct.path("berth-csi"), "unpublish", id, directory + "/mnt/\(name)", "--endpoint", csi])
        try run([BuiltProduct.path("berth-csi"), "unstage", id, directory + "/mnt/\(name)-stage", "--endpoint", csi])
        try run([BuiltProduct.path("berth-csi"), "delete", id, "--endpoint", csi])
    }

    static func mount(_ name: String, _ parameters: [String]) throws -> (id: String, path: String) {
        let created = try run([BuiltProduct.path("berth-csi"), "create", name, "--size", "1Gi", "--endpoint", csi]
            + parameters.flatMap { ["--parameter", $0] })
        let json = try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any]
        let id = try #require((json?["volume"] as? [String: Any])?["volume_id"] as? String)
        let stage = directory + "/mnt/\(name)-stage", target = directory + "/mnt/\(name)"
        try FileManager.default.createDirectory(atPath: stage, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        try run([BuiltProduct.path("berth-csi"), "stage", id, stage, "--endpoint", csi])
        try run([BuiltProduct.path("berth-csi"), "publish", id, stage, target, "--endpoint", csi])
        return (id, target)
    }

    /// Writes `bytes` to `path` and fsyncs it (what the application was promised).
    static func writeSynced(_ path: String, _ bytes: [UInt8]) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Failure(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, min($0.count, 1 << 20)) }
            guard n > 0 else { throw Failure(description: "write \(path): \(String(cString: strerror(errno)))") }
            offset += n
        }
        guard fsync(fd) == 0 else { throw Failure(description: "fsync \(path): \(String(cString: strerror(errno)))") }
    }

    /// Reads the file back past every cache (this file's pages dropped from the page cache —
    /// only this file's: the other suites' cache checks run meanwhile — and the daemon runs
    /// without an object cache), so the bytes come from the devices that still answer.
    static func readBack(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw Failure(description: "read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { return bytes }
            bytes += buffer[0..<n]
        }
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var random = SeededRandom(seed: seed)
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    /// The issue's acceptance on 7 hosts (EC 4+2 can then rebuild a lost host elsewhere):
    /// data of every class fsynced through FUSE; an agent SIGKILLed (every byte reads,
    /// writes go on); a second host killed (every byte reads); both back; a host
    /// partitioned past the grace period (rebuilt elsewhere: every PG clean, moved bytes =
    /// plan's prediction), then healed (it rejoins, nothing lost); `down` leaves nothing.
    @Test func volumesSurviveLostAndPartitionedHosts() throws {
        _ = try? Self.cluster("down")
        defer { _ = try? Self.cluster("down") }
        let up = try Self.run(["bash", "scripts/cluster.sh", "up", "7"],
                              environment: ["BERTH_DAEMON_ARGS": "--out-after 8s --object-cache 0", "BERTH_DEVICE_SIZE": "2Gi"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(up.split(separator: "\n").last!.utf8)) as? [String: Any])
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        #expect(nodes.count == 7)
        #expect(nodes.map { $0["id"] as? String } == (1...7).map { "n\($0)" })
        #expect(nodes[0]["csi_endpoint"] as? String == Self.csi)
        for node in nodes { #expect(node["netns"] as? String == "berth-\(node["id"] as! String)") }

        let classes: [(String, [String])] = [
            ("r3", ["redundancy=replicated", "copies=3"]),
            ("ec", ["redundancy=erasure", "dataShards=4", "parityShards=2"]),
            ("single", ["redundancy=single"]),
        ]
        var files: [(path: String, bytes: [UInt8])] = []
        var mounts: [String: String] = [:]
        var ids: [String: String] = [:]
        for (i, (name, parameters)) in classes.enumerated() {
            let volume = try Self.mount(name, parameters)
            mounts[name] = volume.path
            ids[name] = volume.id
            let data = Self.bytes(6 << 20 + i * 12_345, seed: UInt64(i))
            try Self.writeSynced(volume.path + "/before", data)
            if name != "single" { files.append((volume.path + "/before", data)) }
        }

        // One agent killed: everything of 3-copy and EC 4+2 reads, and writes go on.
        try Self.cluster("kill", "n3")
        try Self.waitFor("n3 to be seen as down", seconds: 30) { (try Self.status()["devices_down"] as? Int ?? 0) >= 2 }
        for file in files { #expect(try Self.readBack(file.path) == file.bytes, "\(file.path) after n3 was killed") }
        for name in ["r3", "ec"] {
            let data = Self.bytes(3 << 20, seed: 77)
            try Self.writeSynced(mounts[name]! + "/during", data)
            files.append((mounts[name]! + "/during", data))
        }
        // A second host killed: still every byte.
        try Self.cluster("kill", "n4")
        for file in files { #expect(try Self.readBack(file.path) == file.bytes, "\(file.path) with n3 and n4 gone") }
        // Both back: they answer, go up again, and what degraded writes missed is rebuilt.
        try Self.cluster("start", "n3")
        try Self.cluster("start", "n4")
        try Self.waitFor("every PG clean after n3 and n4 returned", seconds: 400) {
            let s = try Self.status()
            return s["devices_up"] as? Int == 14 && s["pgs_degraded"] as? Int == 0 && s["pgs_moving"] as? Int == 0
        }
        for file in files { #expect(try Self.readBack(file.path) == file.bytes, "\(file.path) after n3 and n4 returned") }
        // The single copy: whatever its host went through, back with its host.
        #expect(try Self.readBack(mounts["single"]! + "/before") == Self.bytes(6 << 20 + 2 * 12_345, seed: 2))
        // A single copy on a host that goes out cannot be rebuilt anywhere (its PG stays
        // degraded until the host returns): it leaves before the partition, so that what
        // follows can ask for every PG clean.
        try Self.unmountAndDelete("single", id: ids["single"]!)

        // A partition longer than the grace period: n5's shards are rebuilt elsewhere, as
        // many bytes as `plan` predicts for failing n5.
        let plan = try Self.run([BuiltProduct.path("provisionctl"), "plan", "--fail-host", "n5", "--socket", Self.admin, "--output", "json"])
        let planned = try #require(try JSONSerialization.jsonObject(with: Data(plan.utf8)) as? [String: Any])
        let predicted = (planned["classes"] as? [[String: Any]] ?? []).reduce(0) { $0 + ($1["moved_bytes"] as? Int ?? 0) }
        #expect(predicted > 0)
        try Self.cluster("partition", "n5")
        try Self.waitFor("n5 out and its shards rebuilt", seconds: 400) {
            let s = try Self.status()
            let movement = s["movement"] as? [String: Any]
            return s["devices_out"] as? Int == 2 && s["pgs_degraded"] as? Int == 0 && s["pgs_moving"] as? Int == 0
                && movement?["finished"] as? Bool == true
        }
        let rebuilt = try Self.status()["movement"] as? [String: Any]
        #expect(rebuilt?["done_bytes"] as? Int == predicted, "rebuilt \(rebuilt ?? [:]) vs plan \(predicted)")
        for file in files { #expect(try Self.readBack(file.path) == file.bytes, "\(file.path) with n5 out") }
        // Healed: n5 rejoins (up), its share comes back, nothing is lost.
        try Self.cluster("heal", "n5")
        try Self.waitFor("n5 back up and every PG clean", seconds: 400) {
            let s = try Self.status()
            return s["devices_up"] as? Int == 14 && s["pgs_degraded"] as? Int == 0 && s["pgs_moving"] as? Int == 0
        }
        for file in files { #expect(try Self.readBack(file.path) == file.bytes, "\(file.path) after n5 rejoined") }

        // Down: nothing mounted, no namespaces left.
        try Self.cluster("down")
        let mounts_ = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
        #expect(!mounts_.contains(Self.directory))
        #expect(!(try Self.run(["ip", "netns", "list"])).contains("berth-n"))
    }

    /// The cluster state in PostgreSQL on a host of its own (`BERTH_METADATA=postgres`): the
    /// daemon on n1 keeps nothing of it in its state directory; PostgreSQL SIGKILLed and
    /// started again under a mounted volume — CreateVolume fails meanwhile (an error, no
    /// hang), works again once it is back, and every fsynced byte still reads.
    @Test func clusterStateInPostgresOnAHostOfItsOwn() throws {
        _ = try? Self.cluster("down")
        defer { _ = try? Self.cluster("down") }
        let up = try Self.run(["bash", "scripts/cluster.sh", "up", "3"],
                              environment: ["BERTH_METADATA": "postgres", "BERTH_DEVICE_SIZE": "1Gi", "BERTH_DAEMON_ARGS": "--object-cache 0"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(up.split(separator: "\n").last!.utf8)) as? [String: Any])
        #expect(json["metadata"] as? String == "postgres://berth@10.77.0.9:5432/berth?sslmode=disable")
        #expect((json["nodes"] as? [[String: Any]])?.count == 3)
        #expect(!FileManager.default.fileExists(atPath: Self.directory + "/n1/state/cluster.sqlite"))
        let volume = try Self.mount("pg-r3", ["redundancy=replicated", "copies=3"])
        let data = Self.bytes(5 << 20, seed: 29)
        try Self.writeSynced(volume.path + "/f", data)

        // Under load: a writer creating and fsyncing small files throughout the outage. Each
        // fsync either fails (the namespace cannot reach the database) or was kept.
        let synced = Mutex<[String]>([]), stop = Atomic<Bool>(false)
        let writer = Thread {
            var n = 0
            while !stop.load(ordering: .relaxed) {
                n += 1
                let name = "load-\(n)"
                if (try? Self.writeSynced(volume.path + "/" + name, Self.bytes(4096, seed: UInt64(n)))) != nil {
                    synced.withLock { $0.append(name) }
                }
                Thread.sleep(forTimeInterval: 0.05)
            }
        }
        writer.start()
        Thread.sleep(forTimeInterval: 1)
        _ = try Self.cluster("kill", "pg")
        let create = [BuiltProduct.path("berth-csi"), "create", "while-away", "--size", "64Mi", "--endpoint", Self.csi, "--parameter", "redundancy=single"]
        #expect(throws: Failure.self) { try Self.run(create, timeoutSeconds: 120) }
        #expect(try Self.readBack(volume.path + "/f") == data)  // data needs the devices, not the database
        _ = try Self.cluster("start", "pg")
        try Self.waitFor("CreateVolume once PostgreSQL is back", seconds: 30) { (try? Self.run(create)) != nil }
        let listed = try Self.run([BuiltProduct.path("berth-csi"), "list", "--endpoint", Self.csi])
        #expect(listed.contains(volume.id))
        #expect(try Self.readBack(volume.path + "/f") == data)
        // The writer's fsyncs succeed again once the database is back (the mount reconnects).
        let before = synced.withLock { $0.count }
        try Self.waitFor("fsyncs through the namespace again", seconds: 30) { synced.withLock { $0.count } > before + 3 }
        stop.store(true, ordering: .relaxed)
        while !writer.isFinished { Thread.sleep(forTimeInterval: 0.05) }
        // Every fsynced file is there with its bytes, and the database's copy of the namespace
        // names each of them: nothing acknowledged was lost or half applied.
        let names = synced.withLock { $0 }
        #expect(names.count > 10)
        for name in names {
            let n = UInt64(name.dropFirst(5))!
            #expect(try Self.readBack(volume.path + "/" + name) == Self.bytes(4096, seed: n), "\(name)")
        }
        let shipped = try Self.run(["psql", "-h", "10.77.0.9", "-U", "berth", "-d", "berth", "-Atc",
                                    "SELECT convert_from(name, 'UTF8') FROM ns_dentry WHERE volume_id = '\(volume.id)'"])
        let inDatabase = Set(shipped.split(separator: "\n").map(String.init))
        #expect(Set(names).isSubset(of: inDatabase))
        try Self.unmountAndDelete("pg-r3", id: volume.id)
    }

    /// Issue 29's acceptance on the namespace cluster, PostgreSQL on a host of its own and
    /// a CSI node (`--role csi-node`) on every host but the controller's: a volume written
    /// and fsynced on n2 follows its pod to n3 after all of n2 is SIGKILLed (every fsynced
    /// byte, within 15 s of the calls); then n3 is partitioned while it writes, n4 takes
    /// the volume over, and once healed n3 lands nothing: its later fsync fails with EIO and
    /// nothing it wrote after losing the lease ever appears on n4.
    @Test func aVolumeFollowsItsPodAndAPartitionedNodeIsFenced() throws {
        _ = try? Self.cluster("down")
        defer {
            // The CSI nodes' and controllers' logs, for a failure's diagnosis.
            for node in ["n2", "n3", "n4"] {
                for log in ["node.log", "controller.log"] {
                    if let text = try? String(contentsOfFile: Self.directory + "/\(node)/\(log)", encoding: .utf8) {
                        try? text.write(toFile: "/tmp/berth-cluster-test-\(node)-\(log)", atomically: true, encoding: .utf8)
                    }
                }
            }
            _ = try? Self.cluster("down")
        }
        let up = try Self.run(["bash", "scripts/cluster.sh", "up", "4"],
                              environment: ["BERTH_METADATA": "postgres", "BERTH_DEVICE_SIZE": "1Gi", "BERTH_DAEMON_ARGS": "--object-cache 0",
                                            "BERTH_NODE_ARGS": "--object-cache 0", "BERTH_CONTROLLERS": "2"])
        let json = try #require(try JSONSerialization.jsonObject(with: Data(up.split(separator: "\n").last!.utf8)) as? [String: Any])
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        #expect(nodes.allSatisfy { $0["csi_endpoint"] is String })
        #expect(nodes.dropFirst().allSatisfy { $0["admin_socket"] is NSNull })
        func endpoint(_ node: String) -> String { "unix://\(Self.directory)/\(node)/csi.sock" }
        func csi(_ node: String, _ arguments: String...) throws {
            try Self.run([BuiltProduct.path("berth-csi")] + arguments + ["--endpoint", endpoint(node)], timeoutSeconds: 120)
        }
        func publish(_ id: String, on node: String) throws -> String {
            let stage = Self.directory + "/mnt/\(node)-stage", target = Self.directory + "/mnt/\(node)"
            try FileManager.default.createDirectory(atPath: stage, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            try csi(node, "stage", id, stage)
            try csi(node, "publish", id, stage, target)
            return target
        }
        let created = try Self.run([BuiltProduct.path("berth-csi"), "create", "follow", "--size", "1Gi", "--endpoint", Self.csi,
                                    "--parameter", "redundancy=replicated", "--parameter", "copies=3"])
        let volume = try #require(((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["volume"] as? [String: Any]))
        let id = try #require(volume["volume_id"] as? String)
        #expect((volume["accessible_topology"] as? [Any] ?? []).isEmpty)  // any node

        // n2 writes and fsyncs, then dies whole: agent, CSI node, FUSE session.
        let onN2 = try publish(id, on: "n2")
        let data = Self.bytes(5 << 20, seed: 41)
        try FileManager.default.createDirectory(atPath: onN2 + "/dir", withIntermediateDirectories: true)
        try Self.writeSynced(onN2 + "/dir/f", data)
        _ = try Self.cluster("kill", "n2")
        umount2(onN2, Int32(MNT_DETACH))
        umount2(Self.directory + "/mnt/n2-stage", Int32(MNT_DETACH))

        // Its pod moves to n3: the volume stages there once n2's lease has run out.
        let moved = Date()
        let onN3 = try publish(id, on: "n3")
        #expect(Date().timeIntervalSince(moved) < 15)
        #expect(try Self.readBack(onN3 + "/dir/f") == data)  // two of three copies' hosts alive
        // n2 comes back (its agent; its CSI node mounts nothing now).
        _ = try Self.cluster("start", "n2")

        // n3 writes on, is partitioned mid-way, and n4 takes the volume over.
        try Self.writeSynced(onN3 + "/before-partition", Self.bytes(100_000, seed: 42))
        _ = try Self.cluster("partition", "n3")
        let late = Mutex<Int32?>(nil)
        let writer = Thread {
            // Blocks while n3 cannot reach anything; its outcome is read after the heal.
            let fd = open(onN3 + "/after-partition", O_WRONLY | O_CREAT, 0o644)
            let outcome: Int32 = fd < 0 ? errno : write(fd, "late", 4) != 4 ? errno : fsync(fd) != 0 ? errno : 0
            if fd >= 0 { close(fd) }
            late.withLock { $0 = outcome }
        }
        writer.start()
        let onN4 = try publish(id, on: "n4")
        #expect(try Self.readBack(onN4 + "/before-partition") == Self.bytes(100_000, seed: 42))
        #expect(try Self.readBack(onN4 + "/dir/f") == data)
        try Self.writeSynced(onN4 + "/from-n4", Self.bytes(1000, seed: 43))

        _ = try Self.cluster("heal", "n3")
        try Self.waitFor("n3's write to finish after the heal", seconds: 90) { late.withLock { $0 } != nil }
        #expect(late.withLock { $0 } != 0, "n3 landed a write after losing its lease")
        // Whatever n3 still tries fails, and nothing of it reaches n4's view.
        let again = open(onN3 + "/after-heal", O_WRONLY | O_CREAT, 0o644)
        let outcome: Int32 = again < 0 ? errno : fsync(again) != 0 ? errno : 0
        if again >= 0 { close(again) }
        #expect(outcome == EIO)
        Thread.sleep(forTimeInterval: 2)
        let seen = try FileManager.default.contentsOfDirectory(atPath: onN4).sorted()
        #expect(seen == ["before-partition", "dir", "from-n4"])

        try csi("n4", "unpublish", id, onN4)
        try csi("n4", "unstage", id, Self.directory + "/mnt/n4-stage")

        // The leading controller's host dies: the standby on n2 takes the lead, and
        // CreateVolume works again through it within 15 s.
        let controllers = try #require(json["controllers"] as? [[String: Any]])
        let standby = try #require(controllers.first { $0["node"] as? String == "n2" }?["csi_endpoint"] as? String)
        _ = try Self.cluster("kill", "n1")
        let killed = Date()
        try Self.waitFor("CreateVolume through the new leader", seconds: 15) {
            (try? Self.run([BuiltProduct.path("berth-csi"), "create", "after-failover", "--size", "64Mi", "--endpoint", standby,
                            "--parameter", "redundancy=replicated", "--parameter", "copies=3"], timeoutSeconds: 10)) != nil
        }
        #expect(Date().timeIntervalSince(killed) < 15)
        let leader = try String(contentsOfFile: Self.directory + "/n2/controller.log", encoding: .utf8)
        #expect(leader.contains("STANDBY") && leader.contains("READY"))
        try Self.run([BuiltProduct.path("berth-csi"), "delete", id, "--endpoint", standby])
    }

    @Test func clusterScriptRefusesBadArguments() throws {
        #expect(throws: Failure.self) { try Self.cluster("up", "zero") }
        #expect(throws: Failure.self) { try Self.cluster("kill", "n99") }
        #expect(throws: Failure.self) { try Self.cluster("bogus") }
    }
}
