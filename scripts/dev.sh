#!/usr/bin/env bash
# make dev — build as-serve and serve the OCI registry (/v2/), /health and
# /metrics on 127.0.0.1:8000 (ADDR=… to change) with the embedded default: SQLite + local objects under
# $XDG_DATA_HOME/artifact-store, created on first use. No configuration is
# needed; ARTIFACTSTORE_* variables (see .env.example) are honoured when set.
# Ctrl-C stops the server gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin}
addr=${ADDR:-127.0.0.1:8000}
version=$(git describe --tags --always --dirty 2>/dev/null || echo devel)
mkdir -p "$bin"
go build -ldflags "-X github.com/artifactstore/artifact-store/internal/cli.version=$version" \
  -o "$bin/as-serve" ./cmd/as-serve
echo "dev: serving http://$addr/v2/, /health and /metrics (try: curl -s http://$addr/health; oras push --plain-http $addr/app:1.0 FILE); Ctrl-C to stop" >&2
exec "$bin/as-serve" --addr "$addr" "$@"
