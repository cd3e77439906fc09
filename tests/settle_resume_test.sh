#!/usr/bin/env bash
# `refpay settle --state`: a run killed with SIGKILL mid-way and resumed
# (once, and twice) writes exactly the outputs of an uninterrupted run, for
# JSONL and for CSV input; resuming with changed inputs is refused.
# usage: settle_resume_test.sh REFPAY_BINARY SOURCE_DIR WORK_DIR [ORDERS [EVERY]]
# (ORDERS generated orders, default 100000; a checkpoint every EVERY events,
# default 20000: smaller under the sanitizers, which run ten times slower.)
set -euo pipefail
refpay=$(realpath "$1") root=$(realpath "$2") work=$3 orders=${4:-100000} every=${5:-20000}
command -v python3 > /dev/null || { echo "SKIP: python3 not found"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# ~185k events by default (a second or two per run), with rejected lines
# spread through the stream: a bad event type and a re-delivered event every
# ORDERS/5 lines.
python3 "$root/examples/data/generate.py" --members $((orders / 10)) --orders "$orders" --seed 11 \
  --out data > /dev/null
awk -v n=$((orders / 5)) \
  'NR % n == 0 { print; print "{\"type\":\"bogus\",\"line\":" NR "}" } { print }' \
  data/events.jsonl > events.jsonl
{ cat data/orders.csv
  echo 'bad1,u000001,1.001,2026-03-05T10:00:00+08:00,goods,,,'
  echo 'bad2,nobody,10.00,2026-03-10T10:00:00+08:00,goods,,,'
} > orders.csv
cp data/members.csv members.csv
cp "$root/examples/policies/course_leader.toml" policy.toml
as_of=2026-05-01T00:00:00+08:00
jsonl=(--policy policy.toml --events events.jsonl --as-of "$as_of")
csv=(--policy policy.toml --members members.csv --orders orders.csv --as-of "$as_of")

# Outputs equal byte for byte; summary.txt except its timing line.
same_outputs() {
  for f in ledger.csv balances.csv flags.csv errors.csv; do
    cmp "$1/$f" "$2/$f" || fail "$2/$f differs from $1/$f"
  done
  diff <(grep -v '^time: ' "$1/summary.txt") <(grep -v '^time: ' "$2/summary.txt") \
    || fail "$2/summary.txt differs from $1/summary.txt"
}

position() { { head -n 8 "$1" 2> /dev/null || true; } | sed -n "s/^position //p"; }

# Starts settle with --state, waits for a checkpoint newer than the one in
# the state file now, and kills the run with SIGKILL.
run_and_kill() {
  local state=$1 out=$2 log=$3 && shift 3
  local before && before=$(position "$state")
  "$refpay" settle "$@" --state "$state" --checkpoint-every "$every" --out "$out" > /dev/null \
    2> "$log" &
  local pid=$! now="" tries=0
  while now=$(position "$state"); [ -z "$now" ] || [ "$now" = "$before" ]; do
    kill -0 "$pid" 2> /dev/null || break
    tries=$((tries + 1)) && [ "$tries" -lt 2400 ] || fail "no checkpoint within 120 s"
    sleep 0.05
  done
  kill -KILL "$pid" 2> /dev/null || true
  local status=0 && wait "$pid" || status=$?
  [ "$status" -eq 137 ] || fail "settle was not killed mid-run (exit $status; $(cat "$log"))"
  [ -s "$state" ] || fail "no state file after the kill"
  [ ! -e "$out/ledger.csv" ] || fail "outputs written before the end of the input"
  echo "killed at position $(position "$state") (previous: ${before:-none})"
}

resume() {
  local state=$1 out=$2 log=$3 && shift 3
  "$refpay" settle "$@" --state "$state" --checkpoint-every "$every" --out "$out" > /dev/null \
    2> "$log" || fail "resume failed: $(cat "$log")"
  grep -q "resuming from $state" "$log" || fail "did not resume: $(cat "$log")"
  [ ! -e "$state" ] || fail "state file left after a complete run"
}

# Uninterrupted references, without and with --state.
"$refpay" settle "${jsonl[@]}" --out ref-jsonl --quiet 2> /dev/null
"$refpay" settle "${csv[@]}" --out ref-csv --quiet 2> /dev/null
grep -q "bogus" ref-jsonl/errors.csv || fail "rejected lines missing from errors.csv"
grep -q "duplicate_event" ref-jsonl/errors.csv || fail "re-deliveries missing from errors.csv"
grep -q "orders.csv,$((orders + 2)),bad_amount" ref-csv/errors.csv || fail "CSV bad row missing"
grep -q "unknown_member" ref-csv/errors.csv || fail "CSV unknown buyer missing"
"$refpay" settle "${jsonl[@]}" --state s0 --checkpoint-every "$every" --out plain --quiet
same_outputs ref-jsonl plain
[ ! -e s0 ] || fail "state file left after a complete run"

# JSONL: killed twice, resumed twice.
run_and_kill s1 j1 j1-1.log "${jsonl[@]}"
run_and_kill s1 j1 j1-2.log "${jsonl[@]}"
grep -q "resuming from s1" j1-2.log || fail "second run did not resume"
resume s1 j1 j1-3.log "${jsonl[@]}"
same_outputs ref-jsonl j1

# CSV: killed twice, resumed.
run_and_kill s3 c1 c1-1.log "${csv[@]}"
run_and_kill s3 c1 c1-2.log "${csv[@]}"
resume s3 c1 c1-3.log "${csv[@]}"
same_outputs ref-csv c1

# JSONL killed once: resuming with other inputs is refused, naming what
# changed; the state is kept, and the original inputs still resume.
run_and_kill s4 r r-1.log "${jsonl[@]}"
refused() {
  local expect=$1 && shift
  if "$refpay" settle "$@" --out r --quiet 2> refused.log; then fail "resume with $expect accepted"; fi
  grep -qF -- "$expect" refused.log || fail "unclear refusal: $(cat refused.log)"
  [ -e s4 ] || fail "refused resume removed the state file"
}
cp policy.toml policy.orig && echo '# changed' >> policy.toml
refused "--policy policy.toml changed since the state was written" "${jsonl[@]}" --state s4
mv policy.orig policy.toml
cp events.jsonl events.orig && echo '{"type":"bogus"}' >> events.jsonl
refused "--events events.jsonl changed since the state was written" "${jsonl[@]}" --state s4
mv events.orig events.jsonl
cp events.jsonl other.jsonl
refused "written for --events events.jsonl, not other.jsonl" \
  --policy policy.toml --events other.jsonl --state s4
refused "written for jsonl input, not csv" "${csv[@]}" --state s4
cp s4 s4.orig && head -c 100000 s4.orig > s4
refused "not a usable settle state file" "${jsonl[@]}" --state s4
mv s4.orig s4
resume s4 r r-2.log "${jsonl[@]}"
same_outputs ref-jsonl r

# Usage errors.
if "$refpay" settle "${jsonl[@]}" --checkpoint-every 5 --out x 2> usage.log; then
  fail "--checkpoint-every without --state accepted"
fi
grep -q -- "--checkpoint-every needs --state" usage.log || fail "usage message"
if "$refpay" settle "${jsonl[@]}" --state s5 --checkpoint-every 0 --out x 2> usage.log; then
  fail "--checkpoint-every 0 accepted"
fi
grep -q "not a positive number" usage.log || fail "usage message for 0"
if "$refpay" settle --policy policy.toml --events <(head -n 5 events.jsonl) --state s6 --out x \
  2> usage.log; then
  fail "--state with events from a pipe accepted"
fi
grep -q "needs regular files" usage.log || fail "usage message for a pipe"
echo "settle resume: all checks passed"
