/// How much of extended attributes one inode holds at most. Linux lets a filesystem choose
/// (ext4 keeps about 4 KiB per inode, CephFS 64 KiB); past the limit `setxattr` is
/// `ENOSPC`, as on ext4.
///
/// - The names of one inode, each with its NUL, fit in `listBytes` (Linux's
///   XATTR_LIST_MAX): the kernel refuses longer lists with E2BIG, so a file with more
///   names than that cannot be listed — nor copied with `cp -a`, `rsync -X` or a backup
///   tool — by anyone.
/// - Names and values together fit in `totalBytes` (four values of the largest size Linux
///   allows, 64 KiB): xattrs live in the volume's database and are not counted against
///   its provisioned size, so without a bound a file could keep any amount of data in
///   them.
public enum XattrLimits {
    public static let listBytes = 65_536
    public static let totalBytes = 256 << 10

    /// Whether an inode can hold `name` set to `value`, its other xattrs (the one of that
    /// name excluded) listing in `otherListBytes` and taking `otherTotalBytes`.
    public static func fits(otherListBytes: Int, otherTotalBytes: Int, nameBytes: Int, valueBytes: Int) -> Bool {
        otherListBytes + nameBytes + 1 <= listBytes && otherTotalBytes + nameBytes + valueBytes <= totalBytes
    }
}
