#!/bin/sh
# smoke.sh — basic POSIX operations on the NFS mount, run INSIDE the guest (busybox sh).
#
# Prints one `PASS name (time)` / `FAIL name: output` line per check, then
# `smoke: N passed, M failed`, and exits 1 if anything failed.
#
# Works in $NFS_MNT/smoke (removed first if a previous run left it). Scratch files are deleted;
# a representative tree stays in $NFS_MNT/smoke/tree, and its manifest goes to
# $RESULTS/manifest.tsv so the host can compare it with what the server (the S3 bucket) holds:
#   type path size sha256 mode uid gid mtime nlink target ino first times
#   (tab-separated; see write_manifest)
# Needs guest-tools (jepsen/guest-tools, via HARNESS_EXTRA) for the lock and O_EXCL checks.
# Knobs (HARNESS_ENV): SMOKE_MANY=1000 entries in the readdir check; SMOKE_ONLY="a b" runs
# only those checks (comma- or space-separated; include setup).
: "${NFS_MNT:?}" "${RESULTS:=/tmp/results}"
D=$NFS_MNT/smoke
K=$D/tree                        # what stays in place
R=${K#"$NFS_MNT"/}               # ... as a path relative to the export root (the manifest's form)
T=/tmp/smoke.$$                  # local scratch (tmpfs)
MANY=${SMOKE_MANY:-1000}
mkdir -p $T "$RESULTS"
pass=0; fail=0
: > $T/results
# Facts the manifest cannot read back with stat, recorded by the checks that create them:
#   $T/first      "path<TAB>first name" for every name of a hard-linked file (the name it was
#                 created under, where a one-object-per-file server keeps its object)
#   $T/times_set  paths whose mtime a check set explicitly (touch -d)
: > $T/first; : > $T/times_set

now() { cut -d' ' -f1 /proc/uptime; }
check() {   # check NAME FUNC   (FUNC runs in a subshell; its output is shown on failure)
  name=$1; shift
  if [ -n "${SMOKE_ONLY:-}" ] && ! echo " $SMOKE_ONLY " | tr , " " | grep -q " $name "; then return; fi
  t0=$(now)
  if ( "$@" ) > $T/out 2>&1; then
    echo "PASS $name ($(awk -v a=$t0 '{printf "%.2fs", $1 - a}' /proc/uptime))"; pass=$((pass + 1))
  else
    echo "FAIL $name: $(head -c 600 $T/out | tr '\n' ' ')"; fail=$((fail + 1))
  fi
}
# A helper that prints its own PASS/FAIL lines (guest-tools locks): count them.
count_lines() {
  while IFS= read -r line; do
    echo "$line"
    case $line in
      PASS*) pass=$((pass + 1)) ;;
      FAIL*) fail=$((fail + 1)) ;;
    esac
  done < "$1"
}
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# Unmount and mount again: every attribute then comes from the server, not the client's cache.
remount() {
  cd /
  timeout -s KILL 60 umount "$NFS_MNT" || { echo "umount failed"; return 1; }
  timeout -s KILL 60 mount -t nfs4 -o "$NFS_MOUNT_OPTS" "$NFS_SOURCE" "$NFS_MNT" ||
    { echo "mount again failed"; return 1; }
}
fail_if() { echo "$*"; return 1; }
sha() { sha256sum < "$1" | cut -d' ' -f1; }
expect_eq() { [ "$1" = "$2" ] || fail_if "got '$1', expected '$2' ($3)"; }

