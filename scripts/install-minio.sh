#!/usr/bin/env bash
# Installs the MinIO server that the S3 tests start (pkg/storage/s3/s3test)
# into ~/.cache/artifact-store/bin/minio (or $1), built from the Go module
# proxy. It is a test server only: nothing links against it (AGPL-3.0).
# Building takes a few minutes the first time; later runs are instant.
set -euo pipefail
version=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
dir=${1:-${HOME}/.cache/artifact-store/bin}
if [ -x "$dir/minio" ] && [ "$(go version -m "$dir/minio" 2>/dev/null | awk '$1=="mod"{print $3}')" = "$version" ]; then
  echo "minio $version already in $dir"
  exit 0
fi
mkdir -p "$dir"
echo "building minio $version into $dir (a few minutes)" >&2
GOFLAGS=-mod=mod GOBIN="$dir" go install "github.com/minio/minio@$version"
"$dir/minio" --version | head -1
