import Foundation

/// A FUSE session whose `/dev/fuse` descriptor the keeper holds (`FuseKeeper`), so that its
/// mount outlives the daemon serving it: what a successor needs to serve it again.
public struct HeldSession: Codable, Sendable, Equatable {
    /// The mount point of the FUSE session (the node's per-volume session directory): the key.
    public var mountpoint: String
    public var volume: String
    public var readOnly: Bool
    /// The kernel's FUSE_INIT request for this connection, as read from the device. A
    /// successor replays it into its own libfuse session (which serves nothing before an
    /// INIT), so both negotiate exactly what the kernel and the first daemon agreed.
    public var initRequest: Data
    /// Whether its daemon stopped serving it cleanly (every request it read answered, its
    /// buffered writes committed); false while a daemon serves it, and after a SIGKILL.
    public var clean: Bool
    /// The files open on it when its daemon stopped cleanly (inode → handles): unlinked
    /// files still open are kept until their last close. Nil: not known (a SIGKILL).
    public var openHandles: [Int64: Int]?

    public init(mountpoint: String, volume: String, readOnly: Bool, initRequest: Data, clean: Bool = false,
                openHandles: [Int64: Int]? = nil) {
        self.mountpoint = mountpoint
        self.volume = volume
        self.readOnly = readOnly
        self.initRequest = initRequest
        self.clean = clean
        self.openHandles = openHandles
    }
}

/// One request to the keeper and its answer: JSON in one SOCK_SEQPACKET message each, a
/// descriptor attached to `hold` requests and `take` answers.
struct KeeperRequest: Codable {
    enum Operation: String, Codable { case hold, take, list, release }
    static let version = 1
    var version = KeeperRequest.version
    var op: Operation
    var mountpoint: String?
    var session: HeldSession?
}

struct KeeperAnswer: Codable {
    var ok: Bool
    var error: String?
    var sessions: [HeldSession]?
}
