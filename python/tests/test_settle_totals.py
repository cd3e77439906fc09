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


@pytest.mark.parametrize("repeat", [None, "members", "orders"])
def test_integer_ids_settle_as_their_strings(repeat: str | None) -> None:
    # Integer ids reach C++ as integers (int_ids); every result, errors for
    # a repeated id included, must be what their str() gives.
    members, orders = clean_tables(seed=11, members=200, orders=1500)
    member_ids = np.arange(200, dtype=np.int64) * 7919 % 1000 - 500  # unordered, negative too
    row_of = {f"m{i}": i for i in range(200)}
    members = members.assign(
        member=member_ids,
        inviter=pd.array([None if pd.isna(i) else member_ids[row_of[i]] for i in members["inviter"]],
                         dtype="Int64"))
    orders = orders.assign(id=np.arange(1500, dtype=np.int64) * 3,
                           buyer=member_ids[[row_of[b] for b in orders["buyer"]]])
    if repeat == "members":
        members.loc[8, "member"] = members.loc[2, "member"]
    elif repeat == "orders":
        orders.loc[8, "id"] = orders.loc[2, "id"]
    strings_members = members.assign(member=members["member"].astype(str),
                                     inviter=members["inviter"].astype(str).where(
                                         members["inviter"].notna(), None))
    strings_orders = orders.assign(id=orders["id"].astype(str), buyer=orders["buyer"].astype(str))
    policy = refpay.Policy.from_dict(KERNEL_POLICY)
    for settle in (refpay.settle_totals, refpay.settle_ledger):
        got = settle(members, orders, policy)
        want = settle(strings_members, strings_orders, policy)
        assert (got.engine_reason == "") == (repeat is None)
        pd.testing.assert_frame_equal(got.totals, want.totals)
        pd.testing.assert_frame_equal(got.errors, want.errors)
    got = refpay.settle(members, orders, policy)
    want = refpay.settle(strings_members, strings_orders, policy)
    pd.testing.assert_frame_equal(got.ledger, want.ledger)
    pd.testing.assert_frame_equal(got.errors, want.errors)
    if repeat is not None:
        assert f"duplicate_{repeat[:-1]}" in set(got.errors["code"])
