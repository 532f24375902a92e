#!/usr/bin/env python3
"""posix-probe.py DIR — applies ~70 POSIX operations (special files, rename/rmdir/link error
codes, ELOOP, O_EXCL, name lengths, SEEK_DATA/HOLE, huge offsets, O_APPEND, lutimes,
RENAME_EXCHANGE, O_TMPFILE, copy_file_range, locks, mmap, xattr namespaces, POSIX ACLs,
umask, relatime, fallocate…) inside DIR/p and prints one line per operation: its result or errno.
scripts/posix-compare.sh runs it on a native directory and on a Berth mount and prints the
lines that differ."""
import os, sys, errno, stat, socket, fcntl, struct, time
root = sys.argv[1]
os.chdir(root)
res = []
def t(name, f):
    try:
        r = f()
        res.append((name, "ok" if r is None else repr(r)))
    except OSError as e:
        res.append((name, errno.errorcode.get(e.errno, e.errno)))
def mk(p, data=b""):
    with open(p, "wb") as f: f.write(data)
os.makedirs("p", exist_ok=True); os.chdir("p")
t("mkfifo", lambda: os.mkfifo("fifo"))
t("fifo-mode", lambda: stat.S_ISFIFO(os.lstat("fifo").st_mode))
t("mknod-chr", lambda: os.mknod("chr", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
t("chr-rdev", lambda: (os.major(os.lstat("chr").st_rdev), os.minor(os.lstat("chr").st_rdev)))
t("mknod-reg", lambda: os.mknod("reg", 0o644 | stat.S_IFREG))
t("reg-is", lambda: stat.S_ISREG(os.lstat("reg").st_mode))
def sock():
    s = socket.socket(socket.AF_UNIX); s.bind("sock"); s.close()
    return stat.S_ISSOCK(os.lstat("sock").st_mode)
t("bind-socket", sock)
mk("f", b"hello")
os.mkdir("d"); os.mkdir("d2"); mk("d2/x")
t("rename-dir-over-nonempty", lambda: os.rename("d", "d2"))
t("rename-file-over-dir", lambda: os.rename("f", "d"))
t("rename-dir-over-file", lambda: os.rename("d", "f"))
t("rename-to-self", lambda: os.rename("f", "f"))
t("rename-missing", lambda: os.rename("nope", "x"))
t("rename-into-missing-dir", lambda: os.rename("f", "nodir/x"))
t("rename-dir-into-self", lambda: os.rename("d", "d/sub"))
t("rmdir-dot", lambda: os.rmdir("d/."))
t("rmdir-file", lambda: os.rmdir("f"))
t("unlink-dir", lambda: os.unlink("d"))
t("mkdir-exists", lambda: os.mkdir("f"))
t("link-dir", lambda: os.link("d", "dl"))
t("link-exists", lambda: os.link("f", "d2/x"))
t("open-dir-write", lambda: os.open("d", os.O_WRONLY))
t("open-O_DIRECTORY-file", lambda: os.open("f", os.O_RDONLY | os.O_DIRECTORY))
t("open-excl-exists", lambda: os.open("f", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
t("open-trailing-slash-file", lambda: os.open("f/", os.O_RDONLY))
t("name-255", lambda: mk("a" * 255))
t("name-256", lambda: mk("a" * 256))
os.symlink("loop2", "loop1"); os.symlink("loop1", "loop2")
t("eloop", lambda: open("loop1"))
t("symlink-exists", lambda: os.symlink("x", "f"))
t("readlink-file", lambda: os.readlink("f"))
t("symlink-size", lambda: os.lstat("loop1").st_size)
t("truncate-neg", lambda: os.truncate("f", -1))
t("truncate-dir", lambda: os.truncate("d", 0))
def seekdata():
    fd = os.open("sparse", os.O_CREAT | os.O_RDWR, 0o644)
    os.pwrite(fd, b"x", 10 << 20)
    r = (os.lseek(fd, 0, os.SEEK_DATA) if hasattr(os, "SEEK_DATA") else None)
    h = os.lseek(fd, 0, os.SEEK_HOLE)
    os.close(fd); return (r, h)
t("seek-data-hole", seekdata)
def seekend():
    fd = os.open("f", os.O_RDONLY)
    try: return os.lseek(fd, 100, os.SEEK_DATA)
    finally: os.close(fd)
t("seek-data-past-eof", seekend)
def efbig():
    fd = os.open("big", os.O_CREAT | os.O_RDWR, 0o644)
    try: return os.pwrite(fd, b"x", (1 << 63) - 2)
    finally: os.close(fd)
t("write-at-huge-offset", efbig)
t("truncate-huge", lambda: os.truncate("big", 1 << 62))
def dirnlink():
    os.mkdir("n"); os.mkdir("n/a"); os.mkdir("m"); os.rename("n/a", "m/a")
    return (os.lstat("n").st_nlink, os.lstat("m").st_nlink)
t("dir-nlink-after-move", dirnlink)
def appendmode():
    fd = os.open("ap", os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
    os.write(fd, b"ab"); os.pwrite(fd, b"zz", 0); os.close(fd)
    return open("ap", "rb").read()
t("pwrite-on-append", appendmode)
def chmod_symlink():
    os.symlink("f", "sl")
    return oct(os.lstat("sl").st_mode)
t("symlink-mode", chmod_symlink)
def utime_sym():
    os.utime("sl", ns=(1, 2), follow_symlinks=False)
    return (os.lstat("sl").st_atime_ns, os.lstat("sl").st_mtime_ns)
t("lutimes", utime_sym)
def dotdot():
    return os.stat("d/..").st_ino == os.stat(".").st_ino
t("dotdot", dotdot)
def readdir_after_unlink():
    os.mkdir("rd")
    for i in range(50): mk(f"rd/{i}")
    it = os.scandir("rd"); first = [next(it).name for _ in range(10)]
    for i in range(50): os.unlink(f"rd/{i}")
    rest = [e.name for e in it]
    return len(rest) <= 40
t("readdir-while-deleting", readdir_after_unlink)
def statfs():
    s = os.statvfs(".")
    return (s.f_bsize > 0, s.f_namemax, s.f_files >= s.f_ffree)
t("statvfs", statfs)
def xattr_sym():
    return os.setxattr("sl", "user.a", b"1", follow_symlinks=False)
t("user-xattr-on-symlink", xattr_sym)
def xattr_fifo():
    return os.setxattr("fifo", "user.a", b"1")
t("user-xattr-on-fifo", xattr_fifo)
def trusted():
    os.setxattr("f", "trusted.t", b"1"); return os.getxattr("f", "trusted.t")
t("trusted-xattr", trusted)
t("getxattr-missing", lambda: os.getxattr("f", "user.none"))
t("xattr-empty-name", lambda: os.setxattr("f", "", b"1"))
t("xattr-bad-ns", lambda: os.setxattr("f", "bogus.x", b"1"))
t("xattr-system-ns", lambda: os.setxattr("f", "system.foo", b"1"))
t("xattr-empty-suffix", lambda: os.setxattr("f", "user.", b"1"))
def ctime_on_link():
    c = os.lstat("f").st_ctime_ns; time.sleep(0.01); os.link("f", "f-l")
    return os.lstat("f").st_ctime_ns > c
t("link-moves-ctime", ctime_on_link)
def ctime_on_rename():
    c = os.lstat("f-l").st_ctime_ns; time.sleep(0.01); os.rename("f-l", "f-l2")
    return os.lstat("f-l2").st_ctime_ns > c
t("rename-moves-ctime", ctime_on_rename)
def dir_mtime_on_rename():
    m = os.lstat("d2").st_mtime_ns; time.sleep(0.01); os.rename("d2/x", "d2/y")
    return os.lstat("d2").st_mtime_ns > m
t("rename-moves-dir-mtime", dir_mtime_on_rename)
def exchange():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mk("e1", b"1"); os.mkdir("e2")
    r = libc.renameat2(-100, b"e1", -100, b"e2", 2)
    if r != 0: raise OSError(ctypes.get_errno(), "x")
    return (stat.S_ISDIR(os.lstat("e1").st_mode), os.lstat(".").st_nlink)
t("exchange-file-dir", exchange)
def tmpfile():
    fd = os.open(".", os.O_TMPFILE | os.O_RDWR, 0o600); os.write(fd, b"x"); os.close(fd)
t("O_TMPFILE", tmpfile)
def copyfr():
    a = os.open("f", os.O_RDONLY); b = os.open("cfr", os.O_CREAT | os.O_WRONLY, 0o644)
    n = os.copy_file_range(a, b, 5); os.close(a); os.close(b); return (n, open("cfr","rb").read())
t("copy_file_range", copyfr)
def flock():
    fd = os.open("f", os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); fcntl.flock(fd, fcntl.LOCK_UN); os.close(fd)
t("flock", flock)
def posixlock():
    fd = os.open("f", os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX); fcntl.lockf(fd, fcntl.LOCK_UN); os.close(fd)
t("fcntl-lock", posixlock)
def mmapw():
    import mmap
    fd = os.open("mm", os.O_CREAT | os.O_RDWR, 0o644); os.ftruncate(fd, 8192)
    m = mmap.mmap(fd, 8192); m[0:5] = b"mmapd"; m.flush(); m.close(); os.close(fd)
    return open("mm", "rb").read(5)
t("mmap-shared-write", mmapw)
def acl(entries):  # posix_acl_xattr: version 2, then (tag, perm, id) per entry
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
U, G, M, O, N = 0x01, 0x04, 0x10, 0x20, 0xFFFFFFFF
def acl_access():
    mk("acl"); os.chmod("acl", 0o644)
    os.setxattr("acl", "system.posix_acl_access", acl([(U, 6, N), (2, 6, 65534), (G, 4, N), (M, 6, N), (O, 0, N)]))
    return (oct(os.lstat("acl").st_mode & 0o7777), len(os.getxattr("acl", "system.posix_acl_access")))
t("acl-access-sets-mode", acl_access)
def acl_chmod():
    os.chmod("acl", 0o600); v = os.getxattr("acl", "system.posix_acl_access")
    return [struct.unpack_from("<HH", v, 4 + 8 * i) for i in range(5)]
t("acl-follows-chmod", acl_chmod)
def acl_minimal():
    os.setxattr("acl", "system.posix_acl_access", acl([(U, 7, N), (G, 5, N), (O, 1, N)]))
    return oct(os.lstat("acl").st_mode & 0o7777), "system.posix_acl_access" in os.listxattr("acl")
t("acl-minimal-is-mode", acl_minimal)
t("acl-invalid", lambda: os.setxattr("acl", "system.posix_acl_access", acl([(U, 7, N), (O, 1, N)])))
t("acl-default-on-file", lambda: os.setxattr("acl", "system.posix_acl_default", acl([(U, 7, N), (G, 5, N), (O, 1, N)])))
def acl_inherit():
    os.mkdir("acld"); os.setxattr("acld", "system.posix_acl_default", acl([(U, 7, N), (G, 0, N), (O, 0, N)]))
    old = os.umask(0o022); mk("acld/x"); os.mkdir("acld/y"); os.umask(old)
    return (oct(os.lstat("acld/x").st_mode & 0o777), oct(os.lstat("acld/y").st_mode & 0o777),
            len(os.getxattr("acld/y", "system.posix_acl_default")))
t("acl-default-inherited", acl_inherit)
def umask_applied():
    old = os.umask(0o077); mk("um"); os.mkdir("umd"); os.umask(old)
    return oct(os.lstat("um").st_mode & 0o777), oct(os.lstat("umd").st_mode & 0o777)
t("umask-without-default-acl", umask_applied)
def atime_read():
    mk("at", b"x"); os.utime("at", ns=(10**18, 10**18)); open("at", "rb").read()
    a = os.lstat("at").st_atime_ns; open("at", "rb").read()
    return a > 10**18, os.lstat("at").st_atime_ns == a
t("atime-relatime", atime_read)
def falloc(mode, off, length, name="fa"):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(name, os.O_RDWR)
    try:
        if libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(length)) != 0:
            raise OSError(ctypes.get_errno(), "fallocate")
        st = os.fstat(fd)
        return st.st_size, os.pread(fd, 16, max(0, off - 4)).hex()
    finally: os.close(fd)
mk("fa", bytes(range(256)) * 64)
t("fallocate-punch-hole", lambda: falloc(0x03, 1000, 5000))
t("fallocate-punch-no-keep", lambda: falloc(0x02, 0, 10))
t("fallocate-zero-range-grow", lambda: falloc(0x10, 16000, 1000))
t("fallocate-keep-size", lambda: falloc(0x01, 0, 1 << 20))
t("fallocate-grow", lambda: falloc(0x00, 17000, 3000))
def rdonly_trunc():
    mk("rt", b"abc"); os.close(os.open("rt", os.O_RDONLY | os.O_TRUNC)); return os.lstat("rt").st_size
t("open-rdonly-trunc", rdonly_trunc)
t("utime-before-1970", lambda: (mk("old"), os.utime("old", ns=(-1, -1500000000)), os.lstat("old").st_mtime_ns)[2])
for n, r in res: print(f"{n:28} {r}")
