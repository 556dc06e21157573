#!/usr/bin/env bash
# make reliability: the full-size reliability suite (e2e/reliability_test.go)
# against SQLite and a throwaway PostgreSQL, then every fuzz target for a
# short time, ending with a table of what was tried and what was lost.
#   FUZZTIME   per fuzz target (default 5s)
set -euo pipefail
cd "$(dirname "$0")/.."
make build >/dev/null
report=$(mktemp); fuzzlog=$(mktemp); trap 'rm -f "$report" "$fuzzlog"' EXIT
status=0
AS_RELIABILITY_FULL=1 AS_RELIABILITY_REPORT=$report AS_BIN=$PWD/bin ARTIFACTSTORE_TEST_REQUIRE_POSTGRES=1 \
  scripts/with-postgres.sh go test -count=1 -timeout 20m -run Reliability ./e2e || status=1
fuzzstatus=ok
scripts/fuzz.sh "${FUZZTIME:-5s}" >/dev/null 2>"$fuzzlog" || { fuzzstatus=FAILED; status=1; }
targets=$(grep -rho '^func Fuzz[A-Za-z0-9_]*' --include=*_test.go . | sort -u | wc -l)

sum() { awk -v k="$1" '$1 ~ k {s += $2} END {print s + 0}' "$report"; }
echo
echo "reliability figures (full run; every check also asserts that nothing was lost)"
printf '%-46s %10s\n' figure count
printf '%-46s %10s\n' "SIGKILLs during as-put/as-replay, SQLite" "$(sum '^kills_sqlite$')"
printf '%-46s %10s\n' "SIGKILLs during as-put/as-replay, PostgreSQL" "$(sum '^kills_postgres$')"
printf '%-46s %10s\n' "corrupted objects detected" "$(sum '^faults_corrupt_object$')"
printf '%-46s %10s\n' "full disks survived (ENOSPC on a tmpfs root)" "$(sum '^faults_full_disk$')"
printf '%-46s %10s\n' "read-only object roots survived" "$(sum '^faults_read_only_root$')"
printf '%-46s %10s\n' "ingests cut off from PostgreSQL, then rerun" "$(sum '^faults_database_gone$')"
for t in as-put as-manifest as-manifest_jcs as-events_append as-get as-digest; do
  printf '%-46s %10s\n' "bad inputs refused: $t" "$(sum "^bad_inputs_${t}\$")"
done
printf '%-46s %10s\n' "tampered logs caught (first bad seq named)" "$(sum '^tamper_cases$')"
printf '%-46s %10s\n' "concurrent writers (SQLite + PostgreSQL)" "$(sum '^concurrent_writers_')"
printf '%-46s %10s\n' "events they wrote, all tailed exactly once" "$(sum '^concurrent_events_')"
printf '%-46s %10s\n' "fuzz targets run for ${FUZZTIME:-5s} each ($fuzzstatus)" "$targets"
printf '%-46s %10s\n' "objects, rows or events lost or corrupted" "$([ $status = 0 ] && echo 0 || echo 'see failures')"
if [ "$fuzzstatus" != ok ]; then
  # Last, so that a CI log's tail shows which target failed and why.
  echo
  echo "fuzz failures (last 60 lines of their output):"
  grep -v '^go: downloading' "$fuzzlog" | tail -60
fi
exit $status
