import AdminProtocol
import ArgumentParser
import Foundation

/// A proposed change, from flags (shared by `plan` and `apply`).
struct ChangeOptions: ParsableArguments {
    @Option(name: .customLong("add-host"), help: "Add a host with --devices devices of --capacity each.") var addHost: String?
    @Option(help: "Devices of the added host.") var devices: Int = 1
    @Option(help: "Capacity of each added device, e.g. 500Gi.") var capacity: String?
    @Option(help: "Rack of the added host.") var rack: String?
    @Option(help: "Zone of the added host.") var zone: String?
    @Option(name: .customLong("drain"), help: "Drain a device (repeatable).") var drain: [String] = []
    @Option(name: .customLong("fail"), help: "Fail a device (repeatable).") var fail: [String] = []
    @Option(name: .customLong("fail-host"), help: "Fail every device of a host (repeatable).") var failHost: [String] = []
    @Option(name: .customLong("reweight"), help: "ID=WEIGHT (repeatable).") var reweight: [String] = []

    func changeSet() throws -> Berth_Admin_V1_ChangeSet {
        var set = Berth_Admin_V1_ChangeSet()
        if let addHost {
            guard let capacity else { throw Failure.badInput("--add-host needs --capacity") }
            var change = Berth_Admin_V1_Change()
            change.addHost.host = addHost
            change.addHost.devices = Int32(devices)
            change.addHost.capacityBytes = try parseSize(capacity)
            change.addHost.rack = rack ?? ""
            change.addHost.zone = zone ?? ""
            set.changes.append(change)
        }
        for id in drain {
            var c = Berth_Admin_V1_Change()
            c.drainDevice = id
            set.changes.append(c)
        }
        for id in fail {
            var c = Berth_Admin_V1_Change()
            c.failDevice = id
            set.changes.append(c)
        }
        for host in failHost {
            var c = Berth_Admin_V1_Change()
            c.failHost = host
            set.changes.append(c)
        }
        for pair in reweight {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let w = Double(parts[1]) else { throw Failure.badInput("--reweight takes ID=WEIGHT, not \(pair)") }
            var c = Berth_Admin_V1_Change()
            c.reweight.id = String(parts[0])
            c.reweight.weight = w
            set.changes.append(c)
        }
        guard !set.changes.isEmpty else {
            throw Failure.badInput("no change given: use --add-host, --drain, --fail, --fail-host or --reweight")
        }
        return set
    }
}

func renderPlan(_ report: JSON, applied: Bool) -> String {
    var table = Table("CLASS", "PG SHARDS MOVED", "OF WHICH RECOVERY", "MINIMUM", "BYTES MOVED", "USABLE BEFORE", "USABLE AFTER")
    for c in report["classes"]?.array ?? [] {
        table.add(c["name"]?.string ?? "", c["moved_positions"]?.string ?? "0", c["recovery_positions"]?.string ?? "0",
                  c["minimum_positions"]?.string ?? "0", human(c["moved_bytes"]?.int64 ?? 0),
                  human(c["usable_bytes_before"]?.int64 ?? 0), human(c["usable_bytes_after"]?.int64 ?? 0))
    }
    let head = applied
        ? "applied: epoch \(report["from_epoch"]?.string ?? "?") -> \(report["to_epoch"]?.string ?? "?"); the mover is executing it (provisionctl status)"
        : "plan: epoch \(report["from_epoch"]?.string ?? "?") -> \(report["to_epoch"]?.string ?? "?") (nothing changed)"
    return head + "\n" + table.render()
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan", abstract: "What a change would move and cost, per class; changes nothing.")
    @OptionGroup var change: ChangeOptions
    @OptionGroup var common: Common

    func run() async throws {
        try await Self.guarded {
            let set = try change.changeSet()
            let report = try await Daemon.report(common) { try await $0.plan(set) }
            emit(common.json ? report.text : renderPlan(report, applied: false))
        }
    }
}

struct ApplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply", abstract: "Apply the change that `plan` describes (same flags), as one epoch.")
    @OptionGroup var change: ChangeOptions
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @OptionGroup var common: Common

    func run() async throws {
        try await Self.guarded {
            let set = try change.changeSet()
            if !(change.fail.isEmpty && change.failHost.isEmpty) { try confirm("Fail devices and rebuild their shards elsewhere?", yes: yes) }
            let report = try await Daemon.report(common) { try await $0.apply(set) }
            emit(common.json ? report.text : renderPlan(report, applied: true))
        }
    }
}
