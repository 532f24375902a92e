/// Which extended attribute names a volume stores, as Linux filesystems with ACL support
/// decide: `user.`, `trusted.` and `security.` names with something after the prefix, and
/// the two POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`, which the
/// namespace keeps in step with file modes; see `PosixACL`). An empty suffix is `EINVAL`;
/// any other name, other `system.` ones included, is `EOPNOTSUPP`, so tools learn that
/// the attribute was not kept rather than believing it was. The kernel has already
/// checked the caller's right to the namespace (`trusted.` needs CAP_SYS_ADMIN) and the
/// lengths.
public enum XattrName {
    static let prefixes: [[UInt8]] = ["user.", "trusted.", "security."].map { Array($0.utf8) }

    public static func check(_ name: [UInt8]) throws(FSError) {
        if isACL(name) { return }
        for prefix in prefixes where name.starts(with: prefix) {
            if name.count == prefix.count { throw .invalid }
            return
        }
        throw .notSupported
    }

    public static func isACL(_ name: [UInt8]) -> Bool { name == PosixACL.accessName || name == PosixACL.defaultName }
}
