"""refpay.settle_totals: the per-member totals of refpay.settle, by the
columnar kernel where the policy allows and by the engine otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import RICH_POLICY

import refpay

KERNEL_POLICY = {
    "levels": [{"mode": "whole", "tiers": [{"below": "3000", "rate": "4%"},
                                           {"from": "3000", "below": "5000", "rate": "5%"},
                                           {"from": "5000", "rate": "8%"}]},
               {"rate": "5%"}],
    "leader": {"rate": "2%"},
    "caps": {"order_total": "10%"},
    "settlement": {"hold_days": 7},
    "checks": {"shared_identity": "off"},
}


def clean_tables(seed: int = 3, members: int = 400, orders: int = 3000):
    """Tables the engine accepts row for row: inviters join first, buyers
    join before they buy, refunds within the amount and after the order."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-03-01T00:00:00+08:00")
    joined = t0 + pd.to_timedelta(np.arange(members), unit="s")
    inviter = [None] + [f"m{int(rng.integers(0, i))}" for i in range(1, members)]
    member_frame = pd.DataFrame({
        "member": [f"m{i}" for i in range(members)],
        "inviter": inviter,
        "joined_at": joined,
        "role": np.where(rng.random(members) < 0.1, "leader", ""),
    })
    buyer = rng.integers(0, members, orders)
    at = joined[buyer] + pd.to_timedelta(rng.integers(0, 86_400, orders), unit="s")
    amount = np.exp(rng.normal(10, 1.2, orders)).astype(np.int64) + 1
    refund = np.where(rng.random(orders) < 0.1, np.maximum(1, amount // 3), 0)
    refund[::17] = amount[::17]
    confirmed = pd.Series(at + pd.to_timedelta(rng.integers(0, 20, orders), unit="D"))
    confirmed[rng.random(orders) < 0.2] = pd.NaT
    order_frame = pd.DataFrame({
        "id": [f"o{i}" for i in range(orders)],
        "buyer": [f"m{b}" for b in buyer],
        "amount_fen": amount,
        "at": at,
        "confirmed_at": confirmed,
        "refund_amount_fen": refund,
        "refunded_at": pd.Series(at + pd.to_timedelta(rng.integers(0, 30, orders), unit="D")),
    })
    return member_frame, order_frame


def by_member(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("member").sort_index()


@pytest.mark.parametrize("later_days", [0, 40])
def test_kernel_totals_equal_settle_totals(later_days: int) -> None:
    members, orders = clean_tables()
    policy = refpay.Policy.from_dict(KERNEL_POLICY)
    as_of = orders[["at", "confirmed_at", "refunded_at"]].max().max() + pd.Timedelta(
        days=later_days)
    got = refpay.settle_totals(members, orders, policy, as_of=as_of)
    want = refpay.settle(members, orders, policy, as_of=as_of, ledger=False)
    assert got.engine_reason == ""
    assert got.errors.empty
    assert list(got.totals["member"]) == list(members["member"])  # by member row
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))
    assert got.totals["total_fen"].sum() > 0
    assert "settled by kernel" in repr(got)


def test_other_policies_are_settled_by_the_engine_with_the_same_totals() -> None:
    members, orders = clean_tables(seed=5)
    policy = refpay.Policy.from_dict(RICH_POLICY)
    got = refpay.settle_totals(members, orders, policy)
    want = refpay.settle(members, orders, policy, ledger=False)
    assert got.engine_reason != ""
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))


def test_rejected_rows_fall_back_and_are_reported_like_settle() -> None:
    members, orders = clean_tables(seed=7)
    orders.loc[5, "buyer"] = "nobody"
    policy = refpay.Policy.from_dict(KERNEL_POLICY)
    got = refpay.settle_totals(members, orders, policy)
    want = refpay.settle(members, orders, policy, ledger=False)
    assert got.engine_reason == "order row 5 would be rejected"
    pd.testing.assert_frame_equal(got.errors, want.errors)
    assert "'nobody' is not a member" in got.errors["message"].iloc[0]
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))


def test_bad_as_of_raises_the_engines_error() -> None:
    members, orders = clean_tables(seed=2, members=20, orders=50)
    with pytest.raises(refpay.RefpayError, match="precedes the last event"):
        refpay.settle_totals(members, orders, refpay.Policy.from_dict(KERNEL_POLICY),
                             as_of=members["joined_at"].iloc[0])
