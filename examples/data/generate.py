#!/usr/bin/env python3
"""Deterministic sample data for refpay (standard library only).

    python3 examples/data/generate.py --members 10000 --orders 100000 --seed 7 \
        --out examples/data/sample

Writes to --out:
  events.jsonl  one SPEC §2 event per line, time-ordered, each with an event_id
  members.csv   member,inviter,joined_at,region,device,phone,payment,role
  orders.csv    id,buyer,amount,at,category,confirmed_at,refund_amount,refunded_at
  README.txt    what was generated and the as_of time to settle at

The two forms carry the same data: `refpay settle --events events.jsonl` and
`refpay settle --members members.csv --orders orders.csv` give the same
ledger. Money is computed in integer fen and written as "123.45" strings.

Content: a referral forest grown with a bias towards recent and popular
inviters; about 1% leaders; regions; log-normal order amounts (median about
150 yuan) in three categories; ~70% of orders confirmed 1-5 days later;
~5% refunded (some partially); and a few abusive patterns: second accounts
sharing a phone or device with their inviter, bursts of split orders, and an
invite farm (one member inviting 30 members of another region in an hour).
"""
import argparse
import csv
import datetime as dt
import json
import math
import pathlib
import random

ZONE = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 3, 1, 9, 0, tzinfo=ZONE)
REGIONS = ["sz", "gz", "sh", "bj", "hz"]
CATEGORIES = [("goods", 0.6), ("course", 0.25), ("card", 0.15)]


