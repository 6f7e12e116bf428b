#!/usr/bin/env bash
# build-guest.sh — everything the kernel-NFS-client test guest needs, from Debian packages and
# crates.io, cached outside the clone.
#
#   jepsen/guest/build-guest.sh              # kernel + qemu + busybox initramfs + pjdfstest + fsx
#   jepsen/guest/build-guest.sh --no-tools   # skip the two cargo installs
#   jepsen/guest/build-guest.sh --force      # rebuild the initramfs even if nothing changed
#
# Idempotent: a second run with nothing changed takes about a second. Nothing is installed into
# the host system: the .debs are fetched with `apt-get download` and unpacked with `dpkg -x`.
# On a fresh Debian 12 machine it runs `apt-get update` once if the package lists are missing.
#
# Why not `apt-get install qemu-system-x86`? On this machine kind the preinstalled qemu-utils
# 10.0 (bookworm-backports) Breaks qemu-system-common (<< 8.0), so apt would remove qemu-utils to
# install bookworm's qemu-system-x86 7.2. Unpacking avoids that.
#
# Everything lands in $HARNESS_OUT (default /var/cache/bucketfs/guest):
#   vmlinuz            Debian kernel (cloud flavour; KFLAVOR=amd64 for the generic one)
#   initrd.cpio.gz     busybox-static + NFS/virtio modules + guest/init
#   qemu/              unpacked qemu-system-x86_64 + firmware + private libs; bin/qemu wraps it
#   bin/busybox        host copy of busybox (run-guest.sh uses its cpio)
#   cargo/bin/{pjdfstest,fsx}   guest test tools (cargo install --locked, pinned versions)
#   debs/              the downloaded .debs (cache)
#   runs/              console logs and results of run-guest.sh / run-suites.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${HARNESS_OUT:-/var/cache/bucketfs/guest}
KFLAVOR=${KFLAVOR:-cloud-amd64}
PJDFSTEST_VERSION=${PJDFSTEST_VERSION:-0.2.2}
FSX_VERSION=${FSX_VERSION:-0.3.2}
WANT_TOOLS=1; FORCE=0
for a in "$@"; do
  case $a in
    --no-tools) WANT_TOOLS=0 ;;
    --tools)    WANT_TOOLS=1 ;;   # the default; accepted for the reference recipe's command line
    --force)    FORCE=1 ;;
    *) echo "usage: $0 [--no-tools] [--force]" >&2; exit 2 ;;
  esac
done

# Kernel modules the guest needs (their dependencies are added from modules.dep).
GUEST_MODULES="virtio_pci virtio_net virtio_blk nfsv4"
# qemu-system-x86 and the shared libraries it needs that a fresh machine of this kind lacks.
QEMU_DEBS="qemu-system-x86 qemu-system-common qemu-system-data seabios"
QEMU_LIB_DEBS="libcapstone4 libfdt1 libpmem1 librdmacm1 libibverbs1 libslirp0 libvdeplug2 \
  libnl-3-200 libnl-route-3-200 libndctl6 libdaxctl1"

t0=$(date +%s)
log() { echo "[build-guest +$(( $(date +%s) - t0 ))s] $*"; }

for tool in apt-get apt-cache dpkg gzip tar; do
  command -v $tool >/dev/null || { echo "build-guest: need $tool (Debian 12 host)" >&2; exit 1; }
done
if ! command -v python3 >/dev/null; then     # fwd.py (the guest's TCP forwarder) needs it
  log "installing python3"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal >/dev/null; }
fi

mkdir -p "$OUT/debs" "$OUT/bin" "$OUT/runs"
cd "$OUT"
# Keep the cache out of any git tree it might be placed in.
[ -f .gitignore ] || echo '*' > .gitignore

# ---------------------------------------------------------------- 1. download .debs
resolve_kernel() {
  apt-cache depends "linux-image-$KFLAVOR" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'
}
KPKG=$(resolve_kernel)
if [ -z "$KPKG" ]; then
  log "apt-get update (package lists missing or stale)"
  apt-get update -qq
  KPKG=$(resolve_kernel)
