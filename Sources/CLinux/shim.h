// Linux calls that Swift's Glibc module leaves out (it is built without _GNU_SOURCE).
#include <stdint.h>

// fcntl.h, _GNU_SOURCE: start (SYNC_FILE_RANGE_WRITE = 2) writeback of a file range
// without waiting for it.
int sync_file_range(int fd, int64_t offset, int64_t nbytes, unsigned int flags);

/// Starts writing bytes [offset, offset + length) of `fd`'s dirty pages to the disk and
/// returns without waiting: a later fsync then waits for less.
static inline int berth_start_writeback(int fd, int64_t offset, int64_t length) {
    return sync_file_range(fd, offset, length, 2);
}

// fcntl.h, _GNU_SOURCE: allocate or deallocate a file range (modes in linux/falloc.h).
int fallocate(int fd, int mode, long offset, long length);

// fcntl.h, _GNU_SOURCE: O_TMPFILE is (__O_TMPFILE | O_DIRECTORY) = 020000000 | 0200000 on
// every Linux architecture Swift runs on but alpha, parisc and sparc.
/// Opens an unnamed regular file in directory `directory` for writing (O_TMPFILE): it has
/// no name until `berth_link_tmpfile` gives it one, and vanishes if the process dies first.
/// -1 with errno EOPNOTSUPP / EISDIR / EINVAL where the filesystem or kernel lacks it.
int open(const char *path, int flags, ...);
static inline int berth_open_tmpfile(const char *directory) {
    return open(directory, 020000000 | 0200000 | 01 /* O_WRONLY */ | 02000000 /* O_CLOEXEC */, 0644);
}

int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, int flags);
/// Gives the unnamed file open as `fd` the name `path`, atomically: it appears whole or not
/// at all (through /proc/self/fd, which needs no capability, unlike AT_EMPTY_PATH). -1 with
/// errno EEXIST if the name is taken.
static inline int berth_link_tmpfile(int fd, const char *path) {
    char proc[32];
    int n = 0, v = fd;
    const char *prefix = "/proc/self/fd/";
    while (prefix[n]) { proc[n] = prefix[n]; n++; }
    char digits[12];
    int d = 0;
    do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
    while (d > 0) proc[n++] = digits[--d];
    proc[n] = 0;
    return linkat(-100 /* AT_FDCWD */, proc, -100, path, 0x400 /* AT_SYMLINK_FOLLOW */);
}

// sys/socket.h: a message with one file descriptor attached (SCM_RIGHTS), over a Unix
// socket. The CMSG_* macros have no Swift counterpart.
#include <sys/socket.h>
#include <sys/uio.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

/// Sends `length` bytes of `bytes` with `fd` attached (no descriptor if `fd` < 0). Returns
/// what sendmsg returns.
static inline long berth_send_with_fd(int socket, const void *bytes, unsigned long length, int fd) {
    struct iovec iov = { (void *)bytes, length };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    long n;
    do { n = sendmsg(socket, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n;
}

/// Receives one message into `bytes` (at most `length`), and the descriptor attached to it
/// in `*fd` (-1 if none; close-on-exec). Returns what recvmsg returns; a message cut short
/// (MSG_TRUNC) is an error, EMSGSIZE.
static inline long berth_receive_with_fd(int socket, void *bytes, unsigned long length, int *fd) {
    struct iovec iov = { bytes, length };
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // Room for several descriptors: any beyond the first are closed, not leaked.
    union { char buf[CMSG_SPACE(16 * sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    *fd = -1;
    long n;
    do { n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return n;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        unsigned long count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (unsigned long i = 0; i < count; i++) {
            int received;
            memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*fd < 0) *fd = received; else close(received);
        }
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        if (*fd >= 0) { close(*fd); *fd = -1; }
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}
