import CISAL

/// CRC-32C (Castagnoli), the checksum of every shard. Computed by ISA-L's
/// `crc32_iscsi`, which uses the SSE4.2 CRC instruction (and PCLMUL folding) when present.
public enum CRC32C {
    /// The standard CRC-32C of `bytes` (initial value and final XOR 0xFFFFFFFF), or its
    /// continuation from `previous` for data fed in pieces.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        var offset = 0
        while offset < bytes.count {
            let n = min(bytes.count - offset, 1 << 30)  // ISA-L takes an int length
            crc = crc32_iscsi(
                UnsafeMutablePointer(mutating: bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self)),
                Int32(n), crc)
            offset += n
        }
        return ~crc
    }

    public static func checksum(_ bytes: [UInt8], continuing previous: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: previous) }
    }
}
