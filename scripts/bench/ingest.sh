#!/usr/bin/env bash
# Ingest throughput: find | as-digest | as-put --finalize of the 20,000-file
# tree and of the 1 GiB file, on SQLite and on PostgreSQL, beside cp -r + sync
# and restic backup into a fresh local repository, on the same data in the
# same run (a sync before each measurement), then as-replay's events/s.
# Usage: ingest.sh DATA BIN   (PostgreSQL from ARTIFACTSTORE_TEST_DATABASE_URL,
# which scripts/with-postgres.sh sets; skipped if unset)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
data=$1 bin=$2
work=$(mktemp -d /tmp/as-ingest.XXXXXX); trap 'rm -rf "$work"' EXIT
export PATH=$bin:$PATH RESTIC_PASSWORD=bench
tfiles=$(find "$data/tree" -type f | wc -l)
tbytes=$(du -sb --apparent-size "$data/tree" | cut -f1)
bbytes=$(stat -c %s "$data/big.bin")

pgurl=${ARTIFACTSTORE_TEST_DATABASE_URL:-}
newdb() { # prints a fresh database URL for dialect $1
  if [ "$1" = sqlite ]; then echo "sqlite:$work/s$RANDOM$RANDOM.db"; return; fi
  local name=bench_$RANDOM$RANDOM
  psql -q "$pgurl" -c "CREATE DATABASE $name" >/dev/null
  local u=${pgurl%/*}/$name?sslmode=disable
  as-events migrate --db "$u" >/dev/null 2>&1
  echo "$u"
}
# run_put SRC DIALECT: one fresh store, durable ingest of SRC
put_cmd() {
  local src=$1 dialect=$2 u
  u=$(newdb "$dialect")
  echo "rm -rf '$work/objects' && sync && find '$src' -type f | as-digest | as-put --db '$u' --storage-root '$work/objects' --package bench@\$RANDOM\$RANDOM --finalize >/dev/null"
}
cp_cmd()     { echo "rm -rf '$work/cp' && sync && cp -r '$1' '$work/cp' && sync"; }
restic_cmd() { echo "rm -rf '$work/restic' && restic init -q --repo '$work/restic' && sync && restic backup -q --repo '$work/restic' '$1' && sync"; }

dialects=(sqlite)
[ -n "$pgurl" ] && dialects+=(postgres)

for set in tree big; do
  src=$data/tree; bytes=$tbytes; files=$tfiles
  [ $set = big ] && { src=$data/big.bin; bytes=$bbytes; files=1; }
  labels=()
  for d in "${dialects[@]}"; do
    measure "as-put ($set, $d)" "$(put_cmd "$src" "$d")"; labels+=("as-put ($set, $d)")
  done
  measure "cp -r + sync ($set)" "$(cp_cmd "$src")"
  measure "restic backup ($set)" "$(restic_cmd "$src")"
  table "ingest: find | as-digest | as-put --finalize, $set" "$bytes" "$files" "as-put ($set, sqlite)" \
    "${labels[@]}" "cp -r + sync ($set)" "restic backup ($set)"
done

# Replay: a log of many events (the tree's ingest), rebuilt from scratch.
u=$(newdb sqlite)
find "$data/tree" -type f | as-digest | as-put --db "$u" --storage-root "$work/objects" --package replay@1 --finalize >/dev/null
events=$(as-events head --db "$u" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["seq"])')
measure "as-replay (sqlite)" "as-replay --db '$u' --storage-root '$work/objects'"
printf '\nas-replay on SQLite: %s events in %.3f s = %.0f events/s\n' "$events" "${TIMES[as-replay (sqlite)]}" \
  "$(echo "$events / ${TIMES[as-replay (sqlite)]}" | bc -l)"
