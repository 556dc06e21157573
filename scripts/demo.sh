#!/usr/bin/env bash
# make demo — the README's main job on the embedded default, no configuration.
# Digests a directory (DIR, default testdata/fixture) with as-digest and shows
# the file records, then checks them against b3sum/sha256sum when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DIR:-testdata/fixture}
bin=${BIN:-bin}
[ -d "$dir" ] || { echo "demo: $dir is not a directory" >&2; exit 1; }

echo "== find $dir -type f | as-digest --json"
find "$dir" -type f | sort | "$bin/as-digest" --json

if command -v b3sum >/dev/null; then
  echo "== cross-check with b3sum and sha256sum"
  find "$dir" -type f | sort | "$bin/as-digest" --json |
    python3 -c '
import json, subprocess, sys
bad = 0
for line in sys.stdin:
    r = json.loads(line)
    b3 = subprocess.run(["b3sum", "--no-names", r["path"]], capture_output=True, text=True, check=True).stdout.split()[0]
    s2 = subprocess.run(["sha256sum", r["path"]], capture_output=True, text=True, check=True).stdout.split()[0]
    ok = r["content_address"] == "blake3:" + b3 and r["sha256"] == "sha256:" + s2
    bad += not ok
    print(("ok  " if ok else "BAD ") + r["path"])
sys.exit(1 if bad else 0)'
fi
echo "== demo finished"
