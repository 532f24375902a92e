// libfuse3 low-level API (Debian: libfuse3-dev 3.14). FUSE_USE_VERSION 312 exposes the real
// fuse_session_loop_mt(se, config) and fuse_loop_cfg_* (see the toolchain notes).
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/xattr.h>
#include <sys/statvfs.h>
// mallopt: the mount tunes glibc so megabyte chunk buffers are reused, not mapped fresh.
#include <malloc.h>
