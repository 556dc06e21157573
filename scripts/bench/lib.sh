# Shared by the scripts/bench/*.sh sections. Source it; needs bash.
# measure LABEL CMD...  runs CMD (a shell string) RUNS times after one
# warm-up run and records the best wall time in seconds in TIMES[LABEL].
RUNS=${RUNS:-3}
declare -A TIMES
now() { date +%s.%N; }
measure() {
  local label=$1 cmd=$2 best="" t0 t1 d
  bash -c "$cmd" >/dev/null 2>&1 || { echo "bench: '$label' failed: $cmd" >&2; bash -c "$cmd" >/dev/null; return 1; }
  for _ in $(seq "$RUNS"); do
    t0=$(now); bash -c "$cmd" >/dev/null 2>&1; t1=$(now)
    d=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$d < $best" | bc -l)" = 1 ]; then best=$d; fi
  done
  TIMES[$label]=$best
}
# table TITLE BYTES FILES BASE LABEL...  prints seconds, MB/s, files/s and
# for each label its time divided by BASE's: above 1 means BASE (ours) is
# that many times faster, below 1 that the peer is.
table() {
  local title=$1 bytes=$2 files=$3 base=$4; shift 4
  printf '\n%s  (%s bytes, %s files, best of %s runs)\n' "$title" "$bytes" "$files" "$RUNS"
  printf '%-34s %9s %10s %11s %14s\n' command seconds MB/s files/s "time ÷ ours"
  for l in "$@"; do
    local t=${TIMES[$l]}
    printf '%-34s %9.3f %10.1f %11.0f %13.2fx\n' "$l" "$t" "$(echo "$bytes / $t / 1000000" | bc -l)" \
      "$(echo "$files / $t" | bc -l)" "$(echo "$t / ${TIMES[$base]}" | bc -l)"
  done
}
# peak_rss_mib CMD  prints the peak resident memory of CMD in MiB (GNU time).
peak_rss_mib() {
  /usr/bin/time -f %M bash -c "exec $1" 2>&1 >/dev/null | tail -1 | awk '{printf "%.1f", $1/1024}'
}
# dataset DATA SET  sets src, files, bytes and root (the --root for as-put)
# for SET "tree" (the 20,000-file tree) or "big" (the 1 GiB file).
dataset() {
  if [ "$2" = big ]; then
    src=$1/big.bin files=1 bytes=$(stat -c %s "$src") root=$1
  else
    src=$1/tree files=$(find "$src" -type f | wc -l) bytes=$(du -sb --apparent-size "$src" | cut -f1) root=$src
  fi
}
