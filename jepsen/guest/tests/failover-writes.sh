#!/bin/sh
# failover-writes.sh — a write workload that must outlive the gateway serving it, run INSIDE the
# guest on a hard mount through a TCP load balancer (meta/bin/tests/failover.rs kills that
# gateway in the middle of it).
#
# Writes FO_FILES files of random sizes (FO_MIN..FO_MAX bytes) and random contents into
# $NFS_MNT/failover/, each with one `dd conv=fsync` (WRITEs, then fsync -> COMMIT, then close).
# Once a file's fsync has returned it appends `name sha256 size` to $RESULTS/acked.txt and
# prints `ACK n name size uptime` on the console, which the host watches to time its kill.
# A failed write prints `FAIL write name: error` and counts as an error; the workload goes on.
# At the end every acked file is read back after drop_caches (through whichever gateway then
# serves the mount) and compared with its checksum.
# Knobs (HARNESS_ENV): FO_FILES=40 FO_MIN=1000 FO_MAX=2500000
# Prints `failover-writes: N acked, M errors` and exits 1 if any write or read-back failed.
: "${NFS_MNT:?}" "${RESULTS:=/tmp/results}"
N=${FO_FILES:-40}; MIN=${FO_MIN:-1000}; MAX=${FO_MAX:-2500000}
W=$NFS_MNT/failover
mkdir -p "$W" "$RESULTS" || { echo "FAIL mkdir $W"; echo "failover-writes: 0 acked, 1 errors"; exit 1; }
: > "$RESULTS/acked.txt"
up() { cut -d' ' -f1 /proc/uptime; }
rand() { od -An -N4 -tu4 /dev/urandom | tr -d ' '; }
acked=0; errors=0; i=0
echo "failover-writes: $N files of $MIN..$MAX bytes into $W (start $(up))"
while [ $i -lt $N ]; do
  name=f$(printf '%03d' $i)
  size=$((MIN + $(rand) % (MAX - MIN + 1)))
  head -c $size /dev/urandom > /tmp/data
  sum=$(sha256sum < /tmp/data | cut -d' ' -f1)
  if dd if=/tmp/data of="$W/$name" bs=262144 conv=fsync 2> /tmp/dd.err; then
    printf '%s %s %s\n' "$name" "$sum" "$size" >> "$RESULTS/acked.txt"
    acked=$((acked + 1))
    echo "ACK $acked $name $size $(up)"
  else
    errors=$((errors + 1))
    echo "FAIL write $name: $(tr '\n' ' ' < /tmp/dd.err)"
  fi
  i=$((i + 1))
done
echo "failover-writes: writes done at $(up); reading back"
sync; echo 3 > /proc/sys/vm/drop_caches
while read -r name sum size; do
  got=$(sha256sum < "$W/$name" | cut -d' ' -f1)
  [ "$got" = "$sum" ] || { errors=$((errors + 1)); echo "FAIL readback $name: sha256 $got, acked $sum"; }
done < "$RESULTS/acked.txt"
echo "failover-writes: $acked acked, $errors errors (end $(up))"
[ $errors = 0 ]
