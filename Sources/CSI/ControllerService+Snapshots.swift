import CSIProtocol
import Engine
import GRPCCore
import Metadata
import SwiftProtobuf

/// CSI Controller: snapshots (CREATE_DELETE_SNAPSHOT, LIST_SNAPSHOTS) and the content
/// source of a new volume (CLONE_VOLUME). docs/snapshots.md has the design.
extension ControllerService {
    public func createSnapshot(request: Csi_V1_CreateSnapshotRequest, context _: ServerContext) async throws -> Csi_V1_CreateSnapshotResponse {
        guard !request.name.isEmpty else { throw Failures.invalid("name is required") }
        try RequestChecks.volumeID(request.sourceVolumeID, field: "source_volume_id")
        if let unknown = request.parameters.keys.sorted().first(where: { !$0.hasPrefix("csi.storage.k8s.io/") }) {
            throw Failures.invalid("unknown snapshot parameter \"\(unknown)\" (Berth's snapshots take none)")
        }
        let record = try await context.operations.createSnapshot(name: request.name, sourceVolumeID: request.sourceVolumeID)
        context.logger.info("snapshot created", metadata: ["snapshot": "\(record.id)", "volume": "\(request.sourceVolumeID)"])
        var r = Csi_V1_CreateSnapshotResponse()
        r.snapshot = Self.snapshot(record)
        return r
    }

    public func deleteSnapshot(request: Csi_V1_DeleteSnapshotRequest, context _: ServerContext) async throws -> Csi_V1_DeleteSnapshotResponse {
        guard !request.snapshotID.isEmpty else { throw Failures.invalid("snapshot_id is required") }
        // An id this driver never issued names nothing: deleting it succeeds.
        if RequestChecks.isSnapshotIDShaped(request.snapshotID) {
            try await context.operations.deleteSnapshot(id: request.snapshotID)
        }
        return Csi_V1_DeleteSnapshotResponse()
    }

    public func listSnapshots(request: Csi_V1_ListSnapshotsRequest, context _: ServerContext) async throws -> Csi_V1_ListSnapshotsResponse {
        let paging = try Paging(maxEntries: request.maxEntries, startingToken: request.startingToken, issued: RequestChecks.isSnapshotIDShaped)
        let engine = context.engine
        var r = Csi_V1_ListSnapshotsResponse()
        if !request.snapshotID.isEmpty {
            // One snapshot or none (an unknown id is an empty list, not an error).
            let id = request.snapshotID
            let found = try await blocking { do { return try engine.snapshot(id: id) } catch { throw Failures.map(error) } }
            if let found, found.state == .available,
               request.sourceVolumeID.isEmpty || found.source(.volume) == request.sourceVolumeID {
                var e = Csi_V1_ListSnapshotsResponse.Entry()
                e.snapshot = Self.snapshot(found)
                r.entries = [e]
            }
            return r
        }
        let source = request.sourceVolumeID.isEmpty ? nil : request.sourceVolumeID
        let found = try await blocking {
            do { return try engine.snapshots(after: paging.after, limit: paging.fetch, sourceVolume: source) } catch { throw Failures.map(error) }
        }
        let (page, next) = paging.page(found)
        r.entries = page.map { record in
            var e = Csi_V1_ListSnapshotsResponse.Entry()
            e.snapshot = Self.snapshot(record)
            return e
        }
        r.nextToken = next
        return r
    }

    public func getSnapshot(request: Csi_V1_GetSnapshotRequest, context _: ServerContext) async throws -> Csi_V1_GetSnapshotResponse {
        guard !request.snapshotID.isEmpty else { throw Failures.invalid("snapshot_id is required") }
        let engine = context.engine
        let id = request.snapshotID
        let found = try await blocking { do { return try engine.snapshot(id: id) } catch { throw Failures.map(error) } }
        guard let found, found.state == .available else { throw Failures.notFound("no snapshot \"\(id.prefix(128))\"") }
        var r = Csi_V1_GetSnapshotResponse()
        r.snapshot = Self.snapshot(found)
        return r
    }

    /// The content source a CreateVolume asks for, checked to exist (if `lookUp`), with its
    /// size (0 if not looked up); nil for an empty volume. NOT_FOUND for an unknown one.
    func contentSource(_ request: Csi_V1_CreateVolumeRequest, lookUp: Bool = true) async throws -> (Engine.ContentSource, Int64)? {
        guard request.hasVolumeContentSource else { return nil }
        let engine = context.engine
        switch request.volumeContentSource.type {
        case .snapshot(let s)?:
            guard !s.snapshotID.isEmpty else { throw Failures.invalid("volume_content_source.snapshot.snapshot_id is required") }
            let id = s.snapshotID
            if !lookUp { return (.snapshot(id), 0) }
            let found = try await blocking { do { return try engine.snapshot(id: id) } catch { throw Failures.map(error) } }
            guard let found, found.state == .available else { throw Failures.notFound("no snapshot \"\(id.prefix(128))\"") }
            return (.snapshot(id), found.capacityBytes)
        case .volume(let v)?:
            guard !v.volumeID.isEmpty else { throw Failures.invalid("volume_content_source.volume.volume_id is required") }
            let id = v.volumeID
            if !lookUp { return (.volume(id), 0) }
            let found = try await blocking { do { return try engine.volume(id: id) } catch { throw Failures.map(error) } }
            guard let found, found.state == .available else { throw Failures.notFound("no volume \"\(id.prefix(128))\"") }
            return (.volume(id), found.capacityBytes)
        case nil:
            throw Failures.invalid("volume_content_source names neither a snapshot nor a volume")
        }
    }

    static func snapshot(_ record: VolumeRecord) -> Csi_V1_Snapshot {
        var s = Csi_V1_Snapshot()
        s.snapshotID = record.id
        s.sourceVolumeID = record.source(.volume) ?? ""
        s.sizeBytes = record.capacityBytes
        s.creationTime = Google_Protobuf_Timestamp(seconds: record.createdMs / 1000, nanos: Int32(record.createdMs % 1000) * 1_000_000)
        s.readyToUse = true
        return s
    }
}
