# Helpers shared by the benchmark scripts (sourced, not run).

# Installs the Debian packages named that are missing.
bench_need() {
  local need=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

# Drops the page cache (a cold read after it).
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

# Runs fio with the arguments given; prints {"rbw","wbw","riops","wiops"} of its first job.
fiojson() {
  fio --output-format=json "$@" | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(json.dumps({"rbw":j["read"]["bw_bytes"],"wbw":j["write"]["bw_bytes"],"riops":j["read"]["iops"],"wiops":j["write"]["iops"]}))'
}

# Waits up to 10 s for a mount point.
waitmount() { local _; for _ in $(seq 100); do mountpoint -q "$1" && return 0; sleep 0.1; done; echo "mount $1 failed" >&2; return 2; }

# Free page reporting at 0 hands freed memory back to the host at once, and page-cache
# writes into fresh pages run ~10x slower (docs/storage.md, "Benchmark"): say so.
bench_page_reporting() {
  local reporting=/sys/module/page_reporting/parameters/min_free_ms
  [ -r "$reporting" ] || return 0
  echo "free page reporting min_free_ms: $(cat "$reporting")$([ "$(cat "$reporting")" = 0 ] && echo ' (freed memory returns to the host at once: write figures are noisy)')" >&2
}
