import Foundation
import Synchronization

/// What keeps one open volume database's namespace shipped to a `NamespaceStore`, under the
/// volume's lease: the lease, whether this node has been fenced off, and the timers that
/// renew the lease and ship changes shortly after they commit. The SQL is in
/// `VolumeDatabase+Mirror`.
///
/// The local SQLite database stays the working copy: every operation reads and commits
/// there at the embedded path's speed, and triggers on its connection record the key of
/// each changed row. A **shipment** sends the changed rows, as they stand in one committed
/// snapshot, to the store in one transaction that checks the lease's generation; an fsync
/// ships before it answers, and other changes ship `shipDelay` after they commit. Once a
/// shipment is refused because another node took the lease, every namespace change here
/// fails with EIO: nothing of this node's lands after the take-over.
public final class NamespaceMirror: @unchecked Sendable {
    public struct Settings: Sendable {
        public let store: any NamespaceStore
        /// Who takes the lease: stable across restarts of the same node (a restarted node
        /// takes its own lease back at once), different between nodes.
        public let holder: String
        /// How long a lease runs without renewal: the longest another node waits for the
        /// lease of a node that died. Renewed every third of it.
        public let ttl: Duration
        /// How long changes wait before they ship by themselves (an fsync ships at once).
        public let shipDelay: Duration
        /// How long opening waits for another holder's lease to run out before it fails.
        public let acquireWait: Duration

        public init(store: any NamespaceStore, holder: String, ttl: Duration = .seconds(8),
                    shipDelay: Duration = .milliseconds(500), acquireWait: Duration? = nil) {
            self.store = store
            self.holder = holder
            self.ttl = ttl
            self.shipDelay = shipDelay
            self.acquireWait = acquireWait ?? ttl + .seconds(2)
        }
    }

    public let settings: Settings
    private let state = Mutex<State>(State())
    /// One shipment at a time (the timer's and an fsync's).
    let shipping = NSLock()
    let queue = DispatchQueue(label: "berth.namespace-mirror")
    /// The renewal's own queue: a shipment waiting on a slow store never holds it up.
    private let renewalQueue = DispatchQueue(label: "berth.namespace-lease")

    private struct State {
        var lease: NamespaceLease?
        var fenced = false
        var shipScheduled = false
        var closed = false
    }
    /// The renewal timer (under `timerLock`: a timer is not Sendable).
    private var renewal: DispatchSourceTimer?
    private let timerLock = NSLock()

    init(settings: Settings) {
        self.settings = settings
    }

    /// The lease this node holds (nil before opening finished).
    public var lease: NamespaceLease? { state.withLock { $0.lease } }

    /// Whether another node took the volume over: nothing may change here any more.
    public var isFenced: Bool { state.withLock { $0.fenced } }

    /// What opening found: the local copy was replaced by the store's…
    public internal(set) var restored: Bool {
        get { flags.withLock { $0.restored } }
        set { flags.withLock { $0.restored = newValue } }
    }
    /// … because another node wrote the volume since this one did: what this node kept of
    /// its own (the journal of acknowledged writes) must not be replayed over it.
    public internal(set) var writtenElsewhere: Bool {
        get { flags.withLock { $0.writtenElsewhere } }
        set { flags.withLock { $0.writtenElsewhere = newValue } }
    }
    private let flags = Mutex<(restored: Bool, writtenElsewhere: Bool)>((false, false))

    /// `writtenElsewhere`, told once (the first mount after opening acts on it; later ones
    /// find only what this node wrote under its lease).
    public func takeWrittenElsewhere() -> Bool {
        flags.withLock { f in defer { f.writtenElsewhere = false }; return f.writtenElsewhere }
    }

    func setLease(_ lease: NamespaceLease) { state.withLock { $0.lease = lease } }

    func fence() { state.withLock { $0.fenced = true } }

    /// Claims the next timed shipment; false if one is already scheduled (or closed).
    func claimShipment() -> Bool {
        state.withLock { s in
            if s.shipScheduled || s.closed || s.fenced { return false }
            s.shipScheduled = true
            return true
        }
    }

    func shipmentStarted() { state.withLock { $0.shipScheduled = false } }

    /// Renews the lease every third of its time, until closed; `renew` says false once the
    /// lease is lost.
    func startRenewal(_ renew: @escaping @Sendable () -> Void) {
        let timer = DispatchSource.makeTimerSource(queue: renewalQueue)
        let every = (settings.ttl / 3).dispatchInterval
        timer.schedule(deadline: .now() + every, repeating: every)
        timer.setEventHandler(handler: renew)
        timerLock.withLock { renewal = timer }
        timer.resume()
    }

    /// Stops the timers; returns the lease to give up (nil if fenced or never held).
    @discardableResult
    public func close() -> NamespaceLease? {
        timerLock.withLock {
            renewal?.cancel()
            renewal = nil
        }
        return state.withLock { s in
            s.closed = true
            return s.fenced ? nil : s.lease
        }
    }

    var isClosed: Bool { state.withLock { $0.closed } }

    deinit { renewal?.cancel() }
}

extension Duration {
    /// As a dispatch interval (whole nanoseconds).
    var dispatchInterval: DispatchTimeInterval {
        .nanoseconds(Int(components.seconds) * 1_000_000_000 + Int(components.attoseconds / 1_000_000_000))
    }

    /// In seconds, as a double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
