#!/usr/bin/env bash
# Every test refpay has, the way CI runs them (.ci/run calls this):
#   1. set-up and the default Release build (scripts/setup.sh);
#   2. ctest on build/: gtests, audit cases (ours and ../shared/cases/public),
#      the CLI end to end, the install/consumer checks;
#   3. the same suite built with ASan + UBSan, in build-asan/;
#   4. the libFuzzer harnesses, REFPAY_FUZZ_SECONDS (30) each (scripts/fuzz.sh);
#   5. the Python package: pip install ./python, then pytest python/tests.
# Every suite runs even if an earlier one failed; the exit status is non-zero
# if any failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh
# Same tool choice as setup.sh: PATH first, .venv/bin fills in.
export PATH="$PATH:$PWD/.venv/bin"

failed=()
step() { printf '\n== %s\n' "$*"; }

step "ctest (build/, Release)"
ctest --test-dir build --output-on-failure -j2 || failed+=("ctest Release")

step "ctest (build-asan/, Debug + ASan + UBSan)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Benchmarks are not built here: under sanitizers they would measure nothing.
if cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DREFPAY_SANITIZE=ON \
     -DREFPAY_BUILD_BENCH=OFF > /dev/null \
   && cmake --build build-asan -j2; then
  ctest --test-dir build-asan --output-on-failure -j2 || failed+=("ctest ASan+UBSan")
else
  failed+=("ASan+UBSan build")
fi

if [ -f fuzz/CMakeLists.txt ]; then
  step "fuzz (build-fuzz/, clang-14 libFuzzer + ASan + UBSan, ${REFPAY_FUZZ_SECONDS:-30} s per harness)"
  bash scripts/fuzz.sh "${REFPAY_FUZZ_SECONDS:-30}" || failed+=("fuzz")
fi

if [ -f python/pyproject.toml ]; then
  step "pip install ./python"
  log=$(mktemp)
  if .venv/bin/python -m pip install --disable-pip-version-check ./python > "$log" 2>&1; then
    tail -n 1 "$log"
    if [ -d python/tests ]; then
      step "pytest python/tests"
      # Exit status 5 (no tests collected) is a failure like any other here.
      .venv/bin/python -m pytest python/tests -p no:cacheprovider || failed+=("pytest")
    else
      echo "no python/tests: pytest skipped"
    fi
  else
    cat "$log"
    failed+=("pip install ./python")
  fi
  rm -f "$log"
else
  step "python: no python/pyproject.toml, skipped"
fi

echo
if ((${#failed[@]})); then
  echo "test.sh: FAILED: $(IFS=,; echo "${failed[*]}" | sed 's/,/, /g')"
  exit 1
fi
echo "test.sh: every suite passed"
