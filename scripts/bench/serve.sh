#!/usr/bin/env bash
# as-serve beside Debian's docker-registry (CNCF Distribution 2.8, filesystem
# driver), both started here on loopback with their data on the same disk:
#   - oras push and pull of the 1 GiB file and of a 2,000-file ORAS artifact
#     (fresh, empty registries for every run; pulls go to tmpfs);
#   - 50 concurrent GETs of a 1 MiB blob (ociload get: p50/p99, MB/s), and the
#     same file from a plain http.FileServer (ociload files);
#   - the server's peak memory while 50 uploads of 16 MiB run at once.
# as-serve computes BLAKE3 and SHA-256 of every blob and commits it durably
# (fsync, SQLite synchronous=FULL); docker-registry does neither.
# Usage: serve.sh DATA BIN     (needs docker-registry, oras, curl)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/lib.sh"
data=$1 bin=$2
export PATH=$bin:$HOME/.cache/artifact-store/bin:$PATH
for t in docker-registry oras curl; do
  command -v $t >/dev/null || { echo "serve bench skipped: $t is missing (apt-get install docker-registry curl; scripts/install-oci-tools.sh)"; exit 0; }
done
work=$(mktemp -d /tmp/as-serve-bench.XXXXXX)
out=$(mktemp -d /dev/shm/as-serve-pull.XXXXXX)
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); }
trap 'stop_all; rm -rf "$work" "$out"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() { for _ in $(seq 200); do curl -s -o /dev/null "http://$1/v2/" && return 0; sleep 0.05; done; echo "bench: $1 did not start" >&2; return 1; }

# start_all: empty stores for both servers; sets ours, reg, ours_pid, reg_pid.
start_all() {
  stop_all
  rm -rf "$work/as" "$work/reg" && mkdir -p "$work/as" "$work/reg"
  ours=127.0.0.1:$(free_port) reg=127.0.0.1:$(free_port)
  as-serve --addr "$ours" --db "sqlite:$work/as/s.db" --storage-root "$work/as/objects" --log-level error >"$work/as.log" 2>&1 &
  ours_pid=$!; pids+=("$ours_pid")
  cat >"$work/reg.yml" <<EOF
version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: $work/reg}
  delete: {enabled: true}
http: {addr: $reg}
EOF
  docker-registry serve "$work/reg.yml" >"$work/reg.log" 2>&1 &
  reg_pid=$!; pids+=("$reg_pid")
  wait_up "$ours" && wait_up "$reg"
}

# timed LABEL CMD: runs CMD once and keeps the best time in TIMES[LABEL].
timed() {
  local t0 t1 d
  t0=$(now); bash -c "$2" >/dev/null 2>"$work/cmd.err" || { echo "bench: '$1' failed: $2" >&2; cat "$work/cmd.err" >&2; return 1; }; t1=$(now)
  d=$(echo "$t1 - $t0" | bc -l)
  if [ -z "${TIMES[$1]:-}" ] || [ "$(echo "$d < ${TIMES[$1]}" | bc -l)" = 1 ]; then TIMES[$1]=$d; fi
}

# warm: both servers' stored bytes into the page cache, so a pull measures the
# server, not the disk. as-serve writes large objects with O_DIRECT (they are
# not left in the cache by the push, as docker-registry's are); without this
# its pull right after the push would read the disk and the other's memory.
warm() { find "$work/as" "$work/reg" -type f -exec cat {} + >/dev/null; }

# The ORAS artifact: the first 2,000 files of the tree, each a titled layer.
mkdir -p "$work/art"
(cd "$data/tree" && find . -type f | sort | awk "NR <= 2000" | cut -c3- >"$work/art/list")
art_bytes=$(cd "$data/tree" && tr '\n' '\0' <"$work/art/list" | du -cb --apparent-size --files0-from=- | tail -1 | cut -f1)
big_bytes=$(stat -c %s "$data/big.bin")

for r in $(seq "$RUNS"); do
  start_all
  # Alternate which server goes first, so neither always meets a warmer cache.
  if [ $((r % 2)) = 1 ]; then order="as reg"; else order="reg as"; fi
  for s in $order; do
    if [ $s = as ]; then a=$ours n=as-serve; else a=$reg n=docker-registry; fi
    timed "oras push 1 GiB: $n" "cd '$data' && oras push --plain-http $a/big:1 big.bin"
    warm; rm -rf "$out/p"; timed "oras pull 1 GiB: $n" "oras pull --plain-http -o '$out/p' $a/big:1"
    timed "oras push 2,000 files: $n" "cd '$data/tree' && oras push --plain-http $a/tree:1 \$(cat '$work/art/list')"
    warm; rm -rf "$out/p"; timed "oras pull 2,000 files: $n" "oras pull --plain-http -o '$out/p' $a/tree:1"
    rm -rf "$out/p"
  done
