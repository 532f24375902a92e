#!/usr/bin/env bash
# Berth's main job, from a fresh Debian machine. Until the daemon lands (issue 6) this is
# the placement benchmark: data movement, balance and mapping throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift run -c release placement-bench "$@"
