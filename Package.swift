// swift-tools-version: 6.1
// Berth: a storage-class provisioner for stateful containers.
// Layout and module responsibilities: docs/architecture.md.
import PackageDescription

let grpcProtobuf: [Target.Dependency] = [
    .product(name: "GRPCCore", package: "grpc-swift-2"),
    .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
    .product(name: "SwiftProtobuf", package: "swift-protobuf"),
]

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
        .executable(name: "csi-bench", targets: ["CSIBench"]),
        .executable(name: "scale-bench", targets: ["ScaleBench"]),
        .executable(name: "berth-csi", targets: ["CSIClient"]),
        .executable(name: "agent-bench", targets: ["AgentBench"]),
        .executable(name: "berth-fuse-keeper", targets: ["FuseKeeper"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
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
        .target(name: "Storage", dependencies: ["Placement", "Codec", "StorageClasses", "CLinux"]),
        // Linux calls Swift's Glibc module leaves out (sync_file_range).
        .systemLibrary(name: "CLinux"),
        // SQLite metadata (GRDB): the cluster database and one database per volume. No data I/O.
        .target(name: "Metadata", dependencies: ["Placement", .product(name: "GRDB", package: "GRDB.swift"),
                                                .product(name: "GRDBSQLite", package: "GRDB.swift")]),
        // The cluster state on PostgreSQL (postgres-nio): the same store as Metadata's
        // SQLite one, for daemons of several hosts (`--metadata postgres://…`).
        .target(name: "MetadataPostgres", dependencies: ["Metadata", "Placement", .product(name: "PostgresNIO", package: "postgres-nio")]),
        // The storage engine of a node: classes, devices, epochs, volumes, objects, the
        // mover, capacity. Wires Metadata and Storage together.
        .target(name: "Engine", dependencies: ["Placement", "Codec", "StorageClasses", "Storage", "Metadata", "MetadataPostgres"]),
        // libfuse3 (libfuse3-dev), low-level API.
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        // A volume as a POSIX filesystem: FUSE low-level operations over the namespace
        // (SQLite) and the engine's objects.
        // liburing (liburing-dev): FUSE over io_uring, where the kernel offers it.
        .target(name: "CURing", linkerSettings: [.linkedLibrary("uring")]),
        .target(name: "FileSystem", dependencies: ["CFuse3", "CURing", "Codec", "Engine", "Metadata", "Storage", "FuseHandoff"]),
        // FUSE sessions that outlive their daemon: a keeper process holds their /dev/fuse
        // descriptors across a restart, and the client the daemon hands them over with.
        .target(name: "FuseHandoff", dependencies: ["CLinux"]),
        .executableTarget(name: "FuseKeeper", dependencies: ["FuseHandoff"]),
        // Generated from proto/csi.proto and proto/admin.proto by scripts/generate-protos.sh
        // (committed: CI never builds protoc plugins).
        .target(name: "CSIProtocol", dependencies: grpcProtobuf),
        .target(name: "AdminProtocol", dependencies: grpcProtobuf),
        .target(name: "AgentProtocol", dependencies: grpcProtobuf),
        // The cluster's certificates: a CA, one certificate per node id, mutual-TLS settings.
        .target(name: "ClusterTLS", dependencies: [
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        ]),
        // The node agent: a host's devices served over gRPC/TCP with mutual TLS, and the
        // client side the engine uses for other hosts' devices (`RemoteShardDevice`).
        .target(name: "NodeAgent", dependencies: [
            "AgentProtocol", "ClusterTLS", "Storage", "Placement", "Codec",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // The CSI Identity, Controller and Node services over the engine and FUSE mounts.
        .target(name: "CSI", dependencies: ["CSIProtocol", "Engine", "FileSystem", "StorageClasses", "Metadata",
                                            .product(name: "GRPCCore", package: "grpc-swift-2"),
                                            .product(name: "Logging", package: "swift-log")]),
        // Unix-socket gRPC plumbing shared by the daemon and its clients.
        .target(name: "SocketTransport", dependencies: [
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .executableTarget(name: "VolumeDriver", dependencies: [
            "CSI", "CSIProtocol", "AdminProtocol", "AgentProtocol", "ClusterTLS", "NodeAgent", "SocketTransport", "Engine", "FileSystem", "StorageClasses", "Placement", "Metadata",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .executableTarget(name: "provisionctl", dependencies: [
            "AdminProtocol", "ClusterTLS", "SocketTransport", "StorageClasses",
            .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // berth-csi: a CSI client for scripts and debugging (the README's demo drives the daemon with it).
        .executableTarget(name: "CSIClient", dependencies: ["CSIProtocol", "SocketTransport", "StorageClasses",
                                                            .product(name: "SwiftProtobuf", package: "swift-protobuf"), "Yams",
                                                            .product(name: "GRPCCore", package: "grpc-swift-2"),
                                                            .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                                                            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(name: "CSIBench", dependencies: ["CSIProtocol", "SocketTransport", .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                                                           .product(name: "GRPCCore", package: "grpc-swift-2")]),
        // scale-bench: the control plane at 10,000 volumes (issue 27), against a real VolumeDriver.
        .executableTarget(name: "ScaleBench", dependencies: ["CSIProtocol", "AdminProtocol", "SocketTransport",
                                                             .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                                                             .product(name: "GRPCCore", package: "grpc-swift-2")]),
        .executableTarget(name: "PlacementBench", dependencies: ["Placement"]),
        .executableTarget(name: "EngineTool", dependencies: ["Engine", "FileSystem", "Metadata", "Placement", "StorageClasses"]),
        // agent-bench: one shard operation between hosts (a real agent on loopback, mutual TLS).
        .executableTarget(name: "AgentBench", dependencies: ["NodeAgent", "ClusterTLS", "Placement", "Storage"]),
        .executableTarget(name: "StorageBench", dependencies: ["Engine", "Codec", "Placement", "Storage", "StorageClasses"]),
        // Helpers shared by the test targets (finding built executables).
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // Engines of the engine and filesystem suites, on the backend BERTH_TEST_METADATA names.
        .target(name: "TestEngines", dependencies: ["Engine", "Metadata", "TestSupport"], path: "Tests/TestEngines"),
        // An application writing through a mount while its daemon restarts (CSITests).
        .executableTarget(name: "berth-file-loop", path: "Tests/FileLoop"),
        .testTarget(name: "PlacementTests", dependencies: ["Placement", "TestSupport"]),
        .testTarget(name: "CodecTests", dependencies: ["Codec"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "TestSupport"]),
        .testTarget(name: "MetadataTests", dependencies: ["Metadata", "MetadataPostgres", "TestSupport"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "EngineTool", "TestSupport", "TestEngines"]),
        .testTarget(name: "FileSystemTests", dependencies: ["FileSystem", "FuseHandoff", "FuseKeeper", "EngineTool", "CFuse3", "CLinux", "TestSupport", "TestEngines"]),
        .testTarget(name: "StorageClassesTests", dependencies: ["StorageClasses"]),
        .testTarget(name: "ClusterTests", dependencies: ["TestSupport"]),
        .testTarget(name: "NodeAgentTests", dependencies: ["NodeAgent", "AgentProtocol", "ClusterTLS", "Storage", "Placement", "StorageClasses", "TestSupport",
                                                          .product(name: "GRPCCore", package: "grpc-swift-2"),
                                                          .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                                                          .product(name: "NIOCore", package: "swift-nio"),
                                                          .product(name: "NIOEmbedded", package: "swift-nio"),
                                                          .product(name: "NIOSSL", package: "swift-nio-ssl")]),
        .testTarget(name: "CSITests", dependencies: ["CSI", "CSIProtocol", "AdminProtocol", "SocketTransport", "VolumeDriver", "provisionctl", "TestSupport",
                                                     "berth-file-loop", "FuseKeeper",
                                                     .product(name: "GRPCCore", package: "grpc-swift-2")]),
    ],
    swiftLanguageModes: [.v6]
)
