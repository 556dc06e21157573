#!/usr/bin/env bash
# OCI artifacts: as-oci export of the 20,000-file tree and of the 1 GiB file
# into a fresh layout beside cp -r of the same bytes, and as-oci import of
# that layout beside as-put of the same files (SQLite + local objects, each
# followed by sync), in the same run.
# Usage: oci.sh DATA BIN
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
data=$1 bin=$2
work=$(mktemp -d /tmp/as-oci.XXXXXX); trap 'rm -rf "$work"' EXIT
export PATH=$bin:$PATH
u="sqlite:$work/s.db"
for set in tree big; do
  dataset "$data" $set
  find "$src" -type f | as-digest | as-put --db "$u" --storage-root "$work/objects" --root "$root" --package oci-$set@1 --finalize >/dev/null
  as-oci export --db "$u" --storage-root "$work/objects" oci-$set@1 "$work/keep-$set" 2>/dev/null
  measure "as-oci export ($set)" "rm -rf '$work/lay' && sync && as-oci export --db '$u' --storage-root '$work/objects' oci-$set@1 '$work/lay' && sync"
  measure "cp -r + sync ($set)" "rm -rf '$work/cp' && sync && cp -r '$src' '$work/cp' && sync"
  table "oci: as-oci export REF DIR, $set" "$bytes" "$files" "as-oci export ($set)" \
    "as-oci export ($set)" "cp -r + sync ($set)"
  measure "as-oci import ($set)" "rm -rf '$work/o2' '$work/i.db' && sync && as-oci import --db 'sqlite:$work/i.db' --storage-root '$work/o2' --package imp@1 '$work/keep-$set' && sync"
  measure "as-put ($set)" "rm -rf '$work/o3' '$work/p.db' && sync && find '$src' -type f | as-digest | as-put --db 'sqlite:$work/p.db' --storage-root '$work/o3' --root '$root' --package put@1 --finalize && sync"
  table "oci: as-oci import LAYOUT --package, $set" "$bytes" "$files" "as-oci import ($set)" \
    "as-oci import ($set)" "as-put ($set)"
done
