import AgentProtocol
import Dispatch
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization

/// The client's end of one agent's `Exchange` stream (proto/agent.proto): small calls from
/// blocking callers, each sent as one message with an id and answered by one, many in
/// flight at once on a stream opened once. A caller waits on a semaphore of its own, which
/// the stream's reader signals with the reply: one thread wake-up on the way back, and no
/// HTTP/2 stream, task group or timer per call.
///
/// When the stream breaks (the host is gone, the connection was reset), every waiting
/// caller gets the stream's error and the next call opens a new stream. An agent that does
/// not know `Exchange` (an older version during a rolling upgrade) answers UNIMPLEMENTED:
/// `isSupported` turns false and callers use the one-RPC-per-call path.
final class AgentExchange: Sendable {
    private final class Waiter: Sendable {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<Berth_Agent_V1_ExchangeReply, any Error>?>(nil)

        func finish(_ outcome: Result<Berth_Agent_V1_ExchangeReply, any Error>) {
            let first = result.withLock { slot -> Bool in
                guard slot == nil else { return false }
                slot = outcome
                return true
            }
            if first { done.signal() }
        }
    }

    private struct Stream {
        /// Where callers put requests; nil: no stream open.
        var requests: AsyncStream<Berth_Agent_V1_ExchangeRequest>.Continuation?
        /// Which stream the current `requests` feeds (a stream that ended fails only its own callers).
        var generation = 0
        var waiters: [UInt64: (generation: Int, waiter: Waiter)] = [:]
        var nextID: UInt64 = 1
        var task: Task<Void, Never>?
        var closed = false
    }

    private let agent: Berth_Agent_V1_NodeAgent.Client<HTTP2ClientTransport.Posix>
    private let state = Mutex(Stream())
    private let unsupported = Atomic<Bool>(false)

    init(agent: Berth_Agent_V1_NodeAgent.Client<HTTP2ClientTransport.Posix>) {
        self.agent = agent
    }

    /// False once the agent has said it does not serve `Exchange`.
    var isSupported: Bool { !unsupported.load(ordering: .relaxed) }

    /// Sends `request` and waits up to `timeout` for its reply. Errors are the stream's
    /// (`RPCError`: unavailable when the connection broke, deadlineExceeded when no reply
    /// came in time) or the agent's for this request (an `error` reply, as an `RPCError`).
    func call(_ kind: Berth_Agent_V1_ExchangeRequest.OneOf_Kind, timeout: Duration) -> Result<Berth_Agent_V1_ExchangeReply, any Error> {
        let waiter = Waiter()
        let sent = state.withLock { s -> UInt64? in
            if s.closed { return nil }
            if s.requests == nil { open(&s) }
            let id = s.nextID
            s.nextID &+= 1
            s.waiters[id] = (s.generation, waiter)
            var request = Berth_Agent_V1_ExchangeRequest()
            request.id = id
            request.kind = kind
            s.requests?.yield(request)
            return id
        }
        guard let id = sent else { return .failure(RPCError(code: .unavailable, message: "the connection to the agent is closed")) }
        let (seconds, attoseconds) = timeout.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        if waiter.done.wait(timeout: .now() + .nanoseconds(nanoseconds)) == .timedOut {
            state.withLock { s in _ = s.waiters.removeValue(forKey: id) }
            waiter.finish(.failure(RPCError(code: .deadlineExceeded, message: "no reply from the agent in \(timeout)")))
        }
        // Set by the reply, the stream's end or the deadline above, whichever came first.
        switch waiter.result.withLock({ $0 })! {
        case .success(let reply):
            if case .error(let error)? = reply.kind {
                let code = Status.Code(rawValue: Int(error.code)).flatMap(RPCError.Code.init) ?? .unknown
                return .failure(RPCError(code: code, message: error.message))
            }
            return .success(reply)
        case .failure(let error):
            return .failure(error)
        }
    }

    /// Opens a new stream (under the lock): callers' requests flow into it from now on.
    private func open(_ s: inout Stream) {
        s.generation += 1
        let generation = s.generation
        let (requests, continuation) = AsyncStream<Berth_Agent_V1_ExchangeRequest>.makeStream()
        s.requests = continuation
        let agent = self.agent
        s.task = Task(executorPreference: AgentExecutor.shared) { [weak self] in
            let owner = self
            var ended: any Error = RPCError(code: .unavailable, message: "the agent ended the exchange stream")
            do {
                try await agent.exchange(requestProducer: { writer in
                    for await request in requests { try await writer.write(request) }
                }, onResponse: { response in
                    for try await reply in response.messages { owner?.deliver(reply) }
                })
            } catch {
                ended = error
            }
            owner?.ended(generation, error: ended)
        }
    }

    private func deliver(_ reply: Berth_Agent_V1_ExchangeReply) {
        let waiter = state.withLock { s in s.waiters.removeValue(forKey: reply.id)?.waiter }
        waiter?.finish(.success(reply))
    }

    /// The stream of `generation` ended: its waiting callers get `error`; the next call opens another.
    private func ended(_ generation: Int, error: any Error) {
        if let rpc = error as? RPCError, rpc.code == .unimplemented { unsupported.store(true, ordering: .relaxed) }
        let failed = state.withLock { s -> [Waiter] in
            if s.generation == generation {
                s.requests?.finish()
                s.requests = nil
                s.task = nil
            }
            let mine = s.waiters.filter { $0.value.generation == generation }
            for id in mine.keys { s.waiters[id] = nil }
            return mine.values.map(\.waiter)
        }
        for waiter in failed { waiter.finish(.failure(error)) }
    }

    /// Ends the stream; waiting callers get UNAVAILABLE.
    func close() {
        let (task, requests, failed) = state.withLock { s in
            s.closed = true
            defer { s.requests = nil; s.task = nil; s.waiters = [:] }
            return (s.task, s.requests, s.waiters.values.map(\.waiter))
        }
        requests?.finish()
        task?.cancel()
        for waiter in failed { waiter.finish(.failure(RPCError(code: .unavailable, message: "the connection to the agent is closed"))) }
    }
}
