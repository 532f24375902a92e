import CLinux
import Foundation
import Testing
import TestSupport

/// Oracle test: a plain directory on the host's filesystem is the model. The same seeded
/// random operations go to both; every result (bytes or errno) must match, and so must
/// the whole tree (names, kinds, sizes, contents) every 25 steps and at the end. The
/// operations: writes, reads, truncates, appends, `O_TRUNC` opens, holes punched and ranges
/// zeroed with `fallocate`, and the namespace's mkdir, rmdir, unlink, rename and link.
@Suite(.serialized) struct ModelTests {
    /// Applies one operation under `root`; returns what a caller would observe.
    static func apply(_ op: Int, _ a: String, _ b: String, _ offset: Int, _ data: [UInt8], root: String) -> String {
        let pa = root + "/" + a, pb = root + "/" + b
        func e(_ r: Int32) -> String { r < 0 ? "errno \(errno)" : "ok" }
        switch op {
        case 0:  // write at offset (create if missing)
            let fd = open(pa, O_WRONLY | O_CREAT, 0o644)
            if fd < 0 { return "errno \(errno)" }
            defer { close(fd) }
            let n = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
            return n < 0 ? "errno \(errno)" : "wrote \(n)"
        case 1:  // read a range
            let fd = open(pa, O_RDONLY)
            if fd < 0 { return "errno \(errno)" }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 70_000)
            let n = pread(fd, &buffer, buffer.count, off_t(offset))
            return n < 0 ? "errno \(errno)" : "read \(n) crc \(buffer.prefix(max(0, n)).reduce(UInt64(0)) { $0 &* 31 &+ UInt64($1) })"
        case 2: return e(truncate(pa, off_t(offset)))
        case 3: return e(mkdir(pa, 0o755))
        case 4: return e(rmdir(pa))
        case 5: return e(unlink(pa))
        case 6: return e(rename(pa, pb))
        case 7: return e(link(pa, pb))
        case 8:  // append
            let fd = open(pa, O_WRONLY | O_APPEND)
            if fd < 0 { return "errno \(errno)" }
            defer { close(fd) }
            let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            return n < 0 ? "errno \(errno)" : "appended \(n)"
        case 9:  // open with O_TRUNC
            let fd = open(pa, O_WRONLY | O_TRUNC)
            if fd < 0 { return "errno \(errno)" }
            close(fd)
            return "ok"
        default:  // fallocate: punch a hole (10), zero a range and maybe grow (11)
            let fd = open(pa, O_WRONLY)
            if fd < 0 { return "errno \(errno)" }
            defer { close(fd) }
            let mode: Int32 = op == 10 ? 0x01 | 0x02 : 0x10  // KEEP_SIZE | PUNCH_HOLE, ZERO_RANGE
            return e(fallocate(fd, mode, off_t(offset), off_t(max(1, data.count))))
        }
    }

    /// What only the mount has and what only the model has.
    static func difference(_ mounted: [String], _ model: [String]) -> String {
        "mount only \(mounted.filter { !model.contains($0) }), model only \(model.filter { !mounted.contains($0) })"
    }

    /// For each name whose file contents differ: the byte ranges that differ, and whether
    /// reading again a moment later still differs (a stale read, or stale data).
    static func contentDifferences(_ mount: String, _ model: String, _ names: [String]) -> String {
        func ranges(_ x: [UInt8], _ y: [UInt8]) -> [Range<Int>] {
            var result: [Range<Int>] = []
            var i = 0
            while i < max(x.count, y.count) {
                if i < x.count, i < y.count, x[i] == y[i] { i += 1; continue }
                let start = i
                while i < max(x.count, y.count) && !(i < x.count && i < y.count && x[i] == y[i]) { i += 1 }
                result.append(start..<i)
            }
            return result
        }
        var report: [String] = []
        for name in names {
            guard let want = FileManager.default.contents(atPath: model + "/" + name),
                  let got = FileManager.default.contents(atPath: mount + "/" + name), got != want else { continue }
            usleep(200_000)
            let again = FileManager.default.contents(atPath: mount + "/" + name) ?? Data()
            report.append("\(name): differs at \(ranges([UInt8](got), [UInt8](want))), 0.2 s later \(ranges([UInt8](again), [UInt8](want)))")
        }
        return report.joined(separator: "; ")
    }

    /// Names, kinds, sizes, link counts and content hashes of every entry, sorted.
    static func tree(_ root: String) -> [String] {
        var result: [String] = []
        func walk(_ dir: String, _ prefix: String) {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            for name in names {
                let path = dir + "/" + name
                var st = stat()
                guard lstat(path, &st) == 0 else { result.append("\(prefix)\(name) unreadable"); continue }
                if st.st_mode & S_IFMT == S_IFDIR {
                    result.append("\(prefix)\(name)/")
                    walk(path, prefix + name + "/")
                } else {
                    let bytes = FileManager.default.contents(atPath: path) ?? Data()
                    let hash = bytes.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1)) &* 1099511628211 }
                    result.append("\(prefix)\(name) size \(st.st_size) nlink \(st.st_nlink) hash \(hash)")
                }
            }
        }
        walk(root, "")
        return result
    }

    @Test(arguments: [(UInt64(1), "replicated-3"), (UInt64(2), "ec-4-2"), (UInt64(3), "remote-disk")])
    func randomOperationsMatchAPlainDirectory(seed: UInt64, storageClass: String) throws {
        let v = try MountedVolume(storageClass: storageClass)
        let model = v.root + "/model"
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        var rng = SeededRandom(seed: seed)
        let names = ["a", "b", "c", "d/x", "d/y", "d", "e", "e/z", "d/e"]
        let chunk = 64 << 10
        for step in 0..<400 {
            let op = rng.below(12)
            let a = names[rng.below(names.count)], b = names[rng.below(names.count)]
            // Offsets around chunk boundaries and far beyond the end.
            let offset = [0, 1, chunk - 3, chunk, chunk + 7, 3 * chunk - 1, 200_000, rng.below(300_000)][rng.below(8)]
            let data = (0..<[1, 100, 4096, chunk, chunk + 13, 100_000][rng.below(6)]).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let expected = Self.apply(op, a, b, offset, data, root: model)
            let actual = Self.apply(op, a, b, offset, data, root: v.mountpoint)
            #expect(actual == expected, "seed \(seed) step \(step): op \(op) \(a) \(b) offset \(offset) size \(data.count)")
            if actual != expected { break }
            if step % 25 == 24 {
                let (mounted, expected) = (Self.tree(v.mountpoint), Self.tree(model))
                let differences = mounted == expected ? "" : Self.contentDifferences(v.mountpoint, model, names)
                #expect(mounted == expected, "seed \(seed) step \(step): trees differ: \(Self.difference(mounted, expected)); \(differences)")
                if mounted != expected { break }
            }
        }
        let (atEnd, expected) = (Self.tree(v.mountpoint), Self.tree(model))
        #expect(atEnd == expected, "seed \(seed) at the end: \(Self.difference(atEnd, expected))")
        // And after an unmount and a remount.
        v.unmount()
        try v.mount()
        let remounted = Self.tree(v.mountpoint)
        #expect(remounted == expected, "seed \(seed) after remount: \(Self.difference(remounted, expected))")
    }
}
