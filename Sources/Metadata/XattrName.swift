/// Which extended attribute names a volume stores, as Linux filesystems without ACL
/// support decide: `user.`, `trusted.` and `security.` names with something after the
/// prefix. An empty suffix is `EINVAL`; any other name, `system.` ones included (POSIX
/// ACLs, which the kernel would not enforce for this mount), is `EOPNOTSUPP`, so tools
/// such as `setfacl` and `cp -a` learn that the attribute was not kept rather than
/// believing it was. The kernel has already checked the caller's right to the namespace
/// (`trusted.` needs CAP_SYS_ADMIN) and the lengths.
public enum XattrName {
    static let prefixes: [[UInt8]] = ["user.", "trusted.", "security."].map { Array($0.utf8) }

    public static func check(_ name: [UInt8]) throws(FSError) {
        for prefix in prefixes where name.starts(with: prefix) {
            if name.count == prefix.count { throw .invalid }
            return
        }
        throw .notSupported
    }
}
