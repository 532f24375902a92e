/// The 16-bit node number inside every object id this daemon makes, derived from its
/// `--node-id` (FNV-1a, folded): daemons with different node ids make different object ids
/// even in the same millisecond with the same sequence number, unless their numbers collide
/// (1 in 65,536 per pair).
enum NodeNumber {
    static func of(_ nodeID: String) -> UInt16 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in nodeID.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let folded = UInt16(truncatingIfNeeded: hash ^ (hash >> 16) ^ (hash >> 32) ^ (hash >> 48))
        return folded
    }
}
