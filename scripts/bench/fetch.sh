#!/usr/bin/env bash
# Fetch throughput: as-get --package REF --into DIR of the 20,000-file tree
# and of the 1 GiB file (SQLite + local objects), beside cp -r of the same
# bytes on the same disk, in the same run, each followed by sync.
# Usage: fetch.sh DATA BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
data=$1 bin=$2
work=$(mktemp -d /tmp/as-fetch.XXXXXX); trap 'rm -rf "$work"' EXIT
export PATH=$bin:$PATH
u="sqlite:$work/s.db"
for set in tree big; do
  dataset "$data" $set
  find "$src" -type f | as-digest | as-put --db "$u" --storage-root "$work/objects" --root "$root" --package fetch-$set@1 --finalize >/dev/null
  measure "as-get --into ($set)" "rm -rf '$work/out' && sync && as-get --db '$u' --storage-root '$work/objects' --package fetch-$set@1 --into '$work/out' 2>/dev/null && sync"
  measure "cp -r + sync ($set)" "rm -rf '$work/cp' && sync && cp -r '$src' '$work/cp' && sync"
  table "fetch: as-get --package REF --into DIR, $set" "$bytes" "$files" "as-get --into ($set)" \
    "as-get --into ($set)" "cp -r + sync ($set)"
done
