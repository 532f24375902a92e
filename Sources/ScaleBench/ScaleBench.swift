// scale-bench: Berth at scale (issue 27). Starts a real VolumeDriver on a fresh state
// directory, builds the scenario at N volumes (W of them written and mounted), and measures
// what the control plane costs as the volume count grows: CreateVolume latency, plan and
// apply of a topology change, the movement it starts, CreateVolume during that movement,
// /metrics, daemon restart and resident memory.
//
//   swift build -c release --product VolumeDriver && swift build -c release --product scale-bench
//   .build/release/scale-bench [--volumes N] [--written W] [--bytes-per-written BYTES]
//       [--volume-size BYTES] [--mover-rate BYTES] [--daemon PATH] [--step-timeout SECONDS]
//       [--json] [--log-level LEVEL]
//
// Defaults: 10,000 volumes of 4 MiB, 50 written with 2 MiB each, mover budget 64 MiB/s,
// VolumeDriver next to scale-bench, daemon log level warning, step timeout 600 s. Progress
// goes to stderr; with --json one JSON object goes to stdout (else a short summary). The
// daemon's stderr goes to /tmp/scale-bench-PID.log (removed at the end if empty).
//
// The cluster is the embedded default (6 hosts × 2 directory devices) with devices large
// enough that admission never refuses (N × size × 3 × 2 spread over 12 devices, ≥ 4 GiB);
// volumes cycle through the shipped classes replicated-3, ec-4-2, remote-disk.
//
// Phases:
//   A  create 100 volumes, then CreateVolume latency at 1, 16, 64 clients (each client its
//      own connection; 128 calls per level, deleted again untimed): "at 100 volumes".
//   B  bulk-create up to N (64 clients), then the same three levels: "at N volumes".
//   C  NodeStage + NodePublish W volumes, write BYTES to a file in each and fsync; they stay
//      mounted until the end.
//   D  /metrics: median of 5 scrapes.
//   E  add a host of 2 devices: plan, apply, movement (polling Status until the movement
//      of the new epoch finishes). Meanwhile 16 clients create volumes, each at most one
//      call per 500 ms, up to max(320, N/10) calls; the same load for 320 calls just before
//      the plan gives the idle figure. Both sets are deleted afterwards, untimed.
//   F  fail one device (h1-d1): plan, apply, movement.
//   G  SIGTERM the daemon (seconds until it exits), start it on the same state directory
//      (seconds to READY, to a CSI Probe answer, to a ListVolumes answer).
//   Then everything is unpublished and unstaged, the daemon stopped, nothing left mounted,
//   the state directory removed.
//
// JSON fields (times in seconds unless _ms; null: the step failed or timed out):
//   volumes, written, volume_size_bytes, bytes_per_written, device_capacity_bytes,
//   mover_bytes_per_second (the configured budget)
//   create: [{phase, volumes_at, clients, calls, errors, p50_ms, p99_ms}]
//   bulk_create_volumes, bulk_create_seconds, bulk_create_per_second
//   first_start_seconds (fresh state directory, to READY)
//   rss_bytes_at_100 (after phase A), rss_bytes_at_n (after phase B), rss_bytes_mounted (after C),
//   rss_bytes_after_movement (after F); open_files_at_n, open_files_after_movement (the
//   daemon's descriptors)
//   write_seconds (phase C, all W volumes: stage, publish, write, fsync)
//   scrape_ms, scrape_bytes, scrape_volumes (sum of berth_volumes)
//   add_host, fail_device: {plan_seconds, apply_seconds, planned_positions, planned_bytes,
//     movement_seconds, moved_bytes, bytes_per_second (moved ÷ movement seconds),
//     status_bytes_per_second (the daemon's own figure)}; add_host also
//     {create_calls_idle, create_p50_ms_idle, create_p99_ms_idle, create_calls_moving,
//      create_errors_moving, create_p50_ms_moving, create_p99_ms_moving}
//   stop_seconds, start_seconds (to READY), start_probe_seconds, start_list_volumes_seconds,
//   rss_bytes_after_restart, daemon_log_lines, run_seconds
//   fd_limit (the descriptor limit the daemon inherits: raised to 1,048,576 as in a container)
//   timeouts: ["add_host.plan", …] (steps that exceeded --step-timeout), errors: [messages],
//   notes: [e.g. the creates during movement reached their cap before it ended]
//
// Issue 27's targets: plan ≤ 1 s, apply ≤ 2 s at 10,000 volumes; movement at the configured
// rate; CreateVolume p99 during movement ≤ 2× idle; p99 at N ≤ 1.2× at 100; p99 at 16
// clients < 10 ms; start ≤ 5 s; scrape ≤ 100 ms; rss_bytes_at_n ≈ rss_bytes_at_100.
import CSIProtocol
import AdminProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport
import Synchronization

