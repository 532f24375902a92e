import Foundation
import TestEngines
import Testing
import Placement
import StorageClasses
@testable import Engine

final class TemporaryDirectory {
    let path: String
    init(_ label: String = "berth-engine") {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

enum Fixture {
    static let chunk = 64 << 10

    /// The three kinds of class, with small chunks and PG counts so tests stay fast.
    static let classes = [
        StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: chunk, pgCount: 32),
        StorageClass(name: "ec-4-2", redundancy: .erasure(dataShards: 4, parityShards: 2), chunkSizeBytes: chunk, pgCount: 32),
        StorageClass(name: "remote-disk", redundancy: .single, chunkSizeBytes: chunk, pgCount: 32),
    ]

    static func devices(hosts: Range<Int>, perHost: Int = 2, capacity: Int64 = 256 << 20, rack: (Int) -> String? = { _ in nil }) -> [DeviceSpec] {
        hosts.flatMap { h in (0..<perHost).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", rack: rack(h), capacityBytes: capacity) } }
    }

    /// An engine on a fresh state directory with `hosts` hosts and the three classes.
    static func engine(_ dir: TemporaryDirectory, hosts: Int = 7, configuration: (inout EngineConfiguration) -> Void = { _ in }) throws -> Engine {
        var config = EngineConfiguration.testing(dir.path + "/state")
        configuration(&config)
        let engine = try Engine(configuration: config)
        try engine.addDevices(devices(hosts: 0..<hosts))
        try engine.applyClasses(classes)
        return engine
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9e37_79b9_7f4a_7c15
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }
}

func expectSame(_ actual: [UInt8], _ expected: [UInt8], _ what: @autoclosure () -> String = "",
                sourceLocation: SourceLocation = #_sourceLocation) {
    if actual == expected { return }
    let first = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(actual.count, expected.count)
    let label = what()
    Issue.record("\(label) bytes differ: got \(actual.count), expected \(expected.count), first difference at \(first)",
                 sourceLocation: sourceLocation)
}
