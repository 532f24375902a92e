#define _GNU_SOURCE
#include "berth_uring.h"
#include <liburing.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct berth_ring { struct io_uring ring; };

/// `struct fuse_uring_cmd_req`: the command in a 128-byte SQE's tail.
struct fuse_uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

struct berth_ring *berth_ring_open(unsigned entries) {
    struct berth_ring *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    int e = io_uring_queue_init(entries, &r->ring, IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN);
    if (e == -EINVAL) e = io_uring_queue_init(entries, &r->ring, IORING_SETUP_SQE128);
    if (e < 0) { free(r); errno = -e; return NULL; }
    return r;
}

void berth_ring_close(struct berth_ring *ring) {
    if (!ring) return;
    io_uring_queue_exit(&ring->ring);
    free(ring);
}

int berth_ring_fuse_command(struct berth_ring *ring, int fuse_fd, uint32_t op, uint16_t qid,
                            uint64_t commit_id, const struct iovec *iov) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring->ring);
    if (!sqe) return -EBUSY;
    memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = fuse_fd;
    sqe->cmd_op = op;
    if (iov) {
        sqe->addr = (uint64_t)(uintptr_t)iov;
        sqe->len = 2;
    }
    struct fuse_uring_cmd_req *req = (struct fuse_uring_cmd_req *)sqe->cmd;
    req->qid = qid;
    req->commit_id = commit_id;
    int e = io_uring_submit(&ring->ring);
    return e < 0 ? e : 0;
}

int berth_ring_wait(struct berth_ring *ring, int timeout_ms, int *res) {
    struct io_uring_cqe *cqe = NULL;
    struct __kernel_timespec ts = { .tv_sec = timeout_ms / 1000, .tv_nsec = (long long)(timeout_ms % 1000) * 1000000 };
    int e = io_uring_wait_cqe_timeout(&ring->ring, &cqe, &ts);
    if (e < 0) return e;
    *res = cqe->res;
    io_uring_cqe_seen(&ring->ring, cqe);
    return 0;
}

int berth_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0 || cpu >= CPU_SETSIZE) return -EINVAL;
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0 ? 0 : -errno;
}

int berth_set_thread_nice(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) == 0 ? 0 : -errno;
}

_Static_assert(sizeof(berth_cpu_mask) == sizeof(cpu_set_t), "berth_cpu_mask is a cpu_set_t");

int berth_get_affinity(berth_cpu_mask *mask) {
    return sched_getaffinity(0, sizeof(cpu_set_t), (cpu_set_t *)mask) == 0 ? 0 : -errno;
}

int berth_set_affinity(const berth_cpu_mask *mask) {
    return sched_setaffinity(0, sizeof(cpu_set_t), (const cpu_set_t *)mask) == 0 ? 0 : -errno;
}
