import NIOCore
import NIOSSL

/// Sits between TLS and HTTP/2 on every agent connection, at both ends, and passes each
/// decrypted read on in a buffer of its own, as large as the read.
///
/// Why: NIOSSL decrypts into one buffer that it keeps and reuses, grown to the largest read
/// it has seen (megabytes after a bulk transfer), and hands HTTP/2 that very buffer. HTTP/2
/// keeps it while a frame is incomplete and appends the next read to it; from then on both
/// write to one shared storage, and a `ByteBuffer` written while shared first copies its
/// whole capacity (copy-on-write), not the few bytes read. During 1 MiB reads on a 6-host
/// cluster that made `HTTP2FrameDecoder.append` copy megabytes for every read of kilobytes:
/// 10–15 % of the machine's CPU, growing with the buffer. One copy of the bytes read leaves
/// NIOSSL's buffer its own again and gives HTTP/2 buffers of the size of what it parses.
final class PlaintextRepacker: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let read = unwrapInboundIn(data)
        var own = context.channel.allocator.buffer(capacity: read.readableBytes)
        own.writeImmutableBuffer(read)
        context.fireChannelRead(wrapInboundOut(own))
    }

    /// Puts one behind the channel's TLS handler (a channel without one is left alone): for
    /// the transports' `onCreateTCPConnection` and `onAcceptTCPConnection` callbacks, which
    /// run once the transport has built the pipeline.
    @Sendable static func install(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            guard let tls = try? pipeline.context(handlerType: NIOSSLHandler.self) else { return }
            try pipeline.addHandler(PlaintextRepacker(), position: .after(tls.handler))
        }
    }
}
