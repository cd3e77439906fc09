#!/usr/bin/env bash
# Sets up a machine for refpay, idempotently (Debian 12; root, or sudo):
#   1. Debian packages for the C++ build (apt-get runs only if one is missing);
#   2. a Python virtual environment in .venv/ at the repository root, with
#      the Python tools (pip runs only if one is missing);
#   3. the default build: Release, Ninja, in build/.
# cmake and ninja are taken from PATH when present, else from .venv/bin.
# Run it from anywhere; running it again only rebuilds what changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

say() { echo "setup: $*"; }

# Runs a command with its output kept in a log, shown only if it fails.
quietly() {
  local log
  log=$(mktemp)
  if "$@" > "$log" 2>&1; then
    rm -f "$log"
  else
    local status=$?
    cat "$log" >&2
    rm -f "$log"
    say "failed ($status): $*" >&2
    return "$status"
  fi
}

# --- 1. Debian packages ------------------------------------------------------
debian_packages=(
  build-essential        # gcc/g++ 12 with ASan/UBSan runtimes
  libabsl-dev            # absl::Status, time, flat_hash_map
  libboost-dev           # Boost headers (multiprecision)
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libtomlplusplus-dev nlohmann-json3-dev
  libcsv-dev             # RFC 4180 reader for `refpay settle --members/--orders`
  tzdata                 # Asia/Shanghai and every other policy time zone
  clang-format clang-tidy
  clang-14 libclang-rt-14-dev  # libFuzzer + sanitizer runtimes for scripts/fuzz.sh
  python3 python3-venv   # python3 -m venv (ensurepip)
)
installed() {
  dpkg -s "$1" 2> /dev/null | grep -q '^Status: install ok installed'
}
missing=()
for package in "${debian_packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  say "installing Debian packages: ${missing[*]}"
  quietly "${sudo[@]}" apt-get update -q
  quietly "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  say "Debian packages present"
fi

# --- 2. Python virtual environment --------------------------------------------
if ! .venv/bin/python -c '' > /dev/null 2>&1; then
  say "creating .venv"
  rm -rf .venv
  python3 -m venv .venv
fi
# pip name:import name (or bin/NAME for a tool that is a program).
python_packages=(
  numpy:numpy pandas:pandas pyarrow:pyarrow pytest:pytest hypothesis:hypothesis
  nbclient:nbclient ipykernel:ipykernel matplotlib:matplotlib
  scikit-build-core:scikit_build_core pybind11:pybind11
  cmake:bin/cmake ninja:bin/ninja
  mypy:mypy  # python/tests/test_package.py checks _core.pyi with mypy.stubtest
  duckdb:duckdb dask:dask distributed:distributed  # bench/compare, examples/dask_sweep.py and their tests
)
wanted=()
for entry in "${python_packages[@]}"; do
  if [[ ${entry#*:} == bin/* && ! -x .venv/${entry#*:} ]]; then wanted+=("${entry%%:*}"); fi
done
# One interpreter start checks every module without importing it.
# shellcheck disable=SC2207
wanted+=($(.venv/bin/python - "${python_packages[@]}" <<'PY'
import importlib.util, sys
for entry in sys.argv[1:]:
    name, probe = entry.split(":", 1)
    if not probe.startswith("bin/") and importlib.util.find_spec(probe) is None:
        print(name)
PY
))
if ((${#wanted[@]})); then
  say "installing into .venv: ${wanted[*]}"
  .venv/bin/python -m pip install -q --disable-pip-version-check "${wanted[@]}"
else
  say "Python packages present in .venv"
fi

# --- 3. Default build -----------------------------------------------------------
# The .venv tools go last on PATH: they fill in a missing cmake or ninja only.
export PATH="$PATH:$root/.venv/bin"
for tool in cmake ninja; do
  "$tool" --version > /dev/null 2>&1 || { say "no working $tool on PATH" >&2; exit 1; }
done

if [ ! -f CMakeLists.txt ]; then
  say "no CMakeLists.txt yet: skipping the build (packages and .venv are ready)"
  exit 0
fi

# A cache made by another generator or for another checkout cannot be reused.
if [ -f build/CMakeCache.txt ]; then
  generator=$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' build/CMakeCache.txt)
  home=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' build/CMakeCache.txt)
  if [ "$generator" != Ninja ] || [ "$home" != "$root" ]; then
    say "build/ was configured by '$generator' for '$home': starting it afresh"
    rm -rf build/CMakeCache.txt build/CMakeFiles
  fi
fi

say "configuring build/ (Release, $(cmake --version | head -n 1))"
quietly cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_EXPORT_COMPILE_COMMANDS=ON
say "building build/"
cmake --build build -j2
say "done: build/bin/ has the refpay tools"
