import Codec

/// The 64-byte header in front of every shard file. Little-endian:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `BERTHSH1` |
/// | 8 | 8 | payload length |
/// | 16 | 4 | payload CRC32C |
/// | 20 | 4 | position (replica or EC shard index) |
/// | 24 | 8 | object size (bytes of the whole object, for EC decode) |
/// | 32 | 16 | object id (high, low) |
/// | 48 | 12 | reserved, zero |
/// | 60 | 4 | CRC32C of bytes 0..<60 |
///
/// Both checksums are verified on every read; the id and position must match the file name.
public struct ShardHeader: Equatable, Sendable {
    public static let size = 64
    static let magic: [UInt8] = Array("BERTHSH1".utf8)

    public var payloadLength: UInt64
    public var payloadCRC: UInt32
    public var position: UInt32
    public var objectSize: UInt64
    public var object: ObjectID

    public init(payloadLength: UInt64, payloadCRC: UInt32, position: UInt32, objectSize: UInt64, object: ObjectID) {
        self.payloadLength = payloadLength
        self.payloadCRC = payloadCRC
        self.position = position
        self.objectSize = objectSize
        self.object = object
    }

    public func encoded() -> [UInt8] {
        var bytes = Self.magic
        bytes.reserveCapacity(Self.size)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        put(payloadLength)
        put(payloadCRC)
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
        guard Array(bytes[0..<8]) == magic else { return .failure(.init(reason: "bad magic")) }
        func get<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            var v: T = 0
            withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + MemoryLayout<T>.size)])) }
            return T(littleEndian: v)
        }
        let stored = get(60, UInt32.self)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60]))
        guard stored == computed else { return .failure(.init(reason: "header checksum mismatch")) }
        return .success(ShardHeader(
            payloadLength: get(8, UInt64.self), payloadCRC: get(16, UInt32.self), position: get(20, UInt32.self),
            objectSize: get(24, UInt64.self), object: ObjectID(high: get(32, UInt64.self), low: get(40, UInt64.self))))
    }

    public struct HeaderError: Error, Equatable { public let reason: String }
}
