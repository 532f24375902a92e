/// Which chunks of one file hold data, and the bytes that counts against the volume's
/// provisioned size: every such chunk whole, the last one up to the file's size — what
/// `st_blocks` reports (`VolumeDatabase.dataBytes`). Holes (chunks never written, or
/// past a truncate that grew the file) count nothing, as on ext4.
///
/// Kept for a file while it is written: the chunks its committed slices hold, plus those of
/// its bytes not committed yet. Every held chunk starts below the file's size (a write
/// grows the size over what it touches; a cut drops the chunks past it), so growing the
/// size only lengthens the last held chunk.
///
/// Pure logic: the caller loads the committed chunks and applies what it returns.
struct FileAllocation: Equatable {
    let chunkSize: Int64
    /// Every chunk below this index holds data (the prefix a file written without holes is).
    private(set) var denseChunks: Int64 = 0
    /// Chunks at or past `denseChunks` that hold data.
    private(set) var sparseChunks: Set<Int64> = []

    init(chunkSize: Int64) {
        precondition(chunkSize > 0)
        self.chunkSize = chunkSize
    }

    func holds(_ chunk: Int64) -> Bool { chunk < denseChunks || sparseChunks.contains(chunk) }

    /// The chunks that `first ..< end` bytes touch.
    func chunks(_ first: Int64, _ end: Int64) -> ClosedRange<Int64>? {
        end > first ? (first / chunkSize)...((end - 1) / chunkSize) : nil
    }

    /// Marks `chunks` as holding data.
    mutating func add<S: Sequence<Int64>>(_ chunks: S) {
        for chunk in chunks where chunk >= denseChunks {
            if chunk == denseChunks {
                denseChunks += 1
                while sparseChunks.remove(denseChunks) != nil { denseChunks += 1 }
            } else {
                sparseChunks.insert(chunk)
            }
        }
    }

    /// The file is cut to `size`: chunks from the one past it on hold nothing.
    mutating func cut(to size: Int64) {
        let kept = size <= 0 ? 0 : (size - 1) / chunkSize + 1
        denseChunks = min(denseChunks, kept)
        sparseChunks = sparseChunks.filter { $0 < kept }
    }

    /// Bytes the file takes at `size`.
    func bytes(size: Int64) -> Int64 {
        guard size > 0 else { return 0 }
        var total = min(size, denseChunks * chunkSize)
        for chunk in sparseChunks { total += extent(chunk, size: size) }
        return total
    }

    /// How many bytes a write of `first ..< end` adds when the file's size is `size` (before
    /// the write): the new chunks it touches, and the last held chunk's growth up to the new
    /// size.
    func growth(writing first: Int64, _ end: Int64, size: Int64) -> Int64 {
        guard let touched = chunks(first, end) else { return 0 }
        let newSize = max(size, end)
        var added = lastChunkGrowth(from: size, to: newSize)
        // The chunks touched, less those already held (the dense prefix, then the rest).
        added += span(touched, size: newSize)
        let denseTouched = touched.lowerBound..<min(touched.upperBound + 1, max(touched.lowerBound, denseChunks))
        if !denseTouched.isEmpty { added -= span(denseTouched.lowerBound...(denseTouched.upperBound - 1), size: newSize) }
        for chunk in sparseChunks where touched.contains(chunk) { added -= extent(chunk, size: newSize) }
        return added
    }

    /// How many bytes growing the file from `size` to `newSize` without writing adds (a
    /// truncate or an fallocate that grows it): only the last held chunk lengthens.
    func lastChunkGrowth(from size: Int64, to newSize: Int64) -> Int64 {
        guard size > 0, newSize > size else { return 0 }
        let last = (size - 1) / chunkSize
        guard holds(last) else { return 0 }
        return extent(last, size: newSize) - extent(last, size: size)
    }

    /// Bytes chunk `chunk` takes when the file's size is `size`.
    private func extent(_ chunk: Int64, size: Int64) -> Int64 {
        max(0, min(chunkSize, size - chunk * chunkSize))
    }

    /// Bytes every chunk of `chunks` would take at `size`.
    private func span(_ chunks: ClosedRange<Int64>, size: Int64) -> Int64 {
        let start = chunks.lowerBound * chunkSize
        let (end, overflow) = (chunks.upperBound + 1).multipliedReportingOverflow(by: chunkSize)
        return max(0, min(size, overflow ? Int64.max : end) - start)
    }
}
