#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: installs what it needs, builds, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
swift build --build-tests
swift test
# The metadata, engine, filesystem and CSI suites once more with the cluster state and
# volumes' namespaces in PostgreSQL (a server of the test process's own, Debian's binaries,
# which setup.sh installs): both backends pass the same suites (Tests/TestSupport/TestMetadata.swift).
BERTH_TEST_METADATA=postgres swift test --skip-build --filter 'MetadataTests|EngineTests|FileSystemTests|CSITests'
# The FUSE behaviour suites once more with FUSE over io_uring offered (Linux 6.14+; the
# module's default is off, so the run above served /dev/fuse): both request paths tested.
ring=/sys/module/fuse/parameters/enable_uring
if [ -w "$ring" ]; then
  before=$(cat "$ring")
  trap 'echo "$before" > "$ring"' EXIT
  echo Y > "$ring"
  swift test --skip-build --filter 'PosixTests|ModelTests|LockScopeTests|FuseRingTests'
fi
