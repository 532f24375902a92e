import Foundation

/// Where volumes' namespaces live beyond the node that writes them (the cluster's
/// PostgreSQL, `MetadataPostgres.PostgresNamespaceStore`), so that a volume can be mounted
/// on another node with everything its last writer shipped, and so that only one node
/// writes it at a time.
///
/// A node mounting a volume read-write takes its **lease**: a row with the holder and a
/// generation that grows by one at every take-over. Every shipment of changes checks the
/// generation in the same transaction that applies them, so a node that lost its lease
/// (partitioned, presumed dead, broken by an admin) cannot land anything after another
/// took over: its shipment is refused (`NamespaceFenced`). Times are the database's
/// clock, never a node's.
public protocol NamespaceStore: AnyObject, Sendable {
    /// Takes the volume's lease for `holder` until `ttl` from now: a new generation. Fails
    /// with `NamespaceLeaseHeld` while another holder's lease runs (the same holder takes
    /// it again at once: a restarted node). The answer says how the store's copy stands.
    func acquireLease(volumeID: String, holder: String, ttl: Duration) throws -> NamespaceLease
    /// Extends the lease; `NamespaceFenced` if it is no longer this generation's.
    func renewLease(_ lease: NamespaceLease, ttl: Duration) throws
    /// Gives the lease up (at unmount): another node may take it at once.
    func releaseLease(_ lease: NamespaceLease) throws
    /// Takes the lease from whoever holds it (an admin's decision, or a node known dead):
    /// the holder is fenced from now on. Returns the holder it had, if any.
    @discardableResult
    func breakLease(volumeID: String) throws -> String?
    /// The lease as it stands (nil: never taken).
    func lease(volumeID: String) throws -> NamespaceLeaseState?
    /// Applies changes in one transaction if `lease` is still the volume's; returns the new
    /// version of the store's copy.
    func ship(_ lease: NamespaceLease, _ changes: NamespaceChanges) throws -> Int64
    /// The store's whole copy of the volume's namespace.
    func load(volumeID: String) throws -> NamespaceImage
    /// The state of one object in the store's copy (nil: not in it).
    func objectState(volumeID: String, objectID: String) throws -> ObjectRecord.State?
}

/// A lease taken: what shipments present, and how the store's copy stood when it was taken.
public struct NamespaceLease: Sendable, Equatable {
    public let volumeID: String
    public let holder: String
    public let generation: Int64
    /// The version of the store's copy (0: nothing shipped yet)…
    public let version: Int64
    /// … and the generation whose holder shipped it last (0: none).
    public let shippedGeneration: Int64

    public init(volumeID: String, holder: String, generation: Int64, version: Int64, shippedGeneration: Int64) {
        self.volumeID = volumeID
        self.holder = holder
        self.generation = generation
        self.version = version
        self.shippedGeneration = shippedGeneration
    }
}

/// A volume's lease as the store has it.
public struct NamespaceLeaseState: Sendable, Equatable {
    public let holder: String?
    public let generation: Int64
    /// Seconds the lease still runs (≤ 0: expired, or released).
    public let remainingSeconds: Double
    public let version: Int64

    public init(holder: String?, generation: Int64, remainingSeconds: Double, version: Int64) {
        self.holder = holder
        self.generation = generation
        self.remainingSeconds = remainingSeconds
        self.version = version
    }
}

/// A store's answer that is a decision, not a failure: passed through unchanged by the
/// layers that turn a database's errors into `MetadataError`.
public protocol NamespaceRefusal: Error {}

/// Another node holds the volume's lease.
public struct NamespaceLeaseHeld: NamespaceRefusal, CustomStringConvertible, Sendable {
    public let volumeID: String
    public let holder: String
    public let remainingSeconds: Double

    public init(volumeID: String, holder: String, remainingSeconds: Double) {
        self.volumeID = volumeID
        self.holder = holder
        self.remainingSeconds = remainingSeconds
    }

    public var description: String {
        "volume \(volumeID) is mounted read-write by node \(holder) (its lease runs \(String(format: "%.1f", remainingSeconds)) s more; "
            + "`provisionctl volume release \(volumeID)` breaks it)"
    }
}

/// The lease this node wrote under is no longer the volume's: another node took over, so
/// nothing of this node's may land any more.
public struct NamespaceFenced: NamespaceRefusal, CustomStringConvertible, Sendable {
    public let volumeID: String
    public let generation: Int64

    public init(volumeID: String, generation: Int64) {
        self.volumeID = volumeID
        self.generation = generation
    }

    public var description: String {
        "volume \(volumeID): this node's lease (generation \(generation)) was taken over; its changes are refused"
    }
}
