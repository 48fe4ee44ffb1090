#!/usr/bin/env bash
# Runs every fuzz target built in BUILD_DIR for SECONDS each, as many at once as there are CPUs
# (FUZZ_JOBS=N to choose), and fails on any finding (crash, sanitizer report, uncaught non-Error
# exception, timeout, memory blow-up).
#
#   fuzz/run_all.sh BUILD_DIR SECONDS [TARGET...]     (default: every BUILD_DIR/fuzz/fuzz_*)
#
# Each target starts from fuzz/corpus/<t>, fuzz/regressions/<t> (minimized crashers from earlier
# findings) and BUILD_DIR/seeds/<t> (fuzz/make_seeds.sh output, when present), copied into a
# scratch folder so the committed corpus is never modified. Findings are kept, with the log, in
# BUILD_DIR/fuzz-findings/<t>/; logs of every run go to BUILD_DIR/fuzz-logs/<t>.log.
set -uo pipefail
[[ $# -ge 2 ]] || { echo "usage: $0 BUILD_DIR SECONDS [TARGET...]" >&2; exit 2; }
BUILD=$(realpath "$1")
SECONDS_EACH=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  targets=()
  for exe in "$BUILD"/fuzz/fuzz_*; do
    [[ -x $exe && -f $exe ]] && targets+=("$(basename "$exe" | sed 's/^fuzz_//')")
  done
fi
((${#targets[@]})) || { echo "run_all: no fuzz targets in $BUILD/fuzz (configure with -DANETRAIN_FUZZ=ON)" >&2; exit 2; }

# Stack traces for UBSan too; libFuzzer sets the rest of ASan's options itself.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

mkdir -p "$BUILD/fuzz-logs"
tmp_base=${TMPDIR:-/tmp}
[[ -w /dev/shm ]] && tmp_base=/dev/shm  # every execution writes its input to a file: keep that in RAM
scratch=$(mktemp -d "$tmp_base/anetrain-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# The targets write each input under here (fuzz_common.h), so even a crashed run leaves nothing behind.
export ANETRAIN_FUZZ_TMP="$scratch"
# One target's run; its report goes to stdout, and a FAILED marker beside its scratch corpus.
run_one() {
  local t=$1
  local exe="$BUILD/fuzz/fuzz_$t"
  [[ -x $exe ]] || { echo "run_all: $exe not built"; touch "$scratch/$t.FAILED"; return; }
  local corpus="$scratch/$t/corpus"
  local artifacts="$BUILD/fuzz-findings/$t"
  local log="$BUILD/fuzz-logs/$t.log"
  rm -rf "$artifacts"  # findings of this run only
  mkdir -p "$corpus" "$artifacts"
  for src in "$HERE/corpus/$t" "$HERE/regressions/$t" "$BUILD/seeds/$t"; do
    [[ -d $src ]] && find "$src" -maxdepth 1 -type f -exec cp {} "$corpus/" \;
  done
  chmod -R u+w "$corpus"
  echo "run_all: fuzz_$t for ${SECONDS_EACH}s over $(find "$corpus" -type f | wc -l) seeds"
  local dict=()
  [[ -f $HERE/dicts/$t.dict ]] && dict=(-dict="$HERE/dicts/$t.dict")
  "$exe" "$corpus" "${dict[@]}" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" >"$log" 2>&1 &
  local pid=$!
  wait $pid
  local rc=$?
  # libomp (linked through anetrain_core) registers itself in /dev/shm and removes that file only
  # at a normal exit; a crashed run leaves it behind.
  rm -f "/dev/shm/__KMP_REGISTERED_LIB_${pid}_0"
  # The last status line: "#N DONE cov: C ft: F corp: ... exec/s: E ...".
  local status
  status=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  if [[ $rc -ne 0 ]]; then
    touch "$scratch/$t.FAILED"
    echo "run_all: FINDING in fuzz_$t (exit $rc); log $log"
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|terminate called|  what\(\)|ALARM|.*out-of-memory|.*deadly signal)' "$log" | head -n 8 | sed 's/^/    /'
    grep -E 'Test unit written to|^artifact_prefix' "$log" | sed 's/^/    /'
    for a in "$artifacts"/{crash,leak,timeout,oom,slow-unit}-*; do
      [[ -f $a ]] && echo "    crash input: $a (replay: $exe $a)"
    done
    cp "$log" "$artifacts/"
  else
    echo "run_all: fuzz_$t ok: $status"
  fi
}

# As many targets at once as there are CPUs (FUZZ_JOBS to choose): each is one single-threaded
# process, and 15 s each one after another was two minutes of a 2-core CI machine's time.
jobs_max=${FUZZ_JOBS:-$(nproc)}
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs_max)); do wait -n || true; done
  run_one "$t" >"$scratch/$t.report" 2>&1 &
done
wait
failed=()
for t in "${targets[@]}"; do
  cat "$scratch/$t.report"
  [[ -f $scratch/$t.FAILED ]] && failed+=("$t")
done

if ((${#failed[@]})); then
  echo "run_all: findings or failures in: ${failed[*]}" >&2
  exit 1
fi
echo "run_all: all ${#targets[@]} targets ran ${SECONDS_EACH}s without findings"
