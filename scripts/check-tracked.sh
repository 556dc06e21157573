#!/usr/bin/env bash
# check-tracked.sh — fails when a tracked file outside testdata/ is an
# executable binary (ELF, or anything `file` calls an executable or shared
# library) or larger than 1 MiB: build output and databases are never
# committed (make build writes to ./bin/, which is ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r -d '' f; do
  case "$f" in testdata/*|*/testdata/*) continue ;; esac
  [ -f "$f" ] || continue
  size=$(stat -c %s "$f")
  if [ "$size" -gt 1048576 ]; then
    echo "lint: $f is $size bytes (over 1 MiB): build output or data does not belong in git" >&2; bad=1
  fi
  if [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' ')" = "7f454c46" ]; then
    echo "lint: $f is an ELF binary: remove it from git (make build writes to ./bin/)" >&2; bad=1
  fi
done < <(git ls-files -z)
exit $bad
