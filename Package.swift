// swift-tools-version: 6.1
// Berth: a storage-class provisioner for stateful containers.
// Layout and module responsibilities: docs/architecture.md.
import PackageDescription

let package = Package(
    name: "Berth",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Placement", targets: ["Placement"]),
        .executable(name: "VolumeDriver", targets: ["VolumeDriver"]),
        .executable(name: "provisionctl", targets: ["provisionctl"]),
        .executable(name: "placement-bench", targets: ["PlacementBench"]),
        .executable(name: "berth-engine", targets: ["EngineTool"]),
        .executable(name: "storage-bench", targets: ["StorageBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
    ],
    targets: [
        // Pure placement logic: cluster map, rules, placement function, balancer,
        // movement plans. Imports only the standard library.
        .target(name: "Placement"),
        // Intel ISA-L (libisal-dev): Reed–Solomon and CRC32C.
        .systemLibrary(name: "CISAL", pkgConfig: "libisal", providers: [.apt(["libisal-dev"])]),
        // Pure byte codecs: Reed–Solomon erasure coding, CRC32C. No I/O.
        .target(name: "Codec", dependencies: ["CISAL"]),
        // Storage classes: Kubernetes StorageClass manifests and CSI parameters. No I/O.
        .target(name: "StorageClasses", dependencies: ["Placement", "Yams"]),
        // The storage engine: devices (shard stores), replication and erasure coding,
        // object put/get/delete, degraded reads, recovery and rebalance.
        .target(name: "Storage", dependencies: ["Placement", "Codec", "StorageClasses"]),
        // SQLite metadata (GRDB): the cluster database and one database per volume. No data I/O.
        .target(name: "Metadata", dependencies: ["Placement", .product(name: "GRDB", package: "GRDB.swift")]),
        // The storage engine of a node: classes, devices, epochs, volumes, objects, the
        // mover, capacity. Wires Metadata and Storage together.
        .target(name: "Engine", dependencies: ["Placement", "Codec", "StorageClasses", "Storage", "Metadata"]),
        // libfuse3 (libfuse3-dev), low-level API.
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // A volume as a POSIX filesystem: FUSE low-level operations over the namespace
        // (SQLite) and the engine's objects.
        .target(name: "FileSystem", dependencies: ["CFuse3", "Engine", "Metadata", "Storage"]),
        .executableTarget(name: "VolumeDriver", dependencies: ["Placement"]),
        .executableTarget(name: "provisionctl", dependencies: ["Placement"]),
        .executableTarget(name: "PlacementBench", dependencies: ["Placement"]),
        .executableTarget(name: "EngineTool", dependencies: ["Engine", "FileSystem", "Placement", "StorageClasses"]),
        .executableTarget(name: "StorageBench", dependencies: ["Engine", "Codec", "Placement", "Storage", "StorageClasses"]),
        .testTarget(name: "PlacementTests", dependencies: ["Placement"]),
        .testTarget(name: "CodecTests", dependencies: ["Codec"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage"]),
        .testTarget(name: "MetadataTests", dependencies: ["Metadata"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "EngineTool"]),
        .testTarget(name: "FileSystemTests", dependencies: ["FileSystem", "EngineTool", "CFuse3"]),
        .testTarget(name: "StorageClassesTests", dependencies: ["StorageClasses"]),
    ],
    swiftLanguageModes: [.v6]
)