struct Options {
    var volumes = 10_000
    var written = 50
    var bytesPerWritten = 2 << 20
    var volumeSize: Int64 = 4 << 20
    var moverRate: Int64 = 64 << 20
    var daemon: String?
    var json = false
    var logLevel = "warning"
    var stepTimeout = 600.0

    static func parse(_ arguments: [String]) -> Options {
        var o = Options()
        var i = 1
        func value() -> String {
            guard i + 1 < arguments.count else { usage("\(arguments[i]) needs a value") }
            i += 1
            return arguments[i]
        }
        func number(_ text: String) -> Int64 {
            guard let n = Int64(text), n >= 0 else { usage("\(arguments[i - 1]) takes a non-negative integer, not \(text)") }
            return n
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--volumes": o.volumes = Int(number(value()))
            case "--written": o.written = Int(number(value()))
            case "--bytes-per-written": o.bytesPerWritten = Int(number(value()))
            case "--volume-size": o.volumeSize = number(value())
            case "--mover-rate": o.moverRate = number(value())
            case "--daemon": o.daemon = value()
            case "--json": o.json = true
            case "--log-level": o.logLevel = value()
            case "--step-timeout":
                let v = value()
                guard let s = Double(v), s > 0 else { usage("--step-timeout takes seconds, not \(v)") }
                o.stepTimeout = s
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(arguments[i])")
            }
            i += 1
        }
        if o.written > o.volumes { usage("--written must not exceed --volumes") }
        if o.volumeSize < 1 << 20 { usage("--volume-size must be at least 1 MiB") }
        return o
    }

    static func usage(_ problem: String?) -> Never {
        let text = """
            usage: scale-bench [--volumes N] [--written W] [--bytes-per-written BYTES] [--volume-size BYTES]
                               [--mover-rate BYTES] [--daemon PATH] [--step-timeout SECONDS] [--json] [--log-level LEVEL]
            """
        if let problem {
            FileHandle.standardError.write(Data("scale-bench: \(problem)\n\(text)\n".utf8))
            exit(64)
        }
        print(text)
        exit(0)
    }
}

/// Figures of one topology change: plan, apply, the movement it starts.
struct ChangeFigures {
    var planSeconds: Double?
    var applySeconds: Double?
    var plannedPositions: Int?
    var plannedBytes: Int64?
    var movementSeconds: Double?
    var movedBytes: Int64?
    var statusBytesPerSecond: Double?
    var idle: Batch?
    var moving: Batch?

    func json(withCreates: Bool) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("plan_seconds", .num(planSeconds)), ("apply_seconds", .num(applySeconds)),
            ("planned_positions", .integer(plannedPositions)), ("planned_bytes", .integer(plannedBytes)),
            ("movement_seconds", .num(movementSeconds)), ("moved_bytes", .integer(movedBytes)),
            ("bytes_per_second", .num(movedBytes.flatMap { b in movementSeconds.map { Double(b) / max($0, 0.001) } }, digits: 0)),
            ("status_bytes_per_second", .num(statusBytesPerSecond, digits: 0)),
        ]
        if withCreates {
            fields += [("create_calls_idle", .integer(idle?.latencies.count)), ("create_p50_ms_idle", .num(idle?.p50Ms)),
                       ("create_p99_ms_idle", .num(idle?.p99Ms)),
                       ("create_calls_moving", .integer(moving?.latencies.count)), ("create_errors_moving", .integer(moving?.errors)),
                       ("create_p50_ms_moving", .num(moving?.p50Ms)), ("create_p99_ms_moving", .num(moving?.p99Ms))]
        }
        return .object(fields)
    }
}

final class IDs: Sendable {
    let list = Mutex<[String]>([])
    func add(_ id: String) { list.withLock { $0.append(id) } }
    var all: [String] { list.withLock { $0 } }
}

@main
struct Bench {
    static let started = ContinuousClock.now

    static func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

