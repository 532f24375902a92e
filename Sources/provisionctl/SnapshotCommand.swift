import AdminProtocol
import ArgumentParser
import Foundation

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Snapshots: read-only copies of a volume's files that share its data.",
        subcommands: [List.self, Create.self, Delete.self])

    static func row(_ s: JSON, into table: inout Table) {
        let source = s["source"]?.string ?? ""
        let created = Date(timeIntervalSince1970: Double(s["created_ms"]?.int64 ?? 0) / 1000)
        table.add(s["id"]?.string ?? "", s["name"]?.string ?? "", source.hasPrefix("volume:") ? String(source.dropFirst(7)) : source,
                  human(s["capacity_bytes"]?.int64 ?? 0), ISO8601DateFormatter().string(from: created), s["state"]?.string ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every snapshot, or those of one volume.")
        @Option(help: "Only the snapshots of this volume (id or name).") var volume: String?
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_NameRequest()
                request.name = volume ?? ""
                let report = try await Daemon.report(common) { [request] in try await $0.listSnapshots(request) }
                if common.json { return emit(report.text) }
                var table = Table("ID", "NAME", "VOLUME", "SIZE", "CREATED", "STATE")
                for s in report["snapshots"]?.array ?? [] { SnapshotCommand.row(s, into: &table) }
                emit(table.render())
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Snapshot a volume: everything fsynced (and, if mounted, written) before the call.")
        @Argument(help: "The snapshot's name.") var name: String
        @Option(help: "The volume (id or name).") var volume: String
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_CreateSnapshotRequest()
                request.name = name
                request.volume = volume
                let report = try await Daemon.report(common) { [request] in try await $0.createSnapshot(request) }
                if common.json { return emit(report.text) }
                var table = Table("ID", "NAME", "VOLUME", "SIZE", "CREATED", "STATE")
                SnapshotCommand.row(report, into: &table)
                emit(table.render())
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a snapshot; data its volume and clones still use stays.")
        @Argument(help: "Snapshot id or name.") var id: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                try confirm("Delete snapshot \(id)?", yes: yes)
                var request = Berth_Admin_V1_NameRequest()
                request.name = id
                let report = try await Daemon.report(common) { [request] in try await $0.deleteSnapshot(request) }
                emit(common.json ? report.text : "deleted: \(id)")
            }
        }
    }
}
