import AdminProtocol
import ArgumentParser
import Foundation

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Devices: add, list, drain, fail/out, down, up, remove, reweight.",
        subcommands: [Add.self, List.self, Drain.self, Fail.self, Down.self, Up.self, Remove.self, Reweight.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a device: a directory on the daemon's machine, or (--agent) one that another host's node agent serves.")
        @Option var id: String
        @Option var host: String
        @Option var rack: String?
        @Option var zone: String?
        @Option(help: "Directory of the shard store (default: under the daemon's state directory).") var path: String?
        @Option(help: "Capacity, e.g. 500Gi (with --agent: default the agent's).") var capacity: String?
        @Option(help: "Placement weight (default: follows capacity).") var weight: Double?
        @Option(help: "HOST:PORT of the node agent of --host that serves the device (docs/cluster.md).") var agent: String?
        @OptionGroup var common: Common

        func run() async throws {
            try await Self.guarded {
                var spec = Berth_Admin_V1_DeviceSpec()
                spec.id = id
                spec.host = host
                spec.rack = rack ?? ""
                spec.zone = zone ?? ""
                spec.path = path ?? ""
                guard capacity != nil || agent != nil else { throw ValidationError("--capacity is required for a local device") }
                spec.capacityBytes = try capacity.map(parseSize) ?? 0
                spec.weight = weight ?? 0
                spec.agent = agent ?? ""
                var request = Berth_Admin_V1_AddDevicesRequest()
                request.devices = [spec]
                let report = try await Daemon.report(common) { [request] in try await $0.addDevices(request) }
                emit(common.json ? report.text : "added: \(id)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every device with its state and usage.")
        @OptionGroup var common: Common

        func run() async throws {
            try await Self.guarded {
                let report = try await Daemon.report(common) { try await $0.listDevices(Berth_Admin_V1_Empty()) }
                if common.json { return emit(report.text) }
                var table = Table("ID", "HOST", "RACK", "ZONE", "STATE", "WEIGHT", "CAPACITY", "USED", "REACHABLE")
                for d in report["devices"]?.array ?? [] {
                    table.add(d["id"]?.string ?? "", d["host"]?.string ?? "", d["rack"]?.string ?? "-", d["zone"]?.string ?? "-",
                              d["state"]?.string ?? "", String(format: "%.2f", d["weight"]?.double ?? 0), human(d["capacity_bytes"]?.int64 ?? 0),
                              human(d["used_bytes"]?.int64 ?? 0), (d["reachable"]?.bool ?? false) ? "yes" : "NO")
                }
                emit(table.render())
            }
        }
    }

    static func change(_ common: Common, _ id: String, _ action: Berth_Admin_V1_ChangeDeviceRequest.Action, weight: Double = 0) async throws {
        var request = Berth_Admin_V1_ChangeDeviceRequest()
        request.id = id
        request.action = action
        request.weight = weight
        let report = try await Daemon.report(common) { [request] in try await $0.changeDevice(request) }
        emit(common.json ? report.text : "\(id): \(action) (epoch \(report["epoch"]?.string ?? "?")); `provisionctl status` shows the movement")
    }

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a device's shards off (weight 0); it stays readable meanwhile.")
        @Argument var id: String
        @OptionGroup var common: Common
        func run() async throws { try await Self.guarded { try await DeviceCommand.change(common, id, .drain) } }
    }

    struct Fail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a device out: its shards are rebuilt elsewhere from the other copies.", aliases: ["out"])
        @Argument var id: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                try confirm("Mark device \(id) out and rebuild its shards elsewhere?", yes: yes)
                try await DeviceCommand.change(common, id, .fail)
            }
        }
    }

    struct Down: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a device down: reads avoid it, nothing moves yet.")
        @Argument var id: String
        @OptionGroup var common: Common
        func run() async throws { try await Self.guarded { try await DeviceCommand.change(common, id, .down) } }
    }

    struct Up: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Mark a device up again.")
        @Argument var id: String
        @OptionGroup var common: Common
        func run() async throws { try await Self.guarded { try await DeviceCommand.change(common, id, .up) } }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Forget a device (refused while it still holds shards).")
        @Argument var id: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                try confirm("Remove device \(id) from the cluster?", yes: yes)
                try await DeviceCommand.change(common, id, .remove)
            }
        }
    }

    struct Reweight: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a device's placement weight.")
        @Argument var id: String
        @Argument var weight: Double
        @OptionGroup var common: Common
        func run() async throws { try await Self.guarded { try await DeviceCommand.change(common, id, .reweight, weight: weight) } }
    }
}
