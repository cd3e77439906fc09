#!/usr/bin/env bash
# One bad CSV row through `refpay settle --members/--orders` (tests/bad/csv.tsv).
# usage: csv_row_test.sh REFPAY WORK_DIR KIND ROW CODE FRAGMENT
#   KIND members|orders: ROW is appended to a small valid file of that kind;
#        errors.csv must hold "FILE,LINE,CODE,..." for the row's line with
#        FRAGMENT in the message, and the valid rows must still be applied.
#   KIND fatal-members|fatal-orders: ROW replaces the whole file (\n for a
#        line break, "(empty)" for an empty file); settle must exit 2 with
#        FRAGMENT (and CODE unless it is -) on stderr.
set -euo pipefail
refpay=$1 work=$2 kind=$3 row=$4 code=$5 fragment=$6
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$work/policy.json" <<'JSON'
{"levels": [{"fixed": "20.00"}], "binding": {"mode": "free"}}
JSON
printf '%s\n' "member,inviter,joined_at,region,device,phone,payment,role,rank" \
  "A,,2026-03-01T09:00:00+08:00,,,,,," "B,A,2026-03-01T09:10:00+08:00,,,,,," > "$work/members.csv"
printf '%s\n' "id,buyer,amount,at,category,confirmed_at,refund_amount,refunded_at" \
  "o1,B,100.00,2026-03-02T10:00:00+08:00,,,," > "$work/orders.csv"

case $kind in
  members) printf '%s\n' "$row" >> "$work/members.csv"; line=4 file=members.csv ;;
  orders) printf '%s\n' "$row" >> "$work/orders.csv"; line=3 file=orders.csv ;;
  fatal-members | fatal-orders)
    file=$work/${kind#fatal-}.csv
    if [ "$row" = "(empty)" ]; then : > "$file"; else printf '%b\n' "$row" > "$file"; fi ;;
  *) fail "unknown kind $kind" ;;
esac

set +e
"$refpay" settle --policy "$work/policy.json" --members "$work/members.csv" \
  --orders "$work/orders.csv" --out "$work/out" --quiet 2> "$work/stderr"
status=$?
set -e

if [[ $kind == fatal-* ]]; then
  [ "$status" -eq 2 ] || fail "settle exited $status, expected 2"
  grep -qF -- "$fragment" "$work/stderr" || { cat "$work/stderr" >&2; fail "stderr lacks: $fragment"; }
  [ "$code" = "-" ] || grep -qF -- "$code" "$work/stderr" || fail "stderr lacks code $code"
  exit 0
fi
[ "$status" -eq 0 ] || { cat "$work/stderr" >&2; fail "settle exited $status"; }
errors=$work/out/errors.csv
grep -F -- "$work/$file,$line,$code," "$errors" > "$work/match" ||
  { cat "$errors" >&2; fail "errors.csv lacks $file line $line with code $code"; }
# errors.csv quotes a message with quotes in it (RFC 4180: "" for ").
grep -qF -- "${fragment//\"/\"\"}" "$work/match" || { cat "$work/match" >&2; fail "message lacks: $fragment"; }
# The valid rows were still applied: B's order o1 pays A.
grep -q "^A,pending," "$work/out/balances.csv" || { cat "$work/out/balances.csv" >&2; fail "valid rows not applied"; }
echo "ok: $file:$line $code"
