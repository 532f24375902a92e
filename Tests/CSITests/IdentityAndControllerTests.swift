import CSIProtocol
import Foundation
import TestSupport
import GRPCCore
import Testing

/// Identity and Controller RPCs through the real daemon's CSI socket.
@Suite(.serialized) struct IdentityAndControllerTests {
    @Test func identityNamesTheDriverAndItsCapabilities() async throws {
        let daemon = try RunningDaemon()
        try await daemon.csi { identity, controller, node in
            let info = try await identity.getPluginInfo(Csi_V1_GetPluginInfoRequest())
            #expect(info.name == "csi.berth.dev")
            #expect(!info.vendorVersion.isEmpty)
            let caps = try await identity.getPluginCapabilities(Csi_V1_GetPluginCapabilitiesRequest()).capabilities
            #expect(caps.contains { $0.service.type == .controllerService })
            #expect(caps.contains { $0.service.type == .volumeAccessibilityConstraints })
            #expect(caps.contains { $0.volumeExpansion.type == .online })
            let probe = try await identity.probe(Csi_V1_ProbeRequest())
            #expect(probe.ready.value)
            let controllerCaps = try await controller.controllerGetCapabilities(Csi_V1_ControllerGetCapabilitiesRequest()).capabilities.map(\.rpc.type)
            #expect(Set(controllerCaps) == [.createDeleteVolume, .listVolumes, .getCapacity, .expandVolume, .getVolume, .singleNodeMultiWriter,
                                            .createDeleteSnapshot, .listSnapshots, .cloneVolume])
            // What is not advertised is not there.
            await expect(.unimplemented) { try await controller.controllerPublishVolume(Csi_V1_ControllerPublishVolumeRequest()) }
            let nodeCaps = try await node.nodeGetCapabilities(Csi_V1_NodeGetCapabilitiesRequest()).capabilities.map(\.rpc.type)
            #expect(Set(nodeCaps) == [.stageUnstageVolume, .getVolumeStats, .expandVolume, .singleNodeMultiWriter])
            let nodeInfo = try await node.nodeGetInfo(Csi_V1_NodeGetInfoRequest())
            #expect(nodeInfo.nodeID == "node-a")
            // With namespaces in PostgreSQL a volume mounts on any node: no node segment.
            #expect(nodeInfo.accessibleTopology.segments["topology.berth.dev/node"] == (TestMetadata.postgres ? nil : "node-a"))
        }
    }

    @Test func createVolumeIsIdempotentAndRefusesIncompatibleRepeats() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            let first = try await c.createVolume(Requests.create("pvc-1", bytes: 32 << 20, parameters: Requests.erasure)).volume
            #expect(first.volumeID.hasPrefix("vol-"))
            #expect(first.capacityBytes == 32 << 20)
            #expect(first.volumeContext["storage.berth.dev/class"] == "ec-4-2")
            #expect(first.accessibleTopology.first?.segments["topology.berth.dev/node"] == (TestMetadata.postgres ? nil : "node-a"))
            let again = try await c.createVolume(Requests.create("pvc-1", bytes: 32 << 20, parameters: Requests.erasure)).volume
            #expect(again.volumeID == first.volumeID)
            // Kubernetes' own keys are ignored.
            var withMetadata = Requests.erasure
            withMetadata["csi.storage.k8s.io/pvc/name"] = "data"
            #expect(try await c.createVolume(Requests.create("pvc-1", bytes: 32 << 20, parameters: withMetadata)).volume.volumeID == first.volumeID)
            await expect(.alreadyExists) { try await c.createVolume(Requests.create("pvc-1", bytes: 64 << 20, parameters: Requests.erasure)) }
            await expect(.alreadyExists) { try await c.createVolume(Requests.create("pvc-1", bytes: 32 << 20, parameters: Requests.single)) }
            // No parameters: the default class (replicated-3).
            let plain = try await c.createVolume(Requests.create("pvc-2")).volume
            #expect(plain.volumeContext["storage.berth.dev/class"] == "replicated-3")
            // No capacity range: the default size, 1 GiB.
            var unsized = Requests.create("pvc-3", parameters: Requests.single)
            unsized.clearCapacityRange()
            #expect(try await c.createVolume(unsized).volume.capacityBytes == 1 << 30)
        }
    }

    @Test func createVolumeRejectsBadInputWithTheRightCodes() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            var noName = Requests.create("")
            noName.name = ""
            await expect(.invalidArgument) { try await c.createVolume(noName) }
            await expect(.invalidArgument) { try await c.createVolume(Requests.create(String(repeating: "x", count: 10_000))) }
            await expect(.invalidArgument) { try await c.createVolume(Requests.create("nul\u{0}name")) }
            await expect(.invalidArgument) { try await c.createVolume(Requests.create("bell\u{7}")) }
            var noCaps = Requests.create("no-caps")
            noCaps.volumeCapabilities = []
            await expect(.invalidArgument) { try await c.createVolume(noCaps) }
            var block = Requests.create("block")
            block.volumeCapabilities[0].block = Csi_V1_VolumeCapability.BlockVolume()
            await expect(.invalidArgument) { try await c.createVolume(block) }
            var multi = Requests.create("multi")
            multi.volumeCapabilities = [Requests.mountCapability(.multiNodeMultiWriter)]
            await expect(.invalidArgument) { try await c.createVolume(multi) }
            let bogus = await rpcError { try await c.createVolume(Requests.create("bogus", parameters: ["redundancy": "bogus"])) }
            #expect(bogus?.code == .invalidArgument)
            #expect(bogus?.message.contains("redundancy") == true, "\(String(describing: bogus))")
            let typo = await rpcError { try await c.createVolume(Requests.create("typo", parameters: ["redundancy": "single", "copeis": "3"])) }
            #expect(typo?.code == .invalidArgument)
            #expect(typo?.message.contains("copeis") == true)
            var negative = Requests.create("negative")
            negative.capacityRange.requiredBytes = -1
            await expect(.invalidArgument) { try await c.createVolume(negative) }
            var inverted = Requests.create("inverted")
            inverted.capacityRange.limitBytes = 1 << 20
            await expect(.outOfRange) { try await c.createVolume(inverted) }
            // Admission control: more than the class can hold.
            await expect(.resourceExhausted) { try await c.createVolume(Requests.create("huge", bytes: 1 << 50)) }
            var elsewhere = Requests.create("elsewhere")
            var topology = Csi_V1_Topology()
            topology.segments = ["topology.berth.dev/node": "node-z"]
            elsewhere.accessibilityRequirements.requisite = [topology]
            var here = Requests.create("here")
            if TestMetadata.postgres {
                // Any node may mount any volume: every requisite topology is accepted.
                let made = try await c.createVolume(elsewhere).volume
                #expect(made.accessibleTopology.isEmpty)
                _ = try await c.deleteVolume(.with { $0.volumeID = made.volumeID })
            } else {
                await expect(.resourceExhausted) { try await c.createVolume(elsewhere) }
                topology.segments = ["topology.berth.dev/node": "node-a"]
                here.accessibilityRequirements.requisite = [topology]
                #expect(try await c.createVolume(here).volume.accessibleTopology.first?.segments == topology.segments)
            }
            var fromSnapshot = Requests.create("from-snapshot")
            fromSnapshot.volumeContentSource.snapshot.snapshotID = "snap-1"
            await expect(.notFound) { try await c.createVolume(fromSnapshot) }
            // Nothing was created by the refused calls.
            let names = try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.map(\.volume.volumeID)
            #expect(names.count == (TestMetadata.postgres ? 0 : 1))
        }
    }

    @Test func hostileNamesAreOnlyData() async throws {
        let daemon = try RunningDaemon()
        let before = try FileManager.default.subpathsOfDirectory(atPath: daemon.root).filter { !$0.hasPrefix("state/devices") }
        try await daemon.controller { c in
            for name in ["../../etc", "/etc/passwd", "a/../../b", "$(touch /tmp/pwned)", "vol-00000000000000000000000000000000", "name with spaces ☃"] {
                let v = try await c.createVolume(Requests.create(name, bytes: 1 << 20, parameters: Requests.single)).volume
                #expect(v.volumeID.hasPrefix("vol-"))
                #expect(v.volumeID != name)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/pwned"))
        let after = try FileManager.default.subpathsOfDirectory(atPath: daemon.root).filter { !$0.hasPrefix("state/devices") }
        // New files are only volume databases named by the driver's ids.
        for path in Set(after).subtracting(before) {
            #expect(path.hasPrefix("state/volumes/vol-") || path.hasPrefix("state/cluster.sqlite") || path == "daemon.log", "unexpected \(path)")
        }
    }

    @Test func concurrentCreatesWithOneNameMakeOneVolume() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            let ids = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<100 {
                    group.addTask { try await c.createVolume(Requests.create("contended", bytes: 1 << 20)).volume.volumeID }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(ids.count == 100)
            #expect(Set(ids).count == 1)
            #expect(try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.count == 1)
        }
    }

    @Test func deleteIsIdempotentAndListVolumesPages() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            var ids: [String] = []
            for i in 0..<5 { ids.append(try await c.createVolume(Requests.create("v\(i)", bytes: 1 << 20)).volume.volumeID) }
            var seen: [String] = []
            var token = ""
            var pages = 0
            repeat {
                var r = Csi_V1_ListVolumesRequest()
                r.maxEntries = 2
                r.startingToken = token
                let page = try await c.listVolumes(r)
                #expect(page.entries.count <= 2)
                seen += page.entries.map(\.volume.volumeID)
                token = page.nextToken
                pages += 1
            } while !token.isEmpty && pages < 10
            #expect(pages == 3)
            #expect(seen.sorted() == ids.sorted())
            var badToken = Csi_V1_ListVolumesRequest()
            badToken.startingToken = "not-a-token"
            await expect(.aborted) { try await c.listVolumes(badToken) }
            var negative = Csi_V1_ListVolumesRequest()
            negative.maxEntries = -1
            await expect(.invalidArgument) { try await c.listVolumes(negative) }

            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = ids[0]
            _ = try await c.deleteVolume(delete)
            _ = try await c.deleteVolume(delete)  // again: success
            delete.volumeID = "no-such-volume"
            _ = try await c.deleteVolume(delete)  // unknown: success
            delete.volumeID = ""
            await expect(.invalidArgument) { try await c.deleteVolume(delete) }
            #expect(try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.count == 4)
            var get = Csi_V1_ControllerGetVolumeRequest()
            get.volumeID = ids[0]
            await expect(.notFound) { try await c.controllerGetVolume(get) }
            get.volumeID = ids[1]
            #expect(try await c.controllerGetVolume(get).volume.volumeID == ids[1])
        }
    }

    @Test func capacityIsTheUsableSpaceAndShrinksAsVolumesAreProvisioned() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            func available(_ parameters: [String: String]) async throws -> Int64 {
                var r = Csi_V1_GetCapacityRequest()
                r.parameters = parameters
                r.volumeCapabilities = [Requests.mountCapability()]
                return try await c.getCapacity(r).availableCapacity
            }
            let r3 = try await available(Requests.replicated)
            let ec = try await available(Requests.erasure)
            let single = try await available(Requests.single)
            // 12 devices x 512 MiB = 6 GiB raw: usable is below raw / overhead.
            #expect(r3 > 0 && Double(r3) <= Double(6 << 30) / 3)
            #expect(ec > r3 && Double(ec) <= Double(6 << 30) / 1.5)
            #expect(single > ec && single <= 6 << 30)
            #expect(try await available([:]) == r3)
            _ = try await c.createVolume(Requests.create("take", bytes: 256 << 20, parameters: Requests.replicated))
            #expect(try await available(Requests.replicated) == r3 - (256 << 20))
            var elsewhere = Csi_V1_GetCapacityRequest()
            elsewhere.accessibleTopology.segments = ["topology.berth.dev/node": "node-z"]
            // Another node's topology: none of this node's capacity — unless any node mounts
            // any volume (namespaces in PostgreSQL), when it is the same capacity.
            #expect(try await c.getCapacity(elsewhere).availableCapacity == (TestMetadata.postgres ? r3 - (256 << 20) : 0))
            var bad = Csi_V1_GetCapacityRequest()
            bad.parameters = ["redundancy": "raid5"]
            await expect(.invalidArgument) { try await c.getCapacity(bad) }
        }
    }

    @Test func validateAndExpand() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            let id = try await c.createVolume(Requests.create("grow", bytes: 8 << 20)).volume.volumeID
            var validate = Csi_V1_ValidateVolumeCapabilitiesRequest()
            validate.volumeID = id
            validate.volumeCapabilities = [Requests.mountCapability(.singleNodeMultiWriter)]
            #expect(try await c.validateVolumeCapabilities(validate).confirmed.volumeCapabilities.count == 1)
            var block = Requests.mountCapability()
            block.block = Csi_V1_VolumeCapability.BlockVolume()
            validate.volumeCapabilities = [block]
            let refused = try await c.validateVolumeCapabilities(validate)
            #expect(!refused.hasConfirmed)
            #expect(!refused.message.isEmpty)
            validate.volumeCapabilities = []
            await expect(.invalidArgument) { try await c.validateVolumeCapabilities(validate) }
            validate.volumeID = "vol-ffffffffffffffffffffffffffffffff"
            validate.volumeCapabilities = [Requests.mountCapability()]
            await expect(.notFound) { try await c.validateVolumeCapabilities(validate) }

            var expand = Csi_V1_ControllerExpandVolumeRequest()
            expand.volumeID = id
            expand.capacityRange.requiredBytes = 64 << 20
            let grown = try await c.controllerExpandVolume(expand)
            #expect(grown.capacityBytes == 64 << 20)
            #expect(!grown.nodeExpansionRequired)
            #expect(try await c.controllerExpandVolume(expand).capacityBytes == 64 << 20)  // again
            var get = Csi_V1_ControllerGetVolumeRequest()
            get.volumeID = id
            #expect(try await c.controllerGetVolume(get).volume.capacityBytes == 64 << 20)
            expand.capacityRange.requiredBytes = 1 << 50
            await expect(.resourceExhausted) { try await c.controllerExpandVolume(expand) }
            expand.clearCapacityRange()
            await expect(.invalidArgument) { try await c.controllerExpandVolume(expand) }
            expand.volumeID = "vol-ffffffffffffffffffffffffffffffff"
            expand.capacityRange.requiredBytes = 1 << 30
            await expect(.notFound) { try await c.controllerExpandVolume(expand) }
        }
    }

    @Test func secretsAreNeverLogged() async throws {
        let daemon = try RunningDaemon()
        try await daemon.controller { c in
            var r = Requests.create("secretive", parameters: ["redundancy": "nonsense"])
            r.secrets = ["password": "hunter2-s3cr3t"]
            _ = await code { try await c.createVolume(r) }
            r.parameters = [:]
            _ = try await c.createVolume(r)
        }
        daemon.stop()
        #expect(!daemon.log().contains("hunter2-s3cr3t"))
    }
}
