#!/bin/sh
# close-to-open.sh — the kernel client's half of the cross-gateway close-to-open test
# (meta/bin/tests/failover.rs): this guest reaches one gateway, the host's in-process NFS client
# another. They take turns on $NFS_MNT/c2o/data; each turn ends with a close, and the other
# side's next open must see every byte of it:
#   1. the guest writes C2O_SIZE random bytes, closes, prints `C2O_WROTE sha256 size`;
#   2. the host reads the file through the other gateway, overwrites a range that crosses the
#      end (so the size changes too), closes, then creates c2o/host-done holding
#      `sha256 size` of what the file now is;
#   3. the guest (its page cache still holds its own write) opens the file again and must see
#      the host's bytes: PASS/FAIL c2o_sees_other_gateway; then it appends C2O_APPEND bytes,
#      closes, prints `C2O_APPENDED sha256 size` for the host to check through its gateway, and
#      waits for c2o/host-checked.
# Mount with lookupcache=positive so the waits for the host's marker files are not answered
# from a cached negative lookup (the data file is opened with the default close-to-open rules).
: "${NFS_MNT:?}" "${RESULTS:=/tmp/results}"
W=$NFS_MNT/c2o; F=$W/data
pass=0; fail=0
ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
sha() { sha256sum < "$1" | cut -d' ' -f1; }
finish() { echo "close-to-open: $pass passed, $fail failed"; [ $fail = 0 ]; exit $?; }
wait_for() {   # wait_for FILE SECONDS
  i=0; while [ ! -e "$1" ]; do i=$((i + 1)); [ $i -gt $(($2 * 5)) ] && return 1; sleep 0.2; done
}
mkdir -p "$W" || { bad mkdir "$W"; finish; }
head -c "${C2O_SIZE:-300000}" /dev/urandom > /tmp/data
cp /tmp/data "$F" || { bad write "cp failed"; finish; }
cat "$F" > /tmp/back && cmp -s /tmp/data /tmp/back && ok c2o_own_write || bad c2o_own_write "read back differs"
echo "C2O_WROTE $(sha /tmp/data) $(stat -c %s /tmp/data)"
wait_for "$W/host-done" "${C2O_WAIT:-180}" || { bad c2o_wait "no $W/host-done from the host"; finish; }
want=$(cat "$W/host-done")
cat "$F" > /tmp/now                        # open (close-to-open revalidation) + read
got="$(sha /tmp/now) $(stat -c %s /tmp/now)"
[ "$got" = "$want" ] && ok c2o_sees_other_gateway ||
  bad c2o_sees_other_gateway "after the host's write through the other gateway the file is '$got', the host wrote '$want'"
head -c "${C2O_APPEND:-5000}" /dev/urandom >> "$F" || bad append "append failed"
cat "$F" > /tmp/final
echo "C2O_APPENDED $(sha /tmp/final) $(stat -c %s /tmp/final)"
wait_for "$W/host-checked" "${C2O_WAIT:-180}" || bad c2o_wait "no $W/host-checked from the host"
finish
