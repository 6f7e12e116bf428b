#!/usr/bin/env bash
# cluster.sh — a production-shaped bucketfs on one machine, for trying failover: a 3-node
# metadata cluster (127.0.0.1:7001-7003), two gateways (127.0.0.1:2051, 2052) and haproxy in
# TCP mode in front of them on ${NFS_PORT:-2049}, standing in for a cloud network load balancer.
#
#   S3_ENDPOINT=http://... BUCKET=name AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
#     deploy/cluster.sh
#
# The bucket must exist with versioning enabled. Without S3_ENDPOINT a local moto server is
# started on 127.0.0.1:9000 (objects in memory, gone when this script stops). State is kept in
# ${BUCKETFS_DATA:-./bucketfs-cluster}; Ctrl-C stops everything. Needs haproxy
# (apt-get install haproxy) and a built binary (BIN=..., default target/release/bucketfs).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/bucketfs}
[ -x "$BIN" ] || { echo "cluster: no $BIN; build it: cargo build --release -p bucketfs" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "cluster: haproxy not found: apt-get install haproxy" >&2; exit 1; }
DATA=${BUCKETFS_DATA:-$PWD/bucketfs-cluster}
NFS_PORT=${NFS_PORT:-2049}
mkdir -p "$DATA"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo "cluster: stopped"; }
trap cleanup EXIT INT TERM

if [ -z "${S3_ENDPOINT:-}" ]; then
  MOTO=${BUCKETFS_MOTO_SERVER:-$DATA/venv/bin/moto_server}
  if [ ! -x "$MOTO" ]; then
    python3 -m venv "$DATA/venv" && "$DATA/venv/bin/pip" install --quiet 'moto[server]'
  fi
  "$MOTO" -H 127.0.0.1 -p 9000 >"$DATA/moto.log" 2>&1 & pids+=($!)
  S3_ENDPOINT=http://127.0.0.1:9000 BUCKET=${BUCKET:-bucketfs}
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null && break; sleep 0.2; done
  # moto's virtual environment has boto3: use it to create the versioned bucket.
  "$(dirname "$MOTO")/python" - "$BUCKET" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", aws_access_key_id="local",
                  aws_secret_access_key="local", region_name="us-east-1")
s3.create_bucket(Bucket=sys.argv[1])
s3.put_bucket_versioning(Bucket=sys.argv[1], VersioningConfiguration={"Status": "Enabled"})
PY
fi
: "${BUCKET:?set BUCKET to the bucket to serve}"

MEMBERS=1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
for id in 1 2 3; do
  extra=(); [ "$id" = 1 ] && extra=(--init "$MEMBERS")
  "$BIN" meta serve --id "$id" --listen "127.0.0.1:700$id" --data-dir "$DATA/meta-$id" \
    --metrics-listen "127.0.0.1:910$id" "${extra[@]}" 2>>"$DATA/meta-$id.log" & pids+=($!)
done
for _ in $(seq 1 100); do
  "$BIN" meta status --cluster 127.0.0.1:7001 2>/dev/null | grep -q leader && break; sleep 0.2
done
for n in 1 2; do
  "$BIN" gateway serve --listen "127.0.0.1:205$n" --meta 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 \
    --bucket "$BUCKET" --s3-endpoint "$S3_ENDPOINT" --cache-dir "$DATA/gateway-$n-cache" \
    --metrics-listen "127.0.0.1:920$n" 2>>"$DATA/gateway-$n.log" & pids+=($!)
done
cat >"$DATA/haproxy.cfg" <<CFG
global
  maxconn 4096
defaults
  mode tcp
  timeout connect 2s
  timeout client 1h
  timeout server 1h
frontend nfs
  bind 127.0.0.1:$NFS_PORT
  default_backend gateways
backend gateways
  balance roundrobin
  server gw1 127.0.0.1:2051 check inter 1s fall 2 rise 2
  server gw2 127.0.0.1:2052 check inter 1s fall 2 rise 2
CFG
haproxy -f "$DATA/haproxy.cfg" -db >"$DATA/haproxy.log" 2>&1 & pids+=($!)
sleep 1
cat <<MSG
bucketfs cluster: 3 metadata nodes, 2 gateways behind haproxy on 127.0.0.1:$NFS_PORT
  mount:   sudo mount -t nfs4 -o vers=4.1,port=$NFS_PORT 127.0.0.1:/ /mnt/bucketfs
  status:  $BIN meta status --cluster 127.0.0.1:7001
  kill a gateway to see the client carry on: kill -9 \$(pgrep -f 'listen 127.0.0.1:2051')
  logs:    $DATA/*.log
Ctrl-C stops everything.
MSG
wait
