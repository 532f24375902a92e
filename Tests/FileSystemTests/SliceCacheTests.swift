import Metadata
import Testing
@testable import FileSystem

@Suite struct SliceCacheTests {
    func slices(_ ino: Int64, _ chunk: Int64, _ ids: [Int64]) -> [SliceRecord] {
        ids.map { SliceRecord(id: $0, ino: ino, chunk: chunk, pos: 0, len: 10, object: "o\($0)") }
    }

    /// A list fetched before a change of its file is never kept; one fetched after is.
    @Test func aListFetchedBeforeAChangeIsRefused() {
        let cache = SliceCache()
        let before = cache.ticket(7)
        cache.invalidate(7)  // a commit of file 7 lands while the reader fetches
        cache.insert(slices(7, 0, [1]), ino: 7, chunk: 0, ticket: before)
        #expect(cache.get(ino: 7, chunk: 0) == nil)
        let after = cache.ticket(7)
        cache.insert(slices(7, 0, [1, 2]), ino: 7, chunk: 0, ticket: after)
        #expect(cache.get(ino: 7, chunk: 0) == slices(7, 0, [1, 2]))
        // Another file's change does not refuse this file's lists.
        let ticket = cache.ticket(7)
        cache.invalidate(8)
        cache.insert(slices(7, 1, [3]), ino: 7, chunk: 1, ticket: ticket)
        #expect(cache.get(ino: 7, chunk: 1) == slices(7, 1, [3]))
        // A change drops every chunk of the file, and only of that file.
        cache.insert(slices(8, 0, [4]), ino: 8, chunk: 0, ticket: cache.ticket(8))
        cache.invalidate(7)
        #expect(cache.get(ino: 7, chunk: 0) == nil && cache.get(ino: 7, chunk: 1) == nil)
        #expect(cache.get(ino: 8, chunk: 0) == slices(8, 0, [4]))
    }

    /// Past its capacity the cache starts over, and lists fetched before that are refused
    /// (their file's change count was forgotten with it).
    @Test func startingOverRefusesOlderTickets() {
        let cache = SliceCache(capacity: 4)
        let old = cache.ticket(1)
        for ino in Int64(10)..<15 { cache.invalidate(ino) }  // five files changed: starts over
        cache.insert(slices(1, 0, [1]), ino: 1, chunk: 0, ticket: old)
        #expect(cache.get(ino: 1, chunk: 0) == nil)
        for chunk in Int64(0)..<4 { cache.insert(slices(2, chunk, [chunk]), ino: 2, chunk: chunk, ticket: cache.ticket(2)) }
        #expect(cache.get(ino: 2, chunk: 3) != nil)
        cache.insert(slices(2, 4, [4]), ino: 2, chunk: 4, ticket: cache.ticket(2))  // full: starts over
        #expect(cache.get(ino: 2, chunk: 0) == nil && cache.get(ino: 2, chunk: 4) == nil)
    }
}
