import Dispatch
import Foundation
import Metadata

/// Background write-back of closed files. close() (FLUSH, RELEASE) does not write: the
/// file joins `closedDirty`, and a few milliseconds later one write-back takes every such
/// file's buffer, packs their bytes together into as few objects as the chunk size allows
/// (one fsync per shard for a whole batch of small files, where committing at close paid
/// one per file), and commits all their slices, sizes and times in one transaction.
///
/// Ordering and visibility:
/// - A taken buffer sits in `inflight` until its transaction commits: reads and getattr
///   see it (committed data, then in-flight bytes, then newer buffered bytes on top).
/// - Anything that must come after it for the same file — a synchronous commit (fsync,
///   a full chunk, a truncate), deleting the file — waits for it (`waitForWriteBackLocked`),
///   so slices always commit in the order their bytes were written.
/// - If writing the objects or the transaction fails (a full device), the bytes go back
///   into the file's buffer under anything written since, and stay there for the next
///   fsync, commit or unmount to write (and report).
///
/// Crash safety is unchanged: objects are durable before the transaction that makes them
/// live; a crash before it leaves 'writing' objects that the next start collects, and the
/// file as it was at its last commit — POSIX asks for more only after fsync.
extension VolumeFileSystem {
    /// How long a write-back waits for more files to batch, unless enough bytes are waiting.
    static let writeBackDelay: DispatchTimeInterval = .milliseconds(50)
    static let writeBackEagerBytes = 16 << 20

    /// Marks a file's buffered bytes for the write-back and makes sure one is coming.
    func scheduleWriteBackLocked(_ ino: Int64) {
        guard buffers[ino] != nil else { return }
        closedDirty.insert(ino)
        guard !writeBackScheduled else { return }
        writeBackScheduled = true
        let waiting = closedDirty.reduce(0) { $0 + (buffers[$1]?.dirtyBytes ?? 0) }
        let delay: DispatchTimeInterval = waiting >= Self.writeBackEagerBytes ? .nanoseconds(0) : Self.writeBackDelay
        writeBackQueue.asyncAfter(deadline: .now() + delay) { [self] in writeBack() }
    }

    /// Waits (releasing the lock) until no write-back holds `ino`'s bytes.
    func waitForWriteBackLocked(_ ino: Int64) {
        while inflight[ino] != nil { lock.wait() }
    }

    /// Waits until no write-back is in flight at all.
    func waitForAllWriteBacksLocked() {
        while !inflight.isEmpty || writeBackScheduled { lock.wait() }
    }

    /// One write-back: take the closed files' buffers, write their objects without the
    /// lock, commit them together.
    func writeBack() {
        let batch: [(ino: Int64, buffer: FileBuffer)] = lock.withLock {
            writeBackScheduled = false
            var taken: [(Int64, FileBuffer)] = []
            for ino in closedDirty.sorted() where inflight[ino] == nil {
                closedDirty.remove(ino)
                if let buffer = buffers.removeValue(forKey: ino) {
                    inflight[ino] = buffer
                    taken.append((ino, buffer))
                }
            }
            if taken.isEmpty { lock.broadcast() }
            return taken
        }
        guard !batch.isEmpty else { return }
        var pieces: [Piece] = []
        for (ino, buffer) in batch {
            for (chunk, entry) in buffer.chunks.sorted(by: { $0.key < $1.key }) {
                for extent in entry.extents { pieces.append(Piece(ino: ino, chunk: chunk, extent: extent)) }
            }
        }
        let staged: Result<(slices: [SliceRecord], objects: [String]), FSError>
        do throws(FSError) { staged = .success(try stage(pieces)) } catch { staged = .failure(error) }

        lock.lock()
        defer {
            for (ino, _) in batch { inflight[ino] = nil }
            if !closedDirty.isEmpty && !writeBackScheduled {
                writeBackScheduled = true
                writeBackQueue.asyncAfter(deadline: .now() + Self.writeBackDelay) { [self] in writeBack() }
            }
            lock.broadcast()
            lock.unlock()
        }
        do throws(FSError) {
            let (slices, objects) = try staged.get()
            let files = batch.map { Metadata.VolumeDatabase.WrittenFile(ino: $0.ino, size: $0.buffer.size,
                                                                        mtimeNs: $0.buffer.timesSet ? nil : $0.buffer.lastWriteNs) }
            try namespace.commitWrites(files, slices: slices, objects: objects)
            for (ino, buffer) in batch { try? compactCrowdedLocked(ino, chunks: Set(buffer.chunks.keys)) }
            purgeRetiredLocked(all: false)
        } catch {
            // Back into the buffers, under whatever was written since; a later commit retries.
            for (ino, buffer) in batch {
                if let newer = buffers[ino] { buffer.absorb(newer) }
                buffers[ino] = buffer
            }
        }
    }
}
