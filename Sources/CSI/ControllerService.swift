import CSIProtocol
import Engine
import GRPCCore
import Metadata
import SwiftProtobuf

/// CSI Controller: volumes' lifecycle and capacity. Every call is idempotent; calls for
/// one volume name (create) or one volume id (delete, expand) are serialized.
public struct ControllerService: Csi_V1_Controller.SimpleServiceProtocol {
    public static let classContextKey = "storage.berth.dev/class"
    let context: DriverContext

    public init(context: DriverContext) { self.context = context }

    // MARK: create / delete

    public func createVolume(request: Csi_V1_CreateVolumeRequest, context _: ServerContext) async throws -> Csi_V1_CreateVolumeResponse {
        try RequestChecks.volumeName(request.name)
        try RequestChecks.capabilities(request.volumeCapabilities)
        let (required, limit) = try Self.range(request.hasCapacityRange ? request.capacityRange : nil)
        var size = required > 0 ? required : (limit > 0 ? min(context.defaultVolumeBytes, limit) : context.defaultVolumeBytes)
        // A repeat of a create that succeeded must succeed even if its source is gone since:
        // the source is looked up only for a name not taken yet.
        let engine = context.engine, name = request.name
        let taken = request.hasVolumeContentSource
            ? try await blocking { do { return try engine.volume(named: name) != nil } catch { throw Failures.map(error) } }
            : false
        let source = try await contentSource(request, lookUp: !taken)
        if let (_, sourceBytes) = source, required == 0, sourceBytes > 0 {
            // No size asked: the clone is as large as its source (within the limit, if any).
            if limit > 0 && limit < sourceBytes {
                throw RPCError(code: .outOfRange, message: "the content source holds \(sourceBytes) bytes, more than limit_bytes \(limit)")
            }
            size = sourceBytes
        }
        if request.hasAccessibilityRequirements, !request.accessibilityRequirements.requisite.isEmpty,
           !request.accessibilityRequirements.requisite.contains(where: context.accepts) {
            throw RPCError(code: .resourceExhausted, message: "no requisite topology includes this node (\(context.segments.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")))")
        }
        let ctx = context
        let parameters = request.parameters
        let wanted = source?.0
        let record = try await ctx.operations.create(name: request.name, capacityBytes: size, source: wanted,
                                                     className: { create in try ctx.resolver.resolve(parameters, create: create) }) { existing, className in
            guard existing.source == wanted?.description else {
                throw RPCError(code: .alreadyExists, message: "volume \"\(existing.name)\" exists, made from \(existing.source ?? "nothing"), not \(wanted?.description ?? "nothing")")
            }
            guard className == existing.className else {
                throw RPCError(code: .alreadyExists, message: "volume \"\(existing.name)\" exists with storage class \(existing.className), not these parameters")
            }
            guard existing.capacityBytes >= required, limit == 0 || existing.capacityBytes <= limit else {
                throw RPCError(code: .alreadyExists, message: "volume \"\(existing.name)\" exists with \(existing.capacityBytes) bytes, outside the requested range")
            }
        }
        ctx.logger.info("volume created", metadata: ["volume": "\(record.id)", "class": "\(record.className)", "bytes": "\(record.capacityBytes)"])
        var r = Csi_V1_CreateVolumeResponse()
        r.volume = volume(record)
        return r
    }

    public func deleteVolume(request: Csi_V1_DeleteVolumeRequest, context _: ServerContext) async throws -> Csi_V1_DeleteVolumeResponse {
        guard !request.volumeID.isEmpty else { throw Failures.invalid("volume_id is required") }
        try await context.operations.delete(id: request.volumeID)
        return Csi_V1_DeleteVolumeResponse()
    }

    // MARK: queries

    public func validateVolumeCapabilities(request: Csi_V1_ValidateVolumeCapabilitiesRequest,
                                           context _: ServerContext) async throws -> Csi_V1_ValidateVolumeCapabilitiesResponse {
        try RequestChecks.volumeID(request.volumeID)
        guard !request.volumeCapabilities.isEmpty else { throw Failures.invalid("volume_capabilities is required") }
        let record = try await existing(request.volumeID)
        var r = Csi_V1_ValidateVolumeCapabilitiesResponse()
        if let why = request.volumeCapabilities.lazy.compactMap(RequestChecks.unsupported).first {
            r.message = why
            return r
        }
        if !request.parameters.isEmpty {
            let className = try context.resolver.resolve(request.parameters, create: false)
            if className != record.className {
                r.message = "the volume's storage class is \(record.className), not the one these parameters describe"
                return r
            }
        }
        r.confirmed.volumeContext = request.volumeContext
        r.confirmed.volumeCapabilities = request.volumeCapabilities
        r.confirmed.parameters = request.parameters
        return r
    }

    public func listVolumes(request: Csi_V1_ListVolumesRequest, context _: ServerContext) async throws -> Csi_V1_ListVolumesResponse {
        let paging = try Paging(maxEntries: request.maxEntries, startingToken: request.startingToken, issued: RequestChecks.isVolumeIDShaped)
        let engine = context.engine
        let found = try await blocking {
            do { return try engine.volumes(after: paging.after, limit: paging.fetch) } catch { throw Failures.map(error) }
        }
        let (page, next) = paging.page(found)
        var r = Csi_V1_ListVolumesResponse()
        r.entries = page.map { record in
            var e = Csi_V1_ListVolumesResponse.Entry()
            e.volume = volume(record)
            return e
        }
        r.nextToken = next
        return r
    }

    public func controllerGetVolume(request: Csi_V1_ControllerGetVolumeRequest,
                                    context _: ServerContext) async throws -> Csi_V1_ControllerGetVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        let record = try await existing(request.volumeID)
        var r = Csi_V1_ControllerGetVolumeResponse()
        r.volume = volume(record)
        r.status.publishedNodeIds = context.mounts.volumesInUse.contains(record.id) ? [context.nodeID] : []
        return r
    }

    public func getCapacity(request: Csi_V1_GetCapacityRequest, context _: ServerContext) async throws -> Csi_V1_GetCapacityResponse {
        var r = Csi_V1_GetCapacityResponse()
        if request.volumeCapabilities.contains(where: { RequestChecks.unsupported($0) != nil }) { return r }
        if request.hasAccessibleTopology && !context.accepts(request.accessibleTopology) { return r }
        guard let className = try context.resolver.resolve(request.parameters, create: false) else { return r }
        let engine = context.engine
        let report = try await blocking { do { return try engine.capacity() } catch { throw Failures.map(error) } }
        guard let c = report.classes.first(where: { $0.name == className }) else { return r }
        // What CreateVolume would still admit: usable space not already promised.
        let available = max(0, c.usableBytes - max(0, c.provisionedBytes - c.dataBytes))
        r.availableCapacity = available
        r.maximumVolumeSize = Google_Protobuf_Int64Value(available)
        return r
    }

    public func controllerGetCapabilities(request: Csi_V1_ControllerGetCapabilitiesRequest,
                                          context _: ServerContext) async throws -> Csi_V1_ControllerGetCapabilitiesResponse {
        var r = Csi_V1_ControllerGetCapabilitiesResponse()
        let offered: [Csi_V1_ControllerServiceCapability.RPC.TypeEnum] = [.createDeleteVolume, .listVolumes, .getCapacity, .expandVolume, .getVolume,
                                                                          .singleNodeMultiWriter, .createDeleteSnapshot, .listSnapshots, .cloneVolume]
        r.capabilities = offered.map {
            var c = Csi_V1_ControllerServiceCapability()
            c.rpc.type = $0
            return c
        }
        return r
    }

    // MARK: expansion

    public func controllerExpandVolume(request: Csi_V1_ControllerExpandVolumeRequest,
                                       context _: ServerContext) async throws -> Csi_V1_ControllerExpandVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        guard request.hasCapacityRange else { throw Failures.invalid("capacity_range is required") }
        let (required, limit) = try Self.range(request.capacityRange)
        guard required > 0 || limit > 0 else { throw Failures.invalid("capacity_range needs required_bytes or limit_bytes") }
        if request.hasVolumeCapability, let why = RequestChecks.unsupported(request.volumeCapability) { throw Failures.invalid(why) }
        let record = try await context.operations.expand(id: request.volumeID, requiredBytes: required, limitBytes: limit)
        var r = Csi_V1_ControllerExpandVolumeResponse()
        r.capacityBytes = record.capacityBytes
        // A FUSE volume reports its size live (statfs asks the engine): nothing to do on the node.
        r.nodeExpansionRequired = false
        return r
    }

    // MARK: not offered

    public func controllerPublishVolume(request: Csi_V1_ControllerPublishVolumeRequest,
                                        context _: ServerContext) async throws -> Csi_V1_ControllerPublishVolumeResponse {
        throw RPCError(code: .unimplemented, message: "PUBLISH_UNPUBLISH_VOLUME is not offered: volumes need no attach step")
    }

    public func controllerUnpublishVolume(request: Csi_V1_ControllerUnpublishVolumeRequest,
                                          context _: ServerContext) async throws -> Csi_V1_ControllerUnpublishVolumeResponse {
        throw RPCError(code: .unimplemented, message: "PUBLISH_UNPUBLISH_VOLUME is not offered: volumes need no attach step")
    }

    public func controllerModifyVolume(request: Csi_V1_ControllerModifyVolumeRequest,
                                       context _: ServerContext) async throws -> Csi_V1_ControllerModifyVolumeResponse {
        throw RPCError(code: .unimplemented, message: "MODIFY_VOLUME is not offered")
    }

    // MARK: helpers

    /// (required, limit), each 0 when unset. Negative values are invalid; a limit below
    /// the requirement cannot be met.
    static func range(_ range: Csi_V1_CapacityRange?) throws(RPCError) -> (Int64, Int64) {
        guard let range else { return (0, 0) }
        guard range.requiredBytes >= 0, range.limitBytes >= 0 else { throw Failures.invalid("capacity_range values must not be negative") }
        if range.limitBytes > 0 && range.requiredBytes > range.limitBytes {
            throw RPCError(code: .outOfRange, message: "capacity_range.required_bytes \(range.requiredBytes) exceeds limit_bytes \(range.limitBytes)")
        }
        return (range.requiredBytes, range.limitBytes)
    }

    func existing(_ id: String) async throws -> VolumeRecord {
        let ctx = context
        return try await blocking { try ctx.volume(id) }
    }

    func volume(_ record: VolumeRecord) -> Csi_V1_Volume {
        var v = Csi_V1_Volume()
        v.volumeID = record.id
        v.capacityBytes = record.capacityBytes
        v.volumeContext = [Self.classContextKey: record.className]
        // Mountable on any node (namespaces in the cluster's store): no constraint at all.
        v.accessibleTopology = context.anyNode ? [] : [context.topology]
        if let id = record.source(.snapshot) {
            v.contentSource.snapshot.snapshotID = id
        } else if let id = record.source(.volume) {
            v.contentSource.volume.volumeID = id
        }
        return v
    }
}