    static func progress(_ text: String) {
        let t = Int(seconds(ContinuousClock.now - started))
        FileHandle.standardError.write(Data((String(format: "scale-bench [%02d:%02d] ", t / 60, t % 60) + text + "\n").utf8))
    }

    static func main() async {
        let options = Options.parse(CommandLine.arguments)
        let run = Run(options)
        let report = await run.execute()
        if options.json {
            print(report.render())
        } else {
            print(run.summary())
        }
        exit(run.fatal == nil ? 0 : 1)
    }
}

/// One bench run: the daemon, its paths, and the figures gathered so far.
final class Run {
    let o: Options
    let root: String
    let daemon: DaemonProcess
    let deviceCapacity: Int64
    var csi: String { root + "/csi.sock" }
    var admin: String { root + "/admin.sock" }

    var creates: [JSONValue] = []
    var createSummary: [(String, Int, Int, Double?, Double?)] = []
    var timeouts: [String] = []
    var errors: [String] = []
    var notes: [String] = []
    var fileLimit: Int64?
    var fatal: String?
    var bulkCount = 0
    var bulkSeconds: Double?
    var firstStart: Double?
    var rssAt100: Int64?, rssAtN: Int64?, rssMounted: Int64?, rssMoved: Int64?, rssRestart: Int64?
    var openFilesN: Int?, openFilesMoved: Int?
    var writeSeconds: Double?
    var scrapeMs: Double?, scrapeBytes: Int?, scrapeVolumes: Double?
    var addHost = ChangeFigures(), failDevice = ChangeFigures()
    var stopSeconds: Double?, startSeconds: Double?, probeSeconds: Double?, listSeconds: Double?
    var mounted: [(id: String, staging: String, target: String)] = []
    var runSeconds = 0.0

    static let callsPerLevel = 128
    /// CreateVolume load around a movement: 16 clients, each at most one call per 500 ms.
    static let idleCalls = 320
    static let churnPace = Duration.milliseconds(500)

