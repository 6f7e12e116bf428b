#!/usr/bin/env bash
# deploy/bench/ganesha.sh — nfs-ganesha serving a local directory over NFSv4.1 on loopback, the
# reference `bucketfs bench nfs` compares bucketfs with.
#
#   deploy/bench/ganesha.sh start [PORT [DIR]]   # default 127.0.0.1:12049, /var/tmp/bucketfs-ganesha/export
#   deploy/bench/ganesha.sh stop  [PORT [DIR]]
#   deploy/bench/ganesha.sh status [PORT [DIR]]
#
# Then:  bucketfs bench nfs --target 127.0.0.1:12049/export
#
# DIR is exported as the pseudo path /export through the VFS FSAL; config, log and pid file
# live in DIR.ganesha/. No grace period (Graceless), numeric owners, no root squash, TCP only,
# NFSv4 only (minor versions 1 and 2). ganesha logs CRIT lines about dbus and rpcbind
# ("Cannot register NFS V4 on TCP") and carries on; neither is needed on loopback.
#
# Needs root (the VFS FSAL uses open_by_handle_at) and the packages nfs-ganesha and
# nfs-ganesha-vfs; `start` installs them with apt-get when ganesha.nfsd is missing.
set -euo pipefail
cmd=${1:-}
PORT=${2:-12049}
DIR=${3:-/var/tmp/bucketfs-ganesha/export}
STATE=$DIR.ganesha

usage() { echo "usage: $0 start|stop|status [PORT [DIR]]" >&2; exit 2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

case $cmd in
start)
  if ! command -v ganesha.nfsd >/dev/null; then
    echo "ganesha.sh: installing nfs-ganesha nfs-ganesha-vfs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nfs-ganesha nfs-ganesha-vfs >/dev/null
  fi
  if listening; then
    echo "ganesha.sh: something already listens on 127.0.0.1:$PORT" >&2
    exit 1
  fi
  plugins=$(dirname "$(dpkg -L nfs-ganesha-vfs 2>/dev/null | grep -m1 'libfsalvfs.so$' || echo /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so)")
  mkdir -p "$DIR" "$STATE/recov"
  cat > "$STATE/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    NFS_Port = $PORT;
    Bind_addr = 127.0.0.1;
    Protocols = 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
    Plugins_Dir = $plugins;
}
NFS_KRB5 { Active_krb5 = false; }
NFSV4 {
    Graceless = true;
    Minor_Versions = 1, 2;
    Only_Numeric_Owners = true;
    RecoveryBackend = fs;
    RecoveryRoot = $STATE/recov;
}
EXPORT {
    Export_Id = 1;
    Path = $DIR;
    Pseudo = /export;
    Protocols = 4;
    Transports = TCP;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
EOF
  ganesha.nfsd -F -f "$STATE/ganesha.conf" -L "$STATE/ganesha.log" -p "$STATE/ganesha.pid" \
      -N NIV_EVENT > "$STATE/stdout.log" 2>&1 &
  echo $! > "$STATE/launcher.pid"
  for _ in $(seq 100); do
    if listening; then
      echo "ganesha.sh: pid $(cat "$STATE/launcher.pid") serving $DIR as /export on 127.0.0.1:$PORT"
      exit 0
    fi
    kill -0 "$(cat "$STATE/launcher.pid")" 2>/dev/null || break
    sleep 0.2
  done
  echo "ganesha.sh: ganesha did not start; see $STATE/ganesha.log" >&2
  tail -5 "$STATE/ganesha.log" >&2 || true
  exit 1 ;;
stop)
  pid=$(cat "$STATE/launcher.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
  fi
  rm -f "$STATE/launcher.pid"
  echo "ganesha.sh: stopped" ;;
status)
  pid=$(cat "$STATE/launcher.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && listening; then
    echo "ganesha.sh: pid $pid on 127.0.0.1:$PORT"
  else
    echo "ganesha.sh: not running"; exit 1
  fi ;;
*) usage ;;
esac
