import GRPCCore
import GRPCNIOTransportHTTP2
import NIOCore

/// gRPC over Unix sockets, plaintext (the socket's file mode is the access control).
public enum Transports {
    /// A server transport on an already listening descriptor (see `UnixSocket.listen`).
    public static func server(descriptor: Int32,
                              onAccept: (@Sendable (any Channel) -> EventLoopFuture<Void>)? = nil) -> HTTP2ServerTransport.Posix {
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.channelDebuggingCallbacks.onAcceptTCPConnection = onAccept
        return .http2NIOPosix(listeningSocketDescriptor: Int(descriptor), transportSecurity: .plaintext, config: config)
    }

    /// A client transport to the socket at `path`.
    public static func client(path: String) throws -> HTTP2ClientTransport.Posix {
        try .http2NIOPosix(target: .unixDomainSocket(path: path), transportSecurity: .plaintext)
    }
}
