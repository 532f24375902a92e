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

    /// The CRC-32C of each `blockSize`-byte block of `bytes` (the last block may be short),
    /// written into `table` (one entry per block). Lets a reader verify any block range alone.
    public static func blockChecksums(_ bytes: UnsafeRawBufferPointer, blockSize: Int, into table: UnsafeMutableBufferPointer<UInt32>) {
        let blocks = (bytes.count + blockSize - 1) / blockSize
        precondition(table.count >= blocks, "checksum table too small")
        for block in 0..<blocks {
            let start = block * blockSize
            table[block] = checksum(UnsafeRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + blockSize)]))
        }
    }

    public static func blockChecksums(_ bytes: UnsafeRawBufferPointer, blockSize: Int) -> [UInt32] {
        let blocks = (bytes.count + blockSize - 1) / blockSize
        return [UInt32](unsafeUninitializedCapacity: blocks) { table, count in
            blockChecksums(bytes, blockSize: blockSize, into: table)
            count = blocks
        }
    }
}
