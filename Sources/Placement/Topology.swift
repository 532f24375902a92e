/// The failure-domain tree of a `ClusterMap`, validated and indexed for fast placement.
///
/// Node indices: devices first (sorted by id), then buckets (sorted by id), then one
/// implicit root holding every top-level bucket. Sorting makes placement independent of
/// the order in which the map lists things. Immutable once built.
final class Topology: Sendable {
    let deviceCount: Int
    let devices: [Device]  // sorted by id; index = node index
    let deviceIndex: [DeviceID: Int32]
    let buckets: [Bucket]  // sorted by id; node index = deviceCount + i
    let bucketIndex: [String: Int32]
    let root: Int32
    /// `StableHash.name(id)` per node.
    let nodeHash: [UInt64]
    /// Eligible weight per node in 16.16 fixed point (devices that are out or drained count 0).
    let nodeWeight: [UInt64]
    /// Parent node per node (`-1` for the root).
    let parent: [Int32]
    /// Children of node i are `childList[childStart[i] ..< childStart[i + 1]]`, sorted by id.
    let childStart: [Int32]
    let childList: [Int32]
    /// Whether the positive-weight children of a node all weigh the same (straws then compare raw).
    let uniform: [Bool]
    /// Level name per level index; index 0 is `"device"`.
    let levels: [String]
    /// Level index per node (`-1` for the root).
    let nodeLevel: [Int32]
    /// Per level index: for each device, its ancestor at that level (`-1` if none).
    let domainOf: [[Int32]]
    /// Per level index: the nodes of that level.
    let nodesAt: [[Int32]]

    static let deviceLevelIndex: Int32 = 0

    init(map: ClusterMap) throws(PlacementError) {
        // Ids: non-empty, unique across buckets and devices.
        var seen = Set<String>()
        for b in map.buckets {
            if b.id.isEmpty { throw .emptyID(what: "a bucket") }
            if b.type.isEmpty { throw .emptyID(what: "the type of bucket \"\(b.id)\"") }
            if b.type == Rule.deviceLevel { throw .nestedLevel(bucket: b.id, level: b.type) }
            if !seen.insert(b.id).inserted { throw .duplicateID(b.id) }
        }
        for d in map.devices {
            if d.id.rawValue.isEmpty { throw .emptyID(what: "a device") }
            if !seen.insert(d.id.rawValue).inserted { throw .duplicateID(d.id.rawValue) }
            if !d.weight.isFinite || d.weight < 0 || d.weight > 65535 {
                throw .invalidWeight(device: d.id, weight: d.weight)
            }
        }

        let devices = map.devices.sorted { $0.id < $1.id }  // DeviceID orders by UTF-8 bytes
        let buckets = map.buckets.sorted { StableHash.precedes($0.id, $1.id) }
        let deviceCount = devices.count
        let nodeCount = deviceCount + buckets.count + 1
        let root = Int32(nodeCount - 1)
        var deviceIndex = [DeviceID: Int32](minimumCapacity: deviceCount)
        for (i, d) in devices.enumerated() { deviceIndex[d.id] = Int32(i) }
        var bucketIndex = [String: Int32](minimumCapacity: buckets.count)
        for (i, b) in buckets.enumerated() { bucketIndex[b.id] = Int32(deviceCount + i) }

        // Levels: "device" first, then bucket types in sorted order.
        var levels = [Rule.deviceLevel]
        levels += Set(buckets.map(\.type)).sorted(by: StableHash.precedes)
        var levelIndex = [String: Int32]()
        for (i, l) in levels.enumerated() { levelIndex[l] = Int32(i) }

        var parent = [Int32](repeating: -1, count: nodeCount)
        var nodeLevel = [Int32](repeating: -1, count: nodeCount)
        var nodeHash = [UInt64](repeating: 0, count: nodeCount)
        for (i, d) in devices.enumerated() {
            guard let p = bucketIndex[d.parent] else { throw .unknownParent(child: d.id.rawValue, parent: d.parent) }
            parent[i] = p
            nodeLevel[i] = Self.deviceLevelIndex
            nodeHash[i] = StableHash.name(d.id.rawValue)
        }
        for (i, b) in buckets.enumerated() {
            let node = deviceCount + i
            if let pid = b.parent {
                guard let p = bucketIndex[pid] else { throw .unknownParent(child: b.id, parent: pid) }
                parent[node] = p
            } else {
                parent[node] = root
            }
            nodeLevel[node] = levelIndex[b.type]!
            nodeHash[node] = StableHash.name(b.id)
        }

        // Every bucket must reach the root: walking up more steps than there are buckets
        // means a cycle, and the node reached by then lies on it.
        for i in 0..<buckets.count {
            var node = Int32(deviceCount + i)
            var steps = 0
            while node != root {
                node = parent[Int(node)]
                steps += 1
                if steps > buckets.count {
                    throw .cycle(through: buckets[Int(node) - deviceCount].id)
                }
            }
        }
        // A level appears at most once on every path (no host inside a host).
        for i in 0..<buckets.count {
            let level = nodeLevel[deviceCount + i]
            var node = parent[deviceCount + i]
            while node != root {
                if nodeLevel[Int(node)] == level { throw .nestedLevel(bucket: buckets[i].id, level: buckets[i].type) }
                node = parent[Int(node)]
            }
        }

        // Children, sorted by id (node order is id order within devices and within buckets).
        var childCount = [Int32](repeating: 0, count: nodeCount + 1)
        for node in 0..<(nodeCount - 1) { childCount[Int(parent[node])] += 1 }
        var childStart = [Int32](repeating: 0, count: nodeCount + 1)
        for i in 0..<nodeCount { childStart[i + 1] = childStart[i] + childCount[i] }
        var fill = childStart
        var childList = [Int32](repeating: 0, count: nodeCount - 1)
        // Children of a node in id order, devices and buckets alike.
        let order = (0..<(nodeCount - 1)).sorted { a, b in
            StableHash.precedes(Self.nodeName(a, devices, buckets), Self.nodeName(b, devices, buckets))
        }
        for node in order {
            let p = Int(parent[node])
            childList[Int(fill[p])] = Int32(node)
            fill[p] += 1
        }

        // Weights: eligible devices in 16.16 fixed point, summed up the tree.
        var nodeWeight = [UInt64](repeating: 0, count: nodeCount)
        for (i, d) in devices.enumerated() where d.isEligible {
            let w = UInt64(d.weight * 65536 + 0.5)  // round half up, no libm
            var node = Int32(i)
            while node >= 0 {
                nodeWeight[Int(node)] += w
                node = parent[Int(node)]
            }
        }
        var uniform = [Bool](repeating: true, count: nodeCount)
        for node in 0..<nodeCount {
            var first: UInt64 = 0
            for c in childStart[node]..<childStart[node + 1] {
                let w = nodeWeight[Int(childList[Int(c)])]
                if w == 0 { continue }
                if first == 0 { first = w } else if w != first { uniform[node] = false; break }
            }
        }

        // Ancestor at each level, for every device.
        var domainOf = [[Int32]](repeating: [Int32](repeating: -1, count: deviceCount), count: levels.count)
        for i in 0..<deviceCount {
            var node = Int32(i)
            while node != root {
                domainOf[Int(nodeLevel[Int(node)])][i] = node
                node = parent[Int(node)]
            }
        }
        var nodesAt = [[Int32]](repeating: [], count: levels.count)
        for node in 0..<(nodeCount - 1) { nodesAt[Int(nodeLevel[node])].append(Int32(node)) }

        self.deviceCount = deviceCount
        self.devices = devices
        self.deviceIndex = deviceIndex
        self.buckets = buckets
        self.bucketIndex = bucketIndex
        self.root = root
        self.nodeHash = nodeHash
        self.nodeWeight = nodeWeight
        self.parent = parent
        self.childStart = childStart
        self.childList = childList
        self.uniform = uniform
        self.levels = levels
        self.nodeLevel = nodeLevel
        self.domainOf = domainOf
        self.nodesAt = nodesAt
    }

