"""refpay.settle_ledger: the ledger and totals of refpay.settle without an
engine, by the columnar kernel where the policy allows and by the engine
otherwise."""

from __future__ import annotations

import pandas as pd
import pytest
from support import RICH_POLICY
from test_settle_totals import KERNEL_POLICY, by_member, clean_tables

import refpay

LEDGER_COLUMNS = ["order", "member", "kind", "amount_fen", "rule_amount_fen", "status",
                  "action", "clawback", "amount_yuan_plot_only"]


def same_ledger(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Row for row; ids compared as strings (the categories differ: the
    engine's are its ids, settle_ledger's the tables')."""
    assert list(got.columns) == LEDGER_COLUMNS + ["order_row", "member_row"]
    for column in LEDGER_COLUMNS:
        left, right = got[column], want[column]
        if column in ("order", "member"):
            left, right = left.astype("str"), right.astype("str")
        pd.testing.assert_series_equal(left, right, check_categorical=False, obj=column)


@pytest.mark.parametrize("later_days", [0, 40])
def test_kernel_ledger_equals_settles_ledger(later_days: int) -> None:
    members, orders = clean_tables()
    policy = refpay.Policy.from_dict(KERNEL_POLICY)
    as_of = orders[["at", "confirmed_at", "refunded_at"]].max().max() + pd.Timedelta(
        days=later_days)
    got = refpay.settle_ledger(members, orders, policy, as_of=as_of)
    want = refpay.settle(members, orders, policy, as_of=as_of)
    assert got.engine_reason == ""
    assert got.errors.empty
    same_ledger(got.ledger, want.ledger)
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))
    # The row columns point into the input tables.
    rows = got.ledger["order_row"].to_numpy()
    assert (orders["id"].to_numpy()[rows] == got.ledger["order"].astype("str")).all()
    rows = got.ledger["member_row"].to_numpy()
    assert (members["member"].to_numpy()[rows] == got.ledger["member"].astype("str")).all()
    assert got.ledger["clawback"].any()
    assert "settled by kernel" in repr(got)


def test_other_policies_give_the_engines_ledger_in_table_rows() -> None:
    members, orders = clean_tables(seed=5)
    orders.loc[3, "buyer"] = "nobody"
    policy = refpay.Policy.from_dict(RICH_POLICY)
    got = refpay.settle_ledger(members, orders, policy)
    want = refpay.settle(members, orders, policy)
    assert got.engine_reason != ""
    same_ledger(got.ledger, want.ledger)
    pd.testing.assert_frame_equal(got.errors, want.errors)
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))


def test_needs_a_policy_and_a_good_as_of() -> None:
    members, orders = clean_tables(seed=2, members=20, orders=50)
    with pytest.raises(TypeError, match="refpay.Policy"):
        refpay.settle_ledger(members, orders, KERNEL_POLICY)  # type: ignore[arg-type]
    with pytest.raises(refpay.RefpayError, match="precedes the last event"):
        refpay.settle_ledger(members, orders, refpay.Policy.from_dict(KERNEL_POLICY),
                             as_of=members["joined_at"].iloc[0])
