import AdminProtocol
import ArgumentParser
import Foundation
import StorageClasses

struct ClassCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "class", abstract: "Storage classes: apply, list, show, validate, delete.",
        subcommands: [Apply.self, List.self, Show.self, Validate.self, Delete.self])

    /// The manifests in a file, or in the *.yaml / *.yml files of a directory.
    static func manifests(_ path: String) throws -> [(source: String, yaml: String)] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw Failure.badInput("no such file: \(path)") }
        let files: [String]
        if isDirectory.boolValue {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            files = names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted().map { path + "/" + $0 }
            guard !files.isEmpty else { throw Failure.badInput("\(path) has no .yaml files") }
        } else {
            files = [path]
        }
        return try files.map { file in
            guard let data = FileManager.default.contents(atPath: file) else { throw Failure.badInput("cannot read \(file)") }
            guard let text = String(data: data, encoding: .utf8) else { throw Failure.badInput("\(file) is not UTF-8 text") }
            return (file, text)
        }
    }

    /// Parses every manifest locally, so a bad file fails before the daemon sees any.
    static func parse(_ manifests: [(source: String, yaml: String)]) throws -> [StorageClass] {
        var classes: [StorageClass] = []
        for m in manifests {
            do { classes += try StorageClassManifest.parse(yaml: m.yaml, source: m.source) } catch {
                throw Failure.badInput(error.description)
            }
        }
        return classes
    }

    static func describe(_ c: StorageClass) -> String {
        switch c.redundancy {
        case .replicated(let n): "\(n) copies"
        case .erasure(let k, let m): "Reed-Solomon \(k)+\(m)"
        case .single: "single copy"
        }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add or update the classes in FILE or in the YAML files of DIR (all or none).")
        @Argument(help: "A StorageClass manifest, or a directory of them.") var path: String
        @OptionGroup var common: Common

        func run() async throws {
            try await Self.guarded {
                let manifests = try ClassCommand.manifests(path)
                _ = try ClassCommand.parse(manifests)
                var request = Berth_Admin_V1_ApplyClassesRequest()
                request.manifests = manifests.map { m in
                    var r = Berth_Admin_V1_ApplyClassesRequest.Manifest()
                    r.source = m.source
                    r.yaml = m.yaml
                    return r
                }
                let report = try await Daemon.report(common) { [request] in try await $0.applyClasses(request) }
                if common.json { emit(report.text) } else { emit("applied: " + (report["applied"]?.strings.joined(separator: ", ") ?? "")) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The classes the cluster serves.")
        @OptionGroup var common: Common

        func run() async throws {
            try await Self.guarded {
                let report = try await Daemon.report(common) { try await $0.listClasses(Berth_Admin_V1_Empty()) }
                if common.json { return emit(report.text) }
                var table = Table("NAME", "REDUNDANCY", "OVERHEAD", "FAILURE DOMAIN", "CHUNK", "PGS", "VOLUMES")
                for c in report["classes"]?.array ?? [] {
                    let redundancy = switch c["redundancy"]?.string {
                    case "replicated": "\(c["copies"]?.string ?? "?") copies"
                    case "erasure": "RS \(c["data_shards"]?.string ?? "?")+\(c["parity_shards"]?.string ?? "?")"
                    default: "single copy"
                    }
                    table.add(c["name"]?.string ?? "", redundancy, String(format: "%.1fx", c["overhead"]?.double ?? 0),
                              c["failure_domain"]?.string ?? "", human(c["chunk_size_bytes"]?.int64 ?? 0),
                              c["pg_count"]?.string ?? "", c["volumes"]?.string ?? "0")
                }
                emit(table.render())
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One class in detail.")
        @Argument var name: String
        @OptionGroup var common: Common

        func run() async throws {
            try await Self.guarded {
                let report = try await Daemon.report(common) { try await $0.listClasses(Berth_Admin_V1_Empty()) }
                guard let c = report["classes"]?.array.first(where: { $0["name"]?.string == name }) else {
                    throw Failure.refused("no storage class \"\(name)\"")
                }
                if common.json { return emit(JSON(value: c.value).text) }
                let keys = ["name", "redundancy", "copies", "data_shards", "parity_shards", "overhead", "failure_domain", "chunk_size_bytes",
                            "pg_count", "pool_id", "reclaim_policy", "allow_volume_expansion", "volumes"]
                var table = Table("FIELD", "VALUE")
                for key in keys { if let v = c[key] { table.add(key, v.string) } }
                emit(table.render())
            }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a manifest offline (no daemon needed).")
        @Argument(help: "A StorageClass manifest, or a directory of them.") var path: String
        @Option(help: "table (default) or json.") var output: OutputFormat = .table

        func run() async throws {
            try await Self.guarded {
                let classes = try ClassCommand.parse(try ClassCommand.manifests(path))
                if output == .json {
                    emit(JSON(value: ["valid": true, "classes": classes.map { ["name": $0.name, "overhead": $0.overhead] as [String: Any] }] as [String: Any]).text)
                } else {
                    for c in classes { emit("ok: \(c.name): \(ClassCommand.describe(c)), \(String(format: "%.1f", c.overhead))x, failure domain \(c.failureDomain)") }
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a class (refused while volumes use it).")
        @Argument var name: String
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @OptionGroup var common: Common

        func run() async throws {
            try await Self.guarded {
                try confirm("Delete storage class \(name)?", yes: yes)
                var request = Berth_Admin_V1_NameRequest()
                request.name = name
                let report = try await Daemon.report(common) { [request] in try await $0.deleteClass(request) }
                emit(common.json ? report.text : "deleted: \(name)")
            }
        }
    }
}