fi
[ -n "$KPKG" ] || { echo "build-guest: cannot resolve linux-image-$KFLAVOR" >&2; exit 1; }
KVER=${KPKG#linux-image-}
log "kernel package $KPKG"
download() {
  (cd debs && apt-get download -o APT::Sandbox::User=root \
      "$KPKG" busybox-static $QEMU_DEBS $QEMU_LIB_DEBS >/dev/null)
}
if [ ! -f "debs/.done-$KVER" ]; then
  log "apt-get download (no install) ..."
  # A stale list names versions the mirror no longer has: refresh once and retry.
  download || { log "download failed; apt-get update and retry"; apt-get update -qq; download; }
  touch "debs/.done-$KVER"
fi
# One .deb per package: keep the newest if several versions accumulated.
pick() { ls -t debs/"$1"_*.deb | head -1; }

# ---------------------------------------------------------------- 2. unpack + initramfs
# Inputs of the initramfs; if they did not change, the unpack and cpio steps are skipped.
STAMP=$( { echo "$KPKG $GUEST_MODULES $QEMU_DEBS $QEMU_LIB_DEBS"; cat "$HERE/guest/init" "$HERE/build-guest.sh";
           ls debs; } | sha256sum | cut -c1-16)
if [ $FORCE = 0 ] && [ -f .initrd-stamp ] && [ "$(cat .initrd-stamp)" = "$STAMP" ] &&
   [ -f vmlinuz ] && [ -f initrd.cpio.gz ] && [ -x qemu/usr/bin/qemu-system-x86_64 ]; then
  log "kernel, qemu and initramfs up to date"
else
  rm -rf kroot bbroot qemu initramfs .initrd-stamp
  mkdir -p kroot bbroot qemu
  dpkg -x "$(pick "$KPKG")" kroot
  dpkg -x "$(pick busybox-static)" bbroot
  for p in $QEMU_DEBS $QEMU_LIB_DEBS; do dpkg -x "$(pick "$p")" qemu; done
  cp "kroot/boot/vmlinuz-$KVER" vmlinuz
  cp bbroot/bin/busybox bin/busybox
  BB=$OUT/bin/busybox

  # qemu wrapper: private libraries first, firmware from the unpacked tree.
  cat > bin/qemu <<EOF
#!/bin/sh
Q=$OUT/qemu
export LD_LIBRARY_PATH=\$Q/usr/lib/x86_64-linux-gnu:\$Q/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
exec \$Q/usr/bin/qemu-system-x86_64 -L \$Q/usr/share/seabios -L \$Q/usr/share/qemu "\$@"
EOF
  chmod +x bin/qemu
  if LD_LIBRARY_PATH=$OUT/qemu/usr/lib/x86_64-linux-gnu:$OUT/qemu/lib/x86_64-linux-gnu \
       ldd qemu/usr/bin/qemu-system-x86_64 | grep 'not found'; then
    echo "build-guest: qemu still misses the libraries above: add their packages to QEMU_LIB_DEBS" >&2
    exit 1
  fi
  log "qemu: $(bin/qemu --version | head -1)"

  IR=$OUT/initramfs
  mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,mnt,results,harness,etc,root}
  cp "$BB" "$IR/bin/busybox"
  for app in $("$BB" --list); do
    [ "$app" = busybox ] || ln -sf busybox "$IR/bin/$app"
  done
  # root plus the users pjdfstest switches to (nobody, tests)
  printf '%s\n' "root:x:0:0:root:/root:/bin/sh" "nobody:x:65534:65534:nobody:/:/bin/false" \
    "tests:x:1001:1001:tests:/:/bin/false" > "$IR/etc/passwd"
  printf '%s\n' "root:x:0:" "nogroup:x:65534:" "nobody:x:65534:" "tests:x:1001:" > "$IR/etc/group"

  MD=kroot/lib/modules/$KVER
  "$BB" depmod -b kroot "$KVER"                 # the .deb ships no modules.dep
  mods=""
  for m in $GUEST_MODULES; do
    line=$(grep -E "/$m\.ko(\.[a-z]+)?:" "$MD/modules.dep") || { echo "module $m not found" >&2; exit 1; }
    mods="$mods $(echo "$line" | tr -d ':')"
  done
  for ko in $(echo $mods | tr ' ' '\n' | sort -u); do
    mkdir -p "$IR/lib/modules/$KVER/$(dirname "$ko")"
    cp "$MD/$ko" "$IR/lib/modules/$KVER/$ko"
  done
  cp "$MD/modules.builtin" "$MD/modules.order" "$IR/lib/modules/$KVER/"
  "$BB" depmod -b "$IR" "$KVER"
  cp "$HERE/guest/init" "$IR/init"
  chmod +x "$IR/init"
  (cd "$IR" && find . | "$BB" cpio -o -H newc 2>/dev/null) | gzip -1 > initrd.cpio.gz
  log "initrd.cpio.gz $(du -h initrd.cpio.gz | cut -f1) ($(find "$IR" -name '*.ko*' | wc -l) modules)"
  [ "${KEEP_TREES:-0}" = 1 ] || rm -rf kroot bbroot initramfs
  echo "$STAMP" > .initrd-stamp
fi

# ---------------------------------------------------------------- 3. guest test tools
# pjdfstest (POSIX conformance, BSD-2) and fsx (File System eXerciser, APSL-2.0): Rust rewrites
# on crates.io. They link only glibc + libgcc_s, which run-guest.sh copies into the guest along
# with them (HARNESS_EXTRA). A private target dir keeps the shared workspace cache's lock free.
if [ $WANT_TOOLS = 1 ]; then
  command -v cargo >/dev/null || { echo "build-guest: need cargo for the guest tools" >&2; exit 1; }
  for spec in "pjdfstest $PJDFSTEST_VERSION" "fsx $FSX_VERSION"; do
    set -- $spec
    if [ -x "cargo/bin/$1" ] && grep -q "^$1 $2$" "cargo/.versions" 2>/dev/null; then continue; fi
    log "cargo install --locked $1@$2 ..."
    CARGO_TARGET_DIR=$OUT/cargo-target cargo install --locked --quiet --force \
      --root "$OUT/cargo" "$1@$2"
    { grep -v "^$1 " cargo/.versions 2>/dev/null || true; echo "$1 $2"; } > cargo/.versions.new
    mv cargo/.versions.new cargo/.versions
  done
  [ "${KEEP_TREES:-0}" = 1 ] || rm -rf cargo-target
  log "tools: $(ls cargo/bin | tr '\n' ' ')"
fi
log "done; artifacts in $OUT"
