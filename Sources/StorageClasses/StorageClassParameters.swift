/// The `parameters` of a storage class: the same keys in a StorageClass manifest and in a
/// CSI CreateVolume request. All values are strings, as Kubernetes requires.
///
/// | key | values | default |
/// |---|---|---|
/// | `redundancy` | `replicated`, `erasure`, `single` | required |
/// | `copies` | 2…8 (replicated only) | 3 |
/// | `dataShards`, `parityShards` | k 1…16, m 1…8, k+m ≤ 32 (erasure only) | 4, 2 |
/// | `failureDomain` | a level of the cluster map (`host`, `rack`, `zone`, …) or `device` | `host` |
/// | `chunkSize` | power of two, 64Ki…64Mi; bytes or with `Ki`/`Mi` | `4Mi` |
/// | `pgCount` | 1…65536 | 256 |
///
/// Keys starting with `csi.storage.k8s.io/` are reserved for Kubernetes' sidecars and
/// ignored. Any other key is an error: a typo must not silently fall back to a default.
public enum StorageClassParameters {
    public static let defaultFailureDomain = "host"
    public static let defaultChunkSizeBytes = 4 << 20
    public static let defaultPGCount = 256
    public static let reservedPrefix = "csi.storage.k8s.io/"
    public static let keys: Set<String> = ["redundancy", "copies", "dataShards", "parityShards", "failureDomain", "chunkSize", "pgCount"]

    /// A class named `name` from `parameters`. Errors name `source` and `parameters.<key>`.
    public static func parse(name: String, parameters: [String: String], source: String) throws(StorageClassError) -> StorageClass {
        func fail(_ key: String, _ reason: String) -> StorageClassError {
            StorageClassError(source: source, field: "parameters.\(key)", reason: reason)
        }
        for key in parameters.keys.sorted() where !keys.contains(key) && !key.hasPrefix(reservedPrefix) {
            throw fail(key, "unknown parameter (known: \(keys.sorted().joined(separator: ", ")))")
        }
        func integer(_ key: String, default value: Int, in range: ClosedRange<Int>) throws(StorageClassError) -> Int {
            guard let text = parameters[key] else { return value }
            guard let n = Int(text), range.contains(n) else {
                throw fail(key, "\"\(text)\" must be a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return n
        }
        func forbid(_ key: String, for redundancy: String) throws(StorageClassError) {
            if parameters[key] != nil { throw fail(key, "does not apply to redundancy \"\(redundancy)\"") }
        }

        guard let kind = parameters["redundancy"] else {
            throw fail("redundancy", "required: one of replicated, erasure, single")
        }
        let redundancy: StorageClass.Redundancy
        switch kind {
        case "replicated":
            try forbid("dataShards", for: kind)
            try forbid("parityShards", for: kind)
            redundancy = .replicated(copies: try integer("copies", default: 3, in: 2...8))
        case "erasure":
            try forbid("copies", for: kind)
            let k = try integer("dataShards", default: 4, in: 1...16)
            let m = try integer("parityShards", default: 2, in: 1...8)
            if k + m > 32 { throw fail("parityShards", "dataShards + parityShards must be at most 32") }
            redundancy = .erasure(dataShards: k, parityShards: m)
        case "single":
            try forbid("copies", for: kind)
            try forbid("dataShards", for: kind)
            try forbid("parityShards", for: kind)
            redundancy = .single
        default:
            throw fail("redundancy", "\"\(kind)\" is not one of replicated, erasure, single")
        }

        let failureDomain = parameters["failureDomain"] ?? defaultFailureDomain
        if failureDomain.isEmpty || failureDomain.utf8.count > 63
            || !failureDomain.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) {
            throw fail("failureDomain", "\"\(failureDomain)\" must be 1-63 letters, digits, '-' or '_'")
        }

        var chunkSize = defaultChunkSizeBytes
        if let text = parameters["chunkSize"] {
            guard let bytes = ByteSize.parse(text).flatMap({ Int(exactly: $0) }) else {
                throw fail("chunkSize", "\"\(text)\" is not a size (bytes, or a number with Ki or Mi)")
            }
            guard bytes > 0 && bytes & (bytes - 1) == 0 else { throw fail("chunkSize", "\"\(text)\" is not a power of two") }
            guard (64 << 10)...(64 << 20) ~= bytes else { throw fail("chunkSize", "\"\(text)\" must be between 64Ki and 64Mi") }
            chunkSize = bytes
        }
        let pgCount = try integer("pgCount", default: defaultPGCount, in: 1...65536)
        return StorageClass(name: name, redundancy: redundancy, failureDomain: failureDomain,
                            chunkSizeBytes: chunkSize, pgCount: pgCount)
    }

}
