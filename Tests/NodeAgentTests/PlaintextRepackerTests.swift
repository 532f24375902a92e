import NIOCore
import NIOEmbedded
import NIOSSL
import Testing
@testable import NodeAgent

/// Decrypted reads reach HTTP/2 in buffers of their own (`PlaintextRepacker`): without it,
/// TLS's reused receive buffer is shared with HTTP/2's parser and every read copies its
/// whole capacity.
@Suite struct PlaintextRepackerTests {
    @Test func aReadLeavesInABufferOfItsOwnSize() throws {
        let channel = EmbeddedChannel(handler: PlaintextRepacker())
        // What TLS hands on: a few bytes in a buffer grown large by earlier reads.
        var big = channel.allocator.buffer(capacity: 1 << 20)
        big.writeBytes([UInt8](repeating: 7, count: 100))
        big.moveReaderIndex(forwardBy: 10)
        try channel.writeInbound(big)
        let passed = try #require(try channel.readInbound(as: ByteBuffer.self))
        #expect(passed.readableBytesView.elementsEqual([UInt8](repeating: 7, count: 90)))
        #expect(passed.capacity < 4096, "the read still sits in the large buffer")
        // Its own storage: the sender writing its buffer again does not touch what was passed.
        big.clear()
        big.writeBytes([UInt8](repeating: 9, count: 100))
        #expect(passed.readableBytesView.allSatisfy { $0 == 7 })
        #expect(try channel.finish().isClean)
    }

    @Test func itGoesRightBehindTLSAndNowhereWithout() throws {
        let plain = EmbeddedChannel()
        try PlaintextRepacker.install(on: plain).wait()
        #expect((try? plain.pipeline.syncOperations.context(handlerType: PlaintextRepacker.self)) == nil)

        let context = try NIOSSLContext(configuration: .makeClientConfiguration())
        let tls = try NIOSSLClientHandler(context: context, serverHostname: "n1")
        let after = ChannelInboundHandlerAdapterForTests()
        let channel = EmbeddedChannel(handlers: [tls, after])
        try PlaintextRepacker.install(on: channel).wait()
        let pipeline = channel.pipeline.syncOperations
        let repacker = try pipeline.context(handlerType: PlaintextRepacker.self)
        let tlsContext = try pipeline.context(handlerType: NIOSSLHandler.self)
        let next = try pipeline.context(handlerType: ChannelInboundHandlerAdapterForTests.self)
        #expect(repacker.name != tlsContext.name && repacker.name != next.name)
        // Order: TLS, the repacker, then what came after TLS.
        let names = "\(channel.pipeline)"
        let positions = [tlsContext.name, repacker.name, next.name].map { names.range(of: $0)?.lowerBound }
        #expect(positions.allSatisfy { $0 != nil } && positions[0]! < positions[1]! && positions[1]! < positions[2]!, "\(names)")
    }
}

/// A stand-in for HTTP/2's handler behind TLS.
final class ChannelInboundHandlerAdapterForTests: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
}
