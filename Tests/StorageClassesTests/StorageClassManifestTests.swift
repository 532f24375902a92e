import Foundation
import Placement
import Testing
import StorageClasses

@Suite struct StorageClassManifestTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func shipped(_ name: String) throws -> [StorageClass] {
        let url = repository.appendingPathComponent("storageclasses/\(name).yaml")
        return try StorageClassManifest.parse(yaml: String(contentsOf: url, encoding: .utf8), source: "storageclasses/\(name).yaml")
    }

    @Test func shippedClassesLoad() throws {
        let r3 = try Self.shipped("replicated-3")
        #expect(r3 == [StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: 4 << 20, pgCount: 256)])
        #expect(r3[0].overhead == 3.0)
        let ec = try Self.shipped("ec-4-2")
        #expect(ec[0].redundancy == .erasure(dataShards: 4, parityShards: 2))
        #expect(ec[0].overhead == 1.5)
        #expect(ec[0].rule == Rule(.erasure(k: 4, m: 2), failureDomain: "host"))
        let single = try Self.shipped("remote-disk")
        #expect(single[0].redundancy == .single)
        #expect(single[0].overhead == 1.0)
        #expect(single[0].rule.width == 1)
    }

    static func manifest(name: String = "c", parameters: String, extra: String = "") -> String {
        """
        apiVersion: storage.k8s.io/v1
        kind: StorageClass
        metadata:
          name: \(name)
        provisioner: csi.berth.dev
        parameters:
        \(parameters)
        \(extra)
        """
    }

    /// Each bad file names the file and the field, and yields nothing.
    @Test(arguments: [
        (parameters: "  redundancy: \"mirror\"", extra: "", field: "parameters.redundancy", fragment: "not one of"),
        (parameters: "  copies: \"3\"", extra: "", field: "parameters.redundancy", fragment: "required"),
        (parameters: "  redundancy: \"replicated\"\n  copies: 3", extra: "", field: "parameters.copies", fragment: "quoted string"),
        (parameters: "  redundancy: \"replicated\"\n  copies: \"1\"", extra: "", field: "parameters.copies", fragment: "2...8"),
        (parameters: "  redundancy: \"replicated\"\n  copies: \"three\"", extra: "", field: "parameters.copies", fragment: "whole number"),
        (parameters: "  redundancy: \"erasure\"\n  copies: \"3\"", extra: "", field: "parameters.copies", fragment: "does not apply"),
        (parameters: "  redundancy: \"erasure\"\n  dataShards: \"16\"\n  parityShards: \"17\"", extra: "", field: "parameters.parityShards", fragment: "1...8"),
        (parameters: "  redundancy: \"erasure\"\n  dataShards: \"0\"", extra: "", field: "parameters.dataShards", fragment: "1...16"),
        (parameters: "  redundancy: \"single\"\n  chunkSize: \"3Mi\"", extra: "", field: "parameters.chunkSize", fragment: "power of two"),
        (parameters: "  redundancy: \"single\"\n  chunkSize: \"1Gi\"", extra: "", field: "parameters.chunkSize", fragment: "between"),
        (parameters: "  redundancy: \"single\"\n  chunkSize: \"lots\"", extra: "", field: "parameters.chunkSize", fragment: "not a size"),
        (parameters: "  redundancy: \"single\"\n  chunkSize: \"99999999999999999999Mi\"", extra: "", field: "parameters.chunkSize", fragment: "not a size"),
        (parameters: "  redundancy: \"single\"\n  pgCount: \"0\"", extra: "", field: "parameters.pgCount", fragment: "1...65536"),
        (parameters: "  redundancy: \"single\"\n  failureDomain: \"../etc\"", extra: "", field: "parameters.failureDomain", fragment: "letters"),
        (parameters: "  redundancy: \"single\"\n  replicas: \"3\"", extra: "", field: "parameters.replicas", fragment: "unknown parameter"),
        (parameters: "  redundancy: \"single\"", extra: "reclaimPolicy: Recycle", field: "reclaimPolicy", fragment: "Delete or Retain"),
        (parameters: "  redundancy: \"single\"", extra: "allowVolumeExpansion: sometimes", field: "allowVolumeExpansion", fragment: "true or false"),
        (parameters: "  redundancy: \"single\"", extra: "volumeBindingMode: Later", field: "volumeBindingMode", fragment: "Immediate"),
        (parameters: "  redundancy: \"single\"", extra: "mountOptions: [ro]", field: "mountOptions", fragment: "no mount options"),
        (parameters: "  redundancy: \"single\"", extra: "spec: {}", field: "spec", fragment: "unknown field"),
    ])
    func badFieldsAreNamed(parameters: String, extra: String, field: String, fragment: String) {
        let yaml = Self.manifest(parameters: parameters, extra: extra)
        do {
            let classes = try StorageClassManifest.parse(yaml: yaml, source: "bad.yaml")
            Issue.record("accepted: \(classes)")
        } catch {
            #expect(error.source == "bad.yaml")
            #expect(error.field == field, "\(error)")
            #expect(error.reason.contains(fragment), "\(error)")
        }
    }

    @Test func headerErrors() {
        func field(_ yaml: String) -> String? {
            do { _ = try StorageClassManifest.parse(yaml: yaml, source: "f.yaml"); return nil } catch { return error.field }
        }
        let body = "metadata:\n  name: x\nprovisioner: csi.berth.dev\nparameters:\n  redundancy: \"single\"\n"
        #expect(field("kind: StorageClass\n" + body) == "apiVersion")
        #expect(field("apiVersion: storage.k8s.io/v1beta1\nkind: StorageClass\n" + body) == "apiVersion")
        #expect(field("apiVersion: storage.k8s.io/v1\nkind: PersistentVolume\n" + body) == "kind")
        #expect(field("apiVersion: storage.k8s.io/v1\nkind: StorageClass\nprovisioner: csi.berth.dev\n") == "metadata")
        #expect(field(Self.manifest(name: "Bad_Name", parameters: "  redundancy: \"single\"")) == "metadata.name")
        #expect(field(Self.manifest(name: "x", parameters: "  redundancy: \"single\"").replacingOccurrences(of: "csi.berth.dev", with: "rook-ceph.rbd.csi.ceph.com")) == "provisioner")
        #expect(field("{unclosed: [") == "(yaml)")
        #expect(field("") == "(document)")
        #expect(field("- a\n- b\n") == "(document)")
    }

    @Test func severalDocumentsAllOrNothing() throws {
        let two = Self.manifest(name: "a", parameters: "  redundancy: \"single\"") + "\n---\n" + Self.manifest(name: "b", parameters: "  redundancy: \"replicated\"")
        #expect(try StorageClassManifest.parse(yaml: two, source: "two.yaml").map(\.name) == ["a", "b"])
        let secondBad = Self.manifest(name: "a", parameters: "  redundancy: \"single\"") + "\n---\n" + Self.manifest(name: "b", parameters: "  redundancy: \"raid5\"")
        #expect(throws: StorageClassError(source: "two.yaml (document 2)", field: "parameters.redundancy",
                                          reason: "\"raid5\" is not one of replicated, erasure, single")) {
            _ = try StorageClassManifest.parse(yaml: secondBad, source: "two.yaml")
        }
        let duplicate = Self.manifest(name: "a", parameters: "  redundancy: \"single\"") + "\n---\n" + Self.manifest(name: "a", parameters: "  redundancy: \"single\"")
        #expect(throws: StorageClassError.self) { _ = try StorageClassManifest.parse(yaml: duplicate, source: "d.yaml") }
    }

    @Test func reservedSidecarParametersAreIgnored() throws {
        let c = try StorageClassParameters.parse(
            name: "x", parameters: ["redundancy": "single", "csi.storage.k8s.io/pv/name": "pvc-1"], source: "CreateVolume")
        #expect(c.redundancy == .single)
    }

    /// k + m larger than the failure domains available is refused, naming the field.
    @Test func classMustFitTheCluster() throws {
        let ec = try Self.shipped("ec-4-2")[0]
        let buckets = (0..<5).map { Bucket(id: "h\($0)", type: "host") }
        let devices = (0..<5).map { Device(id: DeviceID("h\($0)-d"), parent: "h\($0)", weight: 1) }
        let small = ClusterMap(buckets: buckets, devices: devices)
        #expect(throws: StorageClassError(source: "ec-4-2.yaml", field: "parameters",
                                          reason: "6 members on distinct hosts need 6 hosts with capacity; the cluster has 5")) {
            try ec.check(against: small, source: "ec-4-2.yaml")
        }
        let big = ClusterMap(buckets: buckets + [Bucket(id: "h5", type: "host")], devices: devices + [Device(id: "h5-d", parent: "h5", weight: 1)])
        try ec.check(against: big)
        var rackClass = ec
        rackClass.failureDomain = "rack"
        #expect(throws: StorageClassError.self) { try rackClass.check(against: big) }
    }
}
