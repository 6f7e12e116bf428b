#!/usr/bin/env bash
# run-guest.sh SERVER_PORT SCRIPT [EXPORT]      (jepsen/guest; build-guest.sh first)
#
# Boots the test guest (Debian kernel under qemu), mounts the NFS server that listens on the
# HOST at 127.0.0.1:SERVER_PORT with `mount -t nfs4 -o vers=4.1`, runs SCRIPT inside the guest,
# powers off, and exits with SCRIPT's exit status.
#
#   SERVER_PORT  TCP port of the NFS server on host loopback (it must listen on 127.0.0.1)
#   SCRIPT       shell script run in the guest by busybox sh
#                with NFS_MNT=<mount point> and RESULTS=<dir copied back to the host>
#   EXPORT       path to mount (default /; memserve exports its tree at /)
#
# Environment knobs (all optional):
#   HARNESS_OUT=<dir>        artifacts from build-guest.sh   (default /var/cache/bucketfs/guest)
#   RESULTS_DIR=<dir>        where console.log and /results land  (default $HARNESS_OUT/runs/<ts>)
#                            results/ holds the script's $RESULTS plus exit_code, dmesg.txt,
#                            mountstats.txt and mount.txt written by the guest's init
#   MOUNT_OPTS=a,b           extra mount options, e.g. "sec=sys,hard,timeo=100,actimeo=0"
#   NFS_VERS=4.1             vers= option (4.0 / 4.1 / 4.2)
#   HARNESS_NET=guestfwd     guestfwd: restrict=on, guest reaches ONLY 10.0.2.100:2049, which qemu
#                            forwards to 127.0.0.1:SERVER_PORT (one fwd.py process per connection,
#                            so client reconnects / server restarts work)
#                            direct:   restrict=off, guest mounts 10.0.2.2:SERVER_PORT (qemu maps
#                            10.0.2.2 to host 127.0.0.1; slightly faster; the guest has no default
#                            route, but could reach any host-loopback port)
#   HARNESS_FWD=py           guestfwd helper: py (fwd.py, default) | nc (busybox nc: ~45 ms per 4K
#                            RPC, Nagle) | chardev (fast, but one connection only, no reconnect)
#   HARNESS_ACCEL=auto       auto | tcg | kvm  (auto picks tcg here: this /dev/kvm is PVM, see README)
#   HARNESS_SMP=1 HARNESS_MEM=1024 HARNESS_TIMEOUT=600 (seconds, whole VM)
#   HARNESS_EXTRA="f1 f2"    host binaries to put in the guest's /harness/bin (with their .so deps)
#   HARNESS_ENV="K=V ..."    extra variables exported to SCRIPT inside the guest (no spaces in V)
#   HARNESS_QUIET=1          do not stream the console to stdout (still saved to console.log)
#   HARNESS_PCAP=1           capture the NFS traffic on host loopback with tshark/dumpcap into
#                            $RESULTS_DIR/nfs.pcap (apt-get install tshark); decode it with
#                            tshark -r nfs.pcap -d tcp.port==SERVER_PORT,rpc -O nfs
#   RESULTS_MB=64            size of the results disk (a raw tar of the guest's /results)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${HARNESS_OUT:-/var/cache/bucketfs/guest}
PORT=${1:?usage: run-guest.sh SERVER_PORT SCRIPT [EXPORT]}
SCRIPT=${2:?usage: run-guest.sh SERVER_PORT SCRIPT [EXPORT]}
EXPORT=${3:-/}
NET=${HARNESS_NET:-guestfwd}
ACCEL=${HARNESS_ACCEL:-auto}
if [ "$ACCEL" = auto ]; then
  # Real KVM (kvm_intel/kvm_amd) boots in ~1 s.  This machine kind's /dev/kvm is "kvm_pvm"
  # (software nested virtualisation): a stock kernel there hangs in early boot, so use TCG.
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    ACCEL=kvm; else ACCEL=tcg; fi
fi
SMP=${HARNESS_SMP:-1}
MEM=${HARNESS_MEM:-1024}
TIMEOUT=${HARNESS_TIMEOUT:-600}
BB=$OUT/bin/busybox
RUN=${RESULTS_DIR:-$OUT/runs/$(date +%Y%m%d-%H%M%S)-$$}

[ -f "$OUT/initrd.cpio.gz" ] || { echo "run build-guest.sh first (no $OUT/initrd.cpio.gz)" >&2; exit 2; }
[ -f "$SCRIPT" ] || { echo "no such script: $SCRIPT" >&2; exit 2; }
# Fail fast if nothing listens (otherwise each in-guest mount attempt hangs for minutes).
if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "[run-guest] nothing listens on 127.0.0.1:$PORT" >&2; exit 3
fi
mkdir -p "$RUN"
STAGE=$(mktemp -d "$RUN/.stage.XXXXXX")
PCAP_PID=
cleanup() {
  if [ -n "$PCAP_PID" ]; then sleep 1; kill "$PCAP_PID" 2>/dev/null; wait "$PCAP_PID" 2>/dev/null; fi
  rm -rf "$STAGE"
}
trap cleanup EXIT
t_start=$(date +%s.%N)

case $NET in
  guestfwd)
    NFS_SERVER=10.0.2.100; NFS_PORT=2049
    # cmd: spawns one forwarder per guest connection, so client reconnects work (a chardev
    # "tcp:127.0.0.1:PORT" would connect once at qemu start and serve a single connection).
    case ${HARNESS_FWD:-py} in
      py)      FWD="cmd:$(command -v python3) $HERE/fwd.py 127.0.0.1 $PORT" ;;
      nc)      FWD="cmd:$BB nc 127.0.0.1 $PORT" ;;                # slow: Nagle, ~45 ms per 4K RPC
      chardev) FWD="tcp:127.0.0.1:$PORT,,nodelay=on" ;;            # fast, but 1 connection, no reconnect
    esac
    NETDEV="user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:2049-$FWD" ;;
  direct)
    NFS_SERVER=10.0.2.2; NFS_PORT=$PORT
    NETDEV="user,id=n0,restrict=off" ;;
  *) echo "HARNESS_NET must be guestfwd or direct" >&2; exit 2 ;;
