"""refpay.settle_ledger: the ledger and totals of refpay.settle without an
engine, by the columnar kernel where the policy allows and by the engine
otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support import RICH_POLICY
from test_settle_totals import KERNEL_POLICY, by_member, clean_tables

import refpay

VALUE_COLUMNS = ["kind", "amount_fen", "rule_amount_fen", "status", "action", "clawback",
                 "amount_yuan_plot_only"]


def same_ledger(got: pd.DataFrame, want: pd.DataFrame, members: pd.DataFrame,
                orders: pd.DataFrame) -> None:
    """Row for row: settle_ledger's table rows name settle's ids."""
    assert list(got.columns) == ["order_row", "member_row"] + VALUE_COLUMNS
    order_ids = orders["id"].to_numpy()[got["order_row"].to_numpy()]
    assert list(order_ids) == list(want["order"].astype("str"))
    member_ids = members["member"].to_numpy()[got["member_row"].to_numpy()]
    assert list(member_ids) == list(want["member"].astype("str"))
    pd.testing.assert_frame_equal(got[VALUE_COLUMNS], want[VALUE_COLUMNS])


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
    same_ledger(got.ledger, want.ledger, members, orders)
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))
    pd.testing.assert_frame_equal(got.flags, want.flags)
    assert got.ledger["clawback"].any()
    assert "settled by kernel" in repr(got)


def test_other_policies_give_the_engines_ledger_in_table_rows() -> None:
    members, orders = clean_tables(seed=5)
    orders.loc[3, "buyer"] = "nobody"
    policy = refpay.Policy.from_dict(RICH_POLICY)
    got = refpay.settle_ledger(members, orders, policy)
    want = refpay.settle(members, orders, policy)
    assert got.engine_reason != ""
    same_ledger(got.ledger, want.ledger, members, orders)
    pd.testing.assert_frame_equal(got.flags, want.flags)
    pd.testing.assert_frame_equal(got.errors, want.errors)
    pd.testing.assert_frame_equal(by_member(got.totals), by_member(want.totals))


def test_needs_a_policy_and_a_good_as_of() -> None:
    members, orders = clean_tables(seed=2, members=20, orders=50)
    with pytest.raises(TypeError, match="refpay.Policy"):
        refpay.settle_ledger(members, orders, KERNEL_POLICY)  # type: ignore[arg-type]
    with pytest.raises(refpay.RefpayError, match="precedes the last event"):
        refpay.settle_ledger(members, orders, refpay.Policy.from_dict(KERNEL_POLICY),
                             as_of=members["joined_at"].iloc[0])


@pytest.mark.parametrize("first_id", [0, 7_000_000_000])
def test_flags_name_integer_ids_as_their_strings(first_id: int) -> None:
    # A binding cap raises flags; with integer ids only the flagged rows'
    # ids become strings, and they are the strings settle names.
    members, orders = clean_tables(seed=4, members=200, orders=1500)
    member_ids = {f"m{i}": first_id + 3 * i for i in range(len(members))}
    members["member"] = members["member"].map(member_ids)
    members["inviter"] = members["inviter"].map(member_ids)  # float: NaN for none
    orders["buyer"] = orders["buyer"].map(member_ids)
    orders["id"] = np.arange(len(orders), dtype=np.int64) * 5 + first_id
    policy = refpay.Policy.from_dict({**KERNEL_POLICY, "caps": {"order_total": "6%"}})
    got = refpay.settle_ledger(members, orders, policy)
    want = refpay.settle(members, orders, policy)
    assert got.engine_reason == ""
    assert len(got.flags) > 0
    pd.testing.assert_frame_equal(got.flags, want.flags)
