#!/usr/bin/env bash
# two-clients.sh PORT [EXPORT] — two guests at once against one server (tests/two-clients.sh):
# a byte-range lock held by one client must conflict for the other (server-side LOCK
# conflict, which one client alone never exercises), and data written by one client must be
# visible to the other after close/open. Prints both guests' lines and `N passed, M failed`
# (guests). Uses twice the CPU of one guest; ~1 min on 2 cores.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PORT=${1:?usage: two-clients.sh PORT [EXPORT]}
EXPORT=${2:-/}
export HARNESS_OUT=${HARNESS_OUT:-/var/cache/bucketfs/guest}
if [ -z "${GUEST_TOOLS:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/bucketfs/target}
  (cd "$REPO" && cargo build --release --quiet -p bucketfs-guest-tools) || exit 1
  GUEST_TOOLS=$CARGO_TARGET_DIR/release/guest-tools
fi
RUNS=$HARNESS_OUT/runs/two-clients-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RUNS"
export MOUNT_OPTS=${MOUNT_OPTS:-lookupcache=none,actimeo=0} HARNESS_QUIET=1 HARNESS_EXTRA=$GUEST_TOOLS
HARNESS_TIMEOUT=${HARNESS_TIMEOUT:-900} HARNESS_ENV="ROLE=a" RESULTS_DIR=$RUNS/a \
  "$HERE/run-guest.sh" "$PORT" "$HERE/tests/two-clients.sh" "$EXPORT" 2> "$RUNS/a.run-guest.log" & pa=$!
HARNESS_TIMEOUT=${HARNESS_TIMEOUT:-900} HARNESS_ENV="ROLE=b" RESULTS_DIR=$RUNS/b \
  "$HERE/run-guest.sh" "$PORT" "$HERE/tests/two-clients.sh" "$EXPORT" 2> "$RUNS/b.run-guest.log" & pb=$!
pass=0; fail=0
for r in a b; do
  if [ $r = a ]; then wait $pa; else wait $pb; fi
  rc=$?
  grep -aE '^(PASS|FAIL|two-clients)' "$RUNS/$r/console.log"
  if [ $rc = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL guest $r: exit $rc (see $RUNS/$r/console.log)"; fi
done
echo "two-clients: logs in $RUNS"
echo "$pass passed, $fail failed"
[ $fail = 0 ]
