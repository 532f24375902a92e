import ArgumentParser
import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport
import StorageClasses

/// `berth-csi`: calls a CSI driver's RPCs from the command line, the way an orchestrator
/// would (one call per invocation; results as JSON on stdout). For scripts, demos and
/// debugging; Kubernetes uses its own sidecars.
@main
struct BerthCSI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-csi", abstract: "Call CSI RPCs on a driver's socket.",
        subcommands: [Info.self, Create.self, Delete.self, List.self, Capacity.self, Stage.self, Unstage.self, Publish.self,
                      Unpublish.self, Stats.self, Expand.self])
}

struct Endpoint: ParsableArguments {
    @Option(help: "The CSI socket, unix:///PATH.") var endpoint: String = "unix:///run/berth/csi.sock"

    func call<T: Sendable>(_ body: (Csi_V1_Identity.Client<HTTP2ClientTransport.Posix>, Csi_V1_Controller.Client<HTTP2ClientTransport.Posix>,
                                    Csi_V1_Node.Client<HTTP2ClientTransport.Posix>) async throws -> T) async throws -> T {
        let path = try UnixSocket.path(fromEndpoint: endpoint)
        do {
            return try await withGRPCClient(transport: try Transports.client(path: path)) { client in
                try await body(Csi_V1_Identity.Client(wrapping: client), Csi_V1_Controller.Client(wrapping: client), Csi_V1_Node.Client(wrapping: client))
            }
        } catch let error as RPCError {
            FileHandle.standardError.write(Data("berth-csi: \(error.code): \(error.message)\n".utf8))
            throw ExitCode(1)
        }
    }
}

func printJSON(_ message: some SwiftProtobuf.Message) throws {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    print(try message.jsonString(options: options))
}

func mountCapability(readOnly: Bool = false) -> Csi_V1_VolumeCapability {
    var c = Csi_V1_VolumeCapability()
    c.mount = Csi_V1_VolumeCapability.MountVolume()
    c.accessMode.mode = readOnly ? .singleNodeReaderOnly : .singleNodeWriter
    return c
}

func parameters(_ pairs: [String]) throws -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs {
        let parts = pair.split(separator: "=", maxSplits: 1)
        guard parts.count == 2 else { throw ValidationError("--parameter takes KEY=VALUE, not \(pair)") }
        result[String(parts[0])] = String(parts[1])
    }
    return result
}

func parseSize(_ text: String) throws -> Int64 {
    guard let bytes = ByteSize.parse(text) else { throw ValidationError("\(text) is not a size") }
    return bytes
}

struct Info: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "GetPluginInfo, capabilities, NodeGetInfo.")
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        try await endpoint.call { identity, controller, node in
            try printJSON(try await identity.getPluginInfo(Csi_V1_GetPluginInfoRequest()))
            try printJSON(try await identity.getPluginCapabilities(Csi_V1_GetPluginCapabilitiesRequest()))
            try printJSON(try await controller.controllerGetCapabilities(Csi_V1_ControllerGetCapabilitiesRequest()))
            try printJSON(try await node.nodeGetCapabilities(Csi_V1_NodeGetCapabilitiesRequest()))
            try printJSON(try await node.nodeGetInfo(Csi_V1_NodeGetInfoRequest()))
        }
    }
}

