#!/usr/bin/env bash
# Runs fuzz targets built by `make fuzz-build`.
#   fuzz/run.sh smoke SECONDS [TARGET…]  each target for SECONDS over a scratch copy of its corpus
#                                          (make fuzz-smoke, part of make test): the repo is not touched
#   fuzz/run.sh long SECONDS [TARGET…]   each target for SECONDS (or FUZZ_RUNS executions, if
#                                          sooner); inputs that reach new code are merged into
#                                          fuzz/corpus/<target>, the run is logged in
#                                          fuzz/executions.tsv (make fuzz)
# No TARGET: all of fuzz/fuzz_targets/. FUZZ_JOBS (default 1) runs that many targets at once.
# A crash, a panic, a timeout (10 s per input) or running out of memory (2 GB) fails the run; the
# input is kept in fuzz/artifacts/<target>/ and libFuzzer prints how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:?smoke or long}
seconds=${2:?seconds per target}
shift 2
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
bin=target/x86_64-unknown-linux-gnu/release
work=target/fuzz-work/$mode
mkdir -p "$work" artifacts

run_one() {
  local t=$1 log="$work/$1.log" scratch="$work/$1.corpus"
  local extra=()
  [ -f "dicts/$t.dict" ] && extra+=(-dict="dicts/$t.dict")
  [ -n "${FUZZ_RUNS:-}" ] && extra+=(-runs="$FUZZ_RUNS")
  rm -rf "$scratch" && mkdir -p "$scratch" "artifacts/$t"
  if ! "$bin/$t" "$scratch" "corpus/$t" "${extra[@]}" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
      >"$log" 2>&1; then
    echo "FAILED $t (log: fuzz/$log):"
    grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -20
    return 1
  fi
  local runs
  runs=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
  local took
  took=$(awk '/stat::slowest_unit_time_sec/ { next } /Done [0-9]+ runs in/ { print $(NF-1) }' "$log")
  printf '%-24s %12s runs in %s s, 0 crashes\n' "$t" "$runs" "${took:-$seconds}"
  if [ "$mode" = long ]; then
    "$bin/$t" -merge=1 "corpus/$t" "$scratch" >"$log.merge" 2>&1
    printf '%s\t%s\t%s\t%s\t0\n' "$(date -u +%F)" "$t" "$runs" "${took:-$seconds}" >>executions.tsv
  fi
}
export -f run_one
export mode seconds bin work FUZZ_RUNS
printf '%s\n' "${targets[@]}" | xargs -P "${FUZZ_JOBS:-1}" -I{} bash -c 'run_one {}'
