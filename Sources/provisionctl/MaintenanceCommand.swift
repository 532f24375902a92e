import AdminProtocol
import ArgumentParser
import Foundation

struct MaintenanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance",
        abstract: "Planned maintenance of a host or device: down, never taken out, only what it missed resynced on return.",
        subcommands: [Start.self, Stop.self, List.self])

    static func table(_ report: JSON) -> String {
        var table = Table("DEVICE", "HOST", "SINCE", "UNTIL")
        let format = ISO8601DateFormatter()
        for w in report["maintenance"]?.array ?? [] {
            let until = w["until_ms"]?.int64 ?? 0
            table.add(w["device"]?.string ?? "", w["host"]?.string ?? "",
                      format.string(from: Date(timeIntervalSince1970: Double(w["started_ms"]?.int64 ?? 0) / 1000)),
                      until > 0 ? format.string(from: Date(timeIntervalSince1970: Double(until) / 1000)) : "stopped by hand")
        }
        return table.render()
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start maintenance of a host (all its devices) or one device.")
        @Argument(help: "A host name or a device id.") var target: String
        @Option(name: .customLong("for"), help: "How long, e.g. 90s, 30m, 1h30m (default: until stopped).") var duration: String?
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_MaintenanceRequest()
                request.action = .start
                request.target = target
                request.durationSeconds = try duration.map(parseDuration) ?? 0
                let report = try await Daemon.report(common) { [request] in try await $0.maintenance(request) }
                emit(common.json ? report.text : MaintenanceCommand.table(report))
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End maintenance: the devices are up again and resync what they missed.")
        @Argument(help: "A host name or a device id.") var target: String
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_MaintenanceRequest()
                request.action = .stop
                request.target = target
                let report = try await Daemon.report(common) { [request] in try await $0.maintenance(request) }
                if common.json { return emit(report.text) }
                let ended = report["ended"]?.strings ?? []
                emit(ended.isEmpty ? "no device of \(target) was in maintenance" : "maintenance ended: \(ended.joined(separator: ", "))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Devices in maintenance.")
        @OptionGroup var common: Common
        func run() async throws {
            try await Self.guarded {
                var request = Berth_Admin_V1_MaintenanceRequest()
                request.action = .list
                let report = try await Daemon.report(common) { [request] in try await $0.maintenance(request) }
                emit(common.json ? report.text : MaintenanceCommand.table(report))
            }
        }
    }
}

/// A duration flag: seconds, or numbers with s, m, h or d, combined ("90s", "30m", "1h30m");
/// a bad-input failure otherwise.
func parseDuration(_ text: String) throws -> Int64 {
    let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
    let bad = Failure.badInput("\"\(text)\" is not a duration (e.g. 90s, 30m, 1h30m)")
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let plain = Int64(trimmed) {
        guard plain > 0 else { throw bad }
        return plain
    }
    var total: Int64 = 0, digits = ""
    for c in trimmed {
        if c.isASCII && c.isNumber { digits.append(c); continue }
        guard let unit = units[c], let value = Int64(digits), value <= 10_000_000 else { throw bad }
        total += value * unit
        digits = ""
    }
    guard digits.isEmpty, total > 0 else { throw bad }
    return total
}
