#!/usr/bin/env bash
# Builds the libFuzzer harnesses (build-fuzz/, clang-14, ASan + UBSan) and
# runs each for SECONDS (default 30) on its corpus; fails if any harness
# finds a crash, a leak, a sanitizer report or a broken invariant.
#
#   bash scripts/fuzz.sh          # CI: 30 s per harness, 6 harnesses
#   bash scripts/fuzz.sh 3600     # a long run: an hour per harness
#   FUZZ_HARNESSES="engine case" bash scripts/fuzz.sh 600   # only some
#
# The corpus of each harness is build-fuzz/corpus/<harness>/: generated from
# the audit cases (fuzz/make_corpus.py), grown by every run and kept between
# runs; fuzz/seeds/<harness>/ and fuzz/regressions/<harness>/ are read too.
# A crashing input is written to build-fuzz/crashes/<harness>/; fix the bug
# and keep the input as fuzz/regressions/<harness>/<name>, which
# fuzz_regressions_test replays in the normal build. See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=${1:-30}
harnesses=${FUZZ_HARNESSES:-"money policy_json policy_toml event case engine"}
build=build-fuzz
export CC=${CC_FUZZ:-clang-14} CXX=${CXX_FUZZ:-clang++-14}

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DREFPAY_FUZZ=ON \
  -DREFPAY_BUILD_TESTS=OFF -DREFPAY_BUILD_BENCH=OFF -DREFPAY_BUILD_TOOLS=OFF \
  -DREFPAY_BUILD_EXAMPLES=OFF -DREFPAY_INSTALL=OFF > /dev/null
targets=()
for h in $harnesses; do targets+=("fuzz_$h"); done
cmake --build "$build" -j2 --target "${targets[@]}"

cases=(tests/cases)
[ -d ../shared/cases/public ] && cases+=(../shared/cases/public)
python3 fuzz/make_corpus.py "$build/corpus" "${cases[@]}"

dict_of() {
  case $1 in
    money) echo fuzz/dict/money.dict ;;
    policy_json) echo fuzz/dict/json.dict ;;
    policy_toml) echo fuzz/dict/toml.dict ;;
    event | case) echo fuzz/dict/event.dict ;;
    *) echo "" ;;
  esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for h in $harnesses; do
  corpus="$build/corpus/$h" crashes="$build/crashes/$h" log="$build/logs/$h.log"
  mkdir -p "$corpus" "$crashes" "$(dirname "$log")"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192
        -artifact_prefix="$crashes/" -print_final_stats=1)
  dict=$(dict_of "$h")
  [ -n "$dict" ] && args+=(-dict="$dict")
  seeds=()
  [ -d "fuzz/seeds/$h" ] && seeds+=("fuzz/seeds/$h")
  # Past crashes run first thing, under the sanitizers, every time.
  [ -d "fuzz/regressions/$h" ] && seeds+=("fuzz/regressions/$h")
  printf '== fuzz %s for %ss\n' "$h" "$seconds"
  if "$build/bin/fuzz_$h" "${args[@]}" "$corpus" "${seeds[@]}" > "$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
    summary+=("$h: ${runs:-?} executions, cov ${cov:-?}, corpus $(ls "$corpus" | wc -l)")
  else
    tail -n 40 "$log"
    failed+=("$h")
    summary+=("$h: FAILED (log $log, inputs in $crashes/)")
  fi
done

printf '\n'
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "fuzz.sh: no crashes ($seconds s per harness)"
