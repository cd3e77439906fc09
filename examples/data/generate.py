#!/usr/bin/env python3
"""Deterministic sample data for refpay, standard library only.

    python3 examples/data/generate.py --members 10000 --orders 100000 --seed 7 \\
        --out examples/data/sample

The same arguments give byte-identical files on every run. Written to --out:

  events.jsonl  one SPEC §2 event per line, in time order, each with an event_id
  members.csv   the members, in join order
  orders.csv    the orders, in time order
  README.txt    what was generated, and the as_of time to settle at

members.csv columns (empty cell = none):
  member     member id, "u000123"
  inviter    the inviter's member id; empty for the few roots of the forest
  joined_at  ISO-8601 time with +08:00 offset (the join event's `at`)
  region     city code (GB/T 2260), e.g. "440300" = Shenzhen
  device     device id, "dv000123"
  phone      phone number, "13800000123"
  payment    payment account, "wx000123"
  role       "leader" for ~1% of members (a set_role event at joined_at), else empty

orders.csv columns (empty cell = none):
  id             order id, "o0000123", numbered in time order
  buyer          the buyer's member id
  amount         yuan with exactly 2 decimals, as text: "149.90"
  at             ISO-8601 time with +08:00 offset (the order event's `at`)
  category       "goods", "course" or "card"
  confirmed_at   time of the confirm event (确认收货), empty if never confirmed
  refund_amount  yuan refunded (the whole amount or a part), empty if none
  refunded_at    time of the refund event, empty if none

Both forms hold the same data and the same times (every event has its own
second, except a leader's set_role at its join time), so
`refpay settle --events events.jsonl` and
`refpay settle --members members.csv --orders orders.csv` replay the same
stream.

Money is integer fen (分) throughout and written as "123.45" by integer
division; no float is ever formatted as money. The only floating point is
the random draw that shapes the log-normal amount, which is rounded to whole
fen at once.

Content:
  - a referral forest with 5 roots; each new member joins under an earlier
    member drawn with preferential attachment (weight 1 + invitees so far);
    80% of invitees live in their inviter's city, the rest anywhere;
  - ~1% of members are team leaders (set_role leader);
  - orders from joined members over 30 days, log-normal amounts (median
    about 150 yuan), 60% goods / 25% course / 15% card;
  - ~70% of orders confirmed 1-5 days later; ~5% refunded 1 hour to 10 days
    later, 60% of those in full and the rest in part;
  - abuse, for the checks to find:
      * second accounts (~1% of members) sharing a phone or a device with
        their inviter (自买自推);
      * split orders: a few buyers place bursts of 4-6 orders 1-3 minutes
        apart;
      * an invite farm: one member gains 30 invitees from another city
        within one hour.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import pathlib
import random
import sys

ZONE = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2026, 3, 1, 9, 0, 0, tzinfo=ZONE)
JOIN_SPAN_S = 14 * 86400     # members join over the first two weeks
ORDER_SPAN_S = 30 * 86400    # orders are placed over the first 30 days
ROOTS = 5
CITIES = ["440300", "440100", "310100", "110100", "330100", "510100"]
CATEGORIES = ["goods", "course", "card"]
CATEGORY_WEIGHTS = [60, 25, 15]
MEDIAN_FEN = 15000           # 150.00 yuan
SIGMA = 0.8                  # log-normal spread
MIN_FEN, MAX_FEN = 100, 5_000_000
FARM_SIZE = 30

MEMBER_COLUMNS = ["member", "inviter", "joined_at", "region", "device", "phone", "payment",
                  "role"]
ORDER_COLUMNS = ["id", "buyer", "amount", "at", "category", "confirmed_at", "refund_amount",
                 "refunded_at"]


def yuan(fen: int) -> str:
    """Integer fen as a yuan string with 2 decimals: 14990 -> "149.90"."""
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def stamp(seconds: int) -> str:
    """Seconds after START as ISO-8601 with the +08:00 offset."""
    return (START + dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def draw_amount(rng: random.Random) -> int:
    """A log-normal order amount in whole fen (median MEDIAN_FEN)."""
    fen = round(MEDIAN_FEN * math.exp(SIGMA * rng.gauss(0.0, 1.0)))
    return min(MAX_FEN, max(MIN_FEN, fen))


def make_members(rng: random.Random, count: int) -> tuple[list[dict], dict]:
    """The referral forest, in join order. Times are seconds after START."""
    members: list[dict] = []
    urn: list[int] = []  # member indices, each once plus once per invitee
    avg_gap = max(2, JOIN_SPAN_S // max(1, count))
    farm_start = count * 2 // 5 if count >= 4 * FARM_SIZE else -1
    farmer = rng.randrange(ROOTS, farm_start) if farm_start > 0 else -1
    farm_city = ""
    t = 0
    for i in range(count):
        in_farm = farm_start >= 0 and farm_start <= i < farm_start + FARM_SIZE
        if i < ROOTS:
            inviter = -1
        elif in_farm:
            inviter = farmer
        else:
            inviter = rng.choice(urn)
        if inviter >= 0:
            urn.append(inviter)
        urn.append(i)
        # Farmed accounts arrive 20-110 s apart: 30 of them within the hour.
        t += rng.randint(20, 110) if in_farm else rng.randint(1, 2 * avg_gap - 1)
        parent = members[inviter] if inviter >= 0 else None
        if in_farm:
            if not farm_city:
                farm_city = rng.choice([c for c in CITIES if c != parent["region"]])
            region = farm_city
        elif parent is not None and rng.random() < 0.8:
            region = parent["region"]
        else:
            region = rng.choice(CITIES)
        member = {
            "member": f"u{i:06d}",
            "inviter": parent["member"] if parent else "",
            "joined_at": t,
            "region": region,
            "device": f"dv{i:06d}",
            "phone": f"138{i:08d}",
            "payment": f"wx{i:06d}",
            "role": "",
        }
        if parent is not None and not in_farm and rng.random() < 0.01:
            # A second account of its inviter (自买自推): same city, and the
            # same phone or the same device.
            member["region"] = parent["region"]
            shared = "phone" if rng.random() < 0.5 else "device"
            member[shared] = parent[shared]
            member["second_account"] = shared
        if rng.random() < 0.01:
            member["role"] = "leader"
        members.append(member)
    facts = {"farmer": members[farmer]["member"] if farmer >= 0 else None,
             "farm_city": farm_city,
             "farm_members": [m["member"] for m in members[farm_start:farm_start + FARM_SIZE]]
             if farm_start >= 0 else []}
    return members, facts


def make_orders(rng: random.Random, members: list[dict], count: int) -> tuple[list[dict], dict]:
    """Orders (unsorted, without ids). Times are seconds after START."""
    orders: list[dict] = []

    def new_order(buyer: dict, at: int) -> dict:
        return {"buyer": buyer["member"], "amount": draw_amount(rng), "at": at,
                "category": rng.choices(CATEGORIES, weights=CATEGORY_WEIGHTS)[0]}

    # Split orders: a few buyers each place 1-3 bursts of 4-6 orders.
    burst_buyers = []
    if members:
        for _ in range(min(len(members), max(1, len(members) // 500))):
            buyer = members[rng.randrange(len(members))]
            burst_buyers.append(buyer["member"])
            for _ in range(rng.randint(1, 3)):
                lo = buyer["joined_at"] + 600
                at = rng.randint(lo, max(lo, ORDER_SPAN_S))
                for _ in range(rng.randint(4, 6)):
                    if len(orders) >= count:
                        break
                    orders.append(new_order(buyer, at))
                    at += rng.randint(60, 180)
    # Everyone else: a random member, at a random time after joining.
    while members and len(orders) < count:
        buyer = members[rng.randrange(len(members))]
        lo = buyer["joined_at"] + 60
        orders.append(new_order(buyer, rng.randint(lo, max(lo, ORDER_SPAN_S))))
    for order in orders:
        fen = order["amount"]
        order["confirmed_at"] = None
        order["refund_amount"] = None
        order["refunded_at"] = None
        if rng.random() < 0.70:
            order["confirmed_at"] = order["at"] + rng.randint(86400, 5 * 86400)
        if rng.random() < 0.05:
            full = fen < 2 or rng.random() < 0.6
            order["refund_amount"] = fen if full else rng.randint(1, fen - 1)
            order["refunded_at"] = order["at"] + rng.randint(3600, 10 * 86400)
    return orders, {"burst_buyers": burst_buyers}


def schedule(members: list[dict], orders: list[dict]) -> list[tuple]:
    """Sorts every happening and gives each its own second (a leader's
    set_role keeps its join's), writing the final times back into the rows.
    Returns (time, kind, row) in time order."""
    slots = []  # (wanted time, kind rank, row index, kind, row)
    for i, m in enumerate(members):
        slots.append((m["joined_at"], 0, i, "join", m))
    for i, o in enumerate(orders):
        slots.append((o["at"], 1, i, "order", o))
        if o["confirmed_at"] is not None:
            slots.append((o["confirmed_at"], 2, i, "confirm", o))
        if o["refunded_at"] is not None:
            slots.append((o["refunded_at"], 3, i, "refund", o))
    slots.sort(key=lambda s: s[:3])
    field = {"join": "joined_at", "order": "at", "confirm": "confirmed_at",
             "refund": "refunded_at"}
    timed = []
    last = -1
    for wanted, _, _, kind, row in slots:
        t = max(wanted, last + 1)
        row[field[kind]] = t
        timed.append((t, kind, row))
        last = t
    return timed


def events_of(timed: list[tuple]) -> list[dict]:
    """The SPEC §2 events, in the order of `timed`."""
    events = []
    for t, kind, row in timed:
        at = stamp(t)
        if kind == "join":
            event = {"type": "join", "member": row["member"]}
            if row["inviter"]:
                event["inviter"] = row["inviter"]
            event.update({"at": at, "region": row["region"], "device": row["device"],
                          "phone": row["phone"], "payment": row["payment"],
                          "event_id": f"join-{row['member']}"})
            events.append(event)
            if row["role"]:
                events.append({"type": "set_role", "member": row["member"], "role": row["role"],
                               "at": at, "event_id": f"role-{row['member']}"})
        elif kind == "order":
            events.append({"type": "order", "id": row["id"], "buyer": row["buyer"],
                           "amount": yuan(row["amount"]), "at": at, "category": row["category"],
                           "event_id": f"order-{row['id']}"})
        elif kind == "confirm":
            events.append({"type": "confirm", "order": row["id"], "at": at,
                           "event_id": f"confirm-{row['id']}"})
        else:
            events.append({"type": "refund", "order": row["id"],
                           "amount": yuan(row["refund_amount"]), "at": at,
                           "event_id": f"refund-{row['id']}"})
    return events


def generate(members_count: int, orders_count: int, seed: int):
    rng = random.Random(seed)
    members, member_facts = make_members(rng, members_count)
    orders, order_facts = make_orders(rng, members, orders_count)
    # Number the orders in time order (ties: generation order).
    orders.sort(key=lambda o: o["at"])
    for i, order in enumerate(orders):
        order["id"] = f"o{i:07d}"
    timed = schedule(members, orders)
    return members, orders, events_of(timed), {**member_facts, **order_facts}


def write_csv(path: pathlib.Path, columns: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def write(out: pathlib.Path, members, orders, events, facts, seed: int) -> str:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "events.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for event in events:
            f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")

    def opt_time(t):
        return stamp(t) if t is not None else ""

    write_csv(out / "members.csv", MEMBER_COLUMNS,
              [[m["member"], m["inviter"], stamp(m["joined_at"]), m["region"], m["device"],
                m["phone"], m["payment"], m["role"]] for m in members])
    write_csv(out / "orders.csv", ORDER_COLUMNS,
              [[o["id"], o["buyer"], yuan(o["amount"]), stamp(o["at"]), o["category"],
                opt_time(o["confirmed_at"]),
                yuan(o["refund_amount"]) if o["refund_amount"] is not None else "",
                opt_time(o["refunded_at"])] for o in orders])

    last = max([m["joined_at"] for m in members] +
               [t for o in orders for t in (o["at"], o["confirmed_at"], o["refunded_at"])
                if t is not None], default=0)
    as_of = stamp(last + 86400)
    total_fen = sum(o["amount"] for o in orders)
    refunded_fen = sum(o["refund_amount"] or 0 for o in orders)
    second = [m for m in members if m.get("second_account")]
    lines = [
        "refpay sample data, made by examples/data/generate.py",
        f"arguments: --members {len(members)} --orders {len(orders)} --seed {seed}",
        f"as_of: {as_of}",
        "",
        f"members: {len(members)} ({ROOTS if members else 0} roots, "
        f"{sum(1 for m in members if m['role'])} leaders, "
        f"{len(second)} second accounts sharing a phone or device with their inviter)",
        f"orders: {len(orders)}, {yuan(total_fen)} yuan "
        f"({sum(1 for o in orders if o['confirmed_at'] is not None)} confirmed, "
        f"{sum(1 for o in orders if o['refund_amount'] is not None)} refunded, "
        f"{yuan(refunded_fen)} yuan refunded)",
        f"events: {len(events)}, from {events[0]['at'] if events else '-'} "
        f"to {events[-1]['at'] if events else '-'}",
        f"invite farm: {facts['farmer'] or '-'} gains {len(facts['farm_members'])} invitees "
        f"from city {facts['farm_city'] or '-'} within an hour "
        f"({facts['farm_members'][0] if facts['farm_members'] else '-'} .. "
        f"{facts['farm_members'][-1] if facts['farm_members'] else '-'})",
        f"split-order buyers (bursts of 4-6 orders minutes apart): "
        f"{' '.join(facts['burst_buyers']) or '-'}",
        "",
        "files: events.jsonl (SPEC §2 events), members.csv, orders.csv (the same data);",
        "columns are described at the top of generate.py.",
        "",
        "settle it:",
        "  build/bin/refpay settle --policy examples/policies/course_leader.toml \\",
        f"      --events DIR/events.jsonl --as-of {as_of} --out out/demo",
        "(DIR being this directory)",
    ]
    (out / "README.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return as_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Deterministic refpay sample data (events.jsonl, members.csv, orders.csv).")
    parser.add_argument("--members", type=int, default=10000, help="members (default 10000)")
    parser.add_argument("--orders", type=int, default=100000, help="orders (default 100000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("examples/data/sample"),
                        help="output directory (default examples/data/sample)")
    args = parser.parse_args(argv)
    if args.members < ROOTS or args.orders < 0:
        parser.error(f"--members must be at least {ROOTS} and --orders at least 0")
    members, orders, events, facts = generate(args.members, args.orders, args.seed)
    as_of = write(args.out, members, orders, events, facts, args.seed)
    print(f"generate: {len(members)} members, {len(orders)} orders, {len(events)} events "
          f"in {args.out}")
    print(f"as_of: {as_of}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
