import AdminProtocol
import ArgumentParser
import Foundation

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume", abstract: "Volumes: list, show, and create/delete/expand for testing without an orchestrator.",
        subcommands: [List.self, Show.self, Create.self, Delete.self, Expand.self, Release.self])

    static func row(_ v: JSON, into table: inout Table) {
        table.add(v["id"]?.string ?? "", v["name"]?.string ?? "", v["class_name"]?.string ?? "", human(v["capacity_bytes"]?.int64 ?? 0),
                  v["state"]?.string ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every volume.")
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                let report = try await Daemon.report(common) { try await $0.listVolumes(Berth_Admin_V1_Empty()) }
                if common.json { return emit(report.text) }
                var table = Table("ID", "NAME", "CLASS", "CAPACITY", "STATE")
                for v in report["volumes"]?.array ?? [] { VolumeCommand.row(v, into: &table) }
                emit(table.render())
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A volume: class, capacity, used, placement, degraded objects.")
        @Argument(help: "Volume id or name.") var id: String
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_NameRequest()
                request.name = id
                let report = try await Daemon.report(common) { [request] in try await $0.getVolume(request) }
                if common.json { return emit(report.text) }
                let v = report["volume"]
                var table = Table("FIELD", "VALUE")
                table.add("id", v?["id"]?.string ?? "")
                table.add("name", v?["name"]?.string ?? "")
                table.add("class", v?["class_name"]?.string ?? "")
                table.add("capacity", human(v?["capacity_bytes"]?.int64 ?? 0))
                table.add("used", human(report["used_bytes"]?.int64 ?? 0))
                table.add("files", report["files"]?.string ?? "0")
                table.add("objects", "\(report["objects"]?.string ?? "0") (\(human(report["object_bytes"]?.int64 ?? 0)))")
                table.add("placement", "\(report["pgs"]?.string ?? "0") PGs on \(report["devices"]?.array.count ?? 0) devices")
                table.add("degraded objects", report["degraded_objects"]?.string ?? "0")
                if let copying = report["copying_objects"]?.string, copying != "0" {
                    table.add("copying", "\(copying) objects still in the source's class")
                }
                if let lease = report["lease"], lease["generation"] != nil {
                    let holder = lease["holder"]?.string ?? ""
                    let remaining = lease["remaining_s"]?.double ?? 0
                    let generation = lease["generation"]?.string ?? ""
                    table.add("mounted by", holder.isEmpty || remaining <= 0 ? "nobody (lease \(generation) free)"
                              : "\(holder) (lease \(generation), \(String(format: "%.1f", remaining)) s left)")
                }
                emit(table.render())
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a volume, empty or as a clone of a snapshot or volume.")
        @Argument var name: String
        @Option(name: .customLong("class"), help: "Storage class (default: the daemon's default).") var className: String?
        @Option(help: "Size, e.g. 10Gi (with --from: default the source's size).") var size: String?
        @Option(help: "A snapshot or volume (id or name) to clone: the new volume starts with its files.") var from: String?
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_CreateVolumeRequest()
                request.name = name
                request.className = className ?? ""
                guard size != nil || from != nil else { throw Failure.badInput("--size is required (or --from, to take the source's size)") }
                request.capacityBytes = try size.map(parseSize) ?? 0
                request.from = from ?? ""
                let report = try await Daemon.report(common) { [request] in try await $0.createVolume(request) }
                if common.json { return emit(report.text) }
                var table = Table("ID", "NAME", "CLASS", "CAPACITY", "STATE")
                VolumeCommand.row(report, into: &table)
                emit(table.render())
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a volume and all its data.")
        @Argument(help: "Volume id or name.") var id: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                try confirm("Delete volume \(id) and all its data?", yes: yes)
                var request = Berth_Admin_V1_NameRequest()
                request.name = id
                let report = try await Daemon.report(common) { [request] in try await $0.deleteVolume(request) }
                emit(common.json ? report.text : "deleted: \(id)")
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Break a volume's lease: the node mounting it read-write is fenced off (its writes fail with EIO) and another node may mount it at once.",
            discussion: "For a node known dead or cut off, to move its volumes without waiting for their leases to run out. Only with the cluster state on PostgreSQL.")
        @Argument(help: "Volume id or name.") var id: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                try confirm("Fence off the node mounting volume \(id)? Its writes not yet synced are lost.", yes: yes)
                var request = Berth_Admin_V1_NameRequest()
                request.name = id
                let report = try await Daemon.report(common) { [request] in try await $0.releaseVolume(request) }
                if common.json { return emit(report.text) }
                let holder = report["held_by"]?.string ?? ""
                emit(holder.isEmpty ? "released: \(id) (nobody held it)" : "released: \(id) (node \(holder) is fenced off)")
            }
        }
    }

    struct Expand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Grow a volume.")
        @Argument(help: "Volume id or name.") var id: String
        @Option(help: "New size, e.g. 20Gi.") var size: String
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_ExpandVolumeRequest()
                request.id = id
                request.capacityBytes = try parseSize(size)
                let report = try await Daemon.report(common) { [request] in try await $0.expandVolume(request) }
                if common.json { return emit(report.text) }
                var table = Table("ID", "NAME", "CLASS", "CAPACITY", "STATE")
                VolumeCommand.row(report, into: &table)
                emit(table.render())
            }
        }
    }
}
