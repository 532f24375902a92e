import CISAL

/// Reed–Solomon erasure coding over GF(2^8) with a Cauchy matrix, computed by ISA-L.
///
/// An object of `size` bytes becomes `k` data shards (the object split in order, the last
/// one zero-padded) and `m` parity shards, each `shardLength(size)` bytes. Any `k` of the
/// `k + m` shards give back the object: every k×k submatrix of a Cauchy generator is
/// invertible (unlike ISA-L's Vandermonde `gf_gen_rs_matrix` for some k, m).
public struct ReedSolomon: Sendable {
    public let k: Int
    public let m: Int
    /// (k + m) × k generator: identity on top, Cauchy rows below.
    private let matrix: [UInt8]
    /// ISA-L's expanded tables for the m parity rows.
    private let parityTables: [UInt8]

    /// Shards are padded to a multiple of this, so ISA-L's vector paths see whole blocks.
    public static let alignment = 64

    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case invalidParameters(k: Int, m: Int)
        case notEnoughShards(have: Int, need: Int)
        case shardLengthMismatch(index: Int, length: Int, expected: Int)
        case shardIndexOutOfRange(Int)

        public var description: String {
            switch self {
            case .invalidParameters(let k, let m): "erasure coding needs 1 <= k, 0 <= m, k + m <= 255; got k=\(k) m=\(m)"
            case .notEnoughShards(let have, let need): "only \(have) of the \(need) shards needed to reconstruct are readable"
            case .shardLengthMismatch(let index, let length, let expected): "shard \(index) is \(length) bytes, expected \(expected)"
            case .shardIndexOutOfRange(let index): "shard index \(index) is out of range"
            }
        }
    }

    public init(k: Int, m: Int) throws(Error) {
        guard k >= 1, m >= 0, k + m <= 255 else { throw .invalidParameters(k: k, m: m) }
        self.k = k
        self.m = m
        var matrix = [UInt8](repeating: 0, count: (k + m) * k)
        gf_gen_cauchy1_matrix(&matrix, Int32(k + m), Int32(k))
        self.matrix = matrix
        var tables = [UInt8](repeating: 0, count: max(1, 32 * k * m))
        if m > 0 {
            matrix.withUnsafeBufferPointer { a in
                ec_init_tables(Int32(k), Int32(m), UnsafeMutablePointer(mutating: a.baseAddress! + k * k), &tables)
            }
        }
        self.parityTables = tables
    }

    /// Bytes in each shard of an object of `size` bytes.
    public func shardLength(objectSize size: Int) -> Int {
        let perShard = (size + k - 1) / k
        return (perShard + Self.alignment - 1) / Self.alignment * Self.alignment
    }

    /// The k + m shards of `object`.
    public func encode(_ object: UnsafeRawBufferPointer) -> [[UInt8]] {
        let length = shardLength(objectSize: object.count)
        var stripe = [UInt8](repeating: 0, count: (k + m) * length)
        stripe.withUnsafeMutableBytes { buffer in
            if object.count > 0 { buffer.baseAddress!.copyMemory(from: object.baseAddress!, byteCount: object.count) }
            encodeParity(stripe: buffer, shardLength: length)
        }
        return (0..<(k + m)).map { Array(stripe[($0 * length)..<(($0 + 1) * length)]) }
    }

    public func encode(_ object: [UInt8]) -> [[UInt8]] { object.withUnsafeBytes { encode($0) } }

    /// The hot path, allocation-free: `stripe` holds k + m shards of `shardLength` bytes
    /// back to back, the k data shards filled in; this computes the m parity shards after them.
    public func encodeParity(stripe: UnsafeMutableRawBufferPointer, shardLength length: Int) {
        precondition(stripe.count >= (k + m) * length, "stripe too small")
        guard m > 0 && length > 0 else { return }
        let base = stripe.baseAddress!.assumingMemoryBound(to: UInt8.self)
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<UInt8>?.self, capacity: k + m) { pointers in
            for i in 0..<(k + m) { pointers[i] = base + i * length }
            parityTables.withUnsafeBufferPointer { tables in
                ec_encode_data(Int32(length), Int32(k), Int32(m), UnsafeMutablePointer(mutating: tables.baseAddress!),
                               pointers.baseAddress!, pointers.baseAddress! + k)
            }
        }
    }

    /// Rebuilds the shards at `wanted` (data or parity) from at least k shards in
    /// `available` (index → bytes, all the same length).
    public func reconstruct(available: [Int: [UInt8]], wanted: [Int]) throws(Error) -> [Int: [UInt8]] {
        for index in wanted where index < 0 || index >= k + m { throw .shardIndexOutOfRange(index) }
        let sources = available.keys.sorted().prefix(k)
        guard sources.count == k else { throw .notEnoughShards(have: available.count, need: k) }
        let length = available[sources.first!]!.count
        for (index, shard) in available {
            if index < 0 || index >= k + m { throw .shardIndexOutOfRange(index) }
            if shard.count != length { throw .shardLengthMismatch(index: index, length: shard.count, expected: length) }
        }
        var result: [Int: [UInt8]] = [:]
        let missing = wanted.filter { available[$0] == nil }
        for index in wanted where available[index] != nil { result[index] = available[index]! }
        if missing.isEmpty { return result }

        // Rows of the generator for the k sources, inverted: data = inverse × sources.
        var sub = [UInt8](repeating: 0, count: k * k)
        for (row, source) in sources.enumerated() {
            for column in 0..<k { sub[row * k + column] = matrix[source * k + column] }
        }
        var inverse = [UInt8](repeating: 0, count: k * k)
        let status = gf_invert_matrix(&sub, &inverse, Int32(k))
        precondition(status == 0, "a Cauchy submatrix was singular")
        // Shard w = generator row w × data = (generator row w × inverse) × sources.
        var rows = [UInt8](repeating: 0, count: missing.count * k)
        for (r, w) in missing.enumerated() {
            for column in 0..<k {
                var acc: UInt8 = 0
                for t in 0..<k { acc ^= gf_mul(matrix[w * k + t], inverse[t * k + column]) }
                rows[r * k + column] = acc
            }
        }
        var outputs = [UInt8](repeating: 0, count: missing.count * length)
        if length > 0 {
            var tables = [UInt8](repeating: 0, count: 32 * k * missing.count)
            ec_init_tables(Int32(k), Int32(missing.count), &rows, &tables)
            let sourceShards = sources.map { available[$0]! }
            Self.withPointers(sourceShards) { sourcePointers in
                outputs.withUnsafeMutableBufferPointer { out in
                    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<UInt8>?.self, capacity: missing.count) { outPointers in
                        for r in 0..<missing.count { outPointers[r] = out.baseAddress! + r * length }
                        ec_encode_data(Int32(length), Int32(k), Int32(missing.count), &tables, sourcePointers, outPointers.baseAddress!)
                    }
                }
            }
        }
        for (r, w) in missing.enumerated() { result[w] = Array(outputs[(r * length)..<((r + 1) * length)]) }
        return result
    }

    /// The object of `size` bytes from at least k shards.
    public func decode(available: [Int: [UInt8]], objectSize size: Int) throws(Error) -> [UInt8] {
        let data = try reconstruct(available: available, wanted: Array(0..<k))
        let length = shardLength(objectSize: size)
        var object = [UInt8]()
        object.reserveCapacity(size)
        for i in 0..<k {
            let take = min(length, size - object.count)
            if take <= 0 { break }
            object += data[i]![0..<take]
        }
        return object
    }

    // ISA-L takes `unsigned char **` even for read-only sources: nest read-only accesses.
    private static func withPointers<R>(_ arrays: [[UInt8]], _ body: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>) -> R) -> R {
        var pointers = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: arrays.count)
        func bind(_ i: Int) -> R {
            if i == arrays.count { return pointers.withUnsafeMutableBufferPointer { body($0.baseAddress!) } }
            return arrays[i].withUnsafeBufferPointer { b in
                pointers[i] = UnsafeMutablePointer(mutating: b.baseAddress)
                return bind(i + 1)
            }
        }
        return bind(0)
    }
}
