import Foundation
import Testing
import CFuse3
@testable import FileSystem

/// FUSE over io_uring (FuseRing): where the kernel offers it, a mount serves its requests
/// through per-CPU rings, and every operation behaves as through /dev/fuse.
@Suite(.serialized) struct FuseRingTests {
    static let parameter = FuseRing.offeredParameter

    @Test func cpuListsGiveTheirHighestCPU() {
        #expect(CPUList.highest("0-1\n") == 1)
        #expect(CPUList.highest("0") == 0)
        #expect(CPUList.highest("0,2-3,8") == 8)
        #expect(CPUList.highest("0-3,5") == 3 + 2)
        #expect(CPUList.highest("") == nil)
        #expect(CPUList.highest("x") == nil)
        #expect(CPUList.highest("3-1") == nil)
        #expect(CPUList.highest("0--1") == nil)
    }

    /// Sets the fuse module's `enable_uring` for `body`, then puts it back. False when this
    /// kernel has no such parameter or it cannot be written (not root).
    static func withRingsOffered(_ offered: Bool, _ body: () throws -> Void) throws -> Bool {
        guard let before = try? String(contentsOfFile: parameter, encoding: .utf8),
              FileManager.default.isWritableFile(atPath: parameter) else { return false }
        try (offered ? "Y" : "N").write(toFile: parameter, atomically: false, encoding: .utf8)
        defer { try? before.write(toFile: parameter, atomically: false, encoding: .utf8) }
        try body()
        return true
    }

    /// The requests the daemon's log says its rings served, or nil if it never claimed them.
    static func served(_ log: String) -> Int? {
        guard log.contains("requests served through io_uring") else { return nil }
        return count(after: "io_uring served ", in: log)
    }

    /// Creates, writes past a payload's size, reads back, renames, links, lists, sets and
    /// reads xattrs, truncates, unlinks — and finds each result right, with the requests
    /// counted as served by the rings.
    @Test(arguments: ["remote-disk", "ec-4-2"])
    func operationsThroughTheRingsBehave(storageClass: String) throws {
        let ran = try Self.withRingsOffered(true) {
            let v = try MountedVolume(storageClass: storageClass, chunk: 1 << 20, logsToFile: true)
            try workload(v)
            v.unmount()
            let log = (try? String(contentsOfFile: v.daemonLog!, encoding: .utf8)) ?? ""
            let served = Self.served(log)
            #expect(served != nil, "no ring claimed: \(log)")
            #expect((served ?? 0) >= 400, "\(log)")
            // The reads' data went straight into the rings' payloads (FuseRing.replyBuffer).
            #expect((Self.count(after: "requests (", in: log) ?? 0) >= 50, "\(log)")
            // Remounted (a new connection, new rings): everything is still there.
            try v.mount()
            #expect(readFile(v.path("big")) == Self.pattern(3 << 20 + 123))
            for i in 0..<100 where i % 2 == 1 { #expect(readFile(v.path("d/f\(i)")) == Array("file \(i)".utf8)) }
        }
        if !ran { print("skipped: no writable \(Self.parameter)") }
    }

    /// `BERTH_FUSE_RING=0` keeps a mount on /dev/fuse even where rings are offered.
    @Test func ringsCanBeTurnedOff() throws {
        _ = try Self.withRingsOffered(true) {
            let v = try MountedVolume(storageClass: "remote-disk", environment: ["BERTH_FUSE_RING": "0"], logsToFile: true)
            #expect(writeFile(v.path("a"), Array("x".utf8)) == 0)
            #expect(readFile(v.path("a")) == Array("x".utf8))
            v.unmount()
            let log = (try? String(contentsOfFile: v.daemonLog!, encoding: .utf8)) ?? ""
            #expect(Self.served(log) == nil)
        }
    }

    /// The number right after `marker` in the daemon's closing io_uring line.
    static func count(after marker: String, in log: String) -> Int? {
        guard let line = log.split(separator: "\n").last(where: { $0.contains("io_uring served") }),
              let at = line.range(of: marker) else { return nil }
        return Int(line[at.upperBound...].prefix { $0.isNumber })
    }

    /// Every unlink makes the kernel send a FORGET, and FORGETs come through /dev/fuse even
    /// while the rings serve everything else. The device's reader lets them gather: a
    /// stream of unlinks costs it a few reads, not one wake-up each (which took a CPU from
    /// the unlinks themselves: deletes/s 16,100 → 22,500, docs/filesystem.md).
    @Test func forgetsGatherBesideTheRings() throws {
        _ = try Self.withRingsOffered(true) {
            let v = try MountedVolume(storageClass: "remote-disk", logsToFile: true)
            let files = 2_000
            #expect(mkdir(v.path("d"), 0o755) == 0)
            for i in 0..<files { #expect(writeFile(v.path("d/f\(i)"), []) == 0) }
            for i in 0..<files { #expect(unlink(v.path("d/f\(i)")) == 0) }
            #expect(rmdir(v.path("d")) == 0)
            v.unmount()
            let log = (try? String(contentsOfFile: v.daemonLog!, encoding: .utf8)) ?? ""
            guard Self.served(log) != nil else { Issue.record("no ring claimed: \(log)"); return }
            let reads = Self.count(after: "/dev/fuse was read ", in: log)
            #expect(reads != nil, "\(log)")
            #expect((reads ?? .max) < files / 4, "\(log)")
        }
    }

    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) } }

    func workload(_ v: MountedVolume) throws {
        #expect(mkdir(v.path("d"), 0o755) == 0)
        for i in 0..<100 { #expect(writeFile(v.path("d/f\(i)"), Array("file \(i)".utf8)) == 0) }
        for i in 0..<100 { #expect(readFile(v.path("d/f\(i)")) == Array("file \(i)".utf8)) }
        // Larger than one request's payload (1 MiB): split by the kernel, reassembled here.
        let big = Self.pattern(3 << 20 + 123)
        #expect(writeFile(v.path("big"), big, sync: true) == 0)
        #expect(readFile(v.path("big")) == big)
        let names = try FileManager.default.contentsOfDirectory(atPath: v.path("d"))
        #expect(names.count == 100)
        #expect(rename(v.path("d/f0"), v.path("d/g0")) == 0)
        #expect(errnoOf(rename(v.path("d/f0"), v.path("d/g0"))) == ENOENT)
        #expect(link(v.path("d/g0"), v.path("h0")) == 0)
        var st = stat()
        #expect(stat(v.path("h0"), &st) == 0 && st.st_nlink == 2)
        #expect(setxattr(v.path("h0"), "user.k", "value", 5, 0) == 0)
        var value = [UInt8](repeating: 0, count: 16)
        #expect(getxattr(v.path("h0"), "user.k", &value, 16) == 5 && Array(value.prefix(5)) == Array("value".utf8))
        #expect(truncate(v.path("h0"), 2) == 0)
        #expect(readFile(v.path("d/g0")) == Array("fi".utf8))
        for i in stride(from: 2, to: 100, by: 2) { #expect(unlink(v.path("d/f\(i)")) == 0) }
        #expect(errnoOf(unlink(v.path("d/f2"))) == ENOENT)
        #expect(errnoOf(rmdir(v.path("d"))) == ENOTEMPTY)
        #expect(errnoOf(mkdir(v.path("d"), 0o755)) == EEXIST)
    }
}
