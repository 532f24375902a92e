#!/usr/bin/env python3
"""The small-file workloads of scripts/fs-bench.sh and scripts/fs-meta-compare.sh.

  fs-workloads.py tarball PATH              # 5,000 files of 1-16 KiB in 50 directories (seeded)
  fs-workloads.py meta DIR FILES TARBALL    # JSON: creates/s, stats/s, deletes/s of FILES empty
                                            # files, then seconds to extract TARBALL and stat all
  fs-workloads.py meta-line NAME DIR FILES TARBALL   # the same as one line of text
  fs-workloads.py ops DIR FILES OP [PID]    # OP (create, stat, delete) on FILES empty files:
                                            # wall µs per op and, given PID, that process's CPU µs
  fs-workloads.py reads DIR FILES           # FILES files of 4 KiB written, then read 3 times
                                            # (open, read, close): reads/s per pass
  fs-workloads.py beside-fsync DIR SECONDS MIB   # creates (100 bytes) + stats while another
                                            # process rewrites MIB MiB and fsyncs in a loop:
                                            # their latency p50/p99/max, ops, fsyncs
  fs-workloads.py delete-latency DIR FILES  # FILES empty files created and stat'ed, then
                                            # unlinked one by one: deletes/s, latency p50/p90/
                                            # p99/max, time spent in unlinks over 1 ms
  fs-workloads.py latency FILE SECONDS RATE [STOPFILE]   # a client at RATE ops/s: 4 KiB
                                            # pwrite + fdatasync and cold 4 KiB pread (its page
                                            # dropped first) at random offsets of FILE (64 MiB,
                                            # made if missing), for SECONDS or until STOPFILE
                                            # exists: JSON ops, p50/p99/max ms
  fs-workloads.py beside-rm DIR MIB         # a file of MIB MiB written and fsynced, then rm'd
                                            # while another process creates files: rm seconds,
                                            # worst create latency
"""
import io, json, multiprocessing, os, random, subprocess, sys, tarfile, time


