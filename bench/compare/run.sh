#!/usr/bin/env bash
# bench/compare/run.sh --size small|standard|large [run.py options]
# Builds refpay_settle_columns (Release) in $REFPAY_BENCH_BUILD (default
# build/) and runs bench/compare/run.py with the repository's .venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${REFPAY_BENCH_BUILD:-build}
case $build in /*) ;; *) build=$root/$build ;; esac
python=${PYTHON:-$root/.venv/bin/python}
if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DREFPAY_BUILD_TESTS=OFF -DREFPAY_BUILD_EXAMPLES=OFF
fi
cmake --build "$build" --target refpay_settle_columns
REFPAY_SETTLE_COLUMNS=$build/bin/refpay_settle_columns exec "$python" "$root/bench/compare/run.py" "$@"