esac

# ---------------------------------------------------------------- per-run cpio (appended)
mkdir -p "$STAGE/root/harness/bin"
HOSTNAME_G="nfsguest-$(date +%s)-$$"     # unique NFSv4 client owner per boot
cat > "$STAGE/root/harness/config" <<EOF
NFS_SERVER=$NFS_SERVER
NFS_PORT=$NFS_PORT
NFS_EXPORT=$EXPORT
NFS_VERS=${NFS_VERS:-4.1}
MOUNT_OPTS=${MOUNT_OPTS:-}
MOUNT_RETRIES=${MOUNT_RETRIES:-3}
MOUNT_TIMEOUT=${MOUNT_TIMEOUT:-60}
GUEST_HOSTNAME=$HOSTNAME_G
EOF
# HARNESS_ENV="K=V K2=V2": extra variables exported to SCRIPT in the guest (values without spaces)
for kv in ${HARNESS_ENV:-}; do echo "$kv" >> "$STAGE/root/harness/config"; done
cp "$SCRIPT" "$STAGE/root/harness/test.sh"
for f in ${HARNESS_EXTRA:-}; do
  [ -f "$f" ] || { echo "[run-guest] HARNESS_EXTRA: no such file: $f" >&2; exit 2; }
  cp -L "$f" "$STAGE/root/harness/bin/"
  # copy the ELF interpreter and shared libraries at their absolute paths
  for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
    mkdir -p "$STAGE/root$(dirname "$lib")"
    cp -L "$lib" "$STAGE/root$lib"
  done
done
(cd "$STAGE/root" && find . | "$BB" cpio -o -H newc 2>/dev/null) > "$STAGE/run.cpio"
# Concatenated initramfs: the kernel only accepts an uncompressed cpio that starts at a 4-byte
# aligned offset, so zero-pad the gzip'ed base archive first (zeros between archives are skipped).
base_size=$(stat -c %s "$OUT/initrd.cpio.gz")
{ cat "$OUT/initrd.cpio.gz"; head -c $(( (512 - base_size % 512) % 512 )) /dev/zero; cat "$STAGE/run.cpio"; } > "$STAGE/initrd"

# ---------------------------------------------------------------- disks
truncate -s "${RESULTS_MB:-64}M" "$STAGE/results.img"
DISKS=(-drive "file=$STAGE/results.img,format=raw,if=none,id=res,cache=unsafe"
       -device "virtio-blk-pci,drive=res,serial=results")

case $ACCEL in
  kvm) CPU=host ;;
  *)   CPU=max ;;
esac

# ---------------------------------------------------------------- optional capture
if [ "${HARNESS_PCAP:-0}" = 1 ]; then
  CAP=$(command -v dumpcap || command -v tshark || true)
  [ -n "$CAP" ] || { echo "[run-guest] HARNESS_PCAP=1 needs tshark (apt-get install tshark)" >&2; exit 2; }
  "$CAP" -q -i lo -f "tcp port $PORT" -w "$RUN/nfs.pcap" > "$RUN/pcap.log" 2>&1 &
  PCAP_PID=$!
  for _ in $(seq 50); do grep -q "Capturing on" "$RUN/pcap.log" 2>/dev/null && break; sleep 0.1; done
fi

# ---------------------------------------------------------------- boot
echo "[run-guest] port=$PORT net=$NET accel=$ACCEL smp=$SMP script=$SCRIPT results=$RUN" >&2
set +e
timeout --kill-after=10 "$TIMEOUT" "$OUT/bin/qemu" \
  -machine q35,accel="$ACCEL" -cpu "$CPU" -smp "$SMP" -m "$MEM" \
  -nodefaults -no-user-config -display none -no-reboot \
  -serial stdio \
  -kernel "$OUT/vmlinuz" -initrd "$STAGE/initrd" \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init nfs.nfs4_unique_id=$HOSTNAME_G" \
  -netdev "$NETDEV" -device virtio-net-pci,netdev=n0,romfile= \
  "${DISKS[@]}" \
  < /dev/null 2>&1 | if [ "${HARNESS_QUIET:-0}" = 1 ]; then cat > "$RUN/console.log"; else tee "$RUN/console.log"; fi
qrc=${PIPESTATUS[0]}
set -e
t_end=$(date +%s.%N)

# ---------------------------------------------------------------- collect
mkdir -p "$RUN/results"
tar -xf "$STAGE/results.img" -C "$RUN/results" 2>/dev/null || true
rc=$(tr -dc '0-9' < "$RUN/results/exit_code" 2>/dev/null || true)
if [ -z "$rc" ]; then
  rc=$(grep -a -o 'HARNESS_EXIT_CODE=[0-9]*' "$RUN/console.log" | tail -1 | cut -d= -f2 || true)
fi
if [ -z "$rc" ]; then
  if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
    echo "[run-guest] TIMEOUT after ${TIMEOUT}s (qemu killed)" >&2; rc=124
  else
    echo "[run-guest] guest died without reporting (qemu rc=$qrc)" >&2; rc=125
  fi
fi
echo "[run-guest] exit=$rc wall=$(awk "BEGIN{printf \"%.1f\", $t_end - $t_start}")s log=$RUN/console.log" >&2
exit "$rc"
