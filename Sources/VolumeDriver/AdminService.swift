import AdminProtocol
import CSI
import Engine
import Foundation
import GRPCCore
import Metadata
import Placement
import StorageClasses

/// The admin API behind `provisionctl`: typed requests, JSON reports (schemas in
/// docs/provisionctl.md). Changes go through the engine, never around it.
struct AdminService: Berth_Admin_V1_Admin.SimpleServiceProtocol {
    let context: DriverContext
    var engine: Engine { context.engine }

    // MARK: classes

    func applyClasses(request: Berth_Admin_V1_ApplyClassesRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        guard !request.manifests.isEmpty else { throw Failures.invalid("no manifests given") }
        var parsed: [StorageClass] = []
        for m in request.manifests {
            do { parsed += try StorageClassManifest.parse(yaml: m.yaml, source: m.source.isEmpty ? "manifest" : m.source) } catch {
                throw Failures.invalid(error.description)
            }
        }
        let classes = parsed
        try await run { try engine.applyClasses(classes) }
        return try report(["applied": classes.map(\.name)])
    }

    func listClasses(request: Berth_Admin_V1_Empty, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let counts = try await run { try engine.volumeCounts() }
        return try report(["classes": engine.classes().map { info in ClassEntry(info, volumes: counts[info.storageClass.name] ?? 0) }])
    }

    func deleteClass(request: Berth_Admin_V1_NameRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        try await run { try engine.deleteClass(named: request.name) }
        return try report(["deleted": request.name])
    }

    // MARK: devices

    func addDevices(request: Berth_Admin_V1_AddDevicesRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        guard !request.devices.isEmpty else { throw Failures.invalid("no devices given") }
        let specs = try request.devices.map(Self.spec)
        try await run { try engine.addDevices(specs) }
        return try report(["added": specs.map(\.id)])
    }

    func listDevices(request: Berth_Admin_V1_Empty, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let devices = try await run { try engine.devices() }
        return try report(["devices": devices.map(DeviceEntry.init)])
    }

    func changeDevice(request: Berth_Admin_V1_ChangeDeviceRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        guard !request.id.isEmpty else { throw Failures.invalid("device id is required") }
        let id = request.id
        guard engine.map.device(DeviceID(id)) != nil else { throw RPCError(code: .notFound, message: "no device \"\(id.prefix(128))\"") }
        switch request.action {
        case .drain: try await run { try engine.drainDevice(id) }
        case .fail: try await run { try engine.failDevice(id) }
        case .down: try await run { try engine.setDeviceState(id, .down) }
        case .up: try await run { try engine.setDeviceState(id, .up) }
        case .reweight:
            guard request.weight >= 0, request.weight.isFinite else { throw Failures.invalid("weight must be a finite number ≥ 0") }
            try await run { try engine.reweightDevice(id, weight: request.weight) }
        case .remove: try await run { try engine.removeDevice(id) }
        case .unknown, .UNRECOGNIZED: throw Failures.invalid("action is required (drain, fail, down, up, reweight, remove)")
        }
        return try report(["device": id, "action": "\(request.action)", "epoch": "\(engine.map.epoch)"])
    }

    // MARK: plan / apply

    func plan(request: Berth_Admin_V1_ChangeSet, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let (changes, adding) = try changeSet(request)
        let plan = try await run { try engine.plan(changes, adding: adding) }
        return try report(plan)
    }

    func apply(request: Berth_Admin_V1_ChangeSet, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let (changes, adding) = try changeSet(request)
        let plan = try await run { () throws -> PlanReport in
            let plan = try engine.plan(changes, adding: adding)
            try engine.apply(adding: adding, changes: changes)
            return plan
        }
        return try report(plan)
    }

    /// The engine's form of a change set: devices to add, and state/weight changes.
    func changeSet(_ set: Berth_Admin_V1_ChangeSet) throws -> ([MapChange], [DeviceSpec]) {
        guard !set.changes.isEmpty else { throw Failures.invalid("no changes given") }
        var changes: [MapChange] = []
        var adding: [DeviceSpec] = []
        let map = engine.map
        for change in set.changes {
            switch change.change {
            case .addHost(let h):
                guard h.devices > 0, h.devices <= 64 else { throw Failures.invalid("add_host.devices must be 1-64") }
                guard h.capacityBytes > 0 else { throw Failures.invalid("add_host.capacity_bytes must be positive") }
                adding += DeviceSpec.host(h.host, devices: Int(h.devices), capacityBytes: h.capacityBytes,
                                          rack: h.rack.isEmpty ? nil : h.rack, zone: h.zone.isEmpty ? nil : h.zone)
            case .addDevice(let d): adding.append(try Self.spec(d))
            case .drainDevice(let id): changes.append(.reweight(DeviceID(id), 0))
            case .failDevice(let id): changes.append(.setState(DeviceID(id), .out))
            case .failHost(let host):
                let devices = map.devices.filter { $0.parent == host }
                guard !devices.isEmpty else { throw RPCError(code: .notFound, message: "no host \"\(host.prefix(128))\" with devices") }
                changes += devices.map { .setState($0.id, .out) }
            case .reweight(let r):
                guard r.weight >= 0, r.weight.isFinite else { throw Failures.invalid("weight must be a finite number ≥ 0") }
                changes.append(.reweight(DeviceID(r.id), r.weight))
            case nil: throw Failures.invalid("a change with no kind")
            }
        }
        for case .setState(let id, _) in changes where map.device(id) == nil { throw RPCError(code: .notFound, message: "no device \"\(id.rawValue.prefix(128))\"") }
        for case .reweight(let id, _) in changes where map.device(id) == nil { throw RPCError(code: .notFound, message: "no device \"\(id.rawValue.prefix(128))\"") }
        return (changes, adding)
    }

