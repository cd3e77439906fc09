"""The peers: what refpay's users would otherwise write (issue #4).

Each peer computes, from the generator's Parquet files and one policy file,
every member's total commission in fen (int64, dense, member row order):
the sum of the net amounts of all its entries, all statuses. refpay must
match them exactly.

The rules they implement (SPEC §3.1–3.3, §3.5, §4), for the policy shapes in
``policies/`` (read from the TOML so the peers and refpay read one file):

- level 1 pays the buyer's inviter: a whole-mode tier table (``below`` /
  ``from`` bounds) or a rate; level 2 the inviter's inviter; missing
  ancestors are not paid;
- the leader bonus goes to the nearest leader strictly above the buyer
  (whole chain: no ``max_depth``), scheme ``nearest``;
- each entry is rate_ppm × base / 10⁶ rounded half_up to the fen:
  ``(base * ppm + 500_000) // 1_000_000`` (base ≥ 0);
- ``order_total`` caps the order at ``base * cap_ppm // 1_000_000``
  (rounded down), filled in priority order level1, level2, leader;
- a refund re-computes every entry on the net base (amount − refund), tiers
  and cap included, and each entry becomes the smaller of what it was and
  that; the generator makes at most one refund per order, so an entry is
  ``min(entry on the original base, entry on the net base)``.

The tree and the roles do not change after the members join (every inviter
and leader joins before its invitees' orders), so the nearest leader and
the level beneficiaries of an order are those of its buyer in the static
tree. Money is int64 fen / integer ppm everywhere: no float touches it.

Peers: ``duckdb_totals`` (SQL), ``pandas_totals`` (vectorised numpy/pandas),
``python_totals`` (a plain loop over orders).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

NO_CAP = 10**12  # ppm: a cap that can never bind


def _ppm(rate: str) -> int:
    """"4%" or "0.04" as integer parts per million (exact, via Decimal)."""
    text = rate.strip()
    value = Decimal(text[:-1]) * 10_000 if text.endswith("%") else Decimal(text) * 1_000_000
    if value != value.to_integral_value():
        raise ValueError(f"rate {rate!r} is finer than 1 ppm")
    return int(value)


def _fen(money: str | int) -> int:
    value = Decimal(str(money)) * 100
    if value != value.to_integral_value():
        raise ValueError(f"amount {money!r} has more than 2 decimals")
    return int(value)


@dataclass(frozen=True)
class Rules:
    """The policy as the peers need it."""

    tier_from: tuple[int, ...]   # lower bound (fen, inclusive) of each level-1 tier
    tier_ppm: tuple[int, ...]    # its rate
    level2_ppm: int | None       # None: no level 2
    leader_ppm: int | None       # None: no leader bonus
    cap_ppm: int                 # NO_CAP: no order_total cap
    has_level1: bool

    def tier_rate(self, base: int) -> int:
        rate = self.tier_ppm[0]
        for low, ppm in zip(self.tier_from, self.tier_ppm):
            if base >= low:
                rate = ppm
        return rate


def read_rules(policy_path: str | Path) -> Rules:
    """Reads the subset of the policy language the benchmark policies use and
    refuses anything else (so a peer never silently ignores a rule)."""
    doc = tomllib.loads(Path(policy_path).read_text())
    allowed = {"name", "currency", "timezone", "rounding", "levels", "leader", "caps",
               "settlement", "checks"}
    if set(doc) - allowed or doc.get("rounding", "half_up") != "half_up":
        raise ValueError(f"{policy_path}: the peers cannot compute {sorted(set(doc) - allowed)}")
    levels = doc.get("levels", [])
    if len(levels) > 2:
        raise ValueError("at most two levels")
    tier_from: tuple[int, ...] = (0,)
    tier_ppm: tuple[int, ...] = (0,)
    if levels:
        first = levels[0]
        if "tiers" in first:
            if first.get("mode", "whole") != "whole":
                raise ValueError("only whole-mode tiers")
            lows, rates = [], []
            for i, tier in enumerate(first["tiers"]):
                if set(tier) - {"from", "below", "rate"}:
                    raise ValueError(f"tier {i}: only from/below/rate")
                lows.append(_fen(tier["from"]) if "from" in tier else 0)
                rates.append(_ppm(tier["rate"]))
            tier_from, tier_ppm = tuple(lows), tuple(rates)
        elif set(first) == {"rate"}:
            tier_ppm = (_ppm(first["rate"]),)
        else:
            raise ValueError("level 1: tiers or rate only")
    level2 = None
    if len(levels) == 2:
        if set(levels[1]) != {"rate"}:
            raise ValueError("level 2: rate only")
        level2 = _ppm(levels[1]["rate"])
    leader = doc.get("leader")
    leader_ppm = None
    if leader is not None:
        if set(leader) - {"rate", "scheme"} or leader.get("scheme", "nearest") != "nearest":
            raise ValueError("leader: a rate, scheme nearest, no max_depth/include_self/peer")
        leader_ppm = _ppm(leader["rate"])
    caps = doc.get("caps", {})
    if set(caps) - {"order_total"}:
        raise ValueError("caps: order_total only")
    cap_ppm = _ppm(caps["order_total"]) if "order_total" in caps else NO_CAP
    checks = doc.get("checks", {})
    if checks != {"shared_identity": "off"} and checks:
        raise ValueError("checks: shared_identity off only")
    return Rules(tier_from, tier_ppm, level2, leader_ppm, cap_ppm, bool(levels))


# --------------------------------------------------------------------------
# DuckDB


def duckdb_sql(rules: Rules) -> tuple[list[str], str]:
    """Two macros and the query: per-member totals from tables ``members(member, inviter,
    is_leader)`` and ``orders(buyer, amount_fen, refund_amount_fen)``."""
    tiers = " ".join(
        f"WHEN b >= {low} THEN {ppm}" for low, ppm in reversed(list(zip(rules.tier_from,
                                                                         rules.tier_ppm))))
    entries = []
    for suffix in ("o", "n"):
        b = f"base_{suffix}"
        entries.append(f"""
        CASE WHEN inv1 IS NULL OR NOT {rules.has_level1} THEN 0
             ELSE pay({b}, tier_ppm({b})) END AS l1_{suffix},
        CASE WHEN inv2 IS NULL OR {rules.level2_ppm is None} THEN 0
             ELSE pay({b}, {rules.level2_ppm or 0}) END AS l2_{suffix},
        CASE WHEN leader IS NULL OR {rules.leader_ppm is None} THEN 0
             ELSE pay({b}, {rules.leader_ppm or 0}) END AS ld_{suffix},
        {b} * {rules.cap_ppm}::HUGEINT // 1000000 AS cap_{suffix}""")
    capped = []
    for suffix in ("o", "n"):
        capped.append(f"""
        least(l1_{suffix}, cap_{suffix}) AS c1_{suffix},
        least(l2_{suffix}, cap_{suffix} - least(l1_{suffix}, cap_{suffix})) AS c2_{suffix},
        least(ld_{suffix}, cap_{suffix} - least(l1_{suffix}, cap_{suffix})
              - least(l2_{suffix}, cap_{suffix} - least(l1_{suffix}, cap_{suffix}))) AS c3_{suffix}""")
    macros = [
        f"CREATE OR REPLACE TEMP MACRO tier_ppm(b) AS CASE {tiers} ELSE {rules.tier_ppm[0]} END",
        "CREATE OR REPLACE TEMP MACRO pay(b, ppm) AS (b * ppm + 500000) // 1000000",
    ]
    return macros, f"""
WITH RECURSIVE
  -- nearest leader strictly above each member: walk down from the roots;
  -- a child's nearest leader is its inviter if that is a leader, else the
  -- inviter's own nearest leader
  walk(member, is_leader, leader) AS (
    SELECT member, is_leader, NULL::BIGINT FROM members WHERE inviter IS NULL
    UNION ALL
    SELECT c.member, c.is_leader, CASE WHEN w.is_leader THEN w.member ELSE w.leader END
    FROM walk w JOIN members c ON c.inviter = w.member
  ),
  beneficiaries AS (
    SELECT c.member, c.inviter AS inv1, p.inviter AS inv2, w.leader
    FROM members c
    LEFT JOIN members p ON p.member = c.inviter
    JOIN walk w ON w.member = c.member
  ),
  raw AS (
    SELECT b.inv1, b.inv2, b.leader,
           o.amount_fen AS base_o, o.amount_fen - o.refund_amount_fen AS base_n
    FROM orders o JOIN beneficiaries b ON b.member = o.buyer
  ),
  entries AS (SELECT inv1, inv2, leader, {",".join(entries)} FROM raw),
  capped AS (SELECT inv1, inv2, leader, {",".join(capped)} FROM entries),
  final AS (
    SELECT inv1, inv2, leader, least(c1_o, c1_n) AS f1, least(c2_o, c2_n) AS f2,
           least(c3_o, c3_n) AS f3
    FROM capped
  ),
  paid AS (
    SELECT inv1 AS member, f1 AS amount FROM final WHERE inv1 IS NOT NULL AND {rules.has_level1}
    UNION ALL
    SELECT inv2, f2 FROM final WHERE inv2 IS NOT NULL AND {rules.level2_ppm is not None}
    UNION ALL
    SELECT leader, f3 FROM final WHERE leader IS NOT NULL AND {rules.leader_ppm is not None}
  )
SELECT member, sum(amount)::BIGINT AS total_fen FROM paid GROUP BY member
"""


