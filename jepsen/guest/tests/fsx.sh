#!/bin/sh
# fsx.sh — File System eXerciser (Rust rewrite, crates.io "fsx") on the NFS mount, INSIDE the guest.
# Needs the binary in HARNESS_EXTRA (build-guest.sh puts it in $HARNESS_OUT/cargo/bin/fsx).
# Reproducible: the same seed gives the same operation sequence; every seed is printed.
# Knobs (HARNESS_ENV): FSX_SEEDS=1,2 (comma-separated), FSX_OPS=5000 per seed (default total
# 10,000 operations), FSX_TIMEOUT=900 seconds per seed, FSX_KEEP=1 keeps each seed's final
# file in place (default: removed with the work directory).
# Prints `PASS fsx seed=S ...` / `FAIL fsx seed=S ...` and `fsx: N passed, M failed`.
# Writes $RESULTS/fsx-final.tsv: one `path size sha256 kept` line (tab-separated, path relative
# to the export root, read back after drop_caches) per seed's final file, so the host can
# compare it with what the server holds (kept=1: the file is still there).
: "${NFS_MNT:?}" "${RESULTS:=/tmp/results}"
mkdir -p "$RESULTS"
SEEDS=${FSX_SEEDS:-1,2}
OPS=${FSX_OPS:-5000}
command -v fsx >/dev/null || { echo "FAIL fsx: fsx binary missing (HARNESS_EXTRA)"; echo "fsx: 0 passed, 1 failed"; exit 1; }
# fallocate and punch-hole need NFSv4.2 (ALLOCATE/DEALLOCATE); on 4.1 the kernel returns
# EOPNOTSUPP, so they are off unless the mount is 4.2.
if grep " $NFS_MNT " /proc/mounts | grep -q 'vers=4.2'; then FALLOC=1; else FALLOC=0; fi
# fsx's default file length (256 KiB). Every flush the kernel sends as a FILE_SYNC WRITE
# becomes a whole new object version in the versioned bucket, and moto keeps all of them in
# memory: a longer file multiplies what 10,000 operations leave there.
cat > /tmp/fsx.toml <<TOML
flen = 262144
[opsize]
max = 131072
[weights]
close_open = 1
read = 10
write = 10
mapread = 5
mapwrite = 5
invalidate = 1
truncate = 2
fsync = 1
fdatasync = 1
posix_fallocate = $FALLOC
punch_hole = $FALLOC
copy_file_range = 1
sendfile = 1
TOML
cp /tmp/fsx.toml "$RESULTS/fsx.toml"
echo "fsx: seeds $SEEDS, $OPS operations each, fallocate/punch_hole weight $FALLOC"
pass=0; fail=0
W=$NFS_MNT/fsx.$(hostname)
mkdir -p "$W"
KEEP=${FSX_KEEP:-0}
: > "$RESULTS/fsx-final.tsv"
for seed in $(echo "$SEEDS" | tr , ' '); do
  t0=$(cut -d' ' -f1 /proc/uptime)
  timeout -s KILL "${FSX_TIMEOUT:-900}" fsx -f /tmp/fsx.toml -N "$OPS" -S "$seed" -P "$RESULTS" "$W/fsx.$seed" \
    > "$RESULTS/fsx.$seed.txt" 2>&1
  rc=$?
  dt=$(awk -v a=$t0 '{printf "%.1fs", $1 - a}' /proc/uptime)
  if [ $rc = 0 ] && grep -q 'All operations completed A-OK' "$RESULTS/fsx.$seed.txt"; then
    echo "PASS fsx seed=$seed ops=$OPS ($dt)"; pass=$((pass + 1))
  else
    [ $rc = 137 ] && why="killed after ${FSX_TIMEOUT:-900}s" || why="exit $rc"
    echo "FAIL fsx seed=$seed ops=$OPS ($why, $dt); last lines of $RESULTS/fsx.$seed.txt:"
    tail -40 "$RESULTS/fsx.$seed.txt" | sed 's/^/    /'
    fail=$((fail + 1))
  fi
  f=$W/fsx.$seed
  if [ -f "$f" ]; then
    sync; echo 3 > /proc/sys/vm/drop_caches
    printf '%s\t%s\t%s\t%s\n' "${f#"$NFS_MNT"/}" "$(stat -c %s "$f")" \
      "$(sha256sum < "$f" | cut -d' ' -f1)" "$KEEP" >> "$RESULTS/fsx-final.tsv"
  fi
  [ "$KEEP" = 1 ] || rm -f "$f"
done
[ "$KEEP" = 1 ] || rm -rf "$W"
echo "fsx: $pass passed, $fail failed"
[ $fail = 0 ]
