import Testing
import Codec

/// Oracle: any k of the k + m shards give back the object, for every choice of k.
@Suite struct ReedSolomonTests {
    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    static func subsets(of n: Int, size: Int) -> [[Int]] {
        if size == 0 { return [[]] }
        if n < size { return [] }
        return subsets(of: n - 1, size: size) + subsets(of: n - 1, size: size - 1).map { $0 + [n - 1] }
    }

    @Test(arguments: [0, 1, 63, 64, 65, 255, 256, 257, 4095, 65_537, (1 << 20) + 3])
    func fourPlusTwoDecodesFromEveryFourShards(size: Int) throws {
        let rs = try ReedSolomon(k: 4, m: 2)
        let object = Self.bytes(size, seed: UInt64(size))
        let shards = rs.encode(object)
        #expect(shards.count == 6)
        #expect(shards.allSatisfy { $0.count == rs.shardLength(objectSize: size) })
        // Data shards are the object itself, in order, zero-padded.
        #expect(Array(shards.prefix(4).joined().prefix(size)) == object)
        let combos = Self.subsets(of: 6, size: 4)
        #expect(combos.count == 15)
        for combo in combos {
            let available = Dictionary(uniqueKeysWithValues: combo.map { ($0, shards[$0]) })
            #expect(try rs.decode(available: available, objectSize: size) == object, "from shards \(combo)")
            // Lost shards, parity included, are rebuilt bit for bit.
            let missing = (0..<6).filter { !combo.contains($0) }
            let rebuilt = try rs.reconstruct(available: available, wanted: missing)
            for w in missing { #expect(rebuilt[w] == shards[w], "shard \(w) from \(combo)") }
        }
    }

    @Test(arguments: [(1, 0), (1, 2), (2, 1), (3, 3), (6, 3), (10, 4), (8, 8)])
    func otherGeometries(k: Int, m: Int) throws {
        let rs = try ReedSolomon(k: k, m: m)
        let object = Self.bytes(10_000 + k, seed: UInt64(k * 31 + m))
        let shards = rs.encode(object)
        for combo in Self.subsets(of: k + m, size: k).prefix(40) {
            let available = Dictionary(uniqueKeysWithValues: combo.map { ($0, shards[$0]) })
            #expect(try rs.decode(available: available, objectSize: object.count) == object)
        }
    }

    @Test func parityDependsOnEveryDataByte() throws {
        let rs = try ReedSolomon(k: 4, m: 2)
        var object = Self.bytes(4096, seed: 1)
        let before = rs.encode(object)
        object[3000] ^= 0x40
        let after = rs.encode(object)
        #expect(before[4] != after[4] && before[5] != after[5])
    }

    @Test func errors() throws {
        #expect(throws: ReedSolomon.Error.invalidParameters(k: 0, m: 2)) { _ = try ReedSolomon(k: 0, m: 2) }
        #expect(throws: ReedSolomon.Error.invalidParameters(k: 200, m: 56)) { _ = try ReedSolomon(k: 200, m: 56) }
        let rs = try ReedSolomon(k: 4, m: 2)
        let shards = rs.encode(Self.bytes(1000, seed: 2))
        #expect(throws: ReedSolomon.Error.notEnoughShards(have: 3, need: 4)) {
            _ = try rs.decode(available: [0: shards[0], 1: shards[1], 5: shards[5]], objectSize: 1000)
        }
        #expect(throws: ReedSolomon.Error.shardLengthMismatch(index: 2, length: 10, expected: shards[0].count)) {
            _ = try rs.decode(available: [0: shards[0], 1: shards[1], 2: Array(shards[2].prefix(10)), 3: shards[3]], objectSize: 1000)
        }
        #expect(throws: ReedSolomon.Error.shardIndexOutOfRange(9)) {
            _ = try rs.reconstruct(available: [0: shards[0], 1: shards[1], 2: shards[2], 3: shards[3]], wanted: [9])
        }
    }
}
