import Metadata

/// `lseek` with `SEEK_DATA` and `SEEK_HOLE` over a file's chunks: a chunk holding any written
/// bytes counts as data from its first byte to its last, a chunk with none as a hole (POSIX
/// lets a filesystem report holes as data, never the reverse). The end of the file is a
/// hole; an offset at or past it is `ENXIO`, as on ext4.
public enum SparseSeek {
    public static let data: Int32 = 3, hole: Int32 = 4  // SEEK_DATA, SEEK_HOLE

    /// The offset `whence` finds from `offset` in a file of `size` bytes whose chunks of
    /// `chunkSize` bytes listed in `dataChunks` hold data. Steps only over data chunks, so a
    /// huge hole costs nothing.
    public static func resolve(offset: Int64, whence: Int32, size: Int64, chunkSize: Int64,
                               dataChunks: Set<Int64>) throws(FSError) -> Int64 {
        guard whence == data || whence == hole else { throw .invalid }
        guard offset >= 0 else { throw .invalid }
        guard offset < size else { throw .noSuchAddress }
        let first = offset / chunkSize, last = (size - 1) / chunkSize
        if whence == data {
            guard let chunk = dataChunks.filter({ $0 >= first && $0 <= last }).min() else { throw .noSuchAddress }
            return max(offset, chunk * chunkSize)
        }
        var chunk = first
        while chunk <= last && dataChunks.contains(chunk) { chunk += 1 }
        return chunk > last ? size : max(offset, chunk * chunkSize)
    }
}