def tarball(path):
    random.seed(5)
    with tarfile.open(path, "w") as tar:
        for i in range(5000):
            data = random.randbytes(random.randint(1024, 16384))
            info = tarfile.TarInfo(f"d{i % 50}/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def ops(d, n, op):
    """Applies `op` (create, stat or delete) to empty files f0…f{n-1} in d; seconds taken."""
    os.makedirs(d, exist_ok=True)
    t = time.perf_counter()
    for i in range(n):
        if op == "create": os.close(os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
        elif op == "stat": os.stat(f"{d}/f{i}")
        else: os.unlink(f"{d}/f{i}")
    return time.perf_counter() - t


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def meta(d, n, archive):
    create, stat, delete = (n / ops(f"{d}/m", n, op) for op in ("create", "stat", "delete"))
    os.makedirs(f"{d}/tar", exist_ok=True)
    t = time.perf_counter()
    subprocess.run(["tar", "-xf", archive, "-C", f"{d}/tar"], check=True)
    for root, _, files in os.walk(f"{d}/tar"):
        for f in files:
            os.stat(os.path.join(root, f))
    return {"create": create, "stat": stat, "delete": delete, "tar_s": time.perf_counter() - t}


def reads(d, n):
    os.makedirs(f"{d}/r", exist_ok=True)
    for i in range(n):
        with open(f"{d}/r/f{i}", "wb") as f: f.write(b"x" * 4096)
    time.sleep(0.5)
    passes = []
    for _ in range(3):
        t = time.perf_counter()
        for i in range(n):
            with open(f"{d}/r/f{i}", "rb") as f: f.read()
        passes.append(n / (time.perf_counter() - t))
    return passes


def rewrite_and_fsync(path, mib, stop, fsyncs):
    block = os.urandom(1 << 20)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    while not stop.is_set():
        os.lseek(fd, 0, os.SEEK_SET)
        for _ in range(mib): os.write(fd, block)
        os.fsync(fd)
        fsyncs.value += 1
    os.close(fd)


def creates_while(d, until, latencies):
    """Creates (and stats) small files in d until `until` returns True; appends latencies."""
    os.makedirs(d, exist_ok=True)
    i = 0
    while not until():
        t = time.perf_counter()
        fd = os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644); os.write(fd, b"x" * 100); os.close(fd)
        os.stat(f"{d}/f{i}")
        latencies.append(time.perf_counter() - t)
        i += 1
    return i


def quantile(ordered, f):
    """The value a fraction f of the way up an ascending list."""
    return ordered[min(len(ordered) - 1, int(f * len(ordered)))]


def beside_fsync(d, seconds, mib):
    stop, fsyncs = multiprocessing.Event(), multiprocessing.Value("i", 0)
    writer = multiprocessing.Process(target=rewrite_and_fsync, args=(f"{d}/big", mib, stop, fsyncs))
    writer.start(); time.sleep(0.5)
    lat, end = [], time.time() + seconds
    n = creates_while(f"{d}/small", lambda: time.time() > end, lat)
    stop.set(); writer.join()
    lat.sort()
    q = lambda f: quantile(lat, f) * 1e3
    for i in range(n): os.unlink(f"{d}/small/f{i}")
    return f"p50 {q(0.5):.2f} ms  p99 {q(0.99):.2f} ms  max {lat[-1] * 1e3:.1f} ms  ops {n}  fsyncs {fsyncs.value}"


def beside_rm(d, mib):
    block = bytes(1 << 20)
    with open(f"{d}/big", "wb") as f:
        for _ in range(mib): f.write(block)
        f.flush(); os.fsync(f.fileno())
    done = multiprocessing.Event()
    lat = multiprocessing.Manager().list()
    creator = multiprocessing.Process(target=lambda: creates_while(f"{d}/small", done.is_set, lat))
    creator.start(); time.sleep(0.3)
    t = time.perf_counter()
    os.unlink(f"{d}/big")
    rm = time.perf_counter() - t
    time.sleep(0.3); done.set(); creator.join()
    return f"rm {rm:.3f} s  worst create beside it {max(lat) * 1e3:.1f} ms"


def latency(path, seconds, rate, stopfile=None):
    size, block = 64 << 20, 4096
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if os.fstat(fd).st_size < size:
        chunk = random.Random(1).randbytes(1 << 20)
        for off in range(0, size, 1 << 20): os.pwrite(fd, chunk, off)
        os.fsync(fd)
    rng, lat, period = random.Random(2), [], 1.0 / rate
    end, nxt = time.time() + seconds, time.perf_counter()
    while time.time() < end and not (stopfile and os.path.exists(stopfile)):
        off = rng.randrange(size // block) * block
        t = time.perf_counter()
        if len(lat) % 2 == 0:
            os.pwrite(fd, rng.randbytes(block), off); os.fdatasync(fd)
        else:
            os.posix_fadvise(fd, off, block, os.POSIX_FADV_DONTNEED)
            os.pread(fd, block, off)
        lat.append(time.perf_counter() - t)
        nxt += period
        time.sleep(max(0.0, nxt - time.perf_counter()))
    os.close(fd)
    s = sorted(lat)
    return json.dumps({"ops": len(s), "p50_ms": quantile(s, .5) * 1e3, "p99_ms": quantile(s, .99) * 1e3, "max_ms": s[-1] * 1e3})


def delete_latency(d, n):
    ops(d, n, "create"); ops(d, n, "stat")
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        os.unlink(f"{d}/f{i}")
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    s = sorted(lat)
    slow = [x for x in lat if x > 0.001]
    return (f"deletes/s {n / total:.0f}  p50 {quantile(s, .5) * 1e6:.0f} us  p90 {quantile(s, .9) * 1e6:.0f}  "
            f"p99 {quantile(s, .99) * 1e6:.0f}  max {s[-1] * 1e3:.1f} ms  in unlinks > 1 ms: "
            f"{sum(slow) * 1e3:.0f} ms of {total * 1e3:.0f} ({len(slow)})")


if __name__ == "__main__":
    if sys.argv[1] == "tarball":
        tarball(sys.argv[2])
    elif sys.argv[1] == "meta":
        print(json.dumps(meta(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    elif sys.argv[1] == "meta-line":
        r = meta(sys.argv[3], int(sys.argv[4]), sys.argv[5])
        print(f"{sys.argv[2]:12} create {r['create']:7.0f}/s  stat {r['stat']:8.0f}/s  "
              f"delete {r['delete']:7.0f}/s  tar+stat {r['tar_s']:5.2f} s")
    elif sys.argv[1] == "ops":
        d, n, op = sys.argv[2], int(sys.argv[3]), sys.argv[4]
        pid = int(sys.argv[5]) if len(sys.argv) > 5 else None
        c = cpu_seconds(pid) if pid else 0
        wall = ops(d, n, op)
        print(f"{wall / n * 1e6:6.1f}" + (f" {(cpu_seconds(pid) - c) / n * 1e6:6.1f}" if pid else ""))
    elif sys.argv[1] == "reads":
        print(" ".join(f"{r:7.0f}" for r in reads(sys.argv[2], int(sys.argv[3]))), "reads/s per pass")
    elif sys.argv[1] == "beside-fsync":
        print(beside_fsync(sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
    elif sys.argv[1] == "delete-latency":
        print(delete_latency(sys.argv[2], int(sys.argv[3])))
    elif sys.argv[1] == "latency":
        print(latency(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5] if len(sys.argv) > 5 else None))
    elif sys.argv[1] == "beside-rm":
        print(beside_rm(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit(__doc__)
