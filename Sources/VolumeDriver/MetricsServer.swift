import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 server for `GET /metrics` (Prometheus text format). Anything else
/// gets 404. Binds to the address it is given (localhost by default).
final class MetricsServer: Sendable {
    let channel: any Channel

    init(host: String, port: Int, render: @escaping @Sendable () -> String) async throws {
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(Handler(render: render))
                }
            }
            .bind(host: host, port: port).get()
    }

    var port: Int? { channel.localAddress?.port }

    func close() async { try? await channel.close() }

    final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let render: @Sendable () -> String
        var head: HTTPRequestHead?

        init(render: @escaping @Sendable () -> String) { self.render = render }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body: break
            case .end:
                guard let head else { return }
                self.head = nil
                let ok = head.method == .GET && (head.uri == "/metrics" || head.uri.hasPrefix("/metrics?"))
                // Rendering queries the engine (SQLite): off the event loop, which the gRPC
                // servers share, then back onto it to reply.
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let render = self.render
                DispatchQueue.global().async {
                    let body = ok ? render() : "not found: try /metrics\n"
                    bound.eventLoop.execute {
                        let (handler, context) = bound.value
                        handler.reply(context, head: head, ok: ok, body: body)
                    }
                }
            }
        }

        func reply(_ context: ChannelHandlerContext, head: HTTPRequestHead, ok: Bool, body: String) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: ok ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: ok ? .ok : .notFound, headers: headers))),
                          promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }
}
