import Foundation
import Metadata

/// The filesystem's side of the `WriteJournal`: replaying what a killed predecessor left,
/// settling files as their buffers commit, journaling times set on buffered files, ending.
///
/// Settling follows one invariant: a file's unsettled writes are exactly its buffer plus the
/// one in flight. A buffer taken whole and committed (its `journalSequence`) settles the file
/// through its latest write; a part split off (full chunks) settles nothing; a deleted file
/// is settled through everything once its deletion is committed.
extension VolumeFileSystem {
    /// Replays the journal in `directory` — every write and time a killed predecessor
    /// acknowledged and did not commit, in order (a file deleted since has none) — through a
    /// new journal, so that the replayed writes are kept until committed like any others;
    /// then commits them. With `journaling` off, the journal ends once they are committed.
    func startJournal(_ directory: String, journaling: Bool) throws(FSError) {
        self.journaling = journaling
        let (entries, sequence) = WriteJournal.pending(in: directory)
        if entries.isEmpty && !journaling {
            try? FileManager.default.removeItem(atPath: directory)
            return
        }
        do {
            journal = try WriteJournal(directory: directory, after: sequence)
        } catch {
            // Without a journal to keep them in, the replayed writes must commit before the
            // old one goes; if they cannot, the mount fails and the old journal stays.
            FuseMount.log("volume \(volume): writes are not journaled: \(error)")
            try replay(entries)
            try syncAll()
            try? FileManager.default.removeItem(atPath: directory)
            return
        }
        try replay(entries)
        journal?.removeReplayedSegments()
        // Kept in the journal and the buffers if this fails (a full device, say): committed
        // later, as any write-back that failed; the session serves meanwhile.
        do { try syncAll() } catch {
            FuseMount.log("volume \(volume): the replayed writes are not committed yet: \(error)")
        }
        lock.withLock {
            writeBackFailures.removeAll()
            endJournalIfUnwantedLocked()
        }
        if replayedWrites > 0 { FuseMount.log("volume \(volume): replayed \(replayedWrites) writes a killed daemon had acknowledged") }
    }

    private func replay(_ entries: [WriteJournal.Entry]) throws(FSError) {
        for entry in entries {
            do throws(FSError) {
                switch entry {
                case .write(let write):
                    var done = 0
                    while done < write.bytes.count {
                        let result: Result<Int, FSError> = write.bytes.withUnsafeBytes { all in
                            let rest = UnsafeRawBufferPointer(rebasing: all[done...])
                            do throws(FSError) { return .success(try self.write(write.ino, offset: write.offset + Int64(done), bytes: rest)) } catch { return .failure(error) }
                        }
                        done += try result.get()
                    }
                    replayedWrites += 1
                case .times(let ino, let atime, let mtime):
                    _ = try setattr(ino, atimeNs: atime, mtimeNs: mtime)
                }
            } catch {
                // A file deleted since has nothing to replay; a write that no longer fits
                // (the volume full of later data) cannot be replayed, and is said so.
                if error == .noEntry || error == .isDirectory { continue }
                if error == .noSpace || error == .fileTooLarge {
                    FuseMount.log("volume \(volume): a replayed write to inode \(entry.ino) does not fit: \(error)")
                    continue
                }
                throw error
            }
        }
    }

    /// Files whose buffers committed, each through the journal sequence its buffer carried
    /// (nil or 0: a part, or nothing journaled — nothing to settle). A journal that fails is
    /// dropped (writes are then only as safe as without one) rather than left to replay
    /// what it cannot mark.
    func settleLocked(_ files: [(ino: Int64, through: UInt64?)]) {
        guard let journal else { return }
        let settled = files.compactMap { file in file.through.flatMap { $0 > 0 ? (file.ino, $0) : nil } }
        if settled.isEmpty { return }
        do {
            if let failure = journal.failure { throw failure }
            try journal.settle(settled.map { (ino: $0.0, through: Optional($0.1)) })
        } catch { dropJournalLocked(error) }
        endJournalIfUnwantedLocked()
    }

    /// A file deleted with writes unsettled: settled through all of them once the deletion
    /// is committed (a deletion still in the namespace batch is committed now — else a
    /// SIGKILL could bring the file back without its writes).
    func settleDeletedLocked(_ ino: Int64) throws(FSError) {
        guard let journal, journal.isUnsettled(ino) else { return }
        try namespace.commitNamespaceChanges()
        do { try journal.settle([(ino: ino, through: nil)]) } catch { dropJournalLocked(error) }
        endJournalIfUnwantedLocked()
    }

    /// Times set on `ino` while it has bytes buffered: journaled, and carried by its buffers
    /// so that their commit settles them too.
    func journalTimesLocked(_ ino: Int64, atimeNs: Int64?, mtimeNs: Int64?) {
        guard let journal else { return }
        let pending = pendingLocked(ino)
        guard !pending.isEmpty else { return }
        do {
            let sequence = try journal.recordTimes(ino: ino, atimeNs: atimeNs, mtimeNs: mtimeNs)
            for buffer in pending { buffer.journalSequence = buffer.journalSequence.map { max($0, sequence) } }
        } catch { dropJournalLocked(error) }
    }

    func dropJournalLocked(_ error: any Error) {
        FuseMount.log("volume \(volume): writes are not journaled any more: \(error)")
        journal?.remove()
        journal = nil
    }

    /// Without `journaling`, the journal lasts only until what was replayed is committed.
    private func endJournalIfUnwantedLocked() {
        if !journaling { endJournalLocked() }
    }

    /// Removes the journal when everything in it is committed (an unmount that committed
    /// every buffer); otherwise it stays for the next mount to replay.
    public func endJournal() { lock.withLock { endJournalLocked() } }

    private func endJournalLocked() {
        guard let journal, journal.isEmpty else { return }
        journal.remove()
        self.journal = nil
    }
}
