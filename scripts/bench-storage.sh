#!/bin/sh
# bench-storage.sh — ingest into the local backend beside cp + sync, in one run.
#
# Generates a 1 GiB file and a 20,000-file tree (log-uniform 1 KiB–1 MiB) in
# a temporary directory, then, ROUNDS times each, alternately times
#   cp FILE + sync          vs  IngestStream of FILE  (durable: fsync per object)
#   cp -r TREE + sync       vs  IngestBatch of the tree in batches of 1,024, AS_BENCH_JOBS at once
# and prints medians as MB/s, files/s and ingest/cp throughput ratios, plus
# the ingest's peak RSS. Needs only Go, POSIX sh, coreutils and awk.
#
#   BENCH_DIR   where to work (default: a new directory under $TMPDIR or /tmp);
#               it must be on the filesystem you want to measure
#   ROUNDS      measurements per contender (default 3)
#   TREE_FILES  files in the tree (default 20000)
#   FILE_MIB    size of the big file in MiB (default 1024)
#   KEEP=1      keep the working directory
set -eu

ROUNDS=${ROUNDS:-3}
TREE_FILES=${TREE_FILES:-20000}
FILE_MIB=${FILE_MIB:-1024}
here=$(cd "$(dirname "$0")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/bench-storage.XXXXXX")}
mkdir -p "$work"
cleanup() { [ "${KEEP:-}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT INT TERM

echo "bench-storage: building the test binary" >&2
(cd "$here" && go test -c -o "$work/dataplane.test" ./pkg/dataplane)
bin=$work/dataplane.test

echo "bench-storage: generating ${FILE_MIB} MiB file and ${TREE_FILES}-file tree in $work" >&2
head -c "$((FILE_MIB * 1048576))" /dev/urandom >"$work/big"
AS_BENCH_GEN="$work/tree" AS_BENCH_GEN_FILES="$TREE_FILES" "$bin" -test.run '^TestBenchGenTree$' >"$work/gen.out"
tree_bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' "$work/gen.out")
file_bytes=$((FILE_MIB * 1048576))
sync

now() { date +%s.%N; }
# elapsed START: seconds since START
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.3f", e - s }'; }

fresh() { rm -rf "$work/dst"; sync; }

time_cp() { # time_cp SRC: cp (-r for a tree) then sync
	fresh
	t0=$(now)
	cp -r "$1" "$work/dst"
	sync
	elapsed "$t0"
}

time_ingest() { # time_ingest SRC: prints seconds; remembers peak RSS
	fresh
	out=$(AS_BENCH_SRC="$1" AS_BENCH_DST="$work/dst" "$bin" -test.run '^TestBenchIngest$')
	case $out in *seconds=*) ;; *) echo "bench-storage: ingest failed: $out" >&2; exit 1 ;; esac
	echo "$out" | sed -n 's/.*maxrss_kib=\([0-9]*\).*/\1/p' | head -1 >>"$work/rss"
	echo "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' | head -1
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

: >"$work/rss"
cp_file="" in_file="" cp_tree="" in_tree=""
i=0
while [ "$i" -lt "$ROUNDS" ]; do
	i=$((i + 1))
	echo "bench-storage: round $i/$ROUNDS" >&2
	cp_file="$cp_file $(time_cp "$work/big")"
	in_file="$in_file $(time_ingest "$work/big")"
	cp_tree="$cp_tree $(time_cp "$work/tree")"
	in_tree="$in_tree $(time_ingest "$work/tree")"
	echo "  file: cp+sync $cp_file | ingest $in_file" >&2
	echo "  tree: cp+sync $cp_tree | ingest $in_tree" >&2
done
fresh
peak_rss=$(sort -n "$work/rss" | tail -1)

awk -v fb="$file_bytes" -v tb="$tree_bytes" -v tf="$TREE_FILES" \
	-v cf="$(echo "$cp_file" | median)" -v if_="$(echo "$in_file" | median)" \
	-v ct="$(echo "$cp_tree" | median)" -v it="$(echo "$in_tree" | median)" \
	-v rss="$peak_rss" -v rounds="$ROUNDS" 'BEGIN {
	printf "\nlocal backend ingest vs cp + sync (median of %d rounds; durable: the file fsynced, the tree in IngestBatch batches of 1,024 with one syncfs pair each)\n\n", rounds
	printf "| workload | contender | seconds | MB/s | files/s | ingest/cp |\n|---|---|---:|---:|---:|---:|\n"
	printf "| 1 file, %.0f MiB | cp + sync | %.2f | %.0f | %.1f | |\n", fb / 1048576, cf, fb / cf / 1e6, 1 / cf
	printf "| 1 file, %.0f MiB | ingest | %.2f | %.0f | %.1f | %.2fx |\n", fb / 1048576, if_, fb / if_ / 1e6, 1 / if_, cf / if_
	printf "| tree, %d files, %.0f MiB | cp -r + sync | %.2f | %.0f | %.0f | |\n", tf, tb / 1048576, ct, tb / ct / 1e6, tf / ct
	printf "| tree, %d files, %.0f MiB | ingest | %.2f | %.0f | %.0f | %.2fx |\n", tf, tb / 1048576, it, tb / it / 1e6, tf / it, ct / it
	printf "\npeak RSS of ingest: %.1f MiB (goal < 128 MiB); goals: file >= 0.80x, tree >= 1.00x\n", rss / 1024
}'
