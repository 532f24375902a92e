import Metadata

/// The bytes a volume's files take against its provisioned size, counted as `statfs`
/// reports them: the chunks that hold data (`FileAllocation`), bytes not committed yet
/// included. Holes take nothing, as on ext4: a 10 GiB sparse file fits a 1 GiB volume
/// until 1 GiB of it is written.
///
/// Kept as an upper bound, so the common path costs an addition: growth is added when it is
/// granted; space given back is subtracted where its amount is known (a truncate) and
/// otherwise only marks the count stale (an unlink, a rename over a file — the file may
/// still be open —, a punched hole). The exact figure is recounted from the namespace only when a growth would
/// not fit while the count is stale, so a write is refused only when the exact count says
/// the volume is full.
///
/// A second one counts the namespace's entries against `EntryLimit` the same way (in
/// units of one inode or name instead of bytes).
struct SpaceAccount {
    private(set) var usedBytes: Int64
    /// Whether space may have been given back since `usedBytes` was last exact.
    private(set) var isStale = false

    init(usedBytes: Int64) { self.usedBytes = usedBytes }

    /// Grants `bytes` of growth under `capacity` and counts it: all of it, or with
    /// `partial` as much as fits (a short write). `recount` gives the exact bytes in use.
    /// Throws `noSpace` when nothing fits, or — without `partial` — not all of it.
    mutating func grant(_ bytes: Int64, capacity: Int64, partial: Bool,
                        recount: () throws(FSError) -> Int64) throws(FSError) -> Int64 {
        if bytes <= 0 { return 0 }
        if bytes > capacity - usedBytes && isStale {  // no sum: `bytes` may be near Int64.max
            usedBytes = try recount()
            isStale = false
        }
        let room = max(0, capacity - usedBytes)
        let granted = min(bytes, room)
        if granted == 0 || (!partial && granted < bytes) { throw .noSpace }
        usedBytes += granted
        return granted
    }

    /// `bytes` known to be given back (a file cut shorter, a grant not used).
    mutating func release(_ bytes: Int64) {
        if bytes > 0 { usedBytes = max(0, usedBytes - bytes) }
    }

    /// Space may have been given back by an amount not known here.
    mutating func markStale() { isStale = true }
}
