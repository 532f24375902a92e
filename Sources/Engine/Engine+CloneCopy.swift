import Foundation
import Metadata
import Storage

/// Clones into another class than their source's (docs/snapshots.md, "Clones into another
/// class"): usable at once, reading the source's objects where they are, while the data is
/// copied into the clone's own pool in the background under the node's movement budget
/// (`throttle`, the mover's). Each object is read whole, written as a new object of the
/// clone, and swapped in: every slice pointing into the old one points into the new one at
/// the same offsets, in one transaction; then the clone lets go of the old object (its
/// shards stay while anyone else holds it). Crash-safe: the new object is 'writing' until
/// the swap (collected at start-up), the old one 'deleting' after it (let go at start-up).
extension Engine {
    /// Copies at most about `maxBytes` of clones' data into their own pools. Returns the
    /// bytes copied and whether any clone still has data to copy.
    @discardableResult
    public func copyClones(maxBytes: Int64 = 64 << 20) -> (bytes: Int64, pending: Bool) {
        guard let clones = try? database.cloneCopies(), !clones.isEmpty else { return (0, false) }
        var copied: Int64 = 0
        var pending = false
        for clone in clones {
            if copied >= maxBytes {
                pending = true
                break
            }
            do {
                let (bytes, done) = try copyClone(clone, maxBytes: maxBytes - copied)
                copied += bytes
                if !done { pending = true }
            } catch {
                pending = true  // tried again at the next call (a device away, a volume being deleted)
            }
        }
        return (copied, pending)
    }

    /// One clone's step: objects of other pools copied until `maxBytes`; done when none is left.
    func copyClone(_ id: String, maxBytes: Int64) throws(EngineError) -> (bytes: Int64, done: Bool) {
        guard let record = try EngineError.wrap({ try database.volume(id: id) }), record.state == .available else {
            return (0, false)  // being deleted: its row (and this one) go with it
        }
        // Not kept open (nor marked in use) for this: `clone_copy` sends start-up to it.
        guard let entry = state.withLock({ $0.classes[record.className] }) else { throw .unknownClass(record.className) }
        // With namespaces in the cluster's store, under the clone's lease (busy while a node
        // mounts it elsewhere: tried again later), so its swaps are shipped like a mount's.
        return try withLeasedVolumeDatabase(id) { (vdb) throws(EngineError) in try copyClone(id, entry, vdb, maxBytes: maxBytes) }
    }

    private func copyClone(_ id: String, _ entry: ClassEntry, _ vdb: VolumeDatabase, maxBytes: Int64) throws(EngineError) -> (bytes: Int64, done: Bool) {
        var copied: Int64 = 0
        // Old objects a failed step swapped out but did not let go of.
        let stale = try EngineError.wrap { try vdb.objects(state: .deleting) }.filter { $0.poolID != Int64(entry.poolID) }
        try letGo(stale, of: id, vdb)
        while copied < maxBytes {
            let batch = try EngineError.wrap { try vdb.foreignObjects(notIn: entry.poolID, limit: 8) }
            if batch.isEmpty {
                // Its new objects' index entries first: once off the list, a crash no longer
                // sends start-up to rebuild them from its database.
                try EngineError.wrap { try index.flush() }
                try EngineError.wrap { try database.finishCloneCopy(volumeID: id) }
                return (copied, true)
            }
            for old in batch where copied < maxBytes {
                guard let oldID = ObjectID(old.id) else { continue }
                throttle.acquire(Int(old.sizeBytes))
                let bytes = try EngineError.wrap { try objects.get(pool: UInt32(old.poolID), object: oldID).bytes }
                // Under the clone's share lock: a deletion of the clone (which waits for it,
                // then finds every object this wrote) or a copy of it never sees half a swap.
                let stopped = try shareLocks.withLock(id) { () throws(EngineError) -> Bool in
                    guard try EngineError.wrap({ try database.volume(id: id) })?.state == .available else { return true }
                    let new = try stageObject(volume: id, bytes: bytes, vdb, entry)
                    let swapped = try EngineError.wrap { try vdb.replaceObject(old.id, with: new.description) }
                    guard let newRecord = try EngineError.wrap({ try vdb.object(id: new.description) }) else { return false }
                    if swapped {
                        var leaving = old
                        leaving.state = .deleting
                        try letGoLocked([leaving], of: id, vdb)
                    } else {
                        try letGoLocked([newRecord], of: id, vdb)  // the filesystem let go of the old one meanwhile
                    }
                    return false
                }
                if stopped { return (copied, false) }
                copied += old.sizeBytes
            }
        }
        return (copied, false)
    }
}