def stamp(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds")


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def generate(members: int, orders: int, seed: int):
    rng = random.Random(seed)
    people = []  # dicts with the members.csv columns, in join order
    inviter_weight = []  # preferential attachment: 1 + invitees so far
    t = START
    farm_at = members // 2  # the invite farm starts halfway through
    for i in range(members):
        member = f"u{i:06d}"
        inviter = None
        if i >= 5 and rng.random() < 0.97:
            if farm_at <= i < farm_at + 30:
                inviter = people[farm_at - 1]["member"]
            else:
                # Mostly recent members, weighted by how many they brought.
                lo = max(0, i - 2000)
                inviter_index = rng.choices(range(lo, i), weights=inviter_weight[lo:i])[0]
                inviter = people[inviter_index]["member"]
                inviter_weight[inviter_index] += 1
        region = rng.choice(REGIONS)
        device = f"d{i}"
        phone = f"1380{i:07d}"
        if inviter is not None and rng.random() < 0.01:  # a second account
            parent = people[int(inviter[1:])]  # ids are u<join index>
            if rng.random() < 0.5:
                phone = parent["phone"]
            else:
                device = parent["device"]
            region = parent["region"]
        if farm_at <= i < farm_at + 30:
            region = "cd"  # farmed members come from elsewhere
            t += dt.timedelta(seconds=rng.randint(30, 110))
        else:
            t += dt.timedelta(seconds=rng.randint(1, 150))
        people.append({
            "member": member, "inviter": inviter or "", "joined_at": t, "region": region,
            "device": device, "phone": phone, "payment": f"w{i}",
            "role": "leader" if rng.random() < 0.01 else "",
        })
        inviter_weight.append(1)

    joined_end = t
    order_rows = []
    span = 30 * 24 * 3600
    burst_buyers = {people[rng.randrange(members)]["member"] for _ in range(20)}
    i = 0
    while len(order_rows) < orders:
        buyer = people[rng.randrange(members)]
        at = joined_end + dt.timedelta(seconds=rng.randrange(span))
        burst = buyer["member"] in burst_buyers and rng.random() < 0.5
        count = 4 if burst else 1  # split orders: several within minutes
        for k in range(count):
            if len(order_rows) >= orders:
                break
            fen = max(100, int(math.exp(rng.gauss(math.log(15000), 0.9))))
            category = rng.choices([c for c, _ in CATEGORIES], weights=[w for _, w in CATEGORIES])[0]
            placed = at + dt.timedelta(minutes=2 * k)
            confirmed = placed + dt.timedelta(days=rng.randint(1, 5)) if rng.random() < 0.7 else None
            refund_fen, refunded = 0, None
            if rng.random() < 0.05:
                refund_fen = fen if rng.random() < 0.6 else rng.randint(1, fen)
                refunded = placed + dt.timedelta(days=rng.randint(1, 10))
            order_rows.append({
                "id": f"o{i:07d}", "buyer": buyer["member"], "amount": fen, "at": placed,
                "category": category, "confirmed_at": confirmed, "refund_amount": refund_fen,
                "refunded_at": refunded,
            })
            i += 1
    return people, order_rows


def events_of(people, order_rows):
    """The same data as time-ordered events (members first at equal times)."""
    timed = []
    for seq, p in enumerate(people):
        join = {"type": "join", "member": p["member"], "at": stamp(p["joined_at"]),
                "region": p["region"], "device": p["device"], "phone": p["phone"],
                "payment": p["payment"], "event_id": f"j-{p['member']}"}
        if p["inviter"]:
            join["inviter"] = p["inviter"]
        timed.append((p["joined_at"], 0, seq, join))
        if p["role"]:
            timed.append((p["joined_at"], 0, seq, {
                "type": "set_role", "member": p["member"], "role": p["role"],
                "at": stamp(p["joined_at"]), "event_id": f"r-{p['member']}"}))
    for seq, o in enumerate(order_rows):
        timed.append((o["at"], 1, seq, {
            "type": "order", "id": o["id"], "buyer": o["buyer"], "amount": yuan(o["amount"]),
            "at": stamp(o["at"]), "category": o["category"], "event_id": f"o-{o['id']}"}))
        if o["confirmed_at"]:
            timed.append((o["confirmed_at"], 2, seq, {
                "type": "confirm", "order": o["id"], "at": stamp(o["confirmed_at"]),
                "event_id": f"c-{o['id']}"}))
        if o["refund_amount"]:
            timed.append((o["refunded_at"], 3, seq, {
                "type": "refund", "order": o["id"], "amount": yuan(o["refund_amount"]),
                "at": stamp(o["refunded_at"]), "event_id": f"f-{o['id']}"}))
    timed.sort(key=lambda item: item[:3])
    return [event for *_, event in timed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--orders", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples/data/sample"))
    args = parser.parse_args()
    people, order_rows = generate(args.members, args.orders, args.seed)
    events = events_of(people, order_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "events.jsonl", "w", encoding="utf-8") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
    with open(args.out / "members.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["member", "inviter", "joined_at", "region", "device", "phone", "payment", "role"])
        for p in people:
            writer.writerow([p["member"], p["inviter"], stamp(p["joined_at"]), p["region"], p["device"],
                             p["phone"], p["payment"], p["role"]])
    with open(args.out / "orders.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "buyer", "amount", "at", "category", "confirmed_at", "refund_amount",
                         "refunded_at"])
        for o in order_rows:
            writer.writerow([o["id"], o["buyer"], yuan(o["amount"]), stamp(o["at"]), o["category"],
                             stamp(o["confirmed_at"]) if o["confirmed_at"] else "",
                             yuan(o["refund_amount"]) if o["refund_amount"] else "",
                             stamp(o["refunded_at"]) if o["refunded_at"] else ""])
    last = max(dt.datetime.fromisoformat(e["at"]) for e in events)
    as_of = stamp(last + dt.timedelta(days=1))
    (args.out / "README.txt").write_text(
        f"refpay sample: {len(people)} members, {len(order_rows)} orders, {len(events)} events, "
        f"seed {args.seed}\nas_of: {as_of}\n", encoding="utf-8")
    print(f"wrote {len(events)} events to {args.out}; settle with --as-of {as_of}")


if __name__ == "__main__":
    main()
