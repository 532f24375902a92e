import Dispatch
import Foundation
import Metadata

/// Background write-back. close() (FLUSH, RELEASE) does not write: the file joins
/// `queuedWhole`, and 50 ms later one write-back takes every such file's buffer, packs
/// their bytes together into as few objects as the chunk size allows (one fsync per shard
/// for a whole batch of small files, where committing at close paid one per file), and
/// commits all their slices, sizes and times in one transaction. A writer's full chunks
/// (`queuedFull`) and a file over its buffer budget go the same way at once.
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
    /// How long a write-back of closed files waits for more files to batch.
    static let writeBackDelay: DispatchTimeInterval = .milliseconds(50)

    /// What a write-back takes of a file's buffer.
    enum WriteBackScope {
        /// Everything (a closed file, or one holding too many bytes).
        case whole
        /// Only the chunks written whole (the writer is still filling the next one).
        case fullChunks
    }

    /// Queues a file's buffered bytes for the write-back and makes sure one is coming:
    /// `soon`, or after `writeBackDelay` so that more closed files join the batch.
    func queueWriteBackLocked(_ ino: Int64, _ scope: WriteBackScope, soon: Bool = false) {
        guard buffers[ino] != nil else { return }
        switch scope {
        case .whole: queuedWhole.insert(ino)
        case .fullChunks: queuedFull.insert(ino)
        }
        if soon {
            writeBackQueue.async { [self] in writeBack() }
        } else if !writeBackScheduled {
            writeBackScheduled = true
            writeBackQueue.asyncAfter(deadline: .now() + Self.writeBackDelay) { [self] in writeBack() }
        }
    }

    /// A file being deleted: nothing of it is to be written back.
    func forgetWriteBackLocked(_ ino: Int64) {
        queuedWhole.remove(ino)
        queuedFull.remove(ino)
        writeBackFailures[ino] = nil
    }

    /// Waits (releasing the lock) until no write-back holds `ino`'s bytes.
    func waitForWriteBackLocked(_ ino: Int64) {
        while inflight[ino] != nil { lock.wait() }
    }

    /// Waits until no write-back is in flight or due, and no compaction is writing.
    func waitForAllWriteBacksLocked() {
        while !inflight.isEmpty || writeBackScheduled || compactions > 0 { lock.wait() }
    }

    /// Takes what is queued (under the lock): whole buffers, or the full chunks split off a
    /// buffer that keeps the rest. A file with a write-back in flight waits for the next.
    private func takeQueuedLocked() -> [(ino: Int64, buffer: FileBuffer)] {
        var taken: [(Int64, FileBuffer)] = []
        for ino in queuedWhole.sorted() where inflight[ino] == nil {
            queuedWhole.remove(ino)
            queuedFull.remove(ino)
            if let buffer = buffers.removeValue(forKey: ino) { taken.append((ino, buffer)) }
        }
        for ino in queuedFull.sorted() where inflight[ino] == nil {
            queuedFull.remove(ino)
            guard let buffer = buffers[ino] else { continue }
            let full = buffer.chunks.filter { $0.value.covers(Int(chunkSize)) }
            guard let last = full.keys.max() else { continue }
            let part = FileBuffer(size: min(buffer.size, (last + 1) * chunkSize))
            part.chunks = full
            part.lastWriteNs = buffer.lastWriteNs
            part.timesSet = buffer.timesSet
            part.journalSequence = nil  // a part: its commit settles nothing…
            for chunk in full.keys { buffer.chunks[chunk] = nil }
            if buffer.chunks.isEmpty && buffer.size <= part.size {
                buffers[ino] = nil
                part.journalSequence = buffer.journalSequence  // …unless nothing is left
            }
            taken.append((ino, part))
        }
        for (ino, buffer) in taken { inflight[ino] = buffer }
        return taken
    }

    /// One write-back: take what is queued, write the objects without the lock, commit
    /// them in one transaction.
    func writeBack() {
        let batch: [(ino: Int64, buffer: FileBuffer)] = lock.withLock {
            writeBackScheduled = false
            let taken = takeQueuedLocked()
            if taken.isEmpty { lock.broadcast() }
            return taken
        }
        guard !batch.isEmpty else { return }
        let pieces = batch.flatMap { $0.buffer.pieces(of: $0.ino) }
        let staged: Result<(slices: [SliceRecord], objects: [String]), FSError>
        do throws(FSError) { staged = .success(try stage(pieces)) } catch { staged = .failure(error) }

        lock.lock()
        defer {
            if !(queuedWhole.isEmpty && queuedFull.isEmpty) && !writeBackScheduled {
                writeBackScheduled = true
                writeBackQueue.asyncAfter(deadline: .now() + Self.writeBackDelay) { [self] in writeBack() }
            }
            lock.unlock()
        }
        do throws(FSError) {
            let (slices, objects) = try staged.get()
            defer { for (ino, _) in batch { sliceCache.invalidate(ino) } }
            retireLocked(try namespace.commitWrites(batch.map { $0.buffer.written($0.ino) }, slices: slices, objects: objects))
        } catch {
            // Back into the buffers, under whatever was written since; the file's next
            // write, close or fsync reports the failure, and its next commit retries.
            for (ino, buffer) in batch {
                if let newer = buffers[ino] { buffer.absorb(newer) }
                buffers[ino] = buffer
                writeBackFailures[ino] = error
                inflight[ino] = nil
            }
            lock.broadcast()
            return
        }
        for (ino, _) in batch { inflight[ino] = nil }
        settleLocked(batch.map { ($0.ino, $0.buffer.journalSequence) })
        lock.broadcast()
        // After the bytes are out of flight: compaction lets go of the lock while it
        // writes, and nothing need wait for it.
        for (ino, buffer) in batch { try? compactCrowdedLocked(ino, chunks: Set(buffer.chunks.keys)) }
        purgeRetiredLocked(all: false)
    }
}
