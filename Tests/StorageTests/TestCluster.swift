import Foundation
import Testing
import Placement
import StorageClasses
@testable import Storage

/// A temporary directory removed when the value is released.
final class TemporaryDirectory {
    let path: String
    init(_ label: String = "berth") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Real directories as devices: `hosts` hosts × `devicesPerHost` devices, and the three
/// shipped kinds of class as pools 1 (replicated-3), 2 (EC 4+2), 3 (single copy).
final class TestCluster {
    let directory = TemporaryDirectory("berth-cluster")
    var map: ClusterMap
    var stores: [DeviceID: ShardStore] = [:]
    let store: ObjectStore
    let codecs: [PoolCodec]
    static let chunk = 64 << 10
    /// The largest object the classes take (two chunks).
    static let limit = chunk * StorageClass.chunksPerObject

    static let classes: [(UInt32, StorageClass)] = [
        (1, StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: chunk, pgCount: 32)),
        (2, StorageClass(name: "ec-4-2", redundancy: .erasure(dataShards: 4, parityShards: 2), chunkSizeBytes: chunk, pgCount: 32)),
        (3, StorageClass(name: "remote-disk", redundancy: .single, chunkSizeBytes: chunk, pgCount: 32)),
    ]

    init(hosts: Int = 6, devicesPerHost: Int = 2, capacityBytes: Int = 1 << 30) throws {
        var buckets: [Bucket] = [], devices: [Device] = []
        for h in 0..<hosts {
            buckets.append(Bucket(id: "h\(h)", type: "host"))
            for d in 0..<devicesPerHost { devices.append(Device(id: DeviceID("h\(h)-d\(d)"), parent: "h\(h)", weight: 1)) }
        }
        let pools = Self.classes.map { Pool(id: $0.0, name: $0.1.name, rule: $0.1.rule, pgCount: $0.1.pgCount) }
        map = try ClusterMap.initial(buckets: buckets, devices: devices, pools: pools)
        for d in devices {
            stores[d.id] = try ShardStore(id: d.id, root: directory.path + "/" + d.id.rawValue, capacityBytes: capacityBytes)
        }
        codecs = try Self.classes.map { try PoolCodec(poolID: $0.0, storageClass: $0.1) }
        store = ObjectStore(layout: .init(current: try Placer(map: map)), devices: Array(stores.values), codecs: codecs)
    }

    func path(of device: DeviceID) -> String { directory.path + "/" + device.rawValue }

    /// Takes a device away the way a dead disk does: its directory disappears.
    func destroy(_ device: DeviceID) throws {
        try FileManager.default.removeItem(atPath: path(of: device))
    }

    /// Adds a device directory to the cluster (not to the map).
    func addStore(_ device: DeviceID, capacityBytes: Int = 1 << 30) throws {
        let s = try ShardStore(id: device, root: path(of: device), capacityBytes: capacityBytes)
        stores[device] = s
        store.attach(s)
    }
}

func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed &+ 0x9e37_79b9_7f4a_7c15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}

/// Byte-array equality that reports sizes and the first differing offset, not the bytes.
func expectSame(_ actual: [UInt8], _ expected: [UInt8], _ what: @autoclosure () -> String = "",
                sourceLocation: SourceLocation = #_sourceLocation) {
    if actual == expected { return }
    let first = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    let label = what()
    Issue.record("\(label) bytes differ: got \(actual.count), expected \(expected.count), first difference at \(first)",
                 sourceLocation: sourceLocation)
}
