/// The bytes written to one chunk of a file and not yet committed: sorted, disjoint,
/// non-adjacent extents, each owning its bytes. Memory is what was written — a random
/// 4 KiB write costs 4 KiB, not a chunk-sized buffer — and a sequential writer grows one
/// extent in place. Later writes replace the bytes they overlap. Pure logic, no I/O.
struct DirtyExtents: Sendable {
    struct Extent: Sendable, Equatable {
        var start: Int
        var bytes: [UInt8]
        var end: Int { start + bytes.count }
        var range: Range<Int> { start..<end }
    }

    private(set) var extents: [Extent] = []
    /// Bytes held (the sum of the extents' lengths).
    private(set) var byteCount = 0
    /// The chunk's size: a large write reserves room up to it, so a sequential writer's
    /// extent grows in place instead of being copied at every doubling.
    let limit: Int

    init(limit: Int = 0) { self.limit = limit }

    var isEmpty: Bool { extents.isEmpty }
    var ranges: [Range<Int>] { extents.map(\.range) }

    /// Whether the extents cover exactly [0, size): the chunk is whole and can go out.
    func covers(_ size: Int) -> Bool { extents.count == 1 && extents[0].start == 0 && extents[0].bytes.count == size }

    /// Records `source` written at `offset`, replacing what it overlaps and merging with
    /// the extents it touches.
    mutating func write(at offset: Int, _ source: UnsafeRawBufferPointer) {
        precondition(offset >= 0)
        guard !source.isEmpty else { return }
        let end = offset + source.count
        // The first extent that ends at or after `offset`, and the first that starts after `end`.
        var low = 0, high = extents.count
        while low < high {
            let mid = (low + high) / 2
            if extents[mid].end < offset { low = mid + 1 } else { high = mid }
        }
        let first = low
        var last = first
        while last < extents.count && extents[last].start <= end { last += 1 }
        if first == last {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(source.count >= 64 << 10 ? max(source.count, limit - offset) : source.count)
            bytes.append(contentsOf: source)
            extents.insert(Extent(start: offset, bytes: bytes), at: first)
            byteCount += source.count
            return
        }
        let removed = extents[first..<last].reduce(0) { $0 + $1.bytes.count }
        let start = min(offset, extents[first].start)
        let mergedEnd = max(end, extents[last - 1].end)
        var merged: [UInt8] = []
        if extents[first].start == start {
            swap(&merged, &extents[first].bytes)  // reuse the first extent's storage, no copy
            if last == first + 1 && offset == start + merged.count {
                merged.append(contentsOf: source)  // the sequential case: a pure append
            } else {
                if merged.count < mergedEnd - start { merged.append(contentsOf: repeatElement(0, count: mergedEnd - start - merged.count)) }
                for extent in extents[(first + 1)..<last] { Self.copy(extent.bytes, into: &merged, at: extent.start - start) }
                merged.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset - start).copyMemory(from: source.baseAddress!, byteCount: source.count) }
            }
        } else {
            merged = [UInt8](repeating: 0, count: mergedEnd - start)
            for extent in extents[first..<last] { Self.copy(extent.bytes, into: &merged, at: extent.start - start) }
            merged.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: offset - start).copyMemory(from: source.baseAddress!, byteCount: source.count) }
        }
        extents.replaceSubrange(first..<last, with: [Extent(start: start, bytes: merged)])
        byteCount += merged.count - removed
    }

    private static func copy(_ bytes: [UInt8], into target: inout [UInt8], at offset: Int) {
        bytes.withUnsafeBytes { b in
            target.withUnsafeMutableBytes { t in t.baseAddress!.advanced(by: offset).copyMemory(from: b.baseAddress!, byteCount: b.count) }
        }
    }

    /// Copies the held bytes inside `window` onto `result`, where `result[base]` is the
    /// byte at `window.lowerBound`.
    func overlay(window: Range<Int>, onto result: UnsafeMutableRawBufferPointer, at base: Int) {
        precondition(window.isEmpty || (base >= 0 && base + window.count <= result.count))
        for extent in extents where extent.start < window.upperBound && extent.end > window.lowerBound {
            let overlap = extent.range.clamped(to: window)
            let from = overlap.lowerBound - extent.start
            extent.bytes.withUnsafeBytes { bytes in
                (result.baseAddress! + base + overlap.lowerBound - window.lowerBound)
                    .copyMemory(from: bytes.baseAddress! + from, byteCount: overlap.count)
            }
        }
    }

    /// Only the extents' parts inside `window` (what a reader needs, copied cheaply).
    func clipped(to window: Range<Int>) -> DirtyExtents {
        var result = DirtyExtents()
        for extent in extents where extent.start < window.upperBound && extent.end > window.lowerBound {
            let overlap = extent.range.clamped(to: window)
            let from = overlap.lowerBound - extent.start
            result.extents.append(Extent(start: overlap.lowerBound, bytes: Array(extent.bytes[from..<(from + overlap.count)])))
            result.byteCount += overlap.count
        }
        return result
    }
}
