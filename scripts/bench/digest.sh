#!/usr/bin/env bash
# Digest throughput: as-digest (BLAKE3 + SHA-256 in one pass) beside b3sum,
# sha256sum, openssl, b3sum-then-sha256sum and Go's crypto/sha256 alone, on
# the same bytes in the same run (page cache warm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
data=$1 bin=$2
big=$data/big.bin tree=$data/tree
list=$(mktemp); trap 'rm -f "$list"' EXIT
find "$tree" -type f | sort >"$list"
files=$(wc -l <"$list")
tbytes=$(xargs -a "$list" -d '\n' stat -c %s | paste -sd+ | bc)
bbytes=$(stat -c %s "$big")

measure "as-digest"                "echo '$big' | '$bin/as-digest'"
measure "b3sum"                    "b3sum '$big'"
measure "sha256sum"                "sha256sum '$big'"
measure "openssl dgst -sha256"     "openssl dgst -sha256 '$big'"
measure "b3sum then sha256sum"     "b3sum '$big' && sha256sum '$big'"
measure "Go crypto/sha256 alone"   "echo '$big' | '$bin/gosha256'"
table "as-digest, one 1 GiB file" "$bbytes" 1 "as-digest" \
  "as-digest" "b3sum" "sha256sum" "openssl dgst -sha256" "b3sum then sha256sum" "Go crypto/sha256 alone"
echo "as-digest peak RSS on the 1 GiB file: $(peak_rss_mib "'$bin/as-digest' '$big'") MiB"

measure "as-digest (tree)"              "'$bin/as-digest' <'$list'"
measure "b3sum (tree)"                  "xargs -a '$list' -d '\n' b3sum"
measure "sha256sum (tree)"              "xargs -a '$list' -d '\n' sha256sum"
measure "openssl dgst -sha256 (tree)"   "xargs -a '$list' -d '\n' openssl dgst -sha256"
measure "b3sum then sha256sum (tree)"   "xargs -a '$list' -d '\n' b3sum && xargs -a '$list' -d '\n' sha256sum"
measure "Go crypto/sha256 alone (tree)" "'$bin/gosha256' <'$list'"
table "as-digest, tree of $files files" "$tbytes" "$files" "as-digest (tree)" \
  "as-digest (tree)" "b3sum (tree)" "sha256sum (tree)" "openssl dgst -sha256 (tree)" "b3sum then sha256sum (tree)" "Go crypto/sha256 alone (tree)"