# ------------------------------------------------------------------ checks
t_setup() {
  if [ -e "$D" ]; then rm -rf "$D" || return 1; fi
  mkdir "$D" && mkdir "$K" && [ -d "$K" ] && mkdir -p "$K/dir/nested/deeper" && [ -d "$K/dir/nested/deeper" ]
}
t_write() {
  printf 'hello nfs\n' > "$K/hello.txt" && expect_eq "$(cat "$K/hello.txt")" "hello nfs" content &&
  : > "$K/empty" && expect_eq "$(stat -c %s "$K/empty")" 0 "empty size"
}
t_append() {
  printf 'line2\n' >> "$K/hello.txt" && printf 'line3\n' >> "$K/hello.txt" &&
  expect_eq "$(wc -l < "$K/hello.txt" | tr -d ' ')" 3 lines &&
  expect_eq "$(tail -1 "$K/hello.txt")" line3 "last line" &&
  expect_eq "$(stat -c %s "$K/hello.txt")" 22 size
}
t_bigfile() {   # 8 MiB of random bytes, written in one go, read back after the caches are gone
  dd if=/dev/urandom of=$T/big bs=1M count=8 2>/dev/null &&
  cp $T/big "$K/big.bin" && drop_caches &&
  expect_eq "$(stat -c %s "$K/big.bin")" 8388608 size &&
  expect_eq "$(sha "$K/big.bin")" "$(sha $T/big)" sha256
}
t_overwrite_middle() {   # an in-place write in the middle of the big file
  dd if=/dev/urandom of=$T/patch bs=4096 count=3 2>/dev/null &&
  dd if=$T/patch of="$K/big.bin" bs=4096 seek=1000 conv=notrunc 2>/dev/null &&
  dd if=$T/patch of=$T/big bs=4096 seek=1000 conv=notrunc 2>/dev/null && drop_caches &&
  expect_eq "$(sha "$K/big.bin")" "$(sha $T/big)" sha256
}
t_truncate() {
  dd if=/dev/urandom of=$T/tr bs=1000 count=10 2>/dev/null && cp $T/tr "$K/trunc.bin" &&
  truncate -s 100 "$K/trunc.bin" && drop_caches &&
  expect_eq "$(stat -c %s "$K/trunc.bin")" 100 "size after shrink" &&
  expect_eq "$(sha "$K/trunc.bin")" "$(head -c 100 $T/tr | sha256sum | cut -d' ' -f1)" "content after shrink" &&
  truncate -s 100000 "$K/trunc.bin" && drop_caches &&
  expect_eq "$(stat -c %s "$K/trunc.bin")" 100000 "size after grow" &&
  { head -c 100 $T/tr; head -c 99900 /dev/zero; } > $T/tr2 &&
  expect_eq "$(sha "$K/trunc.bin")" "$(sha $T/tr2)" "content after grow (zeros past the old end)"
}
t_mkdir() {
  mkdir "$K/dir/made" && [ -d "$K/dir/made" ] &&
  ! mkdir "$K/dir/made" 2>/dev/null &&                                   # EEXIST
  mkdir "$D/gone" && rmdir "$D/gone" && [ ! -e "$D/gone" ] &&
  expect_eq "$(stat -c %h "$K/dir")" 4 "nlink of a dir with 2 subdirs"
}
t_rmdir_notempty() { ! rmdir "$K/dir" 2>/dev/null && [ -d "$K/dir/nested" ]; }
t_rename() {
  printf 'to be renamed\n' > "$D/r0" && ino=$(stat -c %i "$D/r0") &&
  mv "$D/r0" "$K/renamed.txt" && [ ! -e "$D/r0" ] &&
  expect_eq "$(cat "$K/renamed.txt")" "to be renamed" content &&
  expect_eq "$(stat -c %i "$K/renamed.txt")" "$ino" "inode kept"
}
t_rename_over() {
  printf 'new\n' > "$D/r1" && printf 'old\n' > "$K/replaced.txt" && ino=$(stat -c %i "$D/r1") &&
  mv -f "$D/r1" "$K/replaced.txt" && [ ! -e "$D/r1" ] && drop_caches &&
  expect_eq "$(cat "$K/replaced.txt")" new content &&
  expect_eq "$(stat -c %i "$K/replaced.txt")" "$ino" "target is the source's inode" &&
  expect_eq "$(ls "$K" | grep -c '^replaced.txt$')" 1 "one entry"
}
t_rename_dir() {
  mkdir -p "$D/da/sub" && printf 'x\n' > "$D/da/sub/x" && mv "$D/da" "$K/dir/moved" &&
  [ ! -e "$D/da" ] && drop_caches && expect_eq "$(cat "$K/dir/moved/sub/x")" x content &&
  mkdir "$D/empty_target" && mkdir "$D/src_dir" && printf 'y\n' > "$D/src_dir/y" &&
  { guest-tools rename "$D/src_dir" "$D/empty_target" || fail_if "rename(2) of a dir over an empty dir failed"; } &&
  expect_eq "$(cat "$D/empty_target/y")" y "over an empty dir" &&
  rm -r "$D/empty_target"
}
t_chmod() {
  printf 'mode\n' > "$K/mode640" && chmod 640 "$K/mode640" && expect_eq "$(stat -c %a "$K/mode640")" 640 640 &&
  printf '#!/bin/sh\necho run\n' > "$K/setuid" && chmod 4755 "$K/setuid" && expect_eq "$(stat -c %a "$K/setuid")" 4755 4755 &&
  chmod 700 "$K/dir/nested/deeper" && expect_eq "$(stat -c %a "$K/dir/nested/deeper")" 700 dir
}
t_chown() {
  printf 'owned\n' > "$K/owned" && chown 1234:5678 "$K/owned" &&
  expect_eq "$(stat -c %u:%g "$K/owned")" 1234:5678 "uid:gid" &&
  chgrp 4321 "$K/dir/nested" && expect_eq "$(stat -c %g "$K/dir/nested")" 4321 "dir gid"
}
t_utimes() {
  printf 'old times\n' > "$K/times" &&
  touch -m -d '2001-02-03 04:05:06' "$K/times" && touch -a -d '2002-03-04 05:06:07' "$K/times" &&
  expect_eq "$(stat -c %Y "$K/times")" "$(date -d '2001-02-03 04:05:06' +%s)" mtime &&
  expect_eq "$(stat -c %X "$K/times")" "$(date -d '2002-03-04 05:06:07' +%s)" atime &&
  touch -d '1999-12-31 23:59:59' "$K/dir/nested" &&
  printf '%s\n' "$R/times" "$R/dir/nested" >> $T/times_set
}
t_mtime_moves() {   # a write moves mtime and ctime, a chmod moves ctime (caches and tools rely on it)
  printf 'a\n' > "$D/mt" && drop_caches && set -- $(stat -c '%Y %Z' "$D/mt") && m0=$1 c0=$2 &&
  sleep 1.1 && printf 'b\n' >> "$D/mt" && drop_caches && set -- $(stat -c '%Y %Z' "$D/mt") &&
  { [ "$1" -gt "$m0" ] || fail_if "mtime $m0 -> $1 after a write 1.1 s later"; } &&
  { [ "$2" -gt "$c0" ] || fail_if "ctime $c0 -> $2 after a write 1.1 s later"; } &&
  c1=$2 && sleep 1.1 && chmod 600 "$D/mt" && drop_caches && c2=$(stat -c %Z "$D/mt") &&
  { [ "$c2" -gt "$c1" ] || fail_if "ctime $c1 -> $c2 after a chmod 1.1 s later"; }
}
t_persist_after_remount() {   # chmod/chown/utimes/sizes as the server holds them
  remount || return 1
  r=""
  [ "$(stat -c %a "$K/mode640")" = 640 ] || r="$r mode640=$(stat -c %a "$K/mode640")"
  [ "$(stat -c %a "$K/setuid")" = 4755 ] || r="$r setuid=$(stat -c %a "$K/setuid")"
  [ "$(stat -c %a "$K/dir/nested/deeper")" = 700 ] || r="$r deeper=$(stat -c %a "$K/dir/nested/deeper")"
  [ "$(stat -c %u:%g "$K/owned")" = 1234:5678 ] || r="$r owned=$(stat -c %u:%g "$K/owned")"
  [ "$(stat -c %g "$K/dir/nested")" = 4321 ] || r="$r nested_gid=$(stat -c %g "$K/dir/nested")"
  [ "$(stat -c %Y "$K/times")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || r="$r mtime=$(stat -c %y "$K/times")"
  [ "$(stat -c %X "$K/times")" = "$(date -d '2002-03-04 05:06:07' +%s)" ] || r="$r atime=$(stat -c %x "$K/times")"
  [ "$(stat -c %Y "$K/dir/nested")" = "$(date -d '1999-12-31 23:59:59' +%s)" ] || r="$r dir_mtime=$(stat -c %y "$K/dir/nested")"
  [ "$(stat -c %s "$K/big.bin")" = 8388608 ] || r="$r big_size=$(stat -c %s "$K/big.bin")"
  [ "$(cat "$K/replaced.txt")" = new ] || r="$r replaced=$(cat "$K/replaced.txt")"
  [ ! -e "$K/fifo" ] || [ -p "$K/fifo" ] || r="$r fifo=$(stat -c %F "$K/fifo")"
  [ ! -e "$K/chardev" ] || [ "$(stat -c '%t:%T' "$K/chardev")" = 1:3 ] || r="$r chardev=$(stat -c '%F %t:%T' "$K/chardev")"
  [ -z "$r" ] || fail_if "after remount:$r"
}
t_symlink() {
  ln -s hello.txt "$K/link" && [ -L "$K/link" ] && expect_eq "$(readlink "$K/link")" hello.txt readlink &&
  expect_eq "$(head -1 "$K/link")" "hello nfs" "read through" &&
  ln -s ../../no/such/target "$K/dir/dangling" && expect_eq "$(readlink "$K/dir/dangling")" ../../no/such/target dangling &&
  drop_caches && expect_eq "$(readlink "$K/link")" hello.txt "readlink after drop_caches" &&
  expect_eq "$(stat -c %F "$K/link")" "symbolic link" type
}
t_hardlink() {
  ln "$K/hello.txt" "$K/dir/hardlink" &&
  printf '%s\t%s\n' "$R/hello.txt" "$R/hello.txt" "$R/dir/hardlink" "$R/hello.txt" >> $T/first &&
  expect_eq "$(stat -c %h "$K/hello.txt")" 2 "nlink" &&
  expect_eq "$(stat -c %i "$K/dir/hardlink")" "$(stat -c %i "$K/hello.txt")" "same inode" &&
  drop_caches && expect_eq "$(stat -c %h "$K/dir/hardlink")" 2 "nlink after drop_caches" &&
  ln "$K/hello.txt" "$D/hl2" && rm "$D/hl2" && drop_caches && expect_eq "$(stat -c %h "$K/hello.txt")" 2 "nlink after unlinking a third name"
}
t_special() {   # a FIFO and device nodes: inodes of the file system (no data, no S3 object)
  mkfifo "$K/fifo" && expect_eq "$(stat -c %F "$K/fifo")" fifo "fifo type" &&
  mknod "$K/chardev" c 1 3 && expect_eq "$(stat -c '%F %t:%T' "$K/chardev")" "character special file 1:3" chardev &&
  mknod "$K/dir/blockdev" b 7 1 && expect_eq "$(stat -c '%F %t:%T' "$K/dir/blockdev")" "block special file 7:1" blockdev &&
  chmod 600 "$K/fifo" && drop_caches &&
  expect_eq "$(stat -c '%F %a' "$K/fifo")" "fifo 600" "fifo after chmod and drop_caches"
}
t_rm() { printf 'x\n' > "$D/rmme" && rm "$D/rmme" && [ ! -e "$D/rmme" ] && drop_caches && [ ! -e "$D/rmme" ]; }
t_open_unlink() {   # an unlinked but open file stays readable (the client "silly-renames" it)
  printf 'keep\n' > "$D/ou" && exec 7< "$D/ou" && rm "$D/ou" && [ ! -e "$D/ou" ] &&
  expect_eq "$(cat <&7)" keep "read through the fd"; r=$?
  exec 7<&-
  sleep 1
  left=$(ls -a "$D" | grep '^\.nfs' || true)
  [ -z "$left" ] || { echo "silly-renamed file left after close: $left"; r=1; }
  return $r
}
t_excl() {
  command -v guest-tools >/dev/null || fail_if "guest-tools missing (HARNESS_EXTRA)" || return 1
  guest-tools excl "$K/excl" || fail_if "O_EXCL create of a new name failed" || return 1
  guest-tools excl "$K/excl"; rc=$?
  [ $rc = 17 ] || fail_if "O_EXCL on an existing name: exit $rc, expected 17 (EEXIST)" || return 1
  drop_caches                       # no cached dentry: the server must say EXIST
  guest-tools excl "$K/excl"; rc=$?
  [ $rc = 17 ] || fail_if "O_EXCL on an existing name after drop_caches: exit $rc, expected 17" || return 1
  expect_eq "$(stat -c %a "$K/excl")" 644 "mode of the O_EXCL file"
}
t_readdir_many() {   # $MANY entries, listed completely after the caches are dropped
  mkdir "$D/many" && i=0 && while [ $i -lt $MANY ]; do : > "$D/many/entry_$i"; i=$((i + 1)); done &&
  i=0 && while [ $i -lt $MANY ]; do echo "entry_$i"; i=$((i + 1)); done | sort > $T/want &&
  drop_caches && ls "$D/many" | sort > $T/got &&
  expect_eq "$(wc -l < $T/got | tr -d ' ')" "$MANY" "entries listed" &&
  { cmp -s $T/want $T/got || { diff $T/want $T/got | head -5; false; }; } &&
  expect_eq "$(ls -a "$D/many" | wc -l | tr -d ' ')" "$((MANY + 2))" "with . and .."
}
t_rm_many() { rm -rf "$D/many" && [ ! -e "$D/many" ]; }
t_locks() {
  command -v guest-tools >/dev/null || { echo "FAIL lock_conflict: guest-tools missing (HARNESS_EXTRA)"; return 1; }
  timeout -s KILL 180 guest-tools locks "$D/lockfile"
}
t_concurrent() {    # two writers: disjoint halves of one file + one file each, in parallel
  dd if=/dev/urandom of=$T/a bs=64k count=32 2>/dev/null && dd if=/dev/urandom of=$T/b bs=64k count=32 2>/dev/null || return 1
  ( dd if=$T/a of="$D/shared" bs=64k seek=0  conv=notrunc,fsync 2>/dev/null; cp $T/a "$D/wa" ) & p1=$!
  ( dd if=$T/b of="$D/shared" bs=64k seek=32 conv=notrunc,fsync 2>/dev/null; cp $T/b "$D/wb" ) & p2=$!
  wait $p1 && wait $p2 && drop_caches &&
  cat $T/a $T/b > $T/ab && cmp $T/ab "$D/shared" && cmp $T/a "$D/wa" && cmp $T/b "$D/wb"
}
t_appenders() {     # two concurrent O_APPEND writers (one open-owner, racing OPEN/CLOSE seqids)
  ( i=0; while [ $i -lt 200 ]; do echo "writerA $i" >> "$D/log"; i=$((i + 1)); done ) & p1=$!
  ( i=0; while [ $i -lt 200 ]; do echo "writerB $i" >> "$D/log"; i=$((i + 1)); done ) & p2=$!
  wait $p1; wait $p2; drop_caches
  a=$(grep -c '^writerA [0-9]*$' "$D/log"); b=$(grep -c '^writerB [0-9]*$' "$D/log")
  [ "$a" -eq 200 ] && [ "$b" -eq 200 ] || fail_if "lines intact: writerA $a/200, writerB $b/200"
}
t_statfs() {
  out=$(stat -f -c '%b %f %a %c %d %S' "$NFS_MNT") || return 1
  echo "statfs: blocks free avail files ffree bsize = $out"
  df -k "$NFS_MNT" | tail -1 | grep -q .
}
t_statfs_sizes() {   # space_total/space_avail/files_* reported (df shows 0 otherwise)
  set -- $(stat -f -c '%b %a %c' "$NFS_MNT")
  [ "${1:-0}" -gt 0 ] && [ "${2:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ] ||
    fail_if "statfs blocks=$1 avail=$2 files=$3: the server reports no sizes"
}
t_cleanup() {   # scratch goes, the tree stays
  for f in "$D"/* "$D"/.[!.]*; do
    [ -e "$f" ] || [ -L "$f" ] || continue
    [ "$f" = "$K" ] || rm -rf "$f" || return 1
  done
  expect_eq "$(ls -a "$D" | tr '\n' ' ')" ". .. tree " "left in $D"
}

# ------------------------------------------------------------------ manifest
# One line per file system object under $K (the root of the tree included), paths relative to
# the export root, tab-separated:
#   type   f regular file, d directory, l symlink, p FIFO, c/b character/block device, s socket
#   path size sha256(f; else -) mode(octal, no type bits) uid gid mtime(s) nlink
#   target (l; else -)  ino (inode number)
#   first  (f with nlink > 1: the name it was created under, from $T/first; else -)
#   times  ("set" if a check set its mtime explicitly, from $T/times_set; else -)
write_manifest() {
  drop_caches
  {
    printf '# type\tpath\tsize\tsha256\tmode\tuid\tgid\tmtime\tnlink\ttarget\tino\tfirst\ttimes\n'
    find "$K" | sort | while IFS= read -r p; do
      rel=${p#"$NFS_MNT"/}
      set -- $(stat -c '%F|%s|%a|%u|%g|%Y|%h|%i' "$p" | tr ' ' '_' | tr '|' ' ')
      mode=$(printf '%04d' "$3")
      first=$(awk -F '\t' -v p="$rel" '$1 == p { print $2; exit }' $T/first)
      grep -qxF "$rel" $T/times_set && times=set || times=-
      case $1 in
        regular_file|regular_empty_file) t=f; size=$2; sum=$(sha "$p"); target=- ;;
        directory) t=d; size=-; sum=-; target=- ;;
        symbolic_link) t=l; size=$2; sum=-; target=$(readlink "$p") ;;
        fifo) t=p; size=-; sum=-; target=- ;;
        character_special_file) t=c; size=-; sum=-; target=- ;;
        block_special_file) t=b; size=-; sum=-; target=- ;;
        socket) t=s; size=-; sum=-; target=- ;;
        *) t="?$1"; size=-; sum=-; target=- ;;
      esac
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
        "$t" "$rel" "$size" "$sum" "$mode" "$4" "$5" "$6" "$7" "$target" "$8" "${first:--}" "$times"
    done
  } > "$RESULTS/manifest.tsv"
}

for t in setup write append bigfile overwrite_middle truncate mkdir rmdir_notempty rename \
         rename_over rename_dir chmod chown utimes mtime_moves symlink hardlink special rm open_unlink \
         excl readdir_many rm_many concurrent appenders; do
  check "$t" t_$t
done
if [ -z "${SMOKE_ONLY:-}" ] || echo " $SMOKE_ONLY " | tr , " " | grep -q " locks "; then
  ( t_locks ) > $T/locks 2>&1; count_lines $T/locks
fi
for t in statfs statfs_sizes persist_after_remount cleanup; do check "$t" t_$t; done
cd /
if [ -d "$K" ]; then
  write_manifest && echo "manifest: $(($(wc -l < "$RESULTS/manifest.tsv") - 1)) objects in $RESULTS/manifest.tsv (kept: ${K#"$NFS_MNT"/})"
fi
rm -rf $T
echo "smoke: $pass passed, $fail failed"
echo "$pass passed, $fail failed" > "$RESULTS/smoke-summary.txt"
[ $fail -eq 0 ]
