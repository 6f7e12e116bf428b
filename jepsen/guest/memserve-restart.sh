#!/usr/bin/env bash
# memserve-restart.sh — a guest holds a file open while memserve is killed and started again on
# the same port; shows how the kernel client recovers (tests/restart-guest.sh). memserve keeps
# nothing across a restart (MemFs is in memory), so old file handles go STALE; what this shows
# is the recovery protocol: BADSESSION -> CREATE_SESSION (STALE_CLIENTID) -> EXCHANGE_ID ->
# CREATE_SESSION -> OPEN CLAIM_PREVIOUS (reclaim) -> RECLAIM_COMPLETE.
# HARNESS_PCAP=1 keeps a capture in the run directory. ~25 s.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export HARNESS_OUT=${HARNESS_OUT:-/var/cache/bucketfs/guest}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/bucketfs/target}
(cd "$REPO" && cargo build --quiet -p bucketfs-nfs-server --example memserve) || exit 1
MS=$CARGO_TARGET_DIR/debug/examples/memserve
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUN=$HARNESS_OUT/runs/restart-$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$RUN"
start() { "$MS" --listen "127.0.0.1:$PORT" >> "$RUN/memserve.log" 2>&1 & SRV=$!
          for _ in $(seq 100); do grep -q "listening" "$RUN/memserve.log" && return 0; sleep 0.1; done; return 1; }
start || { echo "memserve did not start"; cat "$RUN/memserve.log"; exit 1; }
trap 'kill $SRV 2>/dev/null' EXIT
HARNESS_QUIET=1 RESULTS_DIR=$RUN/guest HARNESS_TIMEOUT=${HARNESS_TIMEOUT:-300} \
  "$HERE/run-guest.sh" "$PORT" "$HERE/tests/restart-guest.sh" / 2> "$RUN/run-guest.log" & G=$!
until grep -q READY_FOR_RESTART "$RUN/guest/console.log" 2>/dev/null; do
  kill -0 $G 2>/dev/null || { echo "guest ended before the restart"; exit 1; }; sleep 0.5
done
kill $SRV; wait $SRV 2>/dev/null; sleep 2
: > "$RUN/memserve.log"; start || { echo "memserve did not start again"; exit 1; }
echo "memserve-restart: restarted memserve on 127.0.0.1:$PORT"
wait $G; rc=$?
grep -aE '^(PASS|FAIL|INFO|restart:)|nfs4_reclaim|state recovery' "$RUN/guest/console.log" | grep -av '^\[harness'
echo "memserve-restart: logs in $RUN"
exit $rc
