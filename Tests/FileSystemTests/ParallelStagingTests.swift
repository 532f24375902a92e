import Foundation
import Synchronization
import Testing
import TestSupport
@testable import FileSystem

/// How the write-back stages a batch (docs/filesystem.md, Write-back): pieces packed into
/// objects of at most two chunks, and the objects written several at once with every result
/// kept in order.
@Suite struct ParallelStagingTests {
    @Test func packsConsecutivePiecesUpToTheLimit() {
        #expect(VolumeFileSystem.pack([], limit: 10) == [])
        #expect(VolumeFileSystem.pack([10, 10, 10], limit: 10) == [0..<1, 1..<2, 2..<3])
        #expect(VolumeFileSystem.pack([3, 3, 4, 1], limit: 10) == [0..<3, 3..<4])
        #expect(VolumeFileSystem.pack([3, 8, 2], limit: 10) == [0..<1, 1..<3])
        // A piece over the limit goes alone; an empty piece joins the pack it fits in.
        #expect(VolumeFileSystem.pack([12, 0, 5, 0], limit: 10) == [0..<1, 1..<4])
    }

    @Test func everyPackFitsAndThePiecesStayInOrder() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let sizes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in Int.random(in: 0...12, using: &generator) }
            let packs = VolumeFileSystem.pack(sizes, limit: 10)
            #expect(packs.flatMap { Array($0) } == Array(sizes.indices))
            for pack in packs {
                #expect(!pack.isEmpty)
                #expect(pack.count == 1 || pack.reduce(0) { $0 + sizes[$1] } <= 10)
            }
            // Greedy: the next piece would not have fitted in the pack before it.
            for (before, after) in zip(packs, packs.dropFirst()) {
                #expect(before.reduce(0) { $0 + sizes[$1] } + sizes[after.lowerBound] > 10)
            }
        }
    }

    /// A writer may run as many full chunks ahead as the next batch writes at once, within
    /// the per-file buffer budget, and always at least one.
    @Test func chunksAheadFillTheNextBatchWithinTheBudget() {
        #expect(VolumeFileSystem.chunksAhead(chunkSize: 4 << 20, objectLimit: 8 << 20) == 8)
        #expect(VolumeFileSystem.chunksAhead(chunkSize: 64 << 10, objectLimit: 128 << 10) == 8)
        #expect(VolumeFileSystem.chunksAhead(chunkSize: 4 << 20, objectLimit: 4 << 20) == 4)
        #expect(VolumeFileSystem.chunksAhead(chunkSize: 8 << 20, objectLimit: 16 << 20) == 4)
        #expect(VolumeFileSystem.chunksAhead(chunkSize: 64 << 20, objectLimit: 128 << 20) == 1)
    }

    /// Full chunks written in one go share objects, two to one (`StorageClass.chunksPerObject`);
    /// rewriting one chunk of a pair keeps the object for the other, rewriting both frees
    /// it, and the data reads back right after every step and every remount.
    @Test(arguments: ["remote-disk", "ec-4-2"])
    func fullChunksGoTwoToAnObjectAndAreFreedTogether(storageClass: String) throws {
        let chunk = 64 << 10
        let v = try MountedVolume(storageClass: storageClass, chunk: chunk)
        let width = storageClass == "ec-4-2" ? 6 : 1
        var model = pattern(8 * chunk, seed: 1)
        #expect(writeFile(v.path("f"), model, sync: true) == 0)  // one 512 KiB FUSE write: one batch
        #expect(v.shardFiles() == 4 * width, "8 chunks in \(v.shardFiles() / width) objects")
        func overwrite(chunk index: Int, seed: Int) {
            let patch = pattern(chunk, seed: seed)
            model.replaceSubrange((index * chunk)..<((index + 1) * chunk), with: patch)
            #expect(writeFile(v.path("f"), patch, flags: O_WRONLY, offset: index * chunk, sync: true) == 0)
            expectSame(readFile(v.path("f")), model, "after rewriting chunk \(index)")
        }
        overwrite(chunk: 0, seed: 2)
        v.unmount()  // purges what the rewrite retired
        #expect(v.shardFiles() == 5 * width, "chunk 1 still needs the first pair's object")
        try v.mount()
        expectSame(readFile(v.path("f")), model, "remounted after chunk 0")
        overwrite(chunk: 1, seed: 3)
        v.unmount()
        #expect(v.shardFiles() == 5 * width, "the first pair's object is gone, chunk 1's new one came")
        try v.mount()
        expectSame(readFile(v.path("f")), model, "remounted after chunk 1")
    }

    struct Odd: Error, Equatable { let index: Int }

    @Test func resultsComeBackInIndexOrderWithTheirErrors() {
        let results = ParallelMap.run(50, width: 4) { (i: Int) throws(Odd) -> Int in
            usleep(UInt32.random(in: 0...500))
            if i % 7 == 3 { throw Odd(index: i) }
            return i * i
        }
        #expect(results.count == 50)
        for (i, result) in results.enumerated() {
            switch result {
            case .success(let value): #expect(i % 7 != 3 && value == i * i)
            case .failure(let error): #expect(error == Odd(index: i))
            }
        }
    }

    @Test func atMostWidthJobsRunAtOnceAndTheyDoOverlap() {
        let running = Atomic<Int>(0)
        let most = Atomic<Int>(0)
        let results = ParallelMap.run(24, width: 3) { (i: Int) -> Int in
            let now = running.add(1, ordering: .relaxed).newValue
            most.max(now, ordering: .relaxed)
            usleep(5_000)  // blocking work, as a shard fsync is
            running.subtract(1, ordering: .relaxed)
            return i
        }
        #expect(results.map { $0.get() } == Array(0..<24))
        #expect(most.load(ordering: .relaxed) <= 3)
        #expect(most.load(ordering: .relaxed) >= 2)
    }

    /// All `width` jobs are in flight together even when each blocks until the others have
    /// started (as shard writes wait on device flushes) — more than the cores this VM has —
    /// and none of them needs a thread of the global queue: with every one of those held,
    /// the six still meet. (On a concurrent dispatch queue the sixth started after about 4 s
    /// on 2 cores, the pool adding a thread a second while its threads block; with the pool
    /// held they would never meet.) Each job waits for the others' arrival, an event; the
    /// hold's deadline only turns a hang into a failure.
    @Test func blockedJobsDoNotHoldBackTheOthers() {
        let arrived = Atomic<Int>(0)
        let results = GlobalQueueHold.run {
            ParallelMap.run(6, width: 6) { (_: Int) -> Bool in
                arrived.add(1, ordering: .relaxed)
                while arrived.load(ordering: .relaxed) < 6 { usleep(1_000) }
                return true
            }.map { $0.get() }
        }
        #expect(results == Array(repeating: true, count: 6), "the jobs did not all start while the global queue was held")
    }

    @Test func widthOneRunsInOrderOnTheCallingThread() {
        let caller = pthread_self()
        var order: [Int] = []
        _ = ParallelMap.run(5, width: 1) { (i: Int) -> Void in
            #expect(pthread_equal(pthread_self(), caller) != 0)
            order.append(i)
        }
        #expect(order == [0, 1, 2, 3, 4])
        #expect(ParallelMap.run(0, width: 4) { (i: Int) -> Int in i }.isEmpty)
    }
}