    // MARK: volumes

    func listVolumes(request: Berth_Admin_V1_Empty, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let volumes = try await run { try engine.volumes() }
        return try report(["volumes": volumes])
    }

    func getVolume(request: Berth_Admin_V1_NameRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let summary = try await run { () throws -> VolumeSummary in
            let record = try volume(idOrName: request.name)
            return try engine.volumeSummary(id: record.id)
        }
        return try report(summary)
    }

    func createVolume(request: Berth_Admin_V1_CreateVolumeRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let from = request.from
        let source: VolumeRecord? = from.isEmpty ? nil : try await run { try contentSource(from) }
        guard request.capacityBytes > 0 || (source != nil && request.capacityBytes == 0) else {
            throw Failures.invalid("capacity_bytes must be positive")
        }
        let className = !request.className.isEmpty ? request.className : source?.className ?? context.defaultClass
        let origin: Engine.ContentSource? = source.map { $0.kind == .snapshot ? .snapshot($0.id) : .volume($0.id) }
        let bytes = request.capacityBytes > 0 ? request.capacityBytes : source?.capacityBytes ?? 0
        let record = try await context.operations.create(name: request.name, capacityBytes: bytes, source: origin,
                                                         className: { _ in className }) { existing, _ in
            throw RPCError(code: .alreadyExists, message: "a volume named \"\(existing.name)\" exists")
        }
        return try report(record)
    }

    func deleteVolume(request: Berth_Admin_V1_NameRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let record = try await run { try volume(idOrName: request.name) }
        try await context.operations.delete(id: record.id)
        return try report(["deleted": request.name])
    }

    func releaseVolume(request: Berth_Admin_V1_NameRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let holder = try await run { () throws -> String? in
            let record = try volume(idOrName: request.name)
            return try engine.releaseVolume(id: record.id)
        }
        return try report(["released": request.name, "held_by": holder ?? ""])
    }

    func expandVolume(request: Berth_Admin_V1_ExpandVolumeRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        guard request.capacityBytes > 0 else { throw Failures.invalid("capacity_bytes must be positive") }
        let found = try await run { try volume(idOrName: request.id) }
        let record = try await context.operations.expand(id: found.id, requiredBytes: request.capacityBytes, limitBytes: 0)
        return try report(record)
    }

    // MARK: snapshots

    func listSnapshots(request: Berth_Admin_V1_NameRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let snapshots = try await run { () throws -> [VolumeRecord] in
            let source = request.name.isEmpty ? nil : try volume(idOrName: request.name).id
            return try engine.snapshots(after: nil, limit: nil, sourceVolume: source)
        }
        return try report(["snapshots": snapshots])
    }

    func createSnapshot(request: Berth_Admin_V1_CreateSnapshotRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let source = try await run { () throws -> VolumeRecord in
            if let existing = try engine.snapshot(named: request.name) {
                throw RPCError(code: .alreadyExists, message: "a snapshot named \"\(existing.name)\" exists (\(existing.id))")
            }
            return try volume(idOrName: request.volume)
        }
        return try report(try await context.operations.createSnapshot(name: request.name, sourceVolumeID: source.id))
    }

    func deleteSnapshot(request: Berth_Admin_V1_NameRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let record = try await run { try snapshot(idOrName: request.name) }
        try await context.operations.deleteSnapshot(id: record.id)
        return try report(["deleted": request.name])
    }

    // MARK: reports

    func capacity(request: Berth_Admin_V1_Empty, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        try report(try await run { try engine.capacity() })
    }

    func maintenance(request: Berth_Admin_V1_MaintenanceRequest, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        let (target, seconds) = (request.target, request.durationSeconds)
        switch request.action {
        case .start:
            guard !target.isEmpty else { throw Failures.invalid("a host or device is required") }
            guard seconds >= 0 else { throw Failures.invalid("duration_seconds must not be negative") }
            let started = try await run { try engine.startMaintenance(target, durationMs: seconds > 0 ? seconds * 1000 : nil) }
            return try report(["maintenance": started])
        case .stop:
            guard !target.isEmpty else { throw Failures.invalid("a host or device is required") }
            let ended = try await run { try engine.stopMaintenance(target) }
            return try report(["ended": ended])
        case .list:
            return try report(["maintenance": engine.maintenance()])
        case .UNRECOGNIZED(let n):
            throw Failures.invalid("unknown maintenance action \(n)")
        }
    }

