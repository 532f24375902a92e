import Testing
import TestSupport
@testable import FileSystem

/// The object cache: least recently used goes first, the budget holds whatever the mix of
/// uses, and its bookkeeping stays bounded.
@Suite struct ObjectCacheTests {
    static func bytes(_ n: Int, _ fill: UInt8) -> [UInt8] { [UInt8](repeating: fill, count: n) }

    @Test func leastRecentlyUsedGoesFirstWithinTheBudget() {
        let cache = ObjectCache(budgetBytes: 300)
        cache.insert("a", Self.bytes(100, 1))
        cache.insert("b", Self.bytes(100, 2))
        cache.insert("c", Self.bytes(100, 3))
        #expect(cache.get("a") == Self.bytes(100, 1))  // a is now the most recent
        cache.insert("d", Self.bytes(100, 4))  // evicts b, the least recent
        #expect(cache.get("b") == nil)
        #expect(cache.get("a") != nil && cache.get("c") != nil && cache.get("d") != nil)
        #expect(cache.cachedBytes == 300)
        cache.insert("c", Self.bytes(50, 5))  // replaced: counted once, at its new size
        #expect(cache.cachedBytes == 250)
        cache.remove("a")
        #expect(cache.get("a") == nil && cache.cachedBytes == 150)
        cache.insert("big", Self.bytes(400, 6))  // over the budget alone: nothing stays
        #expect(cache.cachedBytes <= 300)
    }

    /// A model of the same operations (a list in recency order) decides what must be cached;
    /// the queue never grows past a bound however many uses there are.
    @Test(arguments: [3, 17, 29] as [UInt64])
    func agreesWithAListModel(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        let cache = ObjectCache(budgetBytes: 1_000)
        var model: [(id: String, size: Int)] = []  // least recent first
        for step in 0..<20_000 {
            let id = "o\(rng.next() % 40)"
            switch rng.next() % 3 {
            case 0:
                let size = Int(rng.next() % 200) + 1
                cache.insert(id, Self.bytes(size, UInt8(truncatingIfNeeded: size)))
                model.removeAll { $0.id == id }
                model.append((id, size))
                while model.reduce(0, { $0 + $1.size }) > 1_000 { model.removeFirst() }
            case 1:
                let got = cache.get(id)
                if let i = model.firstIndex(where: { $0.id == id }) {
                    let entry = model.remove(at: i)
                    model.append(entry)
                    #expect(got?.count == entry.size, "seed \(seed) step \(step): \(id)")
                } else {
                    #expect(got == nil, "seed \(seed) step \(step): \(id) should be gone")
                }
            default:
                cache.remove(id)
                model.removeAll { $0.id == id }
            }
            #expect(cache.cachedBytes == model.reduce(0) { $0 + $1.size }, "seed \(seed) step \(step)")
            #expect(cache.queueLength <= 2 * 40 + 64 + 1)
        }
    }
}
