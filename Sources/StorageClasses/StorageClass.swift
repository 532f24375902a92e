import Placement

/// A storage class as Berth runs it: the redundancy, where members must differ, how data
/// is cut into objects, and how many placement groups its pool has. Parsed from a
/// Kubernetes `StorageClass` manifest (`StorageClassManifest`) or from the `parameters`
/// of a CSI CreateVolume call (`StorageClassParameters`).
public struct StorageClass: Sendable, Hashable, Codable {
    public enum Redundancy: Sendable, Hashable, Codable {
        case replicated(copies: Int)
        case erasure(dataShards: Int, parityShards: Int)
        /// One copy: for applications that replicate their own data.
        case single
    }

    public enum ReclaimPolicy: String, Sendable, Hashable, Codable {
        case delete = "Delete"
        case retain = "Retain"
    }

    public var name: String
    public var redundancy: Redundancy
    /// Bucket type (`host`, `rack`, …) or `device` at which members must differ.
    public var failureDomain: String
    /// The unit a file's data is cut into (a power of two): each chunk's slices point
    /// into objects, and a crowded chunk is rewritten whole.
    public var chunkSizeBytes: Int
    public var pgCount: Int
    public var reclaimPolicy: ReclaimPolicy
    public var allowVolumeExpansion: Bool

    public init(name: String, redundancy: Redundancy, failureDomain: String = StorageClassParameters.defaultFailureDomain,
                chunkSizeBytes: Int = StorageClassParameters.defaultChunkSizeBytes,
                pgCount: Int = StorageClassParameters.defaultPGCount,
                reclaimPolicy: ReclaimPolicy = .delete, allowVolumeExpansion: Bool = true) {
        self.name = name
        self.redundancy = redundancy
        self.failureDomain = failureDomain
        self.chunkSizeBytes = chunkSizeBytes
        self.pgCount = pgCount
        self.reclaimPolicy = reclaimPolicy
        self.allowVolumeExpansion = allowVolumeExpansion
    }

    /// The placement rule of the class's pool.
    public var rule: Rule {
        switch redundancy {
        case .replicated(let copies): Rule(.replicated(copies: copies), failureDomain: failureDomain)
        case .erasure(let k, let m): Rule(.erasure(k: k, m: m), failureDomain: failureDomain)
        case .single: Rule(.replicated(copies: 1), failureDomain: failureDomain)
        }
    }

    /// The largest object of the class: `chunksPerObject` chunks.
    public var objectLimitBytes: Int { chunkSizeBytes * Self.chunksPerObject }

    /// How many chunks' bytes one object may hold. Every object costs the same fixed work
    /// whatever its size — a file, an fsync and a directory fsync per shard, and a row —
    /// so a sequential writer's chunks go two to an object: an EC 4+2 write of 1 GiB ran
    /// 1.2–1.7× faster on 11–40 % less CPU than at one chunk per object (docs/benchmarks-history.md,
    /// session 15).
    /// Chunks stay the unit of slices and of compaction, so random writes pay nothing for
    /// it; the price is space: an object is freed only once no slice uses any of its bytes,
    /// so a file that rewrites one chunk of a pair keeps the other's object whole (at most
    /// twice the bytes until the other chunk is rewritten or compacted too).
    public static let chunksPerObject = 2

    /// Raw bytes per byte of data: 3.0, 1.5, 1.0.
    public var overhead: Double { rule.overhead }

    /// Checks that the cluster can hold this class: enough failure domains with capacity
    /// for its width. Throws `StorageClassError` naming `parameters.failureDomain`.
    public func check(against map: ClusterMap, source: String = "storage class") throws(StorageClassError) {
        let width = rule.width
        if failureDomain != Rule.deviceLevel && !map.buckets.contains(where: { $0.type == failureDomain }) {
            throw StorageClassError(source: source, field: "parameters.failureDomain",
                                    reason: "\"\(failureDomain)\" is not a level of the cluster map (levels: \(Self.levels(map)))")
        }
        let available = Set(map.failureDomains(level: failureDomain).values).count
        if available < width {
            throw StorageClassError(
                source: source, field: "parameters",
                reason: "\(width) members on distinct \(failureDomain)s need \(width) \(failureDomain)s with capacity; the cluster has \(available)")
        }
    }

    private static func levels(_ map: ClusterMap) -> String {
        ([Rule.deviceLevel] + Set(map.buckets.map(\.type)).sorted()).joined(separator: ", ")
    }
}

/// A storage class that could not be loaded, naming the source (file) and the field.
public struct StorageClassError: Error, Sendable, Hashable, CustomStringConvertible {
    public var source: String
    public var field: String
    public var reason: String

    public init(source: String, field: String, reason: String) {
        self.source = source
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(source): \(field): \(reason)" }
}
