"""Deterministic member/order data for the comparison benchmark.

    python bench/compare/gen.py --members 1000000 --orders 10000000 [--seed 1]

writes (once; an existing complete directory is reused)

    bench/compare/.data/m<members>_o<orders>_s<seed>/
        members.parquet   member (int64), inviter (int64, null = none),
                          joined_at (timestamp[us, Asia/Shanghai]), role ("leader" / null)
        orders.parquet    id (int64), buyer (int64), amount_fen (int64), at,
                          confirmed_at (null = not confirmed), refund_amount_fen
                          (int64, 0 = none), refunded_at (null = none)
        bin/*.i32|*.i64|*.u8   the same columns as little-endian arrays for the
                          C++ program (settle_columns); times are Unix
                          microseconds, INT64_MIN = none
        meta.json         sizes, seed, as_of, generator version, summary

The population (numpy only; floats are used to *draw* random numbers, never
for money: every amount is an int64 number of fen once drawn):

- tree: member i (in join order) is organic with probability 2 % (and member
  0 always), otherwise invited by a uniformly random earlier member (a random
  recursive tree: depth ~ ln n, a few early members with many invitees);
- leaders: the top 1 % of members by number of direct invitees (ties to the
  earlier joiner), role ``leader`` from their join;
- joins: strictly increasing times over 60 days from 2026-03-01T00:00+08:00;
- orders: 60 % of members buy, with a log-normal activity weight; each order
  is at a uniform time between its buyer's join and the end of the 120-day
  window; amounts log-normal (median 299 yuan, sigma 1.2, clipped to
  1–50,000 yuan), 20 % of them whole yuan and 0.4 % exactly on or one fen
  below a tier bound (3000 / 5000 yuan);
- confirmations: 85 % after an exponential delay (mean 5 days), dropped if
  after the window's end;
- refunds: 5 % of orders, 30 % of them partial (10–90 % of the amount), the
  others full, after an exponential delay (mean 6 days) (dropped if after the
  end): at most one refund per order.

Orders are sorted by time and numbered in that order. ``as_of`` is the end
of the window. Same arguments, same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

VERSION = 1
HERE = Path(__file__).resolve().parent
DEFAULT_CACHE = HERE / ".data"

DAY_US = 86_400 * 1_000_000
T0_US = 1_772_294_400 * 1_000_000  # 2026-03-01T00:00:00+08:00
JOIN_DAYS = 60
WINDOW_DAYS = 120
ZONE = "Asia/Shanghai"
NO_TIME = np.iinfo(np.int64).min

SIZES = {
    "small": (20_000, 100_000),
    "standard": (1_000_000, 10_000_000),
    "large": (10_000_000, 10_000_000),
    "test": (2_000, 10_000),
}


def data_dir(members: int, orders: int, seed: int, cache: Path = DEFAULT_CACHE) -> Path:
    return cache / f"m{members}_o{orders}_s{seed}"


def _draw(members: int, orders: int, seed: int) -> dict[str, np.ndarray]:
    tree_rng, time_rng, order_rng, life_rng = (
        np.random.Generator(np.random.PCG64(s))
        for s in np.random.SeedSequence([VERSION, seed, members, orders]).spawn(4))
    n = members
    idx = np.arange(n, dtype=np.int64)

    # Tree: uniform random earlier inviter, 2 % organic.
    inviter = np.floor(idx * tree_rng.random(n)).astype(np.int64)
    organic = tree_rng.random(n) < 0.02
    organic[0] = True
    inviter[organic] = -1
    invitees = np.bincount(inviter[inviter >= 0], minlength=n)
    n_leaders = max(1, n // 100)
    by_invitees = np.lexsort((idx, -invitees))  # most invitees first, ties to the earlier
    leader = np.zeros(n, dtype=np.uint8)
    leader[by_invitees[:n_leaders]] = 1

    # Joins: one slot per member, a random instant inside it: strictly increasing.
    slot = JOIN_DAYS * DAY_US // n
    joined_at = T0_US + idx * slot + time_rng.integers(0, slot, n)
    end = T0_US + WINDOW_DAYS * DAY_US

    # Orders.
    n_buyers = max(1, (n * 6) // 10)
    buyers = np.sort(order_rng.choice(n, size=n_buyers, replace=False))
    weight = order_rng.lognormal(0.0, 1.0, n_buyers)
    buyer = buyers[order_rng.choice(n_buyers, size=orders, p=weight / weight.sum())]
    span = end - 1 - joined_at[buyer]  # strictly after the join, strictly before the end
    at = joined_at[buyer] + 1 + np.floor(order_rng.random(orders) * span).astype(np.int64)
    amount = np.rint(np.exp(np.log(29_900.0) + 1.2 * order_rng.standard_normal(orders)))
    amount = np.clip(amount, 100, 5_000_000).astype(np.int64)
    whole = order_rng.random(orders) < 0.20
    amount[whole] = np.maximum(100, amount[whole] // 100 * 100)
    edge = order_rng.random(orders) < 0.004
    amount[edge] = order_rng.choice(np.array([299_999, 300_000, 499_999, 500_000]), edge.sum())
    order_sort = np.argsort(at, kind="stable")
    buyer, at, amount = buyer[order_sort], at[order_sort], amount[order_sort]

    confirmed = life_rng.random(orders) < 0.85
    confirmed_at = at + 1_000_000 + np.floor(
        life_rng.exponential(5 * DAY_US, orders)).astype(np.int64)
    confirmed &= confirmed_at <= end
    confirmed_at[~confirmed] = NO_TIME

    refunded = life_rng.random(orders) < 0.05
    partial = life_rng.random(orders) < 0.30
    share = life_rng.integers(10, 91, orders)  # percent
    refund = np.where(partial, np.clip(amount * share // 100, 1, np.maximum(amount - 1, 1)),
                      amount)
    refunded_at = at + 1_000_000 + np.floor(
        life_rng.exponential(6 * DAY_US, orders)).astype(np.int64)
    refunded &= refunded_at <= end
    refund[~refunded] = 0
    refunded_at[~refunded] = NO_TIME

    return {
        "inviter": inviter, "leader": leader, "joined_at": joined_at,
        "buyer": buyer, "amount": amount, "at": at, "confirmed_at": confirmed_at,
        "refund": refund, "refunded_at": refunded_at, "end": np.int64(end),
    }


def _times(micros: np.ndarray) -> pa.Array:
    mask = micros == NO_TIME
    return pa.array(np.where(mask, 0, micros), pa.timestamp("us", tz=ZONE),
                    mask=mask if mask.any() else None)


def generate(members: int, orders: int, seed: int = 1, cache: Path = DEFAULT_CACHE,
             quiet: bool = False) -> Path:
    """Writes the data set (if not there yet) and returns its directory."""
    out = data_dir(members, orders, seed, cache)
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("version") == VERSION:
            return out
    started = time.perf_counter()
    d = _draw(members, orders, seed)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)

    inviter = d["inviter"]
    pq.write_table(pa.table({
        "member": pa.array(np.arange(members, dtype=np.int64)),
        "inviter": pa.array(inviter, pa.int64(), mask=inviter < 0),
        "joined_at": _times(d["joined_at"]),
        "role": pa.array(np.where(d["leader"] == 1, "leader", None), pa.string()),
    }), tmp / "members.parquet")
    pq.write_table(pa.table({
        "id": pa.array(np.arange(orders, dtype=np.int64)),
        "buyer": pa.array(d["buyer"]),
        "amount_fen": pa.array(d["amount"]),
        "at": _times(d["at"]),
        "confirmed_at": _times(d["confirmed_at"]),
        "refund_amount_fen": pa.array(d["refund"]),
        "refunded_at": _times(d["refunded_at"]),
    }), tmp / "orders.parquet")

    for name, array, dtype in (
        ("inviter.i32", inviter, "<i4"), ("leader.u8", d["leader"], "u1"),
        ("joined_at.i64", d["joined_at"], "<i8"), ("buyer.i32", d["buyer"], "<i4"),
        ("amount.i64", d["amount"], "<i8"), ("at.i64", d["at"], "<i8"),
        ("confirmed_at.i64", d["confirmed_at"], "<i8"), ("refund.i64", d["refund"], "<i8"),
        ("refunded_at.i64", d["refunded_at"], "<i8"),
    ):
        np.ascontiguousarray(array, dtype=dtype).tofile(tmp / "bin" / name)

    refund = d["refund"]
    meta = {
        "version": VERSION, "seed": seed, "members": members, "orders": orders,
        "as_of_us": int(d["end"]), "as_of": "2026-06-29T00:00:00+08:00",
        "leaders": int(d["leader"].sum()),
        "organic_members": int((inviter < 0).sum()),
        "gmv_fen": int(d["amount"].sum()),
        "confirmed": int((d["confirmed_at"] != NO_TIME).sum()),
        "refunds_full": int(((refund > 0) & (refund == d["amount"])).sum()),
        "refunds_partial": int(((refund > 0) & (refund < d["amount"])).sum()),
        "seconds_to_generate": round(time.perf_counter() - started, 2),
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    if not quiet:
        print(f"generated {out} in {meta['seconds_to_generate']} s", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES))
    parser.add_argument("--members", type=int)
    parser.add_argument("--orders", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    members, orders = SIZES[args.size] if args.size else (args.members, args.orders)
    if members is None or orders is None:
        parser.error("give --size or both --members and --orders")
    print(generate(members, orders, args.seed, args.cache))


if __name__ == "__main__":
    main()