done
table "as-serve vs docker-registry: oras push, 1 GiB blob" "$big_bytes" 1 "oras push 1 GiB: as-serve" \
  "oras push 1 GiB: as-serve" "oras push 1 GiB: docker-registry"
table "as-serve vs docker-registry: oras pull, 1 GiB blob" "$big_bytes" 1 "oras pull 1 GiB: as-serve" \
  "oras pull 1 GiB: as-serve" "oras pull 1 GiB: docker-registry"
table "as-serve vs docker-registry: oras push, 2,000-file artifact" "$art_bytes" 2000 "oras push 2,000 files: as-serve" \
  "oras push 2,000 files: as-serve" "oras push 2,000 files: docker-registry"
table "as-serve vs docker-registry: oras pull, 2,000-file artifact" "$art_bytes" 2000 "oras pull 2,000 files: as-serve" \
  "oras pull 2,000 files: as-serve" "oras pull 2,000 files: docker-registry"

# 50 concurrent pulls of one 1 MiB blob, and the same file from http.FileServer.
start_all
mkdir -p "$work/files" && head -c 1048576 /dev/urandom >"$work/files/1m.bin"
d=sha256:$(sha256sum "$work/files/1m.bin" | cut -d' ' -f1)
(cd "$work/files" && oras push --plain-http "$ours/load:1" 1m.bin >/dev/null && oras push --plain-http "$reg/load:1" 1m.bin >/dev/null)
fsa=127.0.0.1:$(free_port)
ociload files -addr "$fsa" "$work/files" & pids+=("$!")
for _ in $(seq 100); do curl -s -o /dev/null "http://$fsa/1m.bin" && break; sleep 0.05; done
printf '\n50 concurrent GETs of a 1 MiB blob (%s requests each, best of %s runs)\n' "${LOAD_N:-4000}" "$RUNS"
printf '%-26s %9s %9s %9s %13s\n' server MB/s p50/ms p99/ms "MB/s ÷ ours"
declare -A MBPS P50 P99
for r in $(seq "$RUNS"); do
  for s in as-serve docker-registry http.FileServer; do
    case $s in
      as-serve) u=http://$ours/v2/load/blobs/$d ;;
      docker-registry) u=http://$reg/v2/load/blobs/$d ;;
      *) u=http://$fsa/1m.bin ;;
    esac
    line=$(ociload get -c 50 -n "${LOAD_N:-4000}" "$u")
    m=$(sed 's/.*MBps=\([0-9.]*\).*/\1/' <<<"$line")
    if [ -z "${MBPS[$s]:-}" ] || [ "$(echo "$m > ${MBPS[$s]}" | bc -l)" = 1 ]; then
      MBPS[$s]=$m P50[$s]=$(sed 's/.*p50ms=\([0-9.]*\).*/\1/' <<<"$line") P99[$s]=$(sed 's/.*p99ms=\([0-9.]*\).*/\1/' <<<"$line")
    fi
  done
done
for s in as-serve docker-registry http.FileServer; do
  printf '%-26s %9.1f %9.2f %9.2f %12.2fx\n' "$s" "${MBPS[$s]}" "${P50[$s]}" "${P99[$s]}" "$(echo "${MBPS[$s]} / ${MBPS[as-serve]}" | bc -l)"
done

# Peak memory of each server while 50 uploads of 16 MiB stream in at once.
rss() { awk -v k="$2:" '$1 == k {printf "%.1f", $2/1024}' "/proc/$1/status"; }
printf '\nserver memory, 50 parallel uploads of 16 MiB (ociload push)\n'
printf '%-26s %12s %12s %9s\n' server "RSS before" "peak RSS" seconds
for s in as-serve docker-registry; do
  if [ $s = as-serve ]; then a=$ours p=$ours_pid; else a=$reg p=$reg_pid; fi
  before=$(rss "$p" VmRSS)
  line=$(ociload push -c 50 -size 16777216 "http://$a" mem)
  printf '%-26s %9s MiB %8s MiB %9s\n' "$s" "$before" "$(rss "$p" VmHWM)" "$(sed 's/.*seconds=\([0-9.]*\).*/\1/' <<<"$line")"
done
