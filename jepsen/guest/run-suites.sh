#!/usr/bin/env bash
# run-suites.sh PORT [EXPORT] — the kernel-client suites (smoke, fsx, pjdfstest) against an NFS
# server that already listens on 127.0.0.1:PORT. One guest boot per suite.
#
# Prints each suite's PASS/FAIL lines and summary, then `PASS|FAIL suite (time)` per suite and
# a closing `N passed, M failed` (suites). Exits 1 if any suite failed.
# Each run lands in $HARNESS_OUT/runs/suites-<timestamp>/ (also linked as runs/latest):
#   <suite>/console.log      the guest's whole console (kernel messages, test output)
#   <suite>/results/         the guest's $RESULTS: dmesg.txt, mountstats.txt, mount.txt,
#                            exit_code, and per suite: manifest.tsv (smoke), fsx.<seed>.txt and
#                            fsx logs (fsx), pjdfstest.txt + pjdfstest-results.tsv (pjdfstest)
#   manifest.tsv             copy of smoke's manifest of what it left in $EXPORT/smoke/tree
#   fsx-final.tsv            copy of fsx's list of its final files (path size sha256 kept)
#   summary.txt              the per-suite lines and the closing line
#
# Knobs (environment):
#   SUITES="smoke fsx pjdfstest"   which suites, in this order; add "two-clients" for the
#                                  two-guest lock/coherence test (two-clients.sh)
#   HARNESS_OUT                    guest artifacts (default /var/cache/bucketfs/guest)
#   GUEST_TOOLS=<path>             a prebuilt guest-tools binary (default: cargo build it)
#   CARGO_TARGET_DIR               where that build goes (default /var/cache/bucketfs/target)
#   NO_BUILD=1                     do not run build-guest.sh (it is idempotent and fast)
#   RUNS_DIR=<dir>                 put this run's logs there instead of runs/suites-<timestamp>
#   FSX_SEEDS=1,2 FSX_OPS=5000     fsx: seeds and operations per seed
#   FSX_KEEP=1                     fsx leaves its final files in place (fsx-final.tsv lists
#                                  them with their checksums either way)
#   PJD_ALLOWED_FAILURES=...       pjdfstest failures that do not fail the suite (comma-
#                                  separated names or shell patterns); default: the names in
#                                  pjdfstest-allowed.tsv (each with its reason)
#   PJD_PATTERNS=...               run only some pjdfstest tests
#   SMOKE_MANY=1000                entries in smoke's readdir check
#   HARNESS_PCAP=1                 also capture each suite's traffic into <suite>/nfs.pcap
#   plus every run-guest.sh knob (MOUNT_OPTS, NFS_VERS, HARNESS_TIMEOUT, HARNESS_NET, ...)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PORT=${1:?usage: run-suites.sh PORT [EXPORT]}
EXPORT=${2:-/}
export HARNESS_OUT=${HARNESS_OUT:-/var/cache/bucketfs/guest}
SUITES=${SUITES:-smoke fsx pjdfstest}
# Allowed pjdfstest failures: the names in pjdfstest-allowed.tsv, where each has its reason.
ALLOWED_FILE=$HERE/pjdfstest-allowed.tsv
PJD_ALLOWED_FAILURES=${PJD_ALLOWED_FAILURES-$(grep -v '^#' "$ALLOWED_FILE" | cut -f1 | grep . | paste -sd, -)}
t0=$(date +%s)

if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "run-suites: nothing listens on 127.0.0.1:$PORT" >&2; exit 3
fi
if [ "${NO_BUILD:-0}" != 1 ]; then
  "$HERE/build-guest.sh" || { echo "run-suites: build-guest.sh failed" >&2; exit 1; }
fi
if [ -z "${GUEST_TOOLS:-}" ]; then
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/cache/bucketfs/target}
  (cd "$REPO" && cargo build --release --quiet -p bucketfs-guest-tools) ||
    { echo "run-suites: cannot build guest-tools (set GUEST_TOOLS=<binary>)" >&2; exit 1; }
  GUEST_TOOLS=$CARGO_TARGET_DIR/release/guest-tools
fi
TOOLS=$HARNESS_OUT/cargo/bin

if [ -n "${RUNS_DIR:-}" ]; then
  RUNS=$RUNS_DIR; mkdir -p "$RUNS"
else
  RUNS=$HARNESS_OUT/runs/suites-$(date +%Y%m%d-%H%M%S)-$$
  mkdir -p "$RUNS"
  ln -sfn "$RUNS" "$HARNESS_OUT/runs/latest"
