/// One pool's placement being edited into the next epoch: which device holds each
/// (PG, position), with per-device loads kept current.
///
/// Two operations, both deterministic and bounded:
/// - `fillHoles`: every position whose device was lost goes to the least-filled device
///   that keeps the PG's members in distinct failure domains. Only lost shards move.
/// - `balance`: moves shards from the most over-full device to the most under-full one
///   while that strictly narrows the spread, so that every device ends within one shard
///   of its weight share wherever the rule allows.
struct ShardLayout {
    let topology: Topology
    let width: Int
    /// Failure domain of each device at the rule's level.
    let domainOf: [Int32]
    /// `slots[pg * width + position]`: a device index, or -1 for a hole.
    private(set) var slots: [Int32]
    /// What the hash alone would choose; preferred on ties so overrides stay few.
    let hashSlots: [Int32]
    private(set) var load: [Int]
    /// Balanced target per device (`TargetShares`; 0 for ineligible devices).
    let share: [Double]
    /// Slots held by each device, for the balancer.
    private var slotsOn: [[Int32]]
    private let eligible: [Int32]

    init(topology: Topology, width: Int, level: Int32, slots: [Int32], hashSlots: [Int32]) {
        precondition(slots.count == hashSlots.count && slots.count % width == 0)
        self.topology = topology
        self.width = width
        self.domainOf = topology.domainOf[Int(level)]
        self.slots = slots
        self.hashSlots = hashSlots
        let n = topology.deviceCount
        var load = [Int](repeating: 0, count: n)
        var slotsOn = [[Int32]](repeating: [], count: n)
        for (slot, d) in slots.enumerated() where d >= 0 {
            load[Int(d)] += 1
            slotsOn[Int(d)].append(Int32(slot))
        }
        self.load = load
        self.slotsOn = slotsOn
        var eligible: [Int32] = []
        for i in 0..<n where topology.devices[i].isEligible { eligible.append(Int32(i)) }
        self.eligible = eligible
        self.share = TargetShares.compute(topology: topology, level: level, width: width, pgCount: slots.count / width)
    }

    var holeCount: Int { slots.reduce(0) { $0 + ($1 < 0 ? 1 : 0) } }

    /// Whether `pg` has a member other than `exceptPosition` in failure domain `domain`.
    private func pgUses(_ pg: Int, domain: Int32, exceptPosition: Int) -> Bool {
        for p in 0..<width where p != exceptPosition {
            let d = slots[pg * width + p]
            if d >= 0 && domainOf[Int(d)] == domain { return true }
        }
        return false
    }

    /// Sends every hole to the eligible device with the lowest fill after receiving it,
    /// among those whose failure domain the PG does not use yet. Ties go to the hash's
    /// choice, then to the lower device index.
    mutating func fillHoles() {
        for slot in slots.indices where slots[slot] < 0 {
            let pg = slot / width
            let position = slot % width
            var best: Int32 = -1
            var bestFill = Double.infinity
            for d in eligible {
                if pgUses(pg, domain: domainOf[Int(d)], exceptPosition: position) { continue }
                let fill = Double(load[Int(d)] + 1) / share[Int(d)]
                if fill < bestFill || (fill == bestFill && d == hashSlots[slot] && best != hashSlots[slot]) {
                    best = d
                    bestFill = fill
                }
            }
            precondition(best >= 0, "a hole with no eligible failure domain left; the caller checked there are enough")
            assign(slot: slot, to: best)
        }
    }

    private mutating func assign(slot: Int, to device: Int32) {
        slots[slot] = device
        load[Int(device)] += 1
        slotsOn[Int(device)].append(Int32(slot))
    }

    private mutating func move(slot: Int32, from source: Int32, to target: Int32) {
        slots[Int(slot)] = target
        load[Int(source)] -= 1
        load[Int(target)] += 1
        let list = slotsOn[Int(source)]
        let i = list.firstIndex(of: slot)!
        slotsOn[Int(source)].swapAt(i, list.count - 1)
        slotsOn[Int(source)].removeLast()
        slotsOn[Int(target)].append(slot)
    }

    /// A slot on `source` that may move to `target` without two members of its PG sharing
    /// a failure domain; the hash's own choice first (so the override disappears).
    private func movableSlot(from source: Int32, to target: Int32) -> Int32? {
        let targetDomain = domainOf[Int(target)]
        let sameDomain = targetDomain == domainOf[Int(source)]
        var fallback: Int32? = nil
        for slot in slotsOn[Int(source)] {
            let s = Int(slot)
            if !sameDomain && pgUses(s / width, domain: targetDomain, exceptPosition: s % width) { continue }
            if hashSlots[s] == target { return slot }
            if fallback == nil { fallback = slot }
        }
        return fallback
    }

    /// Moves shards from over-full to under-full devices while a move narrows the spread
    /// (source excess − target excess > 1 shard). Every move strictly lowers the sum of
    /// squared excesses, so the loop ends; it is also capped at one move per slot.
    /// Returns the number of moves made.
    @discardableResult
    mutating func balance() -> Int {
        guard eligible.count > 1 else { return 0 }
        func excess(_ d: Int32) -> Double { Double(load[Int(d)]) - share[Int(d)] }
        var stuck = Set<Int32>()
        var moves = 0
        while moves < slots.count {
            // Most over-full source that is not known to be stuck.
            var source: Int32 = -1
            for d in eligible where !stuck.contains(d) && load[Int(d)] > 0 {
                if source < 0 || excess(d) > excess(source) { source = d }
            }
            // Also devices that are ineligible but still hold shards cannot occur here:
            // holes were filled before balancing.
            if source < 0 { break }
            let sourceExcess = excess(source)
            var target: Int32 = -1
            for d in eligible where d != source {
                if target < 0 || excess(d) < excess(target) { target = d }
            }
            if target < 0 || sourceExcess - excess(target) <= 1 + 1e-9 { break }
            var moved = false
            if let slot = movableSlot(from: source, to: target) {
                move(slot: slot, from: source, to: target)
                moved = true
            } else {
                // The least-filled device cannot take any of these shards: try the others
                // in order of fill.
                let candidates = eligible.filter { $0 != source && sourceExcess - excess($0) > 1 + 1e-9 }
                    .sorted { (excess($0), $0) < (excess($1), $1) }
                for t in candidates {
                    if let slot = movableSlot(from: source, to: t) {
                        move(slot: slot, from: source, to: t)
                        moved = true
                        break
                    }
                }
            }
            if moved {
                moves += 1
                stuck.removeAll(keepingCapacity: true)
            } else {
                stuck.insert(source)
            }
        }
        return moves
    }
}
