#!/usr/bin/env bash
# make reliability: the full-size reliability suite (e2e/reliability_test.go)
# against SQLite and a throwaway PostgreSQL, then every fuzz target for a
# short time, ending with a table of what was tried and what was lost.
#   FUZZTIME   per fuzz target (default 5s)
set -euo pipefail
cd "$(dirname "$0")/.."
make build >/dev/null
report=$(mktemp); fuzzlog=$(mktemp); fuzzout=$(mktemp); trap 'rm -f "$report" "$fuzzlog" "$fuzzout"' EXIT
status=0
AS_RELIABILITY_FULL=1 AS_RELIABILITY_REPORT=$report AS_BIN=$PWD/bin ARTIFACTSTORE_TEST_REQUIRE_POSTGRES=1 \
  scripts/with-postgres.sh go test -count=1 -timeout 20m -run Reliability ./e2e || status=1
fuzzstatus=ok
scripts/fuzz.sh "${FUZZTIME:-5s}" >"$fuzzout" 2>"$fuzzlog" || { fuzzstatus=FAILED; status=1; }
targets=$(grep -c '^fuzz: ok ' "$fuzzout" || true)
execs=$(awk '/^fuzz: ok / {s += $NF} END {print s + 0}' "$fuzzout")

sum() { awk -v k="$1" '$1 ~ k {s += $2} END {print s + 0}' "$report"; }
echo
echo "reliability figures (full run; every check also asserts that nothing was lost)"
row() { printf '%-58s %10s\n' "$1" "$2"; }
row figure count
for d in sqlite postgres; do
  name=$([ $d = sqlite ] && echo SQLite || echo PostgreSQL)
  row "SIGKILLs during as-put/as-replay, $name" "$(sum "^kills_${d}\$")"
  row "SIGKILLs during as-retain expire, $name" "$(sum "^kills_expire_${d}\$")"
  row "SIGKILLs during as-gc mark, $name" "$(sum "^kills_gc_mark_${d}\$")"
  row "SIGKILLs during as-gc sweep, $name" "$(sum "^kills_gc_sweep_${d}\$")"
  row "SIGKILLs during as-scrub, $name" "$(sum "^kills_scrub_${d}\$")"
  row "SIGKILLs during as-oci import, $name" "$(sum "^kills_oci_import_${d}\$")"
  row "SIGKILLs of as-serve in a blob upload, $name" "$(sum "^kills_serve_blob_${d}\$")"
  row "SIGKILLs of as-serve in a chunked upload, $name" "$(sum "^kills_serve_chunked_${d}\$")"
  row "SIGKILLs of as-serve in a manifest push, $name" "$(sum "^kills_serve_manifest_${d}\$")"
  row "SIGKILLs during as-put, S3 objects, $name" "$(sum "^kills_s3_put_${d}\$")"
  row "SIGKILLs during as-gc sweep, S3 objects, $name" "$(sum "^kills_s3_sweep_${d}\$")"
  row "SIGKILLs in all, $name" "$(sum "^kills_(.*_)?${d}\$")"
done
row "chunked uploads resumed mid-way after a kill" "$(sum '^serve_chunked_resumed$')"
row "corrupted objects detected" "$(sum '^faults_corrupt_object$')"
row "full disks survived (ENOSPC on a tmpfs root)" "$(sum '^faults_full_disk$')"
row "read-only object roots survived" "$(sum '^faults_read_only_root$')"
row "ingests cut off from PostgreSQL, then rerun" "$(sum '^faults_database_gone$')"
row "as-serve pushes cut off from PostgreSQL, then re-pushed" "$(sum '^faults_database_gone_push$')"
row "as-gc marks cut off from PostgreSQL, then rerun" "$(sum '^faults_database_gone_mark$')"
row "sweeps cut off from S3 (MinIO), then rerun" "$(sum '^faults_s3_gone_sweep$')"
row "as-serve uploads on a full disk (whole, chunked)" "$(sum '^faults_serve_full_disk$')"
row "vanished and slow clients freed (mid-blob, body, headers)" "$(sum '^faults_slow_clients$')"
for t in as-put as-manifest as-manifest_jcs as-events_append as-get as-digest; do
  row "bad inputs refused: $t" "$(sum "^bad_inputs_${t}\$")"
done
row "malformed or unauthorised requests refused: as-serve" "$(sum '^serve_malformed_refused$')"
row "tampered logs caught (first bad seq named)" "$(sum '^tamper_cases$')"
row "concurrent writers (SQLite + PostgreSQL)" "$(sum '^concurrent_writers_')"
row "events they wrote, all tailed exactly once" "$(sum '^concurrent_events_')"
row "load: clients pushing and pulling at once (as-serve)" "$(sum '^load_clients$')"
row "load: requests answered" "$(sum '^load_requests$')"
row "load: images pushed, pulled back byte-identical" "$(sum '^load_images$')"
row "load: request latency p99 (ms)" "$(sum '^load_p99_ms$')"
row "load: as-gc runs beside it (grace 0)" "$(sum '^load_gc_runs$')"
row "load: goroutines before/during/after" "$(sum '^load_goroutines_before$')/$(sum '^load_goroutines_during$')/$(sum '^load_goroutines_after$')"
row "load: resident MiB before/during/after" "$(sum '^load_rss_mib_before$')/$(sum '^load_rss_mib_during$')/$(sum '^load_rss_mib_after$')"
row "fuzz targets run for ${FUZZTIME:-5s} each ($fuzzstatus)" "$targets"
row "fuzz executions" "$execs"
row "objects, rows, blobs or events lost or corrupted" "$([ $status = 0 ] && echo 0 || echo 'see failures')"
if [ "$fuzzstatus" != ok ]; then
  # Last, so that a CI log's tail shows which target failed and why.
  echo
  echo "fuzz failures (last 60 lines of their output):"
  grep -v '^go: downloading' "$fuzzlog" | tail -60
fi
exit $status
