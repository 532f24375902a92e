import Testing
@testable import FileSystem

/// The bytes a file's chunks take against the volume (`FileAllocation`): chunks holding data
/// whole, the last up to the size; holes nothing.
@Suite struct FileAllocationTests {
    let c: Int64 = 100

    @Test func aDenseFileTakesItsSize() {
        var a = FileAllocation(chunkSize: c)
        #expect(a.growth(writing: 0, 250, size: 0) == 250)
        a.add(a.chunks(0, 250)!)
        #expect(a.denseChunks == 3 && a.bytes(size: 250) == 250)
        // Appending or overwriting costs what the size grows by.
        #expect(a.growth(writing: 250, 260, size: 250) == 10)
        #expect(a.growth(writing: 240, 320, size: 250) == 70)
        #expect(a.growth(writing: 0, 250, size: 250) == 0)
    }

    @Test func holesAreFreeAndTheChunksThatHoldDataCountWhole() {
        var a = FileAllocation(chunkSize: c)
        a.add([0])
        // A byte at 1,000 of a 50-byte file: the last chunk grows whole (50 → 100), the new
        // one up to the new size (1 byte); chunks 1–9 are holes.
        #expect(a.growth(writing: 1000, 1001, size: 50) == 50 + 1)
        a.add(a.chunks(1000, 1001)!)
        #expect(a.denseChunks == 1 && a.sparseChunks == [10])
        #expect(a.bytes(size: 1001) == 101)
        // Writing into a hole in the middle takes its chunk whole.
        #expect(a.growth(writing: 510, 511, size: 1001) == 100)
        // Growing the size without writing: only the last held chunk lengthens.
        #expect(a.lastChunkGrowth(from: 1001, to: 10_000) == 99)
        #expect(a.lastChunkGrowth(from: 1000, to: 10_000) == 0, "the last chunk is a hole")
        // Filling the gap makes the prefix dense again.
        a.add(1...9)
        #expect(a.denseChunks == 11 && a.sparseChunks.isEmpty)
    }

    @Test func aCutDropsTheChunksPastIt() {
        var a = FileAllocation(chunkSize: c)
        a.add([0, 1, 5, 9])
        #expect(a.bytes(size: 950) == 200 + 100 + 50)
        a.cut(to: 501)
        #expect(a.holds(5) && !a.holds(9) && a.bytes(size: 501) == 201)
        a.cut(to: 500)
        #expect(!a.holds(5) && a.bytes(size: 500) == 200)
        a.cut(to: 0)
        #expect(a.denseChunks == 0 && a.bytes(size: 0) == 0)
    }

    /// Against a plain count over every chunk, for random writes, cuts and growths.
    @Test func growthMatchesAWholeCount() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var a = FileAllocation(chunkSize: c)
            var held = Set<Int64>(), size: Int64 = 0
            func count(_ held: Set<Int64>, _ size: Int64) -> Int64 {
                held.filter { $0 * c < size }.reduce(0) { $0 + min(c, size - $1 * c) }
            }
            for _ in 0..<30 {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0, 1:
                    let first = Int64.random(in: 0..<3000, using: &rng), end = first + Int64.random(in: 1..<400, using: &rng)
                    var after = held
                    for chunk in (first / c)...((end - 1) / c) { after.insert(chunk) }
                    let newSize = max(size, end)
                    #expect(a.growth(writing: first, end, size: size) == count(after, newSize) - count(held, size))
                    a.add(a.chunks(first, end)!)
                    held = after
                    size = newSize
                case 2:
                    let to = Int64.random(in: 0...size, using: &rng)
                    a.cut(to: to)
                    held = held.filter { $0 * c < to }
                    size = to
                default:
                    let to = size + Int64.random(in: 0..<500, using: &rng)
                    #expect(a.lastChunkGrowth(from: size, to: to) == count(held, to) - count(held, size))
                    size = to
                }
                #expect(a.bytes(size: size) == count(held, size))
            }
        }
    }
}
