#!/usr/bin/env bash
# The main job on the bundled sample: set up, generate the deterministic
# sample (10,000 members, 100,000 orders) if needed, settle it under the
# course-with-team-leader scheme, and print the summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
sample=examples/data/sample
if [ ! -f "$sample/events.jsonl" ]; then
  python3 examples/data/generate.py --members 10000 --orders 100000 --seed 7 --out "$sample"
fi
as_of=$(sed -n 's/^as_of: //p' "$sample/README.txt")
build/bin/refpay settle --policy examples/policies/course_leader.toml \
  --events "$sample/events.jsonl" --as-of "$as_of" --out out/demo
echo
echo "demo: ledger, balances, flags and errors are in out/demo/"
