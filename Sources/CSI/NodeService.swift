import CSIProtocol
import Engine
import Foundation
import GRPCCore
import Metadata

/// CSI Node: FUSE-mounts volumes on this node. Stage mounts the volume's (one) FUSE
/// session at the staging path; publish bind-mounts it at each pod's target path,
/// read-only when asked. Calls for one volume are serialized.
public struct NodeService: Csi_V1_Node.SimpleServiceProtocol {
    let context: DriverContext

    public init(context: DriverContext) { self.context = context }

    public func nodeStageVolume(request: Csi_V1_NodeStageVolumeRequest, context _: ServerContext) async throws -> Csi_V1_NodeStageVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        try RequestChecks.path(request.stagingTargetPath, field: "staging_target_path", stateDirectory: context.stateDirectory)
        guard request.hasVolumeCapability else { throw Failures.invalid("volume_capability is required") }
        if let why = RequestChecks.unsupported(request.volumeCapability) { throw Failures.invalid(why) }
        let ctx = context
        try await ctx.operations.withVolume(request.volumeID) {
            try await blocking {
                _ = try ctx.volume(request.volumeID)
                do { try ctx.mounts.stage(volumeID: request.volumeID, path: request.stagingTargetPath) } catch { throw Self.map(error) }
            }
        }
        return Csi_V1_NodeStageVolumeResponse()
    }

    public func nodeUnstageVolume(request: Csi_V1_NodeUnstageVolumeRequest,
                                  context _: ServerContext) async throws -> Csi_V1_NodeUnstageVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        try RequestChecks.path(request.stagingTargetPath, field: "staging_target_path", stateDirectory: context.stateDirectory)
        let ctx = context
        try await ctx.operations.withVolume(request.volumeID) {
            try await blocking {
                try Self.requireVolumeOrRecord(ctx, request.volumeID, path: request.stagingTargetPath)
                do { try ctx.mounts.detach(volumeID: request.volumeID, path: request.stagingTargetPath, kind: .staging) } catch { throw Self.map(error) }
            }
        }
        return Csi_V1_NodeUnstageVolumeResponse()
    }

    public func nodePublishVolume(request: Csi_V1_NodePublishVolumeRequest,
                                  context _: ServerContext) async throws -> Csi_V1_NodePublishVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        try RequestChecks.path(request.targetPath, field: "target_path", stateDirectory: context.stateDirectory)
        guard request.hasVolumeCapability else { throw Failures.invalid("volume_capability is required") }
        if let why = RequestChecks.unsupported(request.volumeCapability) { throw Failures.invalid(why) }
        guard !request.stagingTargetPath.isEmpty else {
            throw RPCError(code: .failedPrecondition, message: "staging_target_path is required: this driver stages volumes (STAGE_UNSTAGE_VOLUME)")
        }
        try RequestChecks.path(request.stagingTargetPath, field: "staging_target_path", stateDirectory: context.stateDirectory)
        let readOnly = request.readonly || RequestChecks.readOnlyMode(request.volumeCapability)
            || request.volumeCapability.mount.mountFlags.contains("ro")
        let ctx = context
        try await ctx.operations.withVolume(request.volumeID) {
            try await blocking {
                _ = try ctx.volume(request.volumeID)
                do {
                    try ctx.mounts.publish(volumeID: request.volumeID, stagingPath: request.stagingTargetPath,
                                           target: request.targetPath, readOnly: readOnly)
                } catch { throw Self.map(error) }
            }
        }
        return Csi_V1_NodePublishVolumeResponse()
    }

    public func nodeUnpublishVolume(request: Csi_V1_NodeUnpublishVolumeRequest,
                                    context _: ServerContext) async throws -> Csi_V1_NodeUnpublishVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        try RequestChecks.path(request.targetPath, field: "target_path", stateDirectory: context.stateDirectory)
        let ctx = context
        try await ctx.operations.withVolume(request.volumeID) {
            try await blocking {
                try Self.requireVolumeOrRecord(ctx, request.volumeID, path: request.targetPath)
                do { try ctx.mounts.detach(volumeID: request.volumeID, path: request.targetPath, kind: .publish) } catch { throw Self.map(error) }
            }
        }
        return Csi_V1_NodeUnpublishVolumeResponse()
    }

    public func nodeGetVolumeStats(request: Csi_V1_NodeGetVolumeStatsRequest,
                                   context _: ServerContext) async throws -> Csi_V1_NodeGetVolumeStatsResponse {
        try RequestChecks.volumeID(request.volumeID)
        guard !request.volumePath.isEmpty else { throw Failures.invalid("volume_path is required") }
        let ctx = context
        return try await blocking {
            _ = try ctx.volume(request.volumeID)
            guard let target = ctx.mounts.target(at: request.volumePath), target.volumeID == request.volumeID else {
                throw Failures.notFound("volume \(request.volumeID) is not mounted at \(request.volumePath.prefix(256))")
            }
            var info = statvfs()
            guard statvfs(target.path, &info) == 0 else {
                throw RPCError(code: .internalError, message: "statfs \(target.path): \(String(cString: strerror(errno)))")
            }
            func usage(_ unit: Csi_V1_VolumeUsage.Unit, total: UInt, free: UInt, scale: Int64) -> Csi_V1_VolumeUsage {
                var u = Csi_V1_VolumeUsage()
                u.unit = unit
                u.total = Int64(total) * scale
                u.available = Int64(free) * scale
                u.used = Int64(total - min(total, free)) * scale
                return u
            }
            var r = Csi_V1_NodeGetVolumeStatsResponse()
            r.usage = [usage(.bytes, total: UInt(info.f_blocks), free: UInt(info.f_bavail), scale: Int64(info.f_frsize)),
                       usage(.inodes, total: UInt(info.f_files), free: UInt(info.f_ffree), scale: 1)]
            return r
        }
    }

    public func nodeExpandVolume(request: Csi_V1_NodeExpandVolumeRequest,
                                 context _: ServerContext) async throws -> Csi_V1_NodeExpandVolumeResponse {
        try RequestChecks.volumeID(request.volumeID)
        guard !request.volumePath.isEmpty else { throw Failures.invalid("volume_path is required") }
        if request.hasVolumeCapability, let why = RequestChecks.unsupported(request.volumeCapability) { throw Failures.invalid(why) }
        let ctx = context
        return try await blocking {
            let record = try ctx.volume(request.volumeID)
            guard let target = ctx.mounts.target(at: request.volumePath), target.volumeID == request.volumeID else {
                throw Failures.notFound("volume \(request.volumeID) is not mounted at \(request.volumePath.prefix(256))")
            }
            // Nothing to grow on the node: the FUSE filesystem reads its size from the engine.
            var r = Csi_V1_NodeExpandVolumeResponse()
            r.capacityBytes = record.capacityBytes
            return r
        }
    }

    public func nodeGetCapabilities(request: Csi_V1_NodeGetCapabilitiesRequest,
                                    context _: ServerContext) async throws -> Csi_V1_NodeGetCapabilitiesResponse {
        var r = Csi_V1_NodeGetCapabilitiesResponse()
        let offered: [Csi_V1_NodeServiceCapability.RPC.TypeEnum] = [.stageUnstageVolume, .getVolumeStats, .expandVolume, .singleNodeMultiWriter]
        r.capabilities = offered.map {
            var c = Csi_V1_NodeServiceCapability()
            c.rpc.type = $0
            return c
        }
        return r
    }

    public func nodeGetInfo(request: Csi_V1_NodeGetInfoRequest, context _: ServerContext) async throws -> Csi_V1_NodeGetInfoResponse {
        var r = Csi_V1_NodeGetInfoResponse()
        r.nodeID = context.nodeID
        r.accessibleTopology = context.topology
        return r
    }

    // MARK: helpers

    /// Unmounting: a path we hold for the volume is always released; otherwise the volume
    /// must exist (an unknown volume is NOT_FOUND, a known one not mounted there is success).
    static func requireVolumeOrRecord(_ ctx: DriverContext, _ id: String, path: String) throws {
        if let target = ctx.mounts.target(at: path), target.volumeID == id { return }
        _ = try ctx.volume(id)
    }

    static func map(_ error: any Error) -> RPCError {
        switch error {
        case let e as NodeMounts.Failure:
            switch e {
            case .conflict(let why): return RPCError(code: .alreadyExists, message: why)
            case .notStaged(let why): return RPCError(code: .failedPrecondition, message: why)
            case .notEmpty(let why): return RPCError(code: .invalidArgument, message: why)
            case .mountFailed(let why): return RPCError(code: .internalError, message: why)
            }
        default: return Failures.map(error)
        }
    }
}
