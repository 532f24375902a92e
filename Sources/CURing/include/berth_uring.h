// FUSE over io_uring through liburing (Debian: liburing-dev 2.3). liburing.h defines
// _GNU_SOURCE, which changes glibc's structures under Swift's other modules, so it is
// included only in uring.c; this header exposes an opaque ring and the kernel's
// FUSE-over-io_uring structures (linux/fuse.h since 6.14; Debian 12's headers predate it).
#ifndef BERTH_URING_H
#define BERTH_URING_H
#include <stdint.h>
#include <sys/uio.h>

/// `struct fuse_uring_ent_in_out`: per request, how many payload bytes it carries.
struct berth_fuse_uring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;
    uint32_t payload_sz;
    uint32_t padding;
    uint64_t reserved;
};

/// `struct fuse_uring_req_header`: a ring entry's header buffer. `in_out` holds the
/// request's `fuse_in_header`, then the reply's `fuse_out_header`; `op_in` the request's
/// first argument (its per-operation header); the payload buffer the other arguments.
struct berth_fuse_uring_req_header {
    char in_out[128];
    char op_in[128];
    struct berth_fuse_uring_ent_in_out ring_ent_in_out;
};

enum { BERTH_FUSE_URING_REGISTER = 1, BERTH_FUSE_URING_COMMIT_AND_FETCH = 2 };

struct berth_ring;

/// A ring of `entries` 128-byte SQEs (the FUSE commands need the room) whose task work
/// does not interrupt the thread; NULL with errno set when io_uring is unavailable.
struct berth_ring *berth_ring_open(unsigned entries);
void berth_ring_close(struct berth_ring *ring);

/// Queues a FUSE command (`op`) for queue `qid` on `fuse_fd` and submits it: 0 or -errno.
/// REGISTER passes the header and payload buffers in `iov` (read during the call only);
/// COMMIT_AND_FETCH the request's `commit_id` (its unique id).
int berth_ring_fuse_command(struct berth_ring *ring, int fuse_fd, uint32_t op, uint16_t qid,
                            uint64_t commit_id, const struct iovec *iov);

/// Waits up to `timeout_ms` for a completion: 0 with its result in `*res`, or -ETIME,
/// -EINTR or another -errno from the wait itself.
int berth_ring_wait(struct berth_ring *ring, int timeout_ms, int *res);

/// Pins the calling thread to CPU `cpu`: 0 or -errno.
int berth_pin_to_cpu(int cpu);

/// A thread's CPU affinity (as glibc's cpu_set_t: 1,024 CPUs).
typedef struct { unsigned long bits[16]; } berth_cpu_mask;
/// The calling thread's affinity into `mask`, or sets it from `mask`: 0 or -errno.
int berth_get_affinity(berth_cpu_mask *mask);
int berth_set_affinity(const berth_cpu_mask *mask);

/// Sets the calling thread's nice value (-20…19; below 0 needs CAP_SYS_NICE): 0 or -errno.
int berth_set_thread_nice(int nice);

#endif
