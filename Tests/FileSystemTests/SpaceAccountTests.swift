import Metadata
import Testing
import TestSupport
@testable import FileSystem

@Suite struct SpaceAccountTests {
    /// Never recounted while a grant fits; refused only when the exact count says full.
    @Test func grantsWhatFitsAndRecountsOnlyWhenStaleAndShort() throws {
        var recounts = 0
        var exact: Int64 = 600
        func recount() throws(FSError) -> Int64 { recounts += 1; return exact }
        var space = SpaceAccount(usedBytes: 600)
        #expect(try space.grant(300, capacity: 1000, partial: false, recount: recount) == 300)
        #expect(space.usedBytes == 900 && recounts == 0)
        // Not stale: 200 do not fit, 100 do.
        #expect(throws: FSError.noSpace) { try space.grant(200, capacity: 1000, partial: false, recount: recount) }
        #expect(try space.grant(200, capacity: 1000, partial: true, recount: recount) == 100)
        #expect(throws: FSError.noSpace) { try space.grant(1, capacity: 1000, partial: true, recount: recount) }
        #expect(recounts == 0 && space.usedBytes == 1000)
        // An unlink of unknown size: the next grant that does not fit recounts once.
        space.markStale()
        exact = 400
        #expect(try space.grant(500, capacity: 1000, partial: false, recount: recount) == 500)
        #expect(recounts == 1 && space.usedBytes == 900 && !space.isStale)
        #expect(throws: FSError.noSpace) { try space.grant(200, capacity: 1000, partial: false, recount: recount) }
        #expect(recounts == 1, "not stale: no recount")
        // Known releases, a grant of nothing, a capacity that shrank.
        space.release(400)
        #expect(space.usedBytes == 500)
        #expect(try space.grant(0, capacity: 1000, partial: false, recount: recount) == 0)
        #expect(throws: FSError.noSpace) { try space.grant(1, capacity: 400, partial: true, recount: recount) }
        space.release(10_000)
        #expect(space.usedBytes == 0)
        // A write at a huge offset asks for nearly Int64.max bytes: refused, no overflow.
        space.markStale()
        #expect(throws: FSError.noSpace) { try space.grant(.max, capacity: 1000, partial: false, recount: recount) }
        #expect(try space.grant(.max, capacity: 1000, partial: true, recount: recount) == 600)
    }

    /// Against a model of exact use: whatever mix of grants, releases and unknown frees,
    /// the account never lets use pass capacity and never refuses what fits exactly.
    @Test(arguments: [1, 2, 3] as [UInt64])
    func neverOvercommitsNorRefusesWhatFits(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let capacity: Int64 = 10_000
        var exact: Int64 = 0
        var space = SpaceAccount(usedBytes: 0)
        for _ in 0..<5_000 {
            let amount = Int64(rng.below(3_000))
            switch rng.below(3) {
            case 0:
                let partial = rng.below(2) == 0
                do {
                    let granted = try space.grant(amount, capacity: capacity, partial: partial) { () throws(FSError) -> Int64 in exact }
                    exact += granted
                    #expect(granted == amount || (partial && exact == capacity))
                } catch {
                    #expect(exact + (partial ? 1 : amount) > capacity, "refused \(amount) with \(exact) used")
                }
            case 1:
                let freed = min(amount, exact)
                exact -= freed
                space.release(freed)
            default:
                let freed = min(amount, exact)
                exact -= freed
                space.markStale()
            }
            #expect(exact <= capacity && space.usedBytes >= exact)
        }
    }
}
