import CFuse3
import Foundation
import Synchronization
import Testing
@testable import FileSystem

/// Which requests the leading thread answers itself and which make it hand the leadership
/// to another thread first: a slow request answered while leading would stall every other
/// request of the mount, a quick one handed over costs a thread wake-up and the spin (see
/// docs/filesystem.md, Serving requests).
@Suite struct FuseLoopTests {
    /// A request as the kernel sends it: `fuse_in_header` (40 bytes), then `body`.
    static func request(opcode: UInt32, node: UInt64 = 7, body: [UInt8] = []) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 40)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
        }
        put(UInt32(40 + body.count), at: 0)
        put(opcode, at: 4)
        put(UInt64(1), at: 8)
        put(node, at: 16)
        return bytes + body
    }

    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    func slow(_ loop: FuseLoop, _ bytes: [UInt8]) -> Bool {
        var copy = bytes
        return copy.withUnsafeMutableBytes { raw in
            var buf = fuse_buf()
            buf.mem = raw.baseAddress
            buf.size = raw.count
            return loop.isSlow(buf)
        }
    }

    @Test func requestsAreRoutedByWhatTheyMayWaitFor() throws {
        let asked = Mutex<[(UInt64, Int)]>([])
        let busyRelease = Mutex<Set<UInt64>>([9])
        // Never run: the routing needs no session.
        let loop = FuseLoop(session: OpaquePointer(bitPattern: 1)!, threads: 1,
                            writeMayWait: { node, size in
                                asked.withLock { $0.append((node, size)) }
                                return size > 4096
                            },
                            releaseMayWait: { node in busyRelease.withLock { $0.contains(node) } })
        // The namespace's requests: on the receiver.
        for opcode: UInt32 in [1, 2, 3, 8, 9, 10, 11, 12, 13, 21, 22, 23, 24, 25, 27, 28, 29, 30, 35, 42, 46] {
            #expect(!slow(loop, Self.request(opcode: opcode, body: [UInt8](repeating: 0, count: 64))), "opcode \(opcode)")
        }
        // Reads, fsync, fallocate, statfs, copy_file_range: to the pool.
        for opcode: UInt32 in [15, 20, 43, 17, 47] {
            #expect(slow(loop, Self.request(opcode: opcode, body: [UInt8](repeating: 0, count: 64))), "opcode \(opcode)")
        }
        // setattr: with FATTR_SIZE (a truncation) to the pool, mode or times not.
        #expect(slow(loop, Self.request(opcode: 4, body: Self.le(UInt32(1 << 3)) + [UInt8](repeating: 0, count: 84))))
        #expect(!slow(loop, Self.request(opcode: 4, body: Self.le(UInt32(1 | 16 | 32)) + [UInt8](repeating: 0, count: 84))))
        // open: with O_TRUNC to the pool.
        #expect(slow(loop, Self.request(opcode: 14, body: Self.le(UInt32(O_WRONLY | O_TRUNC)) + [0, 0, 0, 0])))
        #expect(!slow(loop, Self.request(opcode: 14, body: Self.le(UInt32(O_RDONLY)) + [0, 0, 0, 0])))
        // write: the filesystem says (fuse_write_in: fh, offset, size).
        let write = { (size: UInt32) in Self.request(opcode: 16, node: 5, body: Self.le(UInt64(0)) + Self.le(UInt64(8192)) + Self.le(size) + [UInt8](repeating: 0, count: 20)) }
        #expect(!slow(loop, write(100)))
        #expect(slow(loop, write(1 << 20)))
        #expect(asked.withLock { $0.map { "\($0.0) \($0.1)" } } == ["5 100", "5 1048576"])
        // release: only with a write-back in flight for the node.
        #expect(slow(loop, Self.request(opcode: 18, node: 9, body: [UInt8](repeating: 0, count: 24))))
        #expect(!slow(loop, Self.request(opcode: 18, node: 3, body: [UInt8](repeating: 0, count: 24))))
        // A truncated request is not read past its end.
        #expect(!slow(loop, Array(Self.request(opcode: 4).prefix(40))))
        #expect(slow(loop, Array(Self.request(opcode: 16).prefix(44))), "a write too short to read: to the pool")
    }
}
