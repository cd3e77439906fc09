#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for refpay (idempotent): Debian packages
# for the C++ build, a .venv at the repository root with the Python tools,
# and the default Release build in build/. Safe to run again: it installs
# only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

debian_packages=(
  build-essential libabsl-dev libboost-dev libgtest-dev libgmock-dev libbenchmark-dev
  libtomlplusplus-dev nlohmann-json3-dev libcsv-dev tzdata
  clang-14 libclang-rt-14-dev clang-format clang-tidy
)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg -s "$package" > /dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" > /dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
python_tools=(pip cmake ninja scikit-build-core pybind11 numpy pandas pyarrow pytest nbclient
              nbformat ipykernel matplotlib hypothesis tqdm)
if ! .venv/bin/python -c "import numpy, pandas, pyarrow, pytest, nbclient, ipykernel, matplotlib, \
hypothesis, scikit_build_core, pybind11" > /dev/null 2>&1; then
  echo "setup: installing Python tools into .venv"
  .venv/bin/python -m pip install -q --upgrade "${python_tools[@]}"
fi
export PATH="$PWD/.venv/bin:$PATH"

echo "setup: building build/ (Release)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j2
