#!/usr/bin/env bash
# End-to-end checks of the refpay command-line tool on small fixtures.
# usage: cli_test.sh REFPAY_BINARY TESTS_DIR WORK_DIR
set -euo pipefail
refpay=$1 tests=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_line() { grep -qxF -- "$2" "$1" || { cat "$1" >&2; fail "$1 lacks line: $2"; }; }

# settle from JSONL: the bad line (a float amount) is reported with its line
# number and skipped; the rest is applied.
"$refpay" settle --policy "$tests/data/small_policy.toml" --events "$tests/data/small_events.jsonl" \
  --as-of 2026-03-20T10:00:00+08:00 --out "$work/jsonl" > "$work/jsonl.stdout" 2> "$work/jsonl.stderr"
grep -q "small_events.jsonl:7: bad_amount" "$work/jsonl.stderr" || fail "bad line not reported"
expect_line "$work/jsonl/balances.csv" "A,pending,10.00"
expect_line "$work/jsonl/balances.csv" "A,available,30.00"
expect_line "$work/jsonl/balances.csv" "B1,pending,20.00"
grep -q '^o1,A,level1,20.00,available,,,2026-03-02T10:00:00+08:00,levels\[0\] fixed 20.00\|^o1,A,level1,20.00,available' \
  "$work/jsonl/ledger.csv" || fail "ledger row missing"
grep -q "7 applied, 1 rejected" "$work/jsonl/summary.txt" || fail "summary counts"
grep -q "leader_unbounded\|no findings" "$work/jsonl/summary.txt" || fail "summary lint"
[ ! -e "$work/jsonl/ledger.csv.tmp" ] || fail "temporary file left behind"

# settle from CSV gives the same balances; the 3-decimal amount is rejected.
"$refpay" settle --policy "$tests/data/small_policy.toml" --members "$tests/data/small_members.csv" \
  --orders "$tests/data/small_orders.csv" --as-of 2026-03-20T10:00:00+08:00 --out "$work/csv" --quiet
cmp "$work/jsonl/balances.csv" "$work/csv/balances.csv" || fail "CSV and JSONL balances differ"
grep -q "small_orders.csv,3,bad_amount" "$work/csv/errors.csv" || fail "CSV bad row not reported"

# Usage errors exit 2 and say why.
if "$refpay" settle --policy "$tests/data/small_policy.toml" --out "$work/x" 2> "$work/usage.stderr"; then
  fail "settle without events succeeded"
fi
grep -q "either --events" "$work/usage.stderr" || fail "usage message"

# lint: warnings exit 0, errors exit 1 with the key path.
"$refpay" lint "$tests/data/small_policy.toml" > "$work/lint.out"
printf '{"levels": [{"rat": "10%%"}]}' > "$work/bad_policy.json"
if "$refpay" lint "$work/bad_policy.json" > "$work/lint_bad.out"; then fail "lint passed a bad policy"; fi
grep -q "error unknown_key levels\[0\].rat" "$work/lint_bad.out" || fail "lint path"

# case run --json prints the expect shape; case check fails with a diff.
case_file="$tests/../../shared/cases/public/p03_team_leader.json"
if [ -f "$case_file" ]; then
  "$refpay" case run "$case_file" --json > "$work/case.json"
  grep -q '"balances"' "$work/case.json" || fail "case run --json"
  sed 's/"40.00"/"41.00"/' "$case_file" > "$work/broken_case.json"
  if "$refpay" case check "$work/broken_case.json" > "$work/broken.out"; then fail "broken case passed"; fi
  grep -q "balances: expected  A pending 41.00, got 40.00" "$work/broken.out" || fail "case diff"
  grep -q "cases: 0 passed, 1 failed" "$work/broken.out" || fail "case summary"
fi
echo "cli: all checks passed"
