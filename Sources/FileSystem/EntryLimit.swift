/// How many entries a volume's namespace may hold: its inodes, and every name of a file
/// past its first (hard links). ext4 keeps names in directory blocks that take the
/// volume's own space and has one inode per 16 KiB of it (mke2fs's default `inode_ratio`);
/// Berth keeps both in the node's metadata database, outside the provisioned bytes, so
/// without a limit one volume's empty files or links could grow that database — shared by
/// every volume of the node — without end. The same ratio, with a floor for small volumes.
/// Counted with a `SpaceAccount` (an upper bound, recounted exactly before a refusal);
/// `statfs` reports the limit as the volume's files (`df -i`).
enum EntryLimit {
    static let bytesPerEntry: Int64 = 16 << 10
    static let minimum: Int64 = 65_536

    static func entries(capacityBytes: Int64) -> Int64 { max(minimum, capacityBytes / bytesPerEntry) }
}
