/// The hash functions placement is built on.
///
/// Placement must give the same answer on every run, machine and release, so it never
/// uses Swift's `Hasher` (randomly seeded per process) or anything from libm. These
/// functions are fixed forever: changing one changes where every PG lives. Their exact
/// definitions are in docs/placement.md and pinned by known-answer tests.
public enum StableHash {
    /// The 64-bit finalizer of MurmurHash3 (`fmix64`): a bijection on `UInt64` whose
    /// output bits each depend on every input bit.
    @inlinable
    public static func mix64(_ value: UInt64) -> UInt64 {
        var x = value
        x ^= x >> 33
        x &*= 0xff51_afd7_ed55_8ccd
        x ^= x >> 33
        x &*= 0xc4ce_b9fe_1a85_ec53
        x ^= x >> 33
        return x
    }

    /// 64-bit FNV-1a over the UTF-8 bytes of `text`, then `mix64` (FNV alone mixes
    /// short strings poorly in the high bits). Names of devices and buckets go through this.
    public static func name(_ text: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h &*= 0x0000_0100_0000_01b3
        }
        return mix64(h)
    }

    /// The per-pool seed: `mix64(poolID ^ 0x6265_7274_68)` ("berth" in ASCII).
    @inlinable
    public static func poolSeed(_ poolID: UInt32) -> UInt64 {
        mix64(UInt64(poolID) ^ 0x62_6572_7468)
    }

    /// The draw key for one attempt at one position of one PG:
    /// `mix64(seed ^ mix64(pg << 16 | position << 8 | round))`.
    @inlinable
    public static func drawKey(seed: UInt64, pg: UInt32, position: UInt8, round: UInt8) -> UInt64 {
        mix64(seed ^ mix64(UInt64(pg) << 16 | UInt64(position) << 8 | UInt64(round)))
    }

    /// The straw drawn by one child for a draw key: `mix64(key ^ childHash)`.
    @inlinable
    public static func straw(key: UInt64, child: UInt64) -> UInt64 {
        mix64(key ^ child)
    }

    /// Byte-wise order of UTF-8 forms, the order placement sorts names in. Unlike `String`'s
    /// `<` it cannot change with a Unicode version.
    public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}
