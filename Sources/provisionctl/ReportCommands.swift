import AdminProtocol
import ArgumentParser
import Foundation

struct CapacityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capacity",
        abstract: "Per class: raw, used, provisioned, usable (what can still be written before a device is full), with warnings.")

    enum Breakdown: String, ExpressibleByArgument { case `class`, host, rack, zone, device }

    @Option(help: "Also break down by host, rack, zone or device.") var by: Breakdown = .class
    @OptionGroup var common: Common

    func run() async throws {
        try await Self.guarded {
            let report = try await Daemon.report(common) { try await $0.capacity(Berth_Admin_V1_Empty()) }
            if common.json { return emit(report.text) }
            var table = Table("CLASS", "OVERHEAD", "RAW", "USED", "PROVISIONED", "USABLE", "USED%", "WARNINGS")
            for c in report["classes"]?.array ?? [] {
                table.add(c["name"]?.string ?? "", String(format: "%.1fx", c["overhead"]?.double ?? 0), human(c["raw_bytes"]?.int64 ?? 0),
                          human(c["used_bytes"]?.int64 ?? 0), human(c["provisioned_bytes"]?.int64 ?? 0), human(c["usable_bytes"]?.int64 ?? 0),
                          String(format: "%.1f", c["percent_used"]?.double ?? 0), c["warnings"]?.strings.joined(separator: "; ") ?? "")
            }
            var out = table.render()
            switch by {
            case .class: break
            case .device:
                var devices = Table("DEVICE", "HOST", "RACK", "STATE", "CAPACITY", "USED", "USED%")
                for d in report["devices"]?.array ?? [] {
                    devices.add(d["id"]?.string ?? "", d["host"]?.string ?? "", d["rack"]?.string ?? "-", d["state"]?.string ?? "",
                                human(d["capacity_bytes"]?.int64 ?? 0), human(d["used_bytes"]?.int64 ?? 0),
                                String(format: "%.1f", d["percent_used"]?.double ?? 0))
                }
                out += "\n\n" + devices.render()
            case .host, .rack, .zone:
                var domains = Table(by.rawValue.uppercased(), "DEVICES", "CAPACITY", "USED")
                for d in (report["domains"]?.array ?? []) where d["level"]?.string == by.rawValue {
                    domains.add(d["name"]?.string ?? "", d["devices"]?.string ?? "0", human(d["capacity_bytes"]?.int64 ?? 0),
                                human(d["used_bytes"]?.int64 ?? 0))
                }
                out += "\n\n" + domains.render()
            }
            emit(out)
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Cluster health: devices, PGs, movement progress with rate and ETA.")

    @Flag(help: "Redraw every --interval seconds with a progress bar (Ctrl-C to stop).") var watch = false
    @Option(help: "Seconds between redraws with --watch.") var interval: Double = 2
    @OptionGroup var common: Common

    func run() async throws {
        try await Self.guarded {
            repeat {
                let report = try await Daemon.report(common) { try await $0.status(Berth_Admin_V1_Empty()) }
                if common.json {
                    emit(report.text)
                } else {
                    if watch && isatty(STDOUT_FILENO) != 0 { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                    emit(Self.render(report))
                }
                if watch { try await Task.sleep(for: .milliseconds(Int(max(0.2, interval) * 1000))) }
            } while watch
        }
    }

    static func render(_ s: JSON) -> String {
        var lines = ["epoch \(s["epoch"]?.string ?? "?")",
                     "devices: \(s["devices_up"]?.string ?? "0") up, \(s["devices_down"]?.string ?? "0") down, \(s["devices_out"]?.string ?? "0") out, \(s["devices_unreachable"]?.string ?? "0") unreachable",
                     "PGs: \(s["pgs_clean"]?.string ?? "0") clean, \(s["pgs_degraded"]?.string ?? "0") degraded, \(s["pgs_moving"]?.string ?? "0") moving"]
        if let m = s["movement"] {
            let total = max(1, m["total_positions"]?.int64 ?? 0)
            let done = m["done_positions"]?.int64 ?? 0
            let fraction = min(1, Double(done) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            let eta = m["eta_seconds"].map { String(format: "%.0f s", $0.double) } ?? "unknown"
            lines.append("movement (epoch \(m["epoch"]?.string ?? "?")): \(bar) \(String(format: "%.0f%%", fraction * 100)) "
                + "\(done)/\(total) PG shards, \(human(m["done_bytes"]?.int64 ?? 0)) of \(human(m["total_bytes"]?.int64 ?? 0)), "
                + "\(human(Int64(m["bytes_per_second"]?.double ?? 0)))/s, ETA \((m["finished"]?.bool ?? false) ? "done" : eta)")
        } else {
            lines.append("movement: none")
        }
        for w in s["maintenance"]?.array ?? [] {
            let until = w["until_ms"]?.int64 ?? 0
            let end = until > 0 ? "until " + ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(until) / 1000)) : "until stopped"
            lines.append("maintenance: \(w["device"]?.string ?? "?") (host \(w["host"]?.string ?? "?")), \(end)")
        }
        return lines.joined(separator: "\n")
    }
}
