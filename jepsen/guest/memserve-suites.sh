#!/usr/bin/env bash
# memserve-suites.sh — run-suites.sh against a fresh memserve (the NFS server core over the
# in-memory MemFs: gateway/nfs-server/examples/memserve.rs) on a free loopback port.
# Builds memserve, starts it, runs the suites, stops it by its PID. Arguments and environment
# are those of run-suites.sh (SUITES, FSX_OPS, HARNESS_PCAP, ...). memserve's log goes to
# $HARNESS_OUT/runs/latest/memserve.log.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export HARNESS_OUT=${HARNESS_OUT:-/var/cache/bucketfs/guest}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/bucketfs/target}
(cd "$REPO" && cargo build --quiet -p bucketfs-nfs-server --example memserve) ||
  { echo "memserve-suites: cannot build memserve" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$HARNESS_OUT/runs"
LOG=$(mktemp "$HARNESS_OUT/runs/memserve.XXXXXX.log")
"$CARGO_TARGET_DIR/debug/examples/memserve" --listen "127.0.0.1:$PORT" > "$LOG" 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q listening "$LOG" && break; sleep 0.1; done
grep -q listening "$LOG" || { echo "memserve-suites: memserve did not start:" >&2; cat "$LOG" >&2; exit 1; }
echo "memserve-suites: memserve pid $SRV on 127.0.0.1:$PORT"
"$HERE/run-suites.sh" "$PORT" /
rc=$?
kill -0 $SRV 2>/dev/null || { echo "memserve-suites: memserve died during the run:"; tail -20 "$LOG"; rc=1; }
mv "$LOG" "$HARNESS_OUT/runs/latest/memserve.log" 2>/dev/null
exit $rc