struct Create: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "CreateVolume (prints the volume; its id is volume.volume_id).")
    @Argument var name: String
    @Option(help: "Required size, e.g. 1Gi.") var size: String = "1Gi"
    @Option(name: .customLong("parameter"), help: "A storage class parameter KEY=VALUE (repeatable).") var parameter: [String] = []
    @Option(name: .customLong("class-file"), help: "Take the parameters from a StorageClass manifest.") var classFile: String?
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_CreateVolumeRequest()
        r.name = name
        r.capacityRange.requiredBytes = try parseSize(size)
        r.volumeCapabilities = [mountCapability()]
        r.parameters = try parameters(parameter)
        if let classFile {
            guard let text = try? String(contentsOfFile: classFile, encoding: .utf8) else { throw ValidationError("cannot read \(classFile)") }
            guard let manifest = try Yams.load(yaml: text) as? [String: Any], let given = manifest["parameters"] as? [String: Any] else {
                throw ValidationError("\(classFile) has no parameters mapping")
            }
            for (key, value) in given { r.parameters[key] = "\(value)" }
        }
        let request = r
        try await endpoint.call { _, c, _ in try printJSON(try await c.createVolume(request)) }
    }
}

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "DeleteVolume.")
    @Argument var volumeID: String
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_DeleteVolumeRequest()
        r.volumeID = volumeID
        let request = r
        try await endpoint.call { _, c, _ in _ = try await c.deleteVolume(request) }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "ListVolumes (all pages).")
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        try await endpoint.call { _, c, _ in
            var token = ""
            repeat {
                var r = Csi_V1_ListVolumesRequest()
                r.startingToken = token
                r.maxEntries = 100
                let page = try await c.listVolumes(r)
                try printJSON(page)
                token = page.nextToken
            } while !token.isEmpty
        }
    }
}

struct Capacity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "GetCapacity for a class's parameters.")
    @Option(name: .customLong("parameter"), help: "KEY=VALUE (repeatable).") var parameter: [String] = []
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_GetCapacityRequest()
        r.parameters = try parameters(parameter)
        r.volumeCapabilities = [mountCapability()]
        let request = r
        try await endpoint.call { _, c, _ in try printJSON(try await c.getCapacity(request)) }
    }
}

struct Stage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "NodeStageVolume.")
    @Argument var volumeID: String
    @Argument var stagingPath: String
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_NodeStageVolumeRequest()
        r.volumeID = volumeID
        r.stagingTargetPath = stagingPath
        r.volumeCapability = mountCapability()
        let request = r
        try await endpoint.call { _, _, n in _ = try await n.nodeStageVolume(request) }
    }
}

struct Unstage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "NodeUnstageVolume.")
    @Argument var volumeID: String
    @Argument var stagingPath: String
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_NodeUnstageVolumeRequest()
        r.volumeID = volumeID
        r.stagingTargetPath = stagingPath
        let request = r
        try await endpoint.call { _, _, n in _ = try await n.nodeUnstageVolume(request) }
    }
}

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "NodePublishVolume.")
    @Argument var volumeID: String
    @Argument var stagingPath: String
    @Argument var targetPath: String
    @Flag var readOnly = false
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_NodePublishVolumeRequest()
        r.volumeID = volumeID
        r.stagingTargetPath = stagingPath
        r.targetPath = targetPath
        r.readonly = readOnly
        r.volumeCapability = mountCapability(readOnly: readOnly)
        let request = r
        try await endpoint.call { _, _, n in _ = try await n.nodePublishVolume(request) }
    }
}

struct Unpublish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "NodeUnpublishVolume.")
    @Argument var volumeID: String
    @Argument var targetPath: String
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_NodeUnpublishVolumeRequest()
        r.volumeID = volumeID
        r.targetPath = targetPath
        let request = r
        try await endpoint.call { _, _, n in _ = try await n.nodeUnpublishVolume(request) }
    }
}

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "NodeGetVolumeStats.")
    @Argument var volumeID: String
    @Argument var volumePath: String
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_NodeGetVolumeStatsRequest()
        r.volumeID = volumeID
        r.volumePath = volumePath
        let request = r
        try await endpoint.call { _, _, n in try printJSON(try await n.nodeGetVolumeStats(request)) }
    }
}

struct Expand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "ControllerExpandVolume.")
    @Argument var volumeID: String
    @Option(help: "New size, e.g. 2Gi.") var size: String
    @OptionGroup var endpoint: Endpoint
    func run() async throws {
        var r = Csi_V1_ControllerExpandVolumeRequest()
        r.volumeID = volumeID
        r.capacityRange.requiredBytes = try parseSize(size)
        let request = r
        try await endpoint.call { _, c, _ in try printJSON(try await c.controllerExpandVolume(request)) }
    }
}

import SwiftProtobuf
import Yams
