import Codec

/// The 64-byte header in front of every shard file. Little-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `BERTHSH2` (`BERTHSH1`: the first format, still read) |
/// | 8 | 8 | payload length |
/// | 16 | 4 | checksum: v2, CRC32C of the block table; v1, CRC32C of the payload |
/// | 20 | 4 | position (replica or EC shard index) |
/// | 24 | 8 | object size (bytes of the whole object, for EC decode) |
/// | 32 | 16 | object id (high, low) |
/// | 48 | 12 | reserved, zero |
/// | 60 | 4 | CRC32C of bytes 0..<60 |
///
/// A v2 file is the header, then the block table — one little-endian CRC32C per 4 KiB
/// block of the payload (the last block may be short) — then the payload. A reader can
/// verify any range of blocks alone: read the header and table, check the table against
/// the header, then the blocks against the table. v1 files (header, payload) verify only
/// whole. The id and position must match the file name.
public struct ShardHeader: Equatable, Sendable {
    public static let size = 64
    static let magicV1: [UInt8] = Array("BERTHSH1".utf8)
    static let magicV2: [UInt8] = Array("BERTHSH2".utf8)
    /// Bytes per checksummed block of a v2 payload.
    public static let blockSize = 4096

    public var payloadLength: UInt64
    /// v2: CRC32C of the block table; v1: CRC32C of the whole payload.
    public var checksum: UInt32
    public var position: UInt32
    public var objectSize: UInt64
    public var object: ObjectID
    /// false only for v1 files, whose payload has one checksum and no block table.
    public var hasBlockTable: Bool = true

    public init(payloadLength: UInt64, checksum: UInt32, position: UInt32, objectSize: UInt64, object: ObjectID) {
        self.payloadLength = payloadLength
        self.checksum = checksum
        self.position = position
        self.objectSize = objectSize
        self.object = object
    }

    /// Blocks in a payload of `length` bytes (v2).
    public static func blockCount(payloadLength length: Int) -> Int { (length + blockSize - 1) / blockSize }

    /// Bytes of a v2 shard file holding `length` payload bytes: header, block table, payload.
    public static func fileBytes(payloadLength length: Int) -> Int { size + 4 * blockCount(payloadLength: length) + length }

    /// Bytes of this file's block table (0 for v1).
    public var tableBytes: Int { hasBlockTable ? 4 * Self.blockCount(payloadLength: Int(payloadLength)) : 0 }

    /// Where the payload starts in the file.
    public var payloadOffset: Int { Self.size + tableBytes }

    /// Always the current format (v2).
    public func encoded() -> [UInt8] {
        precondition(hasBlockTable, "only the current format is written")
        var bytes = Self.magicV2
        bytes.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        put(payloadLength)
        put(checksum)
        put(position)
        put(objectSize)
        put(object.high)
        put(object.low)
        bytes += [UInt8](repeating: 0, count: 12)
        put(CRC32C.checksum(bytes))
        precondition(bytes.count == Self.size)
        return bytes
    }

    /// Parses and checks a header; the error string says what is wrong.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Result<ShardHeader, HeaderError> {
        guard bytes.count >= size else { return .failure(.init(reason: "file is \(bytes.count) bytes, shorter than the header")) }
        let magic = Array(bytes[0..<8])
        guard magic == magicV2 || magic == magicV1 else { return .failure(.init(reason: "bad magic")) }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            var v: T = 0
            withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + MemoryLayout<T>.size)])) }
            return T(littleEndian: v)
        }
        let stored = get(60, UInt32.self)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60]))
        guard stored == computed else { return .failure(.init(reason: "header checksum mismatch")) }
        var header = ShardHeader(
            payloadLength: get(8, UInt64.self), checksum: get(16, UInt32.self), position: get(20, UInt32.self),
            objectSize: get(24, UInt64.self), object: ObjectID(high: get(32, UInt64.self), low: get(40, UInt64.self)))
        header.hasBlockTable = magic == magicV2
        guard header.payloadLength < 1 << 40 else { return .failure(.init(reason: "payload length \(header.payloadLength) is implausible")) }
        return .success(header)
    }

    public struct HeaderError: Error, Equatable { public let reason: String }
}
