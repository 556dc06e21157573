#!/usr/bin/env bash
# ingest-verify.sh DIR NAME@VERSION [OUT]
#
# The CI recipe: ingest DIR as a package, finalise it, fetch every file back
# into OUT (default: a temporary directory) and verify what came back with
# the independent tools: sha256sum -c always, b3sum -c when installed. Prints
# the manifest digest on stdout. Uses the configured store (ARTIFACTSTORE_*)
# or the embedded default. Tools are taken from PATH (make build puts them
# in ./bin; this script adds it).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR NAME@VERSION [OUT]" >&2; exit 2; }
dir=${1%/} pkg=$2
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$here/bin:$PATH
if [ -n "${3:-}" ]; then
  out=$3
else # our own temporary directory: removed when the script ends
  out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out"

# 1. Ingest and finalise; keep the manifest.
find "$dir" -type f | as-digest | as-put --package "$pkg" --root "$dir" --finalize >"$out/.manifest.cbor"
digest=$(as-manifest digest <"$out/.manifest.cbor")

# 2. Fetch every file back (verified while written), and list the digests
#    the manifest declares for the independent check.
as-get --package "$pkg" --into "$out"
as-manifest jcs <"$out/.manifest.cbor" >"$out/.manifest.json"
python3 - "$out/.manifest.json" "$out" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
with open(sys.argv[2] + "/.sha256sums", "w") as s, open(sys.argv[2] + "/.b3sums", "w") as b:
    for f in m["files"]:
        print(f["sha256"].split(":")[1], f["path"], sep="  ", file=s)
        print(f["content_address"].split(":")[1], f["path"], sep="  ", file=b)
PY

# 3. Verify with tools that share no code with ours.
(cd "$out" && sha256sum --quiet -c .sha256sums) >&2
if command -v b3sum >/dev/null; then (cd "$out" && b3sum --quiet -c .b3sums) >&2; fi
echo "$digest"