fi
echo "run-suites: server 127.0.0.1:$PORT export $EXPORT; logs in $RUNS"
for name in $(echo "$PJD_ALLOWED_FAILURES" | tr , ' '); do
  reason=$(awk -F '\t' -v n="$name" '$1 == n { print $2 }' "$ALLOWED_FILE")
  echo "run-suites: pjdfstest allowed failure $name: ${reason:-(given in PJD_ALLOWED_FAILURES)}"
done

pass=0; fail=0
: > "$RUNS/summary.txt"
run_suite() {   # run_suite NAME SCRIPT EXTRA ENV
  local name=$1 script=$2 extra=$3 env=$4 s rc
  s=$(date +%s)
  echo "---- $name"
  HARNESS_QUIET=1 RESULTS_DIR="$RUNS/$name" HARNESS_EXTRA="$extra" HARNESS_ENV="$env" \
    "$HERE/run-guest.sh" "$PORT" "$HERE/tests/$script" "$EXPORT" 2> "$RUNS/$name.run-guest.log"
  rc=$?
  # the suite's own lines: checks, failures with messages, group tables, summary
  grep -aE '^(PASS|FAIL|XFAIL|fsx|pjdfstest|smoke|  |    |manifest|statfs)' "$RUNS/$name/console.log" | grep -av '^\[' 
  case $rc in
    0)   line="PASS $name ($(( $(date +%s) - s ))s)"; pass=$((pass + 1)) ;;
    90)  line="FAIL $name ($(( $(date +%s) - s ))s): mount failed (exit 90); see $RUNS/$name/console.log"; fail=$((fail + 1)) ;;
    124) line="FAIL $name ($(( $(date +%s) - s ))s): HARNESS_TIMEOUT, qemu killed (exit 124)"; fail=$((fail + 1)) ;;
    *)   line="FAIL $name ($(( $(date +%s) - s ))s): exit $rc"; fail=$((fail + 1)) ;;
  esac
  if [ $rc != 0 ]; then
    grep -aE 'nfs: |NFS: |NFSv4|rpc|RPC:|blocked for more than' "$RUNS/$name/results/dmesg.txt" 2>/dev/null |
      grep -avE 'Registered|Registering|Installing knfsd|Key type' | head -10 | sed 's/^/    dmesg: /'
  fi
  echo "$line" | tee -a "$RUNS/summary.txt"
}

for suite in $SUITES; do
  case $suite in
    smoke)     run_suite smoke smoke.sh "$GUEST_TOOLS" "SMOKE_MANY=${SMOKE_MANY:-1000}"
               cp "$RUNS/smoke/results/manifest.tsv" "$RUNS/manifest.tsv" 2>/dev/null ;;
    fsx)       run_suite fsx fsx.sh "$TOOLS/fsx" "FSX_SEEDS=${FSX_SEEDS:-1,2} FSX_OPS=${FSX_OPS:-5000} FSX_KEEP=${FSX_KEEP:-0}"
               cp "$RUNS/fsx/results/fsx-final.tsv" "$RUNS/fsx-final.tsv" 2>/dev/null ;;
    pjdfstest) run_suite pjdfstest pjdfstest.sh "$TOOLS/pjdfstest" \
                 "PJD_ALLOWED_FAILURES=$PJD_ALLOWED_FAILURES${PJD_PATTERNS:+ PJD_PATTERNS=$PJD_PATTERNS}" ;;
    two-clients)
      echo "---- two-clients"; s=$(date +%s)
      if GUEST_TOOLS=$GUEST_TOOLS HARNESS_OUT=$HARNESS_OUT "$HERE/two-clients.sh" "$PORT" "$EXPORT" \
           > "$RUNS/two-clients.log" 2>&1; then
        line="PASS two-clients ($(( $(date +%s) - s ))s)"; pass=$((pass + 1))
      else
        line="FAIL two-clients ($(( $(date +%s) - s ))s)"; fail=$((fail + 1))
      fi
      grep -aE '^(PASS|FAIL|two-clients)' "$RUNS/two-clients.log"
      echo "$line" | tee -a "$RUNS/summary.txt" ;;
    *) echo "run-suites: unknown suite $suite" >&2; fail=$((fail + 1)) ;;
  esac
done
echo "run-suites: $(( $(date +%s) - t0 ))s in all; logs in $RUNS" | tee -a "$RUNS/summary.txt"
echo "$pass passed, $fail failed" | tee -a "$RUNS/summary.txt"
[ $fail = 0 ]