    private static func nodeName(_ node: Int, _ devices: [Device], _ buckets: [Bucket]) -> String {
        node < devices.count ? devices[node].id.rawValue : buckets[node - devices.count].id
    }

    func levelIndex(_ name: String) -> Int32? {
        levels.firstIndex(of: name).map { Int32($0) }
    }

    /// Number of nodes at a level that have eligible weight.
    func eligibleDomainCount(level: Int32) -> Int {
        nodesAt[Int(level)].reduce(0) { $0 + (nodeWeight[Int($1)] > 0 ? 1 : 0) }
    }

    // MARK: straw2

    /// The positive-weight child of `node` with the longest straw for `key` (straw2:
    /// straw = ln(u) / weight, u uniform from the hash). Returns -1 if no child has weight.
    @inline(__always)
    func chooseChild(of node: Int32, key: UInt64) -> Int32 {
        let start = Int(childStart[Int(node)])
        let end = Int(childStart[Int(node) + 1])
        var best: Int32 = -1
        if uniform[Int(node)] {
            var bestStraw: UInt64 = 0
            for c in start..<end {
                let child = childList[c]
                if nodeWeight[Int(child)] == 0 { continue }
                let straw = StableHash.straw(key: key, child: nodeHash[Int(child)])
                if best < 0 || straw > bestStraw {
                    best = child
                    bestStraw = straw
                }
            }
        } else {
            var bestStraw = Int64.min
            for c in start..<end {
                let child = childList[c]
                let w = nodeWeight[Int(child)]
                if w == 0 { continue }
                let straw = Self.straw2(StableHash.straw(key: key, child: nodeHash[Int(child)]), weight: w)
                if best < 0 || straw > bestStraw {
                    best = child
                    bestStraw = straw
                }
            }
        }
        return best
    }

    /// ln-proportional straw: (log2(u) - 48) * 2^16 / weight, with u the top 48 bits of the hash.
    /// Always <= 0; heavier children draw straws closer to 0 and so win proportionally more often.
    @inline(__always)
    static func straw2(_ hash: UInt64, weight: UInt64) -> Int64 {
        let u = (hash >> 16) | 1
        let log = Int64(FixedLog.log2Q32(u)) - (48 << 32)
        return (log << 16) / Int64(weight)
    }

    /// Walks down from `node` by straw2 until a node of `level` (or a device).
    @inline(__always)
    func descend(from node: Int32, to level: Int32, key: UInt64) -> Int32 {
        var current = node
        while nodeLevel[Int(current)] != level && current >= Int32(deviceCount) {
            let next = chooseChild(of: current, key: key)
            if next < 0 { return -1 }
            current = next
        }
        return current
    }
}
