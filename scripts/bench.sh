#!/usr/bin/env bash
# make bench: generates (once) the data set in $BENCH_DATA (default
# /tmp/artifact-store-bench), then runs each section's table. Every peer is
# measured in the same run on the same bytes; the tables report ratios.
# Needs: b3sum, openssl, coreutils, bc, GNU time, python3, restic (Debian packages);
# the as-serve section also docker-registry, curl and oras (scripts/install-oci-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
data=${BENCH_DATA:-/tmp/artifact-store-bench}
for t in b3sum openssl bc python3 /usr/bin/time restic; do
  command -v "$t" >/dev/null || { echo "bench: $t is missing (apt-get install b3sum openssl bc python3 time restic)" >&2; exit 1; }
done
go build -o bin/ ./internal/cmd/gosha256 ./internal/cmd/ociload
python3 scripts/bench/gen-data.py "$data"
sync
echo "machine: $(nproc) cores, $(uname -m), $(go version | cut -d' ' -f3)"
scripts/bench/digest.sh "$data" "$PWD/bin"
echo
echo "event log (go test -bench, SQLite and a throwaway PostgreSQL):"
scripts/with-postgres.sh go test -run '^$' -bench . -benchtime 2s ./pkg/events | grep -E '^Benchmark|^ok'
echo
scripts/with-postgres.sh scripts/bench/ingest.sh "$data" "$PWD/bin"
echo
scripts/with-postgres.sh scripts/bench/issue20.sh "$data" "$PWD/bin"
echo
scripts/bench/fetch.sh "$data" "$PWD/bin"
echo
scripts/bench/oci.sh "$data" "$PWD/bin"
echo
scripts/bench/serve.sh "$data" "$PWD/bin"
echo
echo "storage: the data plane alone into the local backend, beside cp + sync (scripts/bench-storage.sh):"
ROUNDS=${STORAGE_ROUNDS:-1} scripts/bench-storage.sh
echo
if [ -x "${HOME}/.cache/artifact-store/bin/minio" ]; then
  echo "S3 backend (MinIO on this machine) beside the local backend:"
  scripts/bench/s3.sh "$PWD/bin"
else
  echo "S3 bench skipped: run scripts/install-minio.sh first"
fi
