#!/usr/bin/env bash
# Issue 20's table, regenerated: the ingest figures of this build beside the
# build the issue measured (OLD_REV, built here into a scratch directory)
# and beside cp -r, cp + sync and restic backup, every figure measured in
# this run, alternating old and new. Page cache warm; load average printed.
# Usage: issue20.sh DATA BIN   (PostgreSQL rows need
# ARTIFACTSTORE_TEST_DATABASE_URL, as scripts/with-postgres.sh sets;
# TMPFS (default /dev/shm) holds the tmpfs runs; SCALE_FILES (default
# 200000) sizes the large tree; FULL_OBJECTS (default 1000000) is how many
# objects the store that the tree then goes into holds: the large tree's,
# then more packages; OLD_REV= skips the old build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
data=$1 bin=$2
old_rev=${OLD_REV-a66970f}
tmpfs=${TMPFS:-/dev/shm}
scale=${SCALE_FILES:-200000}
full_objects=${FULL_OBJECTS:-1000000}
work=$(mktemp -d /tmp/as-issue20.XXXXXX) mem=$(mktemp -d "$tmpfs/as-issue20.XXXXXX")
trap 'rm -rf "$work" "$mem"' EXIT
export RESTIC_PASSWORD=bench
pgurl=${ARTIFACTSTORE_TEST_DATABASE_URL:-}

bins=(new) ; declare -A BIN=([new]=$bin)
if [ -n "$old_rev" ]; then
  mkdir -p "$work/src" "$work/old"
  git archive "$old_rev" | tar -x -C "$work/src"
  (cd "$work/src" && go build -o "$work/old/" ./cmd/...)
  bins+=(old); BIN[old]=$work/old
fi
cp -r "$data/tree" "$mem/tree"
files=$(find "$mem/tree" -type f | wc -l)
bytes=$(du -sb --apparent-size "$mem/tree" | cut -f1)

