#!/bin/sh
# restart-guest.sh — guest half of memserve-restart.sh: holds a file open for writing while the
# host restarts the server, then reports how the client's state recovery went (dmesg, the
# recovery ops in mountstats). Prints INFO lines and `restart: N passed, M failed`; the only
# checks are those that must hold whatever the server lost: the mount still answers, and a new
# file can be created, written and read back.
: "${NFS_MNT:?}"
cd "$NFS_MNT" || exit 1
echo before > a; exec 5>> held; echo line1 >&5
echo READY_FOR_RESTART            # the host restarts the server when it sees this
sleep "${RESTART_WAIT:-15}"
pass=0; fail=0
if echo line2 >&5 2>/tmp/w.err; then echo "INFO write through the fd opened before the restart: ok"
else echo "INFO write through the fd opened before the restart failed: $(cat /tmp/w.err)"; fi
exec 5>&-
if ls "$NFS_MNT" > /dev/null; then echo "PASS readdir_after_restart"; pass=$((pass + 1)); else echo "FAIL readdir_after_restart"; fail=$((fail + 1)); fi
if echo after > b && [ "$(cat b)" = after ]; then echo "PASS create_after_restart"; pass=$((pass + 1)); else echo "FAIL create_after_restart"; fail=$((fail + 1)); fi
echo "INFO recovery ops (count):"
grep -E "^\s+(EXCHANGE_ID|CREATE_SESSION|RECLAIM_COMPLETE|OPEN|TEST_STATEID|FREE_STATEID|BIND_CONN_TO_SESSION):" /proc/self/mountstats | awk '{print "INFO   " $1, $2}'
dmesg | grep -E "NFS|nfs" | grep -vE "Registering|Registered|ommand line" | sed 's/^/INFO dmesg: /' | tail -10
echo "restart: $pass passed, $fail failed"
[ $fail = 0 ]
