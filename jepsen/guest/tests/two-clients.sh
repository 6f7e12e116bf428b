#!/bin/sh
# two-clients.sh — one half of a two-guest test (run by ../two-clients.sh): ROLE=a or ROLE=b in
# HARNESS_ENV. Both guests mount the same server; they coordinate through marker files in
# $NFS_MNT/two (mount with lookupcache=none,actimeo=0 so each sees the other's markers).
# Checks what one client cannot: a byte-range lock held by one CLIENT conflicts on the server
# (LOCK -> NFS4ERR_DENIED), and close-to-open coherence of data written by the other client.
: "${NFS_MNT:?}" "${ROLE:?ROLE=a|b}"
W=$NFS_MNT/two; F=$W/lockfile
pass=0; fail=0
ok()  { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
wait_for() {   # wait_for FILE [SECONDS]
  i=0; while [ ! -e "$1" ]; do i=$((i + 1)); [ $i -gt $((${2:-120} * 5)) ] && return 1; sleep 0.2; done
}
if [ "$ROLE" = a ]; then
  mkdir -p "$W" && printf 'v1 from a\n' > "$W/data" && dd if=/dev/zero of="$F" bs=200 count=1 2>/dev/null
  mkfifo /tmp/ctl; guest-tools hold "$F" 0 100 < /tmp/ctl > /tmp/hold.out 2>&1 & hp=$!
  exec 3> /tmp/ctl
  i=0; until grep -q locked /tmp/hold.out; do i=$((i + 1)); [ $i -gt 300 ] && break; sleep 0.2; done
  grep -q locked /tmp/hold.out && ok a_lock_taken || bad a_lock_taken "$(cat /tmp/hold.out)"
  touch "$W/a_ready"
  wait_for "$W/b_tried" 300 || bad a_wait "b never tried"
  echo close >&3; sleep 0.5; exec 3>&-; wait $hp
  touch "$W/a_released"
  wait_for "$W/b_done" 300 || bad a_wait "b never finished"
  got=$(cat "$W/data")
  [ "$got" = "$(printf 'v1 from a\nv2 from b')" ] && ok a_sees_b_write || bad a_sees_b_write "data is: $got"
  touch "$W/a_done"
else
  wait_for "$W/a_ready" 300 || { bad b_wait "a never got ready"; echo "two-clients b: $pass passed, $fail failed"; exit 1; }
  guest-tools trylock "$F" 0 100; rc=$?
  [ $rc = 11 ] && ok b_lock_conflict_across_clients || bad b_lock_conflict_across_clients "trylock 0..100 exit $rc, expected 11 (EAGAIN) while a holds it"
  guest-tools trylock "$F" 50 10; rc=$?
  [ $rc = 11 ] && ok b_lock_conflict_overlap || bad b_lock_conflict_overlap "trylock 50..60 exit $rc, expected 11"
  guest-tools trylock "$F" 100 100; rc=$?
  [ $rc = 0 ] && ok b_lock_disjoint || bad b_lock_disjoint "trylock 100..200 exit $rc, expected 0"
  got=$(cat "$W/data")
  [ "$got" = "v1 from a" ] && ok b_sees_a_write || bad b_sees_a_write "data is: $got"
  touch "$W/b_tried"
  wait_for "$W/a_released" 300 || bad b_wait "a never released"
  guest-tools trylock "$F" 0 100; rc=$?
  [ $rc = 0 ] && ok b_lock_after_release || bad b_lock_after_release "trylock 0..100 exit $rc after a closed its fd"
  printf 'v2 from b\n' >> "$W/data"
  touch "$W/b_done"
  wait_for "$W/a_done" 300 || bad b_wait "a never finished"
  rm -rf "$W"
fi
echo "two-clients $ROLE: $pass passed, $fail failed"
[ $fail = 0 ]