    func status(request: Berth_Admin_V1_Empty, context _: ServerContext) async throws -> Berth_Admin_V1_Report {
        try report(try await run { try engine.status() })
    }

    // MARK: helpers

    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        do { return try await blocking(body) } catch { throw Failures.map(error) }
    }

    /// A volume by id or, failing that, by name; NOT_FOUND otherwise.
    func volume(idOrName key: String) throws -> VolumeRecord {
        guard let record = try engine.volume(id: key) ?? engine.volume(named: key) else {
            throw RPCError(code: .notFound, message: "no volume \"\(key.prefix(128))\"")
        }
        return record
    }

    /// A snapshot by id or, failing that, by name; NOT_FOUND otherwise.
    func snapshot(idOrName key: String) throws -> VolumeRecord {
        guard let record = try engine.snapshot(id: key) ?? engine.snapshot(named: key) else {
            throw RPCError(code: .notFound, message: "no snapshot \"\(key.prefix(128))\"")
        }
        return record
    }

    /// What `volume create --from` names: a snapshot or volume id, else a snapshot name,
    /// else a volume name.
    func contentSource(_ key: String) throws -> VolumeRecord {
        if let record = try engine.snapshot(id: key) ?? engine.volume(id: key) ?? engine.snapshot(named: key) ?? engine.volume(named: key),
           record.state == .available {
            return record
        }
        throw RPCError(code: .notFound, message: "no snapshot or volume \"\(key.prefix(128))\"")
    }

    func report<T: Encodable>(_ value: T) throws -> Berth_Admin_V1_Report {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var r = Berth_Admin_V1_Report()
        r.json = String(decoding: try encoder.encode(value), as: UTF8.self)
        return r
    }

    static func spec(_ d: Berth_Admin_V1_DeviceSpec) throws -> DeviceSpec {
        guard !d.id.isEmpty, !d.host.isEmpty else { throw Failures.invalid("a device needs id and host") }
        let remote = !d.agent.isEmpty
        guard d.capacityBytes > 0 || (remote && d.capacityBytes == 0) else {
            throw Failures.invalid("device \(d.id.prefix(64)): capacity_bytes must be positive")
        }
        if !d.path.isEmpty && !d.path.hasPrefix("/") { throw Failures.invalid("device \(d.id.prefix(64)): path must be absolute") }
        if remote && !d.path.isEmpty { throw Failures.invalid("device \(d.id.prefix(64)): a device served by an agent has no path here") }
        return DeviceSpec(id: d.id, host: d.host, rack: d.rack.isEmpty ? nil : d.rack, zone: d.zone.isEmpty ? nil : d.zone,
                          path: d.path.isEmpty ? nil : d.path, capacityBytes: d.capacityBytes, weight: d.weight > 0 ? d.weight : nil,
                          agent: remote ? d.agent : nil)
    }

    struct ClassEntry: Encodable {
        var name: String
        var redundancy: String
        var copies: Int?
        var dataShards: Int?
        var parityShards: Int?
        var overhead: Double
        var failureDomain: String
        var chunkSizeBytes: Int
        var pgCount: Int
        var poolID: UInt32
        var reclaimPolicy: String
        var allowVolumeExpansion: Bool
        var volumes: Int

        init(_ info: ClassInfo, volumes: Int) {
            let c = info.storageClass
            name = c.name
            switch c.redundancy {
            case .replicated(let n): redundancy = "replicated"; copies = n
            case .erasure(let k, let m): redundancy = "erasure"; dataShards = k; parityShards = m
            case .single: redundancy = "single"
            }
            overhead = c.overhead
            failureDomain = c.failureDomain
            chunkSizeBytes = c.chunkSizeBytes
            pgCount = c.pgCount
            poolID = info.poolID
            reclaimPolicy = c.reclaimPolicy.rawValue
            allowVolumeExpansion = c.allowVolumeExpansion
            self.volumes = volumes
        }

        enum CodingKeys: String, CodingKey {
            case name, redundancy, copies, overhead, volumes
            case dataShards = "data_shards", parityShards = "parity_shards", failureDomain = "failure_domain"
            case chunkSizeBytes = "chunk_size_bytes", pgCount = "pg_count", poolID = "pool_id"
            case reclaimPolicy = "reclaim_policy", allowVolumeExpansion = "allow_volume_expansion"
        }
    }

    struct DeviceEntry: Encodable {
        var id, host: String
        var rack, zone: String?
        var path, state: String
        var weight: Double
        var capacityBytes, usedBytes: Int64
        var reachable: Bool

        init(_ d: DeviceInfo) {
            id = d.id; host = d.host; rack = d.rack; zone = d.zone; path = d.path; state = d.state.rawValue
            weight = d.weight; capacityBytes = d.capacityBytes; usedBytes = d.usedBytes; reachable = d.reachable
        }

        enum CodingKeys: String, CodingKey {
            case id, host, rack, zone, path, state, weight, reachable
            case capacityBytes = "capacity_bytes", usedBytes = "used_bytes"
        }
    }
}
