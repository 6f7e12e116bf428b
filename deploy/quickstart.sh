#!/usr/bin/env bash
# quickstart.sh [bucketfs up flags...] — from a fresh Debian/Ubuntu machine to a running
# bucketfs: installs the packages the build needs, builds the `bucketfs` binary, and runs
# `bucketfs up` (a metadata node, a gateway and a local S3 server, state in ./bucketfs-data).
# Arguments are passed to `bucketfs up` (see `bucketfs up --help`). Ctrl-C stops it; running
# this again brings the same files back.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
# RocksDB is compiled from source (bindgen needs libclang, the C++ build a compiler); the
# local S3 server (moto) is installed from PyPI into a Python virtual environment.
for pkg in libclang-dev g++ make pkg-config python3 python3-venv; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "quickstart: cargo not found. Install Rust 1.95 or later (https://rustup.rs), then run this again." >&2
  exit 1
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
PROFILE=${BUCKETFS_PROFILE:-release}
echo "quickstart: building bucketfs ($PROFILE; the first build compiles RocksDB: 15-25 minutes on 2 cores)"
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet -p bucketfs
  BIN=$CARGO_TARGET_DIR/release/bucketfs
else
  cargo build --quiet -p bucketfs
  BIN=$CARGO_TARGET_DIR/debug/bucketfs
fi
echo "quickstart: starting $BIN up $*"
exec "$BIN" up "$@"