newdb() { # newdb BIN DIALECT DIR: a fresh migrated database URL
  if [ "$2" = sqlite ]; then echo "sqlite:$3/s$RANDOM$RANDOM.db"; return; fi
  local name=b_$RANDOM$RANDOM
  psql -q "$pgurl" -c "CREATE DATABASE $name" >/dev/null
  local u=${pgurl%/*}/$name?sslmode=disable
  "$1/as-events" migrate --db "$u" >/dev/null 2>&1
  echo "$u"
}
# put_cmd BIN SRC DIR DIALECT [DBURL]: find | as-digest | as-put --finalize into DIR
put_cmd() {
  local b=$1 src=$2 dir=$3 u=${5:-}
  [ -n "$u" ] || u=$(newdb "$b" "$4" "$dir")
  echo "rm -rf '$dir/objects' && find '$src' -type f | '$b/as-digest' | '$b/as-put' --db '$u' --storage-root '$dir/objects' --package bench@\$RANDOM\$RANDOM --finalize >/dev/null"
}
load() { cut -d' ' -f1 /proc/loadavg; }

# tmpfs: CPU only
for v in "${bins[@]}"; do measure "tmpfs $v" "$(put_cmd "${BIN[$v]}" "$mem/tree" "$mem" sqlite)"; done
l_tmpfs=$(load)
measure "tmpfs cp" "rm -rf '$mem/cp' && cp -r '$mem/tree' '$mem/cp'"
measure "tmpfs restic" "rm -rf '$mem/restic' && restic init -q --repo '$mem/restic' && restic backup -q --repo '$mem/restic' '$mem/tree'"
rm -rf "$mem/cp" "$mem/restic"
# the disk, durable (sync before and after each)
for v in "${bins[@]}"; do measure "disk $v" "sync && $(put_cmd "${BIN[$v]}" "$data/tree" "$work" sqlite) && sync"; done
l_disk=$(load)
measure "disk cp" "rm -rf '$work/cp' && sync && cp -r '$data/tree' '$work/cp' && sync"
for v in "${bins[@]}"; do measure "big $v" "sync && $(put_cmd "${BIN[$v]}" "$data/big.bin" "$work" sqlite) && sync"; done
measure "big cp" "rm -f '$work/big' && sync && cp '$data/big.bin' '$work/big' && sync"
rm -rf "$work/cp" "$work/big" "$work/objects"
# PostgreSQL beside SQLite, objects on tmpfs
if [ -n "$pgurl" ]; then
  for v in "${bins[@]}"; do
    measure "pg $v" "$(put_cmd "${BIN[$v]}" "$mem/tree" "$mem" postgres)"
  done
fi
l_pg=$(load)
# peak memory of as-put alone
find "$mem/tree" -type f | "$bin/as-digest" >"$mem/recs"
rss() { rm -rf "$mem/r" && mkdir "$mem/r" && /usr/bin/time -f %M "$1/as-put" --db "sqlite:$mem/r/s.db" --storage-root "$mem/r/objects" --package m@1 --finalize <"$2" 2>&1 >/dev/null | tail -1 | awk '{printf "%.0f", $1/1024}'; }
declare -A RSS; for v in "${bins[@]}"; do RSS[$v]=$(rss "${BIN[$v]}" "$mem/recs"); done
# scale: a tree of SCALE_FILES small files (per-file cost and peak memory),
# then the 20,000-file tree into the store that holds it vs an empty one
# smalltree DIR N FIRST: N small files, each starting with its number
# (FIRST, FIRST+1, ...), so that trees of different numbers share no object
smalltree() {
python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
d, n, first = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]); rng = random.Random(20 + first)
pool = rng.randbytes(1 << 16)
for i in range(first, first + n):
    sub = os.path.join(d, "d%03d" % (i % 500), "e%02d" % (i % 7)); os.makedirs(sub, exist_ok=True)
    k = rng.randint(1 << 10, 8 << 10); off = rng.randint(0, len(pool) - k)
    with open(os.path.join(sub, "f%07d.bin" % i), "wb") as f: f.write(i.to_bytes(8, "little") + pool[off + 8:off + k])
PY
}
smalltree "$mem/big-tree" "$scale" 0
find "$mem/big-tree" -type f | "$bin/as-digest" >"$mem/big-recs"
sfiles=$(find "$mem/big-tree" -type f | wc -l)
rm -rf "$mem/s" && mkdir "$mem/s"
t0=$(now); rss_scale=$(/usr/bin/time -f %M "$bin/as-put" --db "sqlite:$mem/s/s.db" --storage-root "$mem/s/objects" --package scale@1 --finalize <"$mem/big-recs" 2>&1 >/dev/null | tail -1 | awk '{printf "%.0f", $1/1024}'); t1=$(now)
t_scale=$(echo "$t1 - $t0" | bc -l)
rm -rf "$mem/big-tree" "$mem/big-recs"
# fill the store up to FULL_OBJECTS objects, in packages of at most
# 200,000 files of their own
have=$sfiles k=1
while [ "$have" -lt "$full_objects" ]; do
  n=$(( full_objects - have )); [ "$n" -le 200000 ] || n=200000
  smalltree "$mem/fill" "$n" "$have"
  find "$mem/fill" -type f | "$bin/as-digest" | "$bin/as-put" --db "sqlite:$mem/s/s.db" --storage-root "$mem/s/objects" --package fill@$k --finalize >/dev/null
  rm -rf "$mem/fill"; have=$((have + n)) k=$((k + 1))
done
full_events=$("$bin/as-events" head --db "sqlite:$mem/s/s.db" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
# Each run copies its database in (the full one or an empty migrated one)
# and stores into a fresh object directory, so neither dedupes.
cp "$mem/s/s.db" "$mem/full.db"; rm -rf "$mem/s"
"$bin/as-events" migrate --db "sqlite:$mem/empty.db" >/dev/null
into() { echo "rm -rf '$mem/i' && mkdir '$mem/i' && cp '$1' '$mem/i/s.db' && '$bin/as-put' --db 'sqlite:$mem/i/s.db' --storage-root '$mem/i/objects' --package t@1 --finalize <'$mem/recs' >/dev/null"; }
measure "into full" "$(into "$mem/full.db")"
measure "into empty" "$(into "$mem/empty.db")"
# the copy of each database is part of those runs: measured alone, taken off
copy() { echo "rm -rf '$mem/i' && mkdir '$mem/i' && cp '$1' '$mem/i/s.db'"; }
measure "copy full" "$(copy "$mem/full.db")"
measure "copy empty" "$(copy "$mem/empty.db")"
TIMES[into full]=$(echo "${TIMES[into full]} - ${TIMES[copy full]}" | bc -l)
TIMES[into empty]=$(echo "${TIMES[into empty]} - ${TIMES[copy empty]}" | bc -l)
measure "small alone" "rm -rf '$mem/e' && mkdir '$mem/e' && '$bin/as-put' --db 'sqlite:$mem/e/s.db' --storage-root '$mem/e/objects' --package t@1 --finalize <'$mem/recs' >/dev/null"
l_scale=$(load)
# as-get of one file and a package lookup (as-ls REF), 20 runs each, in
# the full store and in the empty one, after the tree went into each
relpath=$(cd "$mem/tree" && find . -type f | sort | sed -n '1s|^\./||p')
for k in full empty; do
  rm -rf "$mem/g$k" && mkdir "$mem/g$k" && cp "$mem/$k.db" "$mem/g$k/s.db"
  "$bin/as-put" --db "sqlite:$mem/g$k/s.db" --storage-root "$mem/g$k/objects" --package t@1 --finalize <"$mem/recs" >/dev/null
  g="--db sqlite:$mem/g$k/s.db --storage-root $mem/g$k/objects"
  measure "get $k" "for i in \$(seq 20); do '$bin/as-get' $g --package t@1 '$relpath' >/dev/null; done"
  measure "ls $k" "for i in \$(seq 20); do '$bin/as-ls' $g t@1 >/dev/null; done"
done
# verify and tail over the large log too, where a process's start-up
# (about 30 ms) does not hide the rate
measure "verify big" "'$bin/as-events' verify --db sqlite:$mem/full.db"
measure "tail big" "'$bin/as-events' tail --since 0 --db sqlite:$mem/full.db"
rm -rf "$mem/gfull" "$mem/gempty" "$mem/full.db" "$mem/empty.db"

# the log tools, per build, on the log of the tree (SQLite on tmpfs, then
# PostgreSQL): each build replays a log it wrote itself (a newer schema is
# refused by an older build)
declare -A EV
for v in "${bins[@]}"; do
  b=${BIN[$v]} d=$mem/log-$v
  rm -rf "$d" && mkdir "$d"
  find "$mem/tree" -type f | "$b/as-digest" | "$b/as-put" --db "sqlite:$d/s.db" --storage-root "$d/objects" --package log@1 --finalize >/dev/null
  u="--db sqlite:$d/s.db --storage-root $d/objects"
  EV[$v]=$("$b/as-events" head --db "sqlite:$d/s.db" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
  measure "replay $v" "'$b/as-replay' $u"
  measure "check $v" "'$b/as-replay' --check $u"
  measure "verify $v" "'$b/as-events' verify --db sqlite:$d/s.db"
  measure "tail $v" "'$b/as-events' tail --since 0 --db sqlite:$d/s.db"
  if [ -n "$pgurl" ]; then
    pu=$(newdb "$b" postgres "$d")
    find "$mem/tree" -type f | "$b/as-digest" | "$b/as-put" --db "$pu" --storage-root "$d/pobjects" --package log@1 --finalize >/dev/null
    measure "pgreplay $v" "'$b/as-replay' --db '$pu' --storage-root '$d/pobjects'"
  fi
  rm -rf "$d"
done
l_log=$(load)

T() { printf '%.2f s' "${TIMES[$1]}"; }
R() { printf '%.2f×' "$(echo "${TIMES[$1]} / ${TIMES[$2]}" | bc -l)"; }
O() { if [ -n "$old_rev" ]; then T "$1"; else echo "—"; fi; }
echo
echo "issue 20, regenerated ($files files, $bytes bytes; best of $RUNS; old = $old_rev, new = this build):"
printf '| %s | %s | %s | %s | %s | %s |\n' work "issue (old, then)" "old, this run" "new, this run" "peer, this run" "new ÷ peer (goal)"
echo "|---|---|---|---|---|---|"
printf '| tree on tmpfs, load %s | 6.8 s | %s | %s | cp -r %s; restic %s | %s of cp (≤ 3×); restic ÷ new %s (≥ 2×) |\n' \
  "$l_tmpfs" "$(O 'tmpfs old')" "$(T 'tmpfs new')" "$(T 'tmpfs cp')" "$(T 'tmpfs restic')" "$(R 'tmpfs new' 'tmpfs cp')" "$(R 'tmpfs restic' 'tmpfs new')"
printf '| tree on the disk, durable, load %s | 11.8–28 s | %s | %s | cp -r + sync %s | speed %s of cp (≥ 0.5×) |\n' \
  "$l_disk" "$(O 'disk old')" "$(T 'disk new')" "$(T 'disk cp')" "$(R 'disk cp' 'disk new')"
printf '| 1 GiB file on the disk, durable | — | %s | %s | cp + sync %s | speed %s of cp (≥ 0.5×) |\n' \
  "$(O 'big old')" "$(T 'big new')" "$(T 'big cp')" "$(R 'big cp' 'big new')"
if [ -n "$pgurl" ]; then
  printf '| tree into PostgreSQL (objects on tmpfs), load %s | 32–37 s | %s | %s | SQLite %s | %s (≤ 1.5×) |\n' \
    "$l_pg" "$(O 'pg old')" "$(T 'pg new')" "$(T 'tmpfs new')" "$(R 'pg new' 'tmpfs new')"
fi
printf '| as-put peak RSS, %s files | — | %s MiB | %s MiB | — | (< 128 MiB) |\n' "$files" "${RSS[old]:-—}" "${RSS[new]}"
printf '| as-put of %s files, load %s | — | — | %.2f s, %s MiB | %s files %s | per file %.2f× (≤ 1.2×; < 128 MiB) |\n' \
  "$sfiles" "$l_scale" "$t_scale" "$rss_scale" "$files" "$(T 'small alone')" "$(echo "$t_scale / $sfiles / (${TIMES[small alone]} / $files)" | bc -l)"
printf '| tree into a store of %s events / %s objects | — | — | %s | empty store %s | %s (≤ 1.2×) |\n' \
  "$full_events" "$have" "$(T 'into full')" "$(T 'into empty')" "$(R 'into full' 'into empty')"
# events/s: E events in T seconds
eps() { printf '%.0fk/s' "$(echo "${EV[$2]} / ${TIMES[$1]} / 1000" | bc -l)"; }
EO() { if [ -n "$old_rev" ]; then eps "$1 old" old; else echo "—"; fi; }
printf '| as-get of one file ×20, store of %s objects | — | — | %s | empty store %s | %s (≤ 1.2×) |\n' \
  "$have" "$(T 'get full')" "$(T 'get empty')" "$(R 'get full' 'get empty')"
printf '| package lookup (as-ls REF) ×20, same stores | — | — | %s | empty store %s | %s (≤ 1.2×) |\n' \
  "$(T 'ls full')" "$(T 'ls empty')" "$(R 'ls full' 'ls empty')"
printf '| as-replay of %s events, SQLite on tmpfs, load %s | 8.3k/s | %s | %s | — | (≥ 200k/s) |\n' "${EV[new]}" "$l_log" "$(EO replay)" "$(eps 'replay new' new)"
printf '| as-replay --check | — | %s | %s | replay %s | %.2f× of replay (≤ 1.5×) |\n' "$(EO check)" "$(eps 'check new' new)" "$(eps 'replay new' new)" "$(echo "${TIMES[check new]} / ${TIMES[replay new]}" | bc -l)"
EV[big]=$full_events
printf '| as-events verify | 57k/s | %s | %s; %s over %s events | — | (≥ 500k/s) |\n' "$(EO verify)" "$(eps 'verify new' new)" "$(eps 'verify big' big)" "$full_events"
printf '| as-events tail --since 0 | 77k/s | %s | %s; %s over %s events | — | (≥ 300k/s) |\n' "$(EO tail)" "$(eps 'tail new' new)" "$(eps 'tail big' big)" "$full_events"
if [ -n "$pgurl" ]; then
  printf '| as-replay on PostgreSQL | 0.8–1.1k/s | %s | %s | — | (≥ 100k/s) |\n' "$(EO pgreplay)" "$(eps 'pgreplay new' new)"
fi

