/// When reading a file or listing a directory moves its atime: Linux's default `relatime`
/// rule — when the atime is not after the last change of the contents (mtime) or of the
/// inode (ctime), or is a day old. A change is thus always followed by one atime update
/// on the next access (what `mutt`, `tmpwatch` and "has this been read since it changed"
/// checks rely on), and repeated reads write nothing. Pure.
public enum Relatime {
    public static let dayNs: Int64 = 86_400 * 1_000_000_000

    public static func isDue(atimeNs: Int64, mtimeNs: Int64, ctimeNs: Int64, nowNs: Int64) -> Bool {
        atimeNs <= mtimeNs || atimeNs <= ctimeNs || atimeNs <= nowNs - dayNs  // no difference: it could overflow
    }
}
