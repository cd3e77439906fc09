"""What several test files share: where the public audit cases are, and
deterministic test data (a referral tree and an order stream made with numpy,
and the policy the settle/event comparison runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: shared/cases/public beside the repository.
PUBLIC_CASES = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / "public"

ZONE = "Asia/Shanghai"
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US



def public_cases_dir() -> Path:
    """PUBLIC_CASES, or skip the test when it is absent."""
    if not PUBLIC_CASES.is_dir():
        pytest.skip(f"public cases not found at {PUBLIC_CASES}")
    return PUBLIC_CASES


#: The policy the settle/event comparison runs: tiers, a category override,
#: a leader with a peer bonus, every cap, a hold period and two checks, so
#: that every part of an entry's life (caps, holds, refunds, clawbacks) is
#: exercised by both paths.
RICH_POLICY = {
    "name": "rich",
    "levels": [
        {"tiers": [{"below": "300", "rate": "4%"},
                   {"from": "300", "below": "500", "rate": "5%"},
                   {"from": "500", "rate": "8%"}]},
        {"rate": "2%"},
    ],
    "leader": {"rate": "1.5%", "max_depth": 5, "peer": {"rate": "10%"}},
    "by_category": {"course": {"levels": [{"fixed": "20.00"}]}},
    "caps": {"order_total": "30%", "member_month": "300.00", "budget": "50000.00"},
    "settlement": {"hold_days": 7},
    "checks": {"shared_identity": {"action": "hold"},
               "split_orders": {"max_orders": 2, "window_minutes": 30, "action": "flag"}},
}


def fen_text(fen: np.ndarray) -> list[str]:
    """Exact decimal strings of fen amounts: 12345 → "123.45"."""
    return [f"{value // 100}.{value % 100:02d}" for value in fen.tolist()]


@dataclass(frozen=True)
class Population:
    members: pd.DataFrame
    orders: pd.DataFrame
    as_of: pd.Timestamp  # the end of the window: no event is later


def make_population(n_members: int, n_orders: int, seed: int) -> Population:
    """A deterministic referral tree and order stream, with some rows the
    engine must reject (unknown inviter, order before its buyer joined,
    over-refund), second accounts sharing a device with their inviter and
    orders split in three."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01T00:00:00+08:00").value // 1000
    joined = start + np.sort(rng.integers(0, 60 * DAY_US // 1_000_000, n_members)) * 1_000_000
    rows = np.arange(n_members)
    inviter_row = np.where(rng.random(n_members) < 0.1, -1,
                           (rng.random(n_members) * rows).astype(np.int64))
    inviter_row[0] = -1
    ids = np.array([f"m{i}" for i in range(n_members)], dtype=object)
    inviter = pd.Series(np.where(inviter_row >= 0, ids[inviter_row], None), dtype=object)
    inviter[rng.random(n_members) < 0.005] = "ghost"
    device = np.array([f"d{i}" for i in range(n_members)], dtype=object)
    second = (rng.random(n_members) < 0.05) & (inviter_row >= 0)
    device[second] = device[inviter_row[second]]
    role = np.where(rng.random(n_members) < 0.03, "leader", None)
    members = pd.DataFrame({
        "member": ids,
        "inviter": inviter,
        "joined_at": pd.to_datetime(joined, unit="us", utc=True).tz_convert(ZONE),
        "role": role,
        "region": rng.choice(["bj", "sh", "gz"], n_members),
        "device": device,
    })

    buyer = rng.integers(0, n_members, n_orders)
    at = joined[buyer] + rng.integers(0, 10 * DAY_US // 1_000_000, n_orders) * 1_000_000
    at[rng.random(n_orders) < 0.01] -= DAY_US  # some orders before their buyer joined
    split = rng.choice(n_orders // 3, n_orders // 100, replace=False) * 3  # split orders:
    for step in (1, 2):  # two more orders of the same buyer 10 and 20 minutes later
        buyer[split + step] = buyer[split]
        at[split + step] = at[split] + step * 600_000_000
    amount = rng.integers(100, 100_000, n_orders)
    # Confirmations and refunds past the end of the window have not happened.
    end = start + 70 * DAY_US
    no_time = np.iinfo(np.int64).min
    confirmed = at + rng.integers(1, 10 * 24, n_orders) * HOUR_US
    confirmed = np.where((rng.random(n_orders) < 0.7) & (confirmed <= end), confirmed, no_time)
    refunded_at = at + rng.integers(1, 20 * 24, n_orders) * HOUR_US
    refunded = (rng.random(n_orders) < 0.15) & (refunded_at <= end)
    refunded_at = np.where(refunded, refunded_at, no_time)
    refund = np.where(refunded, rng.integers(1, amount + 1), 0)
    over = refunded & (rng.random(n_orders) < 0.1)  # some refunds exceed their order
    refund[over] += amount[over]
    orders = pd.DataFrame({
        "id": [f"o{i}" for i in range(n_orders)],
        "buyer": ids[buyer],
        "amount": fen_text(amount),
        "at": pd.to_datetime(at, unit="us", utc=True).tz_convert(ZONE),
        "category": rng.choice(["goods", "goods", "course"], n_orders),
        "confirmed_at": pd.to_datetime(confirmed, unit="us", utc=True).tz_convert(ZONE),
        "refund_amount_fen": refund.astype(np.int64),
        "refunded_at": pd.to_datetime(refunded_at, unit="us", utc=True).tz_convert(ZONE),
    })
    orders = orders.sort_values("at", kind="stable", ignore_index=True)
    return Population(members, orders, pd.Timestamp(end * 1000, tz="UTC").tz_convert(ZONE))
