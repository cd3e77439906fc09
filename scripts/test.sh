#!/usr/bin/env bash
# Every test: the C++ suite (ctest, including the audit cases and the
# install/consumer checks), the same suite under ASan+UBSan, short fuzz runs
# when the harnesses exist, and the Python suite (pytest).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
status=0

echo "== ctest (Release)"
ctest --test-dir build --output-on-failure -j2 || status=1

echo "== ctest (ASan + UBSan)"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DREFPAY_SANITIZE=ON \
  -DREFPAY_BUILD_BENCH=OFF -DREFPAY_BUILD_EXAMPLES=OFF > /dev/null
cmake --build build-asan -j2
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j2 || status=1

if [ -f fuzz/CMakeLists.txt ]; then
  echo "== fuzz (short runs, ASan + UBSan)"
  bash scripts/fuzz.sh "${REFPAY_FUZZ_SECONDS:-30}" || status=1
fi

if [ -f python/pyproject.toml ]; then
  echo "== pytest"
  .venv/bin/python -m pip install -q ./python > /tmp/refpay-pip.log 2>&1 \
    || { cat /tmp/refpay-pip.log; status=1; }
  .venv/bin/python -m pytest python/tests -q -p no:cacheprovider || status=1
fi

if [ "$status" -ne 0 ]; then
  echo "test: FAILED"
else
  echo "test: all suites passed"
fi
exit "$status"
