import AgentProtocol
import ClusterTLS
import Dispatch
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Storage
import Synchronization

/// The connection to one host's node agent, shared by all of that host's devices: a gRPC
/// client over mutual TLS that accepts only a certificate naming `node`, and a heartbeat
/// (`Status` every `heartbeatInterval`) that says whether the host is answering and keeps
/// its devices' figures current.
public final class AgentConnection: Sendable {
    public let node: String
    public let address: String
    let client: GRPCClient<HTTP2ClientTransport.Posix>
    /// The connection of the exchange stream (small reads only).
    let smallClient: GRPCClient<HTTP2ClientTransport.Posix>
    let agent: Berth_Agent_V1_NodeAgent.Client<HTTP2ClientTransport.Posix>
    /// Small reads travel on one long-lived stream (`AgentExchange`).
    let exchange: AgentExchange
    private let tasks = Mutex<[Task<Void, Never>]>([])
    private let heartbeatStarted = Atomic<Bool>(false)
    /// When the agent last answered anything (ms, monotonic); 0: not since the last failure.
    private let heardMs = Atomic<Int64>(0)
    private let lastStatus = Mutex<Berth_Agent_V1_StatusReply?>(nil)
    private let statusMs = Atomic<Int64>(0)

    /// How often the heartbeat asks, and how long a silence makes the host unreachable.
    public static let heartbeatInterval: Duration = .seconds(1)
    public static let silenceMs: Int64 = 5_000
    /// Deadlines: a hung host must not hold a writer or reader forever. (A heartbeat may
    /// wait a few seconds on a loaded machine; the silence, not one late answer, decides.)
    static let statusTimeout: Duration = .seconds(4)
    /// Adding a device waits longer for its agent's answer.
    static let verifyTimeout: Duration = .seconds(20)
    static let dataTimeout: Duration = .seconds(30)

    /// Connects (lazily: the first call dials) to `node`'s agent at `address` (HOST:PORT).
    public init(node: String, address: String, tls: TLSDirectory) throws {
        self.node = node
        self.address = address
        guard let (host, port) = HostPort.parse(address), port > 0 else {
            throw TLSSetupError("agent address \"\(address)\" is not HOST:PORT")
        }
        client = GRPCClient(transport: try Self.transport(node: node, host: host, port: port, tls: tls))
        agent = Berth_Agent_V1_NodeAgent.Client(wrapping: client)
        // Small reads get a TCP connection of their own. After a bulk transfer, the TLS
        // layer's receive buffer stays large and the HTTP/2 parser holds on to it, so every
        // small message that followed on the same connection copied the whole buffer (13 %
        // of an agent's CPU in `HTTP2FrameDecoder.append` during 4 KiB random reads).
        smallClient = GRPCClient(transport: try Self.transport(node: node, host: host, port: port, tls: tls))
        exchange = AgentExchange(agent: Berth_Agent_V1_NodeAgent.Client(wrapping: smallClient))
        let clients = [client, smallClient]
        tasks.withLock { tasks in
            for client in clients { tasks.append(Task(executorPreference: AgentExecutor.shared) { try? await client.runConnections() }) }
        }
    }

    private static func transport(node: String, host: String, port: Int, tls: TLSDirectory) throws -> HTTP2ClientTransport.Posix {
        try HTTP2ClientTransport.Posix(
            target: .dns(host: host, port: port), transportSecurity: tls.clientSecurity,
            config: .defaults { config in
                // The name the agent's certificate must carry (TLS server name and :authority).
                config.http2.authority = node
                config.http2.maxFrameSize = AgentService.maxFrameBytes
                config.http2.targetWindowSize = AgentService.windowBytes
                config.backoff = .init(initial: .milliseconds(100), max: .seconds(2), multiplier: 1.6, jitter: 0.2)
                config.connection.maxIdleTime = nil
                // A partitioned host's connection is found dead in seconds and dialled anew.
                config.connection.keepalive = .init(time: .seconds(2), timeout: .seconds(2), allowWithoutCalls: true)
                config.channelDebuggingCallbacks.onCreateTCPConnection = PlaintextRepacker.install
            })
    }

    /// Starts the heartbeat (once).
    func startHeartbeat() {
        guard heartbeatStarted.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        tasks.withLock { tasks in
            tasks.append(Task(executorPreference: AgentExecutor.shared) { [weak self] in
                while !Task.isCancelled {
                    guard let self else { return }
                    _ = try? await self.status()
                    try? await Task.sleep(for: Self.heartbeatInterval)
                }
            })
        }
    }

    /// Whether the agent answered within the last `silenceMs`.
    public var isResponsive: Bool {
        let heard = heardMs.load(ordering: .relaxed)
        return heard > 0 && Monotonic.milliseconds() - heard < Self.silenceMs
    }

    /// The agent's last status report.
    var status: Berth_Agent_V1_StatusReply? { lastStatus.withLock { $0 } }

    /// Asks the agent for its status now.
    @discardableResult
    func status(timeout: Duration = statusTimeout) async throws -> Berth_Agent_V1_StatusReply {
        do {
            let reply = try await agent.status(Berth_Agent_V1_StatusRequest(), options: Self.options(timeout))
            guard reply.node == node else {
                // The certificate said `node` (TLS checked it); an agent configured otherwise is refused too.
                throw RPCError(code: .permissionDenied, message: "the agent at \(address) says it is node \(reply.node), not \(node)")
            }
            lastStatus.withLock { $0 = reply }
            statusMs.store(Monotonic.milliseconds(), ordering: .relaxed)
            heard()
            return reply
        } catch {
            failed(error)
            throw error
        }
    }

    func heard() { heardMs.store(Monotonic.milliseconds(), ordering: .relaxed) }

    /// Records a failed call. Only a transport failure (the connection refused or lost)
    /// makes the host unreachable at once; any answer, an error included, is a sign of life,
    /// and a slow call (deadline) is left to the heartbeat, so one late reply under load or
    /// a throttled link does not flap the host.
    func failed(_ error: any Error) {
        guard let rpc = error as? RPCError else { return }
        switch rpc.code {
        case .unavailable: heardMs.store(0, ordering: .relaxed)
        case .deadlineExceeded, .cancelled, .unknown: break
        default: heard()
        }
    }

    /// When the last status report arrived (monotonic ms), to tell it from newer figures.
    var statusArrivedMs: Int64 { statusMs.load(ordering: .relaxed) }

    static func options(_ timeout: Duration) -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = timeout
        return options
    }

    /// Stops the heartbeat and closes the connection.
    public func close() {
        exchange.close()
        client.beginGracefulShutdown()
        smallClient.beginGracefulShutdown()
        for task in tasks.withLock({ $0 }) { task.cancel() }
    }

    /// Runs async work from a blocking caller (device queues, FUSE threads, the mover; never
    /// a task of the cooperative pool) on the caller's thread, and waits for its result.
    static func wait<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
        CallerExecutor.run(work)
    }
}
