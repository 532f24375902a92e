import Testing
import TestSupport
@testable import FileSystem

@Suite struct DirtyExtentsTests {
    /// Thousands of random writes (appends, overwrites, bridges between extents, writes
    /// before the first) against a plain array: same bytes, same covered ranges, extents
    /// sorted, disjoint and never adjacent, byte count exact.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func matchesAPlainBuffer(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        let size = 1 << 16
        var model = [UInt8](repeating: 0, count: size)
        var covered = [Bool](repeating: false, count: size)
        var extents = DirtyExtents()
        for step in 0..<3000 {
            let length = Int(rng.next() % 3 == 0 ? rng.next() % 9000 + 1 : rng.next() % 300 + 1)
            let offset = Int(rng.next() % UInt64(size - length))
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            bytes.withUnsafeBytes { extents.write(at: offset, $0) }
            for i in 0..<length { model[offset + i] = bytes[i]; covered[offset + i] = true }
            if step % 100 == 99 || step < 20 {
                var result = [UInt8](repeating: 0, count: size)
                result.withUnsafeMutableBytes { extents.overlay(window: 0..<size, onto: $0, at: 0) }
                #expect(result == zip(model, covered).map { $1 ? $0 : 0 })
                #expect(extents.byteCount == covered.filter { $0 }.count)
                for (a, b) in zip(extents.extents, extents.extents.dropFirst()) { #expect(a.end < b.start) }
                var expectedRanges: [Range<Int>] = []
                var i = 0
                while i < size {
                    if covered[i] { let s = i; while i < size && covered[i] { i += 1 }; expectedRanges.append(s..<i) } else { i += 1 }
                }
                #expect(extents.ranges == expectedRanges)
                // A clipped copy overlays the same bytes inside its window.
                let window = 1000..<40_000
                var clippedResult = [UInt8](repeating: 0, count: window.count)
                clippedResult.withUnsafeMutableBytes { extents.clipped(to: window).overlay(window: window, onto: $0, at: 0) }
                #expect(clippedResult == Array(result[window]))
            }
        }
    }

    @Test func sequentialWritesGrowOneExtentAndCoverTheChunk() {
        var extents = DirtyExtents()
        let block = [UInt8](repeating: 7, count: 1024)
        for i in 0..<64 { block.withUnsafeBytes { extents.write(at: i * 1024, $0) } }
        #expect(extents.extents.count == 1)
        #expect(extents.covers(64 * 1024))
        #expect(!extents.covers(128 * 1024))
    }
}

