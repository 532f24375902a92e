import Foundation
@testable import FuseHandoff
import TestSupport
import Testing

/// The keeper (`berth-fuse-keeper`, a real process): holds descriptors handed to it, gives
/// them back, lets go of dead ones, answers nonsense with an error, ends when idle.
@Suite struct FuseKeeperTests {
    static func socketPath() -> String { "/tmp/bk-" + UUID().uuidString.prefix(8).lowercased() + ".sock" }

    @Test func holdsTakesListsAndReleasesDescriptors() throws {
        let path = Self.socketPath()
        let client = try #require(KeeperClient.connect(socketPath: path, executable: BuiltProduct.path("berth-fuse-keeper")))
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        let session = HeldSession(mountpoint: "/mnt/a", volume: "vol-a", readOnly: false, initRequest: Data([1, 2, 3]))
        try client.hold(session, descriptor: fds[1])
        close(fds[1])  // the keeper's copy keeps the pipe's write end open
        #expect(try client.list() == [session])
        // What comes back is the same pipe: bytes written to it arrive at our read end.
        let (taken, descriptor) = try client.take("/mnt/a")
        #expect(taken == session)
        #expect(write(descriptor, "x", 1) == 1)
        close(descriptor)
        var byte: UInt8 = 0
        #expect(read(fds[0], &byte, 1) == 1 && byte == UInt8(ascii: "x"))
        #expect(throws: HandoffError.self) { try client.take("/mnt/none") }
        // Nonsense gets an error and the keeper keeps serving.
        let raw = try #require(PacketSocket.connect(path: path))
        try raw.send(Data("not json".utf8))
        let answer = try #require(try raw.receive())
        #expect(String(decoding: answer.0, as: UTF8.self).contains("\"ok\":false"))
        #expect(try client.list().count == 1)
        // Released: the write end closes with the keeper's copy.
        try client.release("/mnt/a")
        #expect(try client.list().isEmpty)
        #expect(read(fds[0], &byte, 1) == 0, "end of file once the last write end is closed")
        close(fds[0])
    }

    @Test func aDeadDescriptorIsLetGoAndAnIdleKeeperEnds() throws {
        let path = Self.socketPath()
        var client = KeeperClient.connect(socketPath: path, executable: BuiltProduct.path("berth-fuse-keeper"))
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        // The read end, whose writer then goes: POLLHUP, as a FUSE device reports POLLERR
        // once its connection ends.
        try #require(client).hold(HeldSession(mountpoint: "/mnt/b", volume: "vol-b", readOnly: true, initRequest: Data()), descriptor: fds[0])
        close(fds[0])
        close(fds[1])
        let letGo = (0..<40).contains { _ in usleep(50_000); return (try? client?.list().isEmpty) == true }
        #expect(letGo)
        // Nothing held, and the last client goes: the keeper ends and removes its socket.
        client = nil
        let ended = (0..<100).contains { _ in usleep(50_000); return !FileManager.default.fileExists(atPath: path) }
        #expect(ended)
    }
}
