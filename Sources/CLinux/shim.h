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
