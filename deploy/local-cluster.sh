#!/usr/bin/env bash
# Builds bucketfs and runs a 3-node metadata cluster on 127.0.0.1:7001-7003 with data under
# ./bucketfs-data (or $BUCKETFS_DATA). Running it again restarts the same cluster from its data.
# Ctrl-C stops the nodes.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pkg in libclang-dev g++ make pkg-config; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing build dependencies: ${missing[*]}"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (https://rustup.rs)" >&2; exit 1; }

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
echo "building bucketfs (the first build compiles RocksDB: 10-15 minutes on 2 cores)..."
cargo build -q -p bucketfs
BIN=$CARGO_TARGET_DIR/debug/bucketfs

DATA=${BUCKETFS_DATA:-$PWD/bucketfs-data}
mkdir -p "$DATA"
MEMBERS=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo "stopped"; }
trap cleanup EXIT INT TERM
for id in 1 2 3; do
  extra=()
  [ "$id" = 1 ] && extra=(--init "$MEMBERS")
  "$BIN" meta serve --id "$id" --listen "127.0.0.1:700$id" --data-dir "$DATA/node-$id" \
    "${extra[@]}" 2>>"$DATA/node-$id.log" &
  pids+=($!)
done

for _ in $(seq 1 100); do
  if "$BIN" meta status --cluster 127.0.0.1:7001 2>/dev/null | grep -q leader; then break; fi
  sleep 0.2
done
"$BIN" meta status --cluster 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
cat <<MSG

bucketfs metadata cluster running (logs: $DATA/node-N.log).
  status:    $BIN meta status --cluster 127.0.0.1:7001
  benchmark: $BIN bench meta --cluster 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
Ctrl-C stops it.
MSG
wait
