/// A POSIX ACL as Linux passes it through the `system.posix_acl_access` and
/// `system.posix_acl_default` xattrs (`posix_acl_xattr`: a little-endian u32 version 2,
/// then per entry u16 tag, u16 permissions, u32 uid or gid), and the rules that tie an
/// access ACL to the file mode, as the kernel's `posix_acl_*` helpers apply them for
/// filesystems that store ACLs themselves. Pure: the namespace stores the bytes, the
/// kernel (the mount negotiates FUSE_CAP_POSIX_ACL) enforces them.
public struct PosixACL: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var tag: UInt16
        public var perm: UInt16
        public var id: UInt32
        public init(tag: UInt16, perm: UInt16, id: UInt32 = Entry.undefinedID) { self.tag = tag; self.perm = perm; self.id = id }
        /// The id the kernel writes for entries that name no one (ACL_UNDEFINED_ID).
        public static let undefinedID = UInt32.max
    }

    public static let userObj: UInt16 = 0x01, user: UInt16 = 0x02, groupObj: UInt16 = 0x04, group: UInt16 = 0x08,
                      mask: UInt16 = 0x10, other: UInt16 = 0x20
    public static let version: UInt32 = 2
    public static let accessName = Array("system.posix_acl_access".utf8)
    public static let defaultName = Array("system.posix_acl_default".utf8)

    public private(set) var entries: [Entry]

    /// Parses and checks an ACL as `posix_acl_valid` does: entries in tag order (named
    /// users and groups by id, none twice), exactly one owner, owning group and other
    /// entry, a mask exactly when there are named entries (or at most one otherwise),
    /// permissions within rwx. Anything else is EINVAL.
    public init(xattr bytes: [UInt8]) throws(FSError) {
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0, Self.u32(bytes, 0) == Self.version else { throw .invalid }
        var entries: [Entry] = []
        entries.reserveCapacity((bytes.count - 4) / 8)
        for offset in stride(from: 4, to: bytes.count, by: 8) {
            entries.append(Entry(tag: Self.u16(bytes, offset), perm: Self.u16(bytes, offset + 2), id: Self.u32(bytes, offset + 4)))
        }
        try self.init(entries: entries)
    }

    public init(entries: [Entry]) throws(FSError) {
        var counts: [UInt16: Int] = [:]
        var previous: Entry?
        for e in entries {
            guard e.perm & ~7 == 0, [Self.userObj, Self.user, Self.groupObj, Self.group, Self.mask, Self.other].contains(e.tag) else {
                throw .invalid
            }
            if let p = previous {
                // Sorted by tag; named entries of one tag by id, each id once.
                if e.tag < p.tag || (e.tag == p.tag && (e.tag != Self.user && e.tag != Self.group || e.id <= p.id)) { throw .invalid }
            }
            counts[e.tag, default: 0] += 1
            previous = e
        }
        let named = counts[Self.user, default: 0] + counts[Self.group, default: 0]
        guard counts[Self.userObj] == 1, counts[Self.groupObj] == 1, counts[Self.other] == 1,
              counts[Self.mask, default: 0] <= 1, named == 0 || counts[Self.mask] == 1 else { throw .invalid }
        self.entries = entries
    }

    /// The three entries a mode alone is.
    public init(mode: Int64) {
        entries = [Entry(tag: Self.userObj, perm: UInt16(mode >> 6 & 7)), Entry(tag: Self.groupObj, perm: UInt16(mode >> 3 & 7)),
                   Entry(tag: Self.other, perm: UInt16(mode & 7))]
    }

    public var xattr: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4 + 8 * entries.count)
        Self.append(&bytes, Self.version)
        for e in entries {
            Self.append16(&bytes, e.tag)
            Self.append16(&bytes, e.perm)
            Self.append(&bytes, e.id)
        }
        return bytes
    }

    /// Whether a mode says all this ACL says (no named entries, no mask).
    public var isEquivalentToMode: Bool { entries.allSatisfy { $0.tag == Self.userObj || $0.tag == Self.groupObj || $0.tag == Self.other } }

    /// The rwx bits of a mode that agrees with this access ACL: owner, mask (or owning
    /// group when there is no mask) and other (`posix_acl_equiv_mode`).
    public var modeBits: Int64 {
        func perm(_ tag: UInt16) -> Int64? { entries.first { $0.tag == tag }.map { Int64($0.perm) } }
        let groupClass = perm(Self.mask) ?? perm(Self.groupObj) ?? 0
        return (perm(Self.userObj) ?? 0) << 6 | groupClass << 3 | (perm(Self.other) ?? 0)
    }

    /// The access ACL after a chmod to `mode` (`posix_acl_chmod`): owner, other and the
    /// group class (the mask if there is one, else the owning group) take the new bits;
    /// named entries keep theirs.
    public func chmod(_ mode: Int64) -> PosixACL {
        var copy = self
        let hasMask = entries.contains { $0.tag == Self.mask }
        for i in copy.entries.indices {
            switch copy.entries[i].tag {
            case Self.userObj: copy.entries[i].perm = UInt16(mode >> 6 & 7)
            case Self.other: copy.entries[i].perm = UInt16(mode & 7)
            case Self.mask: copy.entries[i].perm = UInt16(mode >> 3 & 7)
            case Self.groupObj where !hasMask: copy.entries[i].perm = UInt16(mode >> 3 & 7)
            default: break
            }
        }
        return copy
    }

    /// What a new inode created with `mode` in a directory whose default ACL this is
    /// gets (`posix_acl_create`): its mode, each permission class narrowed by the ACL's
    /// entry for it and the entry by the mode; and its access ACL, nil when the mode
    /// alone says it all. The umask does not apply.
    public func inherited(mode: Int64) -> (mode: Int64, access: PosixACL?) {
        var acl = self
        var bits = mode & 0o777
        let hasMask = entries.contains { $0.tag == Self.mask }
        for i in acl.entries.indices {
            switch acl.entries[i].tag {
            case Self.userObj:
                acl.entries[i].perm &= UInt16(bits >> 6 & 7)
                bits = bits & ~0o700 | Int64(acl.entries[i].perm) << 6
            case Self.other:
                acl.entries[i].perm &= UInt16(bits & 7)
                bits = bits & ~0o007 | Int64(acl.entries[i].perm)
            case Self.mask, Self.groupObj where !hasMask:
                acl.entries[i].perm &= UInt16(bits >> 3 & 7)
                bits = bits & ~0o070 | Int64(acl.entries[i].perm) << 3
            default: break
            }
        }
        return (mode & ~0o777 | bits, acl.isEquivalentToMode ? nil : acl)
    }

    static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 { UInt32(u16(b, i)) | UInt32(u16(b, i + 2)) << 16 }
    static func append16(_ b: inout [UInt8], _ v: UInt16) { b.append(UInt8(v & 0xff)); b.append(UInt8(v >> 8)) }
    static func append(_ b: inout [UInt8], _ v: UInt32) { append16(&b, UInt16(v & 0xffff)); append16(&b, UInt16(v >> 16)) }
}
