#!/usr/bin/env bash
# The main job on the bundled sample: set up and build (scripts/setup.sh),
# generate the deterministic sample (10,000 members, 100,000 orders, seed 7)
# if it is not there yet, settle it under the course-with-team-leader policy
# (examples/policies/course_leader.toml) and print the summary. The ledger,
# balances, flags and rejected events are written to out/demo/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup.sh

sample=examples/data/sample
if [ ! -s "$sample/events.jsonl" ] || [ ! -s "$sample/README.txt" ]; then
  echo "demo: generating the sample in $sample/"
  python3 examples/data/generate.py --members 10000 --orders 100000 --seed 7 --out "$sample"
fi
as_of=$(sed -n 's/^as_of: //p' "$sample/README.txt")
if [ -z "$as_of" ]; then
  echo "demo: no 'as_of:' line in $sample/README.txt; delete $sample/ and run again" >&2
  exit 1
fi

refpay=build/bin/refpay
if [ ! -x "$refpay" ]; then
  echo "demo: $refpay was not built (see scripts/setup.sh's output)" >&2
  exit 1
fi

echo
echo "demo: $refpay settle --policy examples/policies/course_leader.toml" \
  "--events $sample/events.jsonl --as-of $as_of --out out/demo"
echo
"$refpay" settle --policy examples/policies/course_leader.toml \
  --events "$sample/events.jsonl" --as-of "$as_of" --out out/demo
echo
echo "demo: ledger.csv, balances.csv, flags.csv, errors.csv and summary.txt are in out/demo/"