    init(_ o: Options) {
        self.o = o
        root = "/tmp/sb-\(getpid())"  // short: a Unix socket path holds at most 107 bytes
        let needed = Double(o.volumes) * Double(o.volumeSize) * 3 * 2 / 12
        deviceCapacity = max(4, Int64((needed / Double(1 << 30)).rounded(.up))) << 30
        let binary = o.daemon ?? (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0]))
            .deletingLastPathComponent().appendingPathComponent("VolumeDriver").path
        daemon = DaemonProcess(binary: binary, arguments: [
            "--endpoint", "unix://" + root + "/csi.sock", "--state-dir", root + "/state", "--admin-socket", root + "/admin.sock",
            "--node-id", "scale-bench", "--metrics-address", "127.0.0.1:0", "--config", root + "/config.yaml",
            "--log-level", o.logLevel,
        ], logPath: "/tmp/scale-bench-\(getpid()).log")
    }

    func execute() async -> JSONValue {
        let clock = ContinuousClock()
        let began = clock.now
        do {
            try await phases()
        } catch {
            fatal = Load.describe(error)
            errors.append("stopped early: \(fatal!)")
            Bench.progress("FAILED: \(fatal!)")
            if daemon.pid != nil { Bench.progress("daemon log tail:\n\(daemon.logTail(20))") }
        }
        await cleanUp()
        runSeconds = Bench.seconds(clock.now - began)
        Bench.progress(String(format: "done in %.0f s", runSeconds))
        return report()
    }

    func phases() async throws {
        try? FileManager.default.removeItem(atPath: root)
        try FileManager.default.createDirectory(atPath: root + "/t", withIntermediateDirectories: true)
        try "embeddedDeviceCapacity: \(deviceCapacity >> 30)Gi\nmoverBytesPerSecond: \(o.moverRate)\n"
            .write(toFile: root + "/config.yaml", atomically: true, encoding: .utf8)
        // The daemon inherits our descriptor limit: as high as a container runtime gives
        // (1,048,576), so the figures are time and memory, not EMFILE.
        var limit = rlimit()
        if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 {
            var raised = rlimit(rlim_cur: max(limit.rlim_cur, 1 << 20), rlim_max: max(limit.rlim_max, 1 << 20))
            if setrlimit(RLIMIT_NOFILE_VALUE, &raised) != 0 {
                raised = rlimit(rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max)
                _ = setrlimit(RLIMIT_NOFILE_VALUE, &raised)
            }
            if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 { fileLimit = Int64(limit.rlim_cur) }
        }
        Bench.progress("starting \(daemon.binary) on \(root)/state (devices of \(deviceCapacity >> 30) GiB, mover \(o.moverRate) B/s)")
        firstStart = try daemon.start(timeout: o.stepTimeout)

        // A: 100 volumes, then latency at 1/16/64 clients.
        let base = min(100, o.volumes)
        try await bulkCreate(0..<base, clients: 16)
        try await measureLevels(phase: "a", volumesAt: base)
        rssAt100 = daemon.residentBytes()

        // B: up to N, then the same.
        if o.volumes > base {
            let clock = ContinuousClock()
            let t = clock.now
            try await bulkCreate(base..<o.volumes, clients: 64)
            bulkSeconds = Bench.seconds(clock.now - t)
            bulkCount = o.volumes - base
            Bench.progress(String(format: "bulk: %d volumes in %.1f s (%.0f/s)", bulkCount, bulkSeconds!, Double(bulkCount) / bulkSeconds!))
        }
        try await measureLevels(phase: "b", volumesAt: o.volumes)
        rssAtN = daemon.residentBytes()
        openFilesN = daemon.openFiles()

        // C: W volumes staged, published, written.
        try await writeVolumes()
        rssMounted = daemon.residentBytes()

        // D: /metrics.
        scrape()

        // E: add a host; F: fail a device.
        addHost = await change("add_host", churn: true) {
            var c = Berth_Admin_V1_Change()
            c.addHost.host = "host-7"
            c.addHost.rack = "rack-1"
            c.addHost.devices = 2
            c.addHost.capacityBytes = self.deviceCapacity
            return c
        }
        failDevice = await change("fail_device", churn: false) {
            var c = Berth_Admin_V1_Change()
            c.failDevice = "h1-d1"
            return c
        }

        rssMoved = daemon.residentBytes()
        openFilesMoved = daemon.openFiles()

        // G: restart.
        try await restart()
    }

    // MARK: phases

    func bulkCreate(_ range: Range<Int>, clients: Int) async throws {
        Bench.progress("creating volumes \(range.lowerBound)..<\(range.upperBound) with \(clients) clients")
        let size = o.volumeSize, low = range.lowerBound, count = range.count
        let step = max(1000, count / 10)
        let batch = await Load.run(csi, clients: clients, jobs: count) { controller, _, i in
            let index = low + i
            _ = try await Load.create(controller, name: "v-\(index)", index: index, bytes: size)
            if (i + 1) % step == 0 { Bench.progress("  \(index + 1) volumes") }
            return nil
        }
        if batch.errors > 0 { throw BenchFailure("bulk create: \(batch.errors) calls failed, first: \(batch.firstError ?? "?")") }
    }

    func measureLevels(phase: String, volumesAt: Int) async throws {
        for clients in [1, 16, 64] {
            let ids = IDs()
            let size = o.volumeSize
            let batch = await Load.run(csi, clients: clients, jobs: Self.callsPerLevel) { controller, _, i in
                let (latency, id) = try await Load.create(controller, name: "\(phase)\(clients)-\(i)", index: i, bytes: size)
                ids.add(id)
                return latency
            }
            creates.append(.object([("phase", .string(phase)), ("volumes_at", .int(Int64(volumesAt))), ("clients", .int(Int64(clients))),
                                    ("calls", .int(Int64(batch.latencies.count))), ("errors", .int(Int64(batch.errors))),
                                    ("p50_ms", .num(batch.p50Ms)), ("p99_ms", .num(batch.p99Ms))]))
            createSummary.append((phase, volumesAt, clients, batch.p50Ms, batch.p99Ms))
            Bench.progress(String(format: "CreateVolume at %d volumes, %d clients: p50 %.2f ms, p99 %.2f ms (%d calls, %d errors)",
                                  volumesAt, clients, batch.p50Ms ?? -1, batch.p99Ms ?? -1, batch.latencies.count, batch.errors))
            if let e = batch.firstError { errors.append("create \(phase) \(clients) clients: \(e)") }
            // Back to `volumesAt` volumes, untimed.
            let all = ids.all
            let deleted = await Load.run(csi, clients: 16, jobs: all.count) { controller, _, i in
                try await Load.delete(controller, id: all[i])
                return nil
            }
            if deleted.errors > 0 { throw BenchFailure("delete: \(deleted.errors) calls failed, first: \(deleted.firstError ?? "?")") }
        }
    }

    func writeVolumes() async throws {
        guard o.written > 0 else { return }
        Bench.progress("staging, publishing and writing \(o.written) volumes (\(o.bytesPerWritten) bytes each)")
        var pattern = [UInt8](repeating: 0, count: 1 << 20)
        for i in pattern.indices { pattern[i] = UInt8.random(in: 0...255) }
        let clock = ContinuousClock()
        let t = clock.now
        let size = o.volumeSize
        try await withGRPCClient(transport: try Transports.client(path: csi)) { grpc in
            let controller = Csi_V1_Controller.Client(wrapping: grpc)
            let node = Csi_V1_Node.Client(wrapping: grpc)
            for i in 0..<o.written {
                // Same name and size: CreateVolume answers the existing volume.
                let (_, id) = try await Load.create(controller, name: "v-\(i)", index: i, bytes: size)
                let staging = root + "/t/s\(i)", target = root + "/t/p\(i)"
                var stage = Csi_V1_NodeStageVolumeRequest()
                stage.volumeID = id
                stage.stagingTargetPath = staging
                stage.volumeCapability = Load.capability()
                _ = try await node.nodeStageVolume(stage)
                mounted.append((id, staging, ""))
                var publish = Csi_V1_NodePublishVolumeRequest()
                publish.volumeID = id
                publish.stagingTargetPath = staging
                publish.targetPath = target
                publish.volumeCapability = Load.capability()
                _ = try await node.nodePublishVolume(publish)
                mounted[mounted.count - 1].target = target
                try Self.write(target + "/data", bytes: o.bytesPerWritten, pattern: pattern, seed: i)
            }
        }
        writeSeconds = Bench.seconds(clock.now - t)
        Bench.progress(String(format: "wrote %d volumes in %.1f s", o.written, writeSeconds!))
    }

    static func write(_ path: String, bytes: Int, pattern: [UInt8], seed: Int) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchFailure("open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var chunk = pattern
        var left = bytes, offset = 0
        while left > 0 {
            // Every chunk of every volume differs.
            withUnsafeBytes(of: (seed, offset)) { stamp in for (k, b) in stamp.enumerated() { chunk[k] = b } }
            let n = min(left, chunk.count)
            let wrote = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, n) }
            guard wrote == n else { throw BenchFailure("write \(path): \(wrote < 0 ? String(cString: strerror(errno)) : "short write")") }
            left -= n
            offset += n
        }
        guard fsync(fd) == 0 else { throw BenchFailure("fsync \(path): \(String(cString: strerror(errno)))") }
    }

    func scrape() {
        guard let port = daemon.metricsPort else { errors.append("no metrics port in the READY line"); return }
        var times: [Double] = []
        let clock = ContinuousClock()
        for _ in 0..<5 {
            let t = clock.now
            do {
                let body = try Load.scrape(port: port)
                times.append(Bench.seconds(clock.now - t) * 1000)
                scrapeBytes = body.utf8.count
                scrapeVolumes = Load.metricSum(body, "berth_volumes")
            } catch {
                errors.append("scrape: \(Load.describe(error))")
            }
        }
        if !times.isEmpty { scrapeMs = times.sorted()[times.count / 2] }
        Bench.progress(String(format: "/metrics: median %.1f ms over %d scrapes, %d bytes, berth_volumes %.0f",
                              scrapeMs ?? -1, times.count, scrapeBytes ?? 0, scrapeVolumes ?? -1))
    }

    /// Plan, apply and the movement of one change; with `churn`, CreateVolume latency idle
    /// (just before) and during the movement.
    func change(_ name: String, churn: Bool, _ make: () -> Berth_Admin_V1_Change) async -> ChangeFigures {
        var f = ChangeFigures()
        var set = Berth_Admin_V1_ChangeSet()
        set.changes = [make()]
        let changeSet = set
        let admin = self.admin, csi = self.csi, size = o.volumeSize, timeout = o.stepTimeout
        let clock = ContinuousClock()
        let createJob: @Sendable (String, IDs) -> Job = { tag, ids in
            { controller, _, i in
                let (latency, id) = try await Load.create(controller, name: "\(tag)-\(i)", index: i, bytes: size)
                ids.add(id)
                return latency
            }
        }
        if churn {
            Bench.progress("\(name): idle CreateVolume load, 16 clients, \(Self.idleCalls) calls")
            let ids = IDs()
            f.idle = await Load.run(csi, clients: 16, jobs: Self.idleCalls, pace: Self.churnPace, createJob("\(name)-idle", ids))
            if let e = f.idle?.firstError { errors.append("\(name) idle creates: \(e)") }
            await deleteUntimed(ids.all)
        }
        let before = try? await Load.status(admin)

        Bench.progress("\(name): plan")
        var planned: Load.PlanSummary?
        do {
            let t = clock.now
            let report = try await withStepTimeout(timeout) { try await Load.admin(admin) { try await $0.plan(changeSet) } }
            f.planSeconds = Bench.seconds(clock.now - t)
            planned = try Load.planSummary(report.json)
            f.plannedPositions = planned?.movedPositions
            f.plannedBytes = planned?.movedBytes
            Bench.progress(String(format: "\(name): plan %.2f s: %d positions, %lld bytes", f.planSeconds!, planned!.movedPositions, planned!.movedBytes))
        } catch is StepTimedOut {
            timeouts.append("\(name).plan")
            Bench.progress("\(name): plan timed out after \(Int(timeout)) s")
        } catch {
            errors.append("\(name) plan: \(Load.describe(error))")
            Bench.progress("\(name): plan failed: \(Load.describe(error))")
            return f
        }

        Bench.progress("\(name): apply")
        let applied: Double
        do {
            let t = clock.now
            let report = try await withStepTimeout(timeout) { try await Load.admin(admin) { try await $0.apply(changeSet) } }
            f.applySeconds = Bench.seconds(clock.now - t)
            applied = f.applySeconds!
            planned = try Load.planSummary(report.json)
            Bench.progress(String(format: "\(name): apply %.2f s (epoch %lld -> %lld)", applied, planned!.fromEpoch, planned!.toEpoch))
        } catch is StepTimedOut {
            timeouts.append("\(name).apply")
            Bench.progress("\(name): apply timed out after \(Int(timeout)) s; waiting for its movement anyway")
        } catch {
            errors.append("\(name) apply: \(Load.describe(error))")
            Bench.progress("\(name): apply failed: \(Load.describe(error))")
            return f
        }
        let toEpoch = planned?.toEpoch ?? ((before?.epoch ?? 0) + 1)

        // The movement, with creates alongside.
        let stop = Flag()
        let movingIDs = IDs()
        let cap = max(Self.idleCalls, o.volumes / 10)
        var load: Task<Batch, Never>?
        if churn {
            let job = createJob("\(name)-moving", movingIDs), pace = Self.churnPace
            load = Task { await Load.run(csi, clients: 16, jobs: cap, pace: pace, stop: stop, job) }
        }
        let t = clock.now
        do {
            let last = try await withStepTimeout(timeout) { () -> Load.Status in
                var polls = 0
                while true {
                    let s = try await Load.status(admin)
                    if s.epoch >= toEpoch {
                        if s.movementEpoch == toEpoch, s.movementFinished { return s }
                        if (s.movementEpoch ?? 0) < toEpoch, s.pgsMoving == 0, s.pgsDegraded == 0 { return s }  // nothing to move
                        if (s.movementEpoch ?? 0) > toEpoch { return s }
                    }
                    polls += 1
                    if polls % 50 == 0 {
                        Bench.progress("  \(name): moved \(s.doneBytes) of \(s.totalBytes) bytes, \(s.remainingPositions) positions left")
                    }
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            f.movementSeconds = Bench.seconds(clock.now - t)
            if last.movementEpoch == toEpoch {
                f.movedBytes = last.doneBytes
                f.statusBytesPerSecond = last.serverBytesPerSecond
            } else {
                f.movedBytes = 0
            }
            Bench.progress(String(format: "\(name): movement %.1f s, %lld bytes", f.movementSeconds!, f.movedBytes ?? -1))
        } catch is StepTimedOut {
            timeouts.append("\(name).movement")
            if let s = try? await Load.status(admin), s.movementEpoch == toEpoch {
                errors.append("\(name): movement timed out with \(s.doneBytes) of \(s.totalBytes) bytes moved, \(s.remainingPositions) positions left")
            }
            Bench.progress("\(name): movement timed out after \(Int(timeout)) s")
        } catch {
            errors.append("\(name) movement: \(Load.describe(error))")
        }
        stop.set()
        if let load {
            f.moving = await load.value
            if let e = f.moving?.firstError { errors.append("\(name) creates during movement: \(e)") }
            Bench.progress(String(format: "\(name): CreateVolume p99 idle %.2f ms, moving %.2f ms (%d calls)",
                                  f.idle?.p99Ms ?? -1, f.moving?.p99Ms ?? -1, f.moving?.latencies.count ?? 0))
            if (f.moving?.latencies.count ?? 0) >= cap { notes.append("\(name): the \(cap) creates during movement ended before the movement did") }
            await deleteUntimed(movingIDs.all)
        }
        return f
    }

    /// Deletes volumes (16 clients, untimed) so the count is back where it was.
    func deleteUntimed(_ ids: [String]) async {
        guard !ids.isEmpty else { return }
        let deleted = await Load.run(csi, clients: 16, jobs: ids.count) { controller, _, i in
            try await Load.delete(controller, id: ids[i])
            return nil
        }
        if deleted.errors > 0 { errors.append("delete: \(deleted.errors) calls failed, first: \(deleted.firstError ?? "?")") }
    }

    func restart() async throws {
        Bench.progress("stopping the daemon (SIGTERM)")
        stopSeconds = daemon.stop(timeout: o.stepTimeout)
        if stopSeconds == nil { timeouts.append("stop"); errors.append("the daemon did not exit on SIGTERM; killed") }
        Bench.progress("starting it again on the same state directory")
        let clock = ContinuousClock()
        let t = clock.now
        startSeconds = try daemon.start(timeout: o.stepTimeout)
        let csi = self.csi
        do {
            try await withStepTimeout(o.stepTimeout) {
                try await withGRPCClient(transport: try Transports.client(path: csi)) { grpc in
                    _ = try await Csi_V1_Identity.Client(wrapping: grpc).probe(Csi_V1_ProbeRequest())
                }
            }
            probeSeconds = Bench.seconds(clock.now - t)
            try await withStepTimeout(o.stepTimeout) {
                try await withGRPCClient(transport: try Transports.client(path: csi)) { grpc in
                    var r = Csi_V1_ListVolumesRequest()
                    r.maxEntries = 100
                    _ = try await Csi_V1_Controller.Client(wrapping: grpc).listVolumes(r)
                }
            }
            listSeconds = Bench.seconds(clock.now - t)
        } catch is StepTimedOut {
            timeouts.append("start.csi")
        }
        rssRestart = daemon.residentBytes()
        Bench.progress(String(format: "stop %.2f s, start %.2f s (probe %.2f s, ListVolumes %.2f s)",
                              stopSeconds ?? -1, startSeconds ?? -1, probeSeconds ?? -1, listSeconds ?? -1))
    }

    // MARK: the end

    func cleanUp() async {
        if daemon.pid != nil, !mounted.isEmpty {
            Bench.progress("unpublishing and unstaging \(mounted.count) volumes")
            let csi = self.csi, mounted = self.mounted
            do {
                try await withGRPCClient(transport: try Transports.client(path: csi)) { grpc in
                    let node = Csi_V1_Node.Client(wrapping: grpc)
                    for m in mounted {
                        if !m.target.isEmpty {
                            var r = Csi_V1_NodeUnpublishVolumeRequest()
                            r.volumeID = m.id
                            r.targetPath = m.target
                            _ = try await node.nodeUnpublishVolume(r)
                        }
                        var u = Csi_V1_NodeUnstageVolumeRequest()
                        u.volumeID = m.id
                        u.stagingTargetPath = m.staging
                        _ = try await node.nodeUnstageVolume(u)
                    }
                }
            } catch {
                errors.append("unpublish/unstage: \(Load.describe(error))")
            }
        }
        if daemon.pid != nil, daemon.stop(timeout: 120) == nil { errors.append("the daemon did not exit on SIGTERM at the end; killed") }
        // Nothing of ours may stay mounted.
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[4].hasPrefix(root + "/") {
                errors.append("left mounted: \(fields[4]) (detached)")
                umount2(String(fields[4]), Int32(MNT_DETACH))
            }
        }
        try? FileManager.default.removeItem(atPath: root)
        if daemon.logLineCount() == 0 { try? FileManager.default.removeItem(atPath: daemon.logPath) } else {
            Bench.progress("daemon log: \(daemon.logPath) (\(daemon.logLineCount()) lines)")
        }
    }

    func report() -> JSONValue {
        .object([
            ("volumes", .int(Int64(o.volumes))), ("written", .int(Int64(o.written))),
            ("volume_size_bytes", .int(o.volumeSize)), ("bytes_per_written", .int(Int64(o.bytesPerWritten))),
            ("device_capacity_bytes", .int(deviceCapacity)), ("mover_bytes_per_second", .int(o.moverRate)),
            ("create", .array(creates)),
            ("bulk_create_volumes", .int(Int64(bulkCount))), ("bulk_create_seconds", .num(bulkSeconds)),
            ("bulk_create_per_second", .num(bulkSeconds.map { Double(bulkCount) / max($0, 0.001) }, digits: 1)),
            ("first_start_seconds", .num(firstStart)),
            ("rss_bytes_at_100", .integer(rssAt100)), ("rss_bytes_at_n", .integer(rssAtN)), ("rss_bytes_mounted", .integer(rssMounted)),
            ("rss_bytes_after_movement", .integer(rssMoved)),
            ("open_files_at_n", .integer(openFilesN)), ("open_files_after_movement", .integer(openFilesMoved)),
            ("write_seconds", .num(writeSeconds)),
            ("scrape_ms", .num(scrapeMs)), ("scrape_bytes", .integer(scrapeBytes)), ("scrape_volumes", .num(scrapeVolumes, digits: 0)),
            ("add_host", addHost.json(withCreates: true)), ("fail_device", failDevice.json(withCreates: false)),
            ("stop_seconds", .num(stopSeconds)), ("start_seconds", .num(startSeconds)),
            ("start_probe_seconds", .num(probeSeconds)), ("start_list_volumes_seconds", .num(listSeconds)),
            ("rss_bytes_after_restart", .integer(rssRestart)), ("daemon_log_lines", .int(Int64(daemon.logLineCount()))),
            ("run_seconds", .num(runSeconds, digits: 1)),
            ("fd_limit", .integer(fileLimit)),
            ("timeouts", .array(timeouts.map { .string($0) })), ("errors", .array(errors.map { .string($0) })),
            ("notes", .array(notes.map { .string($0) })),
        ])
    }

    func summary() -> String {
        func f(_ v: Double?, _ format: String = "%.2f") -> String { v.map { String(format: format, $0) } ?? "n/a" }
        func mib(_ v: Int64?) -> String { v.map { String(format: "%.0f MiB", Double($0) / 1048576) } ?? "n/a" }
        var lines = ["scale-bench: \(o.volumes) volumes, \(o.written) written"]
        lines.append("CreateVolume   volumes  clients    p50 ms    p99 ms")
        for (phase, at, clients, p50, p99) in createSummary {
            let pad = { (s: String, n: Int) in String(repeating: " ", count: max(0, n - s.count)) + s }
            lines.append("  " + phase + "         " + pad("\(at)", 7) + "  " + pad("\(clients)", 7) + "  " + pad(f(p50), 8) + "  " + pad(f(p99), 8))
        }
        lines.append("bulk create: \(f(bulkSeconds.map { Double(bulkCount) / max($0, 0.001) }, "%.0f"))/s")
        lines.append("RSS at 100: \(mib(rssAt100)), at N: \(mib(rssAtN)), mounted: \(mib(rssMounted)), after movement: \(mib(rssMoved)), "
                     + "after restart: \(mib(rssRestart))")
        lines.append("/metrics: \(f(scrapeMs, "%.1f")) ms")
        for (name, c) in [("add host", addHost), ("fail device", failDevice)] {
            lines.append("\(name): plan \(f(c.planSeconds)) s, apply \(f(c.applySeconds)) s, movement \(f(c.movementSeconds)) s, "
                         + "\(c.movedBytes.map(String.init) ?? "n/a") bytes")
        }
        lines.append("CreateVolume p99 idle \(f(addHost.idle?.p99Ms)) ms, during movement \(f(addHost.moving?.p99Ms)) ms")
        lines.append("stop \(f(stopSeconds)) s, start \(f(startSeconds)) s")
        if !timeouts.isEmpty { lines.append("timeouts: \(timeouts.joined(separator: ", "))") }
        for e in errors { lines.append("error: \(e)") }
        for n in notes { lines.append("note: \(n)") }
        return lines.joined(separator: "\n")
    }
}

let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
