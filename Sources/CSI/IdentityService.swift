import CSIProtocol
import GRPCCore
import SwiftProtobuf

/// CSI Identity: who we are, what we offer, whether we are ready.
public struct IdentityService: Csi_V1_Identity.SimpleServiceProtocol {
    public static let pluginName = "csi.berth.dev"
    let context: DriverContext

    public init(context: DriverContext) { self.context = context }

    public func getPluginInfo(request: Csi_V1_GetPluginInfoRequest, context _: ServerContext) async throws -> Csi_V1_GetPluginInfoResponse {
        var r = Csi_V1_GetPluginInfoResponse()
        r.name = Self.pluginName
        r.vendorVersion = context.vendorVersion
        r.manifest = ["url": "https://berth.dev", "node": context.nodeID]
        return r
    }

    public func getPluginCapabilities(request: Csi_V1_GetPluginCapabilitiesRequest,
                                      context _: ServerContext) async throws -> Csi_V1_GetPluginCapabilitiesResponse {
        func service(_ type: Csi_V1_PluginCapability.Service.TypeEnum) -> Csi_V1_PluginCapability {
            var c = Csi_V1_PluginCapability()
            c.service.type = type
            return c
        }
        var expansion = Csi_V1_PluginCapability()
        expansion.volumeExpansion.type = .online
        var r = Csi_V1_GetPluginCapabilitiesResponse()
        r.capabilities = (context.servesController ? [service(.controllerService)] : []) + [service(.volumeAccessibilityConstraints), expansion]
        return r
    }

    public func probe(request: Csi_V1_ProbeRequest, context _: ServerContext) async throws -> Csi_V1_ProbeResponse {
        // Ready when the engine answers a metadata query.
        _ = try await blocking { [engine = context.engine] in try engine.volumes().count }
        var r = Csi_V1_ProbeResponse()
        r.ready = Google_Protobuf_BoolValue(true)
        return r
    }
}