def duckdb_load(con, data: Path, orders_limit: int | None = None) -> None:  # type: ignore[no-untyped-def]
    limit = f"WHERE id < {int(orders_limit)}" if orders_limit is not None else ""
    con.execute(f"""
        CREATE OR REPLACE TABLE members AS
        SELECT member, inviter, coalesce(role = 'leader', false) AS is_leader
        FROM read_parquet('{data / "members.parquet"}');
        CREATE OR REPLACE TABLE orders AS
        SELECT id, buyer, amount_fen, refund_amount_fen
        FROM read_parquet('{data / "orders.parquet"}') {limit};
    """)


def duckdb_totals(con, rules: Rules, n_members: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    macros, query = duckdb_sql(rules)
    for macro in macros:
        con.execute(macro)
    result = con.execute(query).fetchnumpy()
    totals = np.zeros(n_members, dtype=np.int64)
    totals[result["member"].astype(np.int64)] = result["total_fen"].astype(np.int64)
    return totals


# --------------------------------------------------------------------------
# pandas / numpy, vectorised


def nearest_leader_above(inviter: np.ndarray, is_leader: np.ndarray) -> np.ndarray:
    """Each member's nearest leader strictly above it, -1 for none, by
    pointer jumping (O(log depth) vectorised rounds)."""
    n = len(inviter)
    parent_leader = np.zeros(n, dtype=bool)
    has_parent = inviter >= 0
    parent_leader[has_parent] = is_leader[inviter[has_parent]]
    answer = np.where(parent_leader, inviter, -1)
    done = ~has_parent | parent_leader
    jump = np.where(done, -1, inviter)  # the ancestor whose answer is ours, while not done
    while not done.all():
        todo = np.flatnonzero(~done)
        target = jump[todo]
        resolved = done[target]
        answer[todo[resolved]] = answer[target[resolved]]
        done_next = done.copy()
        done_next[todo[resolved]] = True
        jump_next = jump.copy()
        jump_next[todo[~resolved]] = jump[target[~resolved]]
        done, jump = done_next, jump_next
    return answer


def pandas_totals(members: pd.DataFrame, orders: pd.DataFrame, rules: Rules) -> np.ndarray:
    n = len(members)
    if not (members["member"].to_numpy() == np.arange(n)).all():
        raise ValueError("members must be numbered 0..n-1 in row order")
    inviter = members["inviter"].fillna(-1).astype("int64").to_numpy()
    is_leader = (members["role"] == "leader").fillna(False).to_numpy(dtype=bool)
    inviter2 = np.where(inviter >= 0, inviter[np.maximum(inviter, 0)], -1)
    leader = nearest_leader_above(inviter, is_leader)

    buyer = orders["buyer"].to_numpy()
    amount = orders["amount_fen"].to_numpy(dtype=np.int64)
    net = amount - orders["refund_amount_fen"].to_numpy(dtype=np.int64)
    inv1, inv2, ldr = inviter[buyer], inviter2[buyer], leader[buyer]
    tier_from = np.array(rules.tier_from, dtype=np.int64)
    tier_ppm = np.array(rules.tier_ppm, dtype=np.int64)

    def capped(base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        def pay(ppm: np.ndarray | int) -> np.ndarray:
            return (base * ppm + 500_000) // 1_000_000
        zero = np.zeros_like(base)
        l1 = np.where(inv1 >= 0, pay(tier_ppm[np.searchsorted(tier_from, base, "right") - 1]),
                      0) if rules.has_level1 else zero
        l2 = np.where(inv2 >= 0, pay(rules.level2_ppm), 0) if rules.level2_ppm else zero
        ld = np.where(ldr >= 0, pay(rules.leader_ppm), 0) if rules.leader_ppm else zero
        room = base * rules.cap_ppm // 1_000_000 if rules.cap_ppm != NO_CAP else None
        if room is None:
            return l1, l2, ld
        c1 = np.minimum(l1, room)
        room = room - c1
        c2 = np.minimum(l2, room)
        room = room - c2
        return c1, c2, np.minimum(ld, room)

    original, recomputed = capped(amount), capped(net)
    parts = []
    for who, before, after, on in ((inv1, original[0], recomputed[0], rules.has_level1),
                                   (inv2, original[1], recomputed[1], rules.level2_ppm),
                                   (ldr, original[2], recomputed[2], rules.leader_ppm)):
        if on:
            paid = who >= 0
            parts.append(pd.DataFrame({"member": who[paid],
                                       "amount": np.minimum(before, after)[paid]}))
    paid = pd.concat(parts, ignore_index=True)
    sums = paid.groupby("member", sort=False)["amount"].sum()
    totals = np.zeros(n, dtype=np.int64)
    totals[sums.index.to_numpy()] = sums.to_numpy(dtype=np.int64)
    return totals


# --------------------------------------------------------------------------
# Pure Python, one order at a time


def python_totals(inviter: list[int], is_leader: list[bool], buyer: list[int],
                  amount: list[int], refund: list[int], rules: Rules) -> list[int]:
    totals = [0] * len(inviter)
    has_cap = rules.cap_ppm != NO_CAP

    def entries(base: int, inv1: int, inv2: int, ldr: int) -> list[int]:
        out = [0, 0, 0]
        if inv1 >= 0 and rules.has_level1:
            out[0] = (base * rules.tier_rate(base) + 500_000) // 1_000_000
        if inv2 >= 0 and rules.level2_ppm is not None:
            out[1] = (base * rules.level2_ppm + 500_000) // 1_000_000
        if ldr >= 0 and rules.leader_ppm is not None:
            out[2] = (base * rules.leader_ppm + 500_000) // 1_000_000
        if has_cap:
            room = base * rules.cap_ppm // 1_000_000
            for i in range(3):
                out[i] = min(out[i], room)
                room -= out[i]
        return out

    for b, a, r in zip(buyer, amount, refund):
        inv1 = inviter[b]
        inv2 = inviter[inv1] if inv1 >= 0 else -1
        ldr = inv1
        while ldr >= 0 and not is_leader[ldr]:
            ldr = inviter[ldr]
        paid = entries(a, inv1, inv2, ldr)
        if r:
            paid = [min(x, y) for x, y in zip(paid, entries(a - r, inv1, inv2, ldr))]
        for who, value in zip((inv1, inv2, ldr), paid):
            if who >= 0:
                totals[who] += value
    return totals


def ledger_sums(ledger: pd.DataFrame, n_members: int) -> np.ndarray:
    """Per-member-row totals of a ``refpay.settle_ledger`` ledger frame (its
    ``member_row`` and ``amount_fen``), in int64: how the benchmark checks
    that the kernel's ledger rows add up to everyone else's totals."""
    totals = np.zeros(n_members, dtype=np.int64)
    np.add.at(totals, ledger["member_row"].to_numpy(), ledger["amount_fen"].to_numpy())
    return totals
