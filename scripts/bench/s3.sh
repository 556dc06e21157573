#!/usr/bin/env bash
# S3 ingest: find | as-digest | as-put --finalize of one big file (default
# 384 MiB, MIB=… to change) into the local backend and into a MinIO bucket on
# this machine, then the Go benchmarks that compare the backend's Put with
# plain SDK uploads of the same bytes. Wall time and peak RSS of as-put
# (GNU time). Needs: go, curl >= 7.75 (--aws-sigv4), /usr/bin/time, and MinIO
# (scripts/install-minio.sh, or $ARTIFACTSTORE_TEST_MINIO).
# Usage: scripts/bench/s3.sh [BIN]   (BIN: the built tools, default ./bin)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-$PWD/bin}
mib=${MIB:-384}
minio=${ARTIFACTSTORE_TEST_MINIO:-$(command -v minio || echo "$HOME/.cache/artifact-store/bin/minio")}
[ -x "$minio" ] || { echo "s3.sh: no MinIO at $minio (run scripts/install-minio.sh)" >&2; exit 1; }
[ -x "$bin/as-put" ] || go build -o "$bin/" ./cmd/...
export PATH=$bin:$PATH

work=$(mktemp -d /tmp/as-s3bench.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret-$RANDOM$RANDOM
MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_BROWSER=off \
  "$minio" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$cport" "$work/minio" >"$work/minio.log" 2>&1 &
pid=$!
ep=http://127.0.0.1:$port
for _ in $(seq 100); do curl -fs "$ep/minio/health/ready" >/dev/null && break; sleep 0.1; done
curl -fs --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -X PUT "$ep/bench" >/dev/null

head -c $((mib << 20)) /dev/urandom > "$work/big.bin"
sync
echo "machine: $(nproc) cores; $mib MiB file; MinIO on 127.0.0.1 (data under /tmp)"
printf '%-8s %10s %10s %12s\n' backend seconds MiB/s "as-put RSS"
run() { # name, then env assignments
  local name=$1; shift
  rm -rf "$work/store"; mkdir -p "$work/store"; sync
  local t0 t1
  t0=$(date +%s.%N)
  env "$@" XDG_DATA_HOME="$work/store" ARTIFACTSTORE_DATABASE_URL= ARTIFACTSTORE_STORAGE_LOCAL_ROOT= \
    bash -o pipefail -c "as-digest '$work/big.bin' | /usr/bin/time -f %M -o '$work/rss' as-put --package bench@$RANDOM --finalize >/dev/null"
  [ "$name" = local ] && sync
  t1=$(date +%s.%N)
  awk -v n="$name" -v a="$t0" -v b="$t1" -v m="$mib" -v r="$(cat "$work/rss")" \
    'BEGIN { s = b - a; printf "%-8s %10.2f %10.1f %9.0f MiB\n", n, s, m / s, r / 1024 }'
}
run local ARTIFACTSTORE_STORAGE_BACKEND=local
run s3 ARTIFACTSTORE_STORAGE_BACKEND=s3 ARTIFACTSTORE_S3_ENDPOINT="$ep" ARTIFACTSTORE_S3_BUCKET=bench \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
echo
echo "backend Put beside plain SDK uploads (go test -bench, MinIO started by the test):"
ARTIFACTSTORE_TEST_MINIO=$minio go test -run '^$' -bench . -benchtime 5x ./pkg/storage/s3 | grep -E '^Benchmark'
