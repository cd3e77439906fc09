"""refpay.Engine: events in, DataFrames out; every error class with its code."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

import refpay

T0 = "2026-03-01T09:00:00+08:00"
T1 = "2026-03-02T10:00:00+08:00"
T2 = "2026-03-03T10:00:00+08:00"
AS_OF = "2026-04-01T00:00:00+08:00"
CST = timezone(timedelta(hours=8))

TREE = [
    {"type": "join", "member": "A", "at": T0},
    {"type": "join", "member": "B", "inviter": "A", "at": T0},
    {"type": "join", "member": "C", "inviter": "B", "at": T0},
    {"type": "order", "id": "o1", "buyer": "C", "amount": "100.00", "at": T1, "event_id": "e1"},
]


def engine_with_tree(**policy: object) -> refpay.Engine:
    engine = refpay.Engine(refpay.Policy.from_dict(
        {"levels": [{"fixed": "20.00"}, {"rate": "10%"}], "settlement": {"hold_days": 7},
         **policy}))
    for event in TREE:
        engine.apply(event)
    return engine


@pytest.mark.parametrize(("event", "error", "code"), [
    ({"type": "launch", "at": T2}, refpay.EventError, "bad_event"),
    ({"type": "join", "member": "D", "at": T2, "colour": "red"}, refpay.EventError, "bad_event"),
    ({"type": "join", "member": "D", "at": "2026-03-03 10:00:00"}, refpay.EventError, "bad_time"),
    ({"type": "join", "member": "D", "at": T0}, refpay.EventError, "out_of_order"),
    ({"type": "order", "id": "o1", "buyer": "C", "amount": "100.00", "at": T1,
      "event_id": "e1"}, refpay.EventError, "duplicate_event"),
    ({"type": "order", "id": "o9", "buyer": "C", "amount": "100.00", "at": T2,
      "event_id": "e1"}, refpay.EventError, "conflicting_event"),
    ({"type": "join", "member": "A", "at": T2}, refpay.EventError, "duplicate_member"),
    ({"type": "rebind", "member": "C", "inviter": "A", "at": T2}, refpay.EventError,
     "rebind_forbidden"),
    ({"type": "order", "id": "o1", "buyer": "C", "amount": "1.00", "at": T2},
     refpay.EventError, "duplicate_order"),
    ({"type": "order", "id": "o2", "buyer": "C", "amount": "0", "at": T2},
     refpay.EventError, "bad_amount"),
    ({"type": "order", "id": "o2", "buyer": "C", "amount": 99.9, "at": T2},
     refpay.EventError, "bad_amount"),
    ({"type": "refund", "order": "o1", "amount": "100.01", "at": T2}, refpay.EventError,
     "over_refund"),
    ({"type": "join", "member": "D", "inviter": "Z", "at": T2}, refpay.UnknownIdError,
     "unknown_member"),
    ({"type": "confirm", "order": "o9", "at": T2}, refpay.UnknownIdError, "unknown_order"),
])
def test_rejected_events_raise_with_code_and_change_nothing(event, error, code):
    engine = engine_with_tree()
    before = engine.ledger(AS_OF)
    with pytest.raises(error) as raised:
        engine.apply(event)
    assert raised.value.code == code
    assert isinstance(raised.value, refpay.RefpayError)
    assert str(raised.value) == raised.value.message != ""
    pd.testing.assert_frame_equal(engine.ledger(AS_OF), before)
    assert engine.member_count == 3


def test_cycle_is_rejected_where_rebinding_is_allowed():
    engine = engine_with_tree(binding={"mode": "free"})
    with pytest.raises(refpay.EventError) as raised:
        engine.apply({"type": "rebind", "member": "A", "inviter": "C", "at": T2})
    assert raised.value.code == "cycle"
    engine.apply({"type": "rebind", "member": "C", "inviter": "A", "at": T2})


def test_unknown_id_error_is_a_key_error_with_a_plain_message():
    engine = engine_with_tree()
    with pytest.raises(KeyError) as raised:
        engine.explain("o9")
    assert raised.value.code == "unknown_order"  # type: ignore[attr-defined]
    assert not str(raised.value).startswith("'")


def test_errors_survive_pickling():
    error = refpay.EventError("levels[0]: bad", "bad_amount")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.message, copy.code) == (refpay.EventError, "levels[0]: bad",
                                                      "bad_amount")


def test_times_may_be_aware_datetimes_but_not_naive_ones():
    engine = engine_with_tree()
    engine.apply({"type": "confirm", "order": "o1", "at": datetime(2026, 3, 3, 10, tzinfo=CST)})
    with pytest.raises(refpay.EventError) as raised:
        engine.apply({"type": "join", "member": "D", "at": datetime(2026, 3, 4)})
    assert raised.value.code == "bad_time"
    for as_of in (datetime(2026, 4, 1), pd.Timestamp("2026-04-01"), np.datetime64("2026-04-01")):
        with pytest.raises(refpay.EventError, match="naive"):
            engine.ledger(as_of)
    by_text = engine.ledger("2026-03-10T10:00:00+08:00")
    by_datetime = engine.ledger(datetime(2026, 3, 10, 2, tzinfo=timezone.utc))
    by_timestamp = engine.ledger(pd.Timestamp("2026-03-10T10:00:00", tz="Asia/Shanghai"))
    pd.testing.assert_frame_equal(by_text, by_datetime)
    pd.testing.assert_frame_equal(by_text, by_timestamp)
    assert set(by_text["status"]) == {"available"}  # confirmed 3-03 10:00 + 7 days


def test_as_of_before_the_last_event_is_rejected():
    with pytest.raises(refpay.EventError) as raised:
        engine_with_tree().totals(T0)
    assert raised.value.code == "bad_as_of"


def test_decimal_amounts_are_exact():
    engine = engine_with_tree()
    engine.apply({"type": "order", "id": "o2", "buyer": "C", "amount": Decimal("0.15"), "at": T2})
    ledger = engine.net_ledger(AS_OF)
    # A: level2 10% * 0.15 = 0.015 → 0.02 half_up; B: level1 fixed 20.00
    assert ledger[ledger["order"] == "o2"]["amount"].tolist() == ["0.02", "20.00"]


def test_ledger_frame_is_exact_and_typed():
    engine = engine_with_tree()
    engine.apply({"type": "confirm", "order": "o1", "at": T2})
    engine.apply({"type": "refund", "order": "o1", "amount": "30.00",
                  "at": "2026-03-20T10:00:00+08:00"})
    ledger = engine.ledger(AS_OF)
    assert list(ledger.columns) == ["order", "member", "kind", "amount", "amount_fen", "status",
                                    "action", "clawback", "at", "explanation",
                                    "amount_yuan_plot_only"]
    assert ledger["amount_fen"].dtype == np.int64
    assert ledger["clawback"].dtype == bool
    assert str(ledger["at"].dtype) == "datetime64[us, Asia/Shanghai]"
    floats = [c for c in ledger.columns if pd.api.types.is_float_dtype(ledger[c].dtype)]
    assert floats == ["amount_yuan_plot_only"]
    assert all(isinstance(a, str) for a in ledger["amount"])
    as_text = [str(refpay.Money.from_fen(fen)) for fen in ledger["amount_fen"]]
    assert as_text == ledger["amount"].tolist()
    assert ledger[["member", "kind", "amount", "clawback"]].values.tolist() == [
        ["B", "level1", "20.00", False], ["A", "level2", "10.00", False],
        ["A", "level2", "-3.00", True]]
    assert "30.00" in ledger["explanation"].iloc[1]


def test_net_ledger_balances_totals_and_flags():
    engine = engine_with_tree()
    engine.apply({"type": "join", "member": "C2", "inviter": "C", "at": T2})
    net = engine.net_ledger(AS_OF)
    assert net.values.tolist() == [["o1", "A", "level2", "10.00", 1000, "pending"],
                                   ["o1", "B", "level1", "20.00", 2000, "pending"]]
    balances = engine.balances(AS_OF)
    assert balances.values.tolist() == [["A", "pending", "10.00", 1000],
                                        ["B", "pending", "20.00", 2000]]
    totals = engine.totals(AS_OF)
    assert totals["member"].tolist() == ["A", "B", "C", "C2"]  # dense, join order
    assert totals["total_fen"].tolist() == [1000, 2000, 0, 0]
    assert all(totals[c].dtype == np.int64 for c in totals.columns if c.endswith("_fen"))
    assert list(engine.flags().columns) == ["check", "member", "order"]
    assert (engine.member_count, engine.order_count) == (4, 1)
    assert engine.last_event_time == pd.Timestamp(T2)
    assert engine.explain("o1")[0].startswith("level1 to B")


def test_apply_many_reports_instead_of_raising():
    engine = engine_with_tree()
    rejected = engine.apply_many([
        {"type": "join", "member": "D", "inviter": "Z", "at": T2},
        {"type": "join", "member": "D", "at": T2},
        {"type": "join", "member": "E", "at": datetime(2026, 3, 4)},
        "not an event",
        {"type": "order", "id": "o2", "buyer": "D", "amount": "1.234", "at": T2},
    ])
    assert list(rejected.columns) == ["index", "code", "message"]
    assert rejected[["index", "code"]].values.tolist() == [
        [0, "unknown_member"], [2, "bad_time"], [3, "bad_event"], [4, "bad_amount"]]
    assert engine.member_count == 4


def test_apply_many_takes_a_frame_and_errors_accumulate():
    events = pd.DataFrame([
        {"type": "join", "member": "D", "inviter": "Z", "at": pd.Timestamp(T2)},
        {"type": "join", "member": "D", "at": pd.Timestamp(T2)},
        {"type": "order", "id": "o2", "buyer": "D", "amount": "50.00", "at": pd.Timestamp(T2)},
    ], index=["x", "y", "z"])
    engine = engine_with_tree()
    first = engine.apply_many(events)
    assert first[["index", "code"]].values.tolist() == [["x", "unknown_member"]]
    second = engine.apply_many([{"type": "join", "member": "D", "at": T2}])
    assert second["code"].tolist() == ["duplicate_member"]
    errors = engine.errors()
    assert list(errors.columns) == ["event", "index", "code", "message"]
    assert errors["event"].tolist() == [4, 7]  # after the 4 events of the tree
    assert errors["event"].dtype == np.int64


def test_a_frame_and_a_list_of_dicts_give_the_same_ledger():
    events = [*TREE, {"type": "confirm", "order": "o1", "at": T2},
              {"type": "refund", "order": "o1", "amount": "10.00", "at": T2}]
    by_list = refpay.Engine(refpay.Policy.from_dict({"levels": [{"rate": "10%"}]}))
    by_frame = refpay.Engine(by_list.policy)
    assert by_list.apply_many(events).empty
    assert by_frame.apply_many(pd.DataFrame(events)).empty
    pd.testing.assert_frame_equal(by_list.ledger(AS_OF), by_frame.ledger(AS_OF))
    assert by_frame.errors().empty


def test_engine_needs_a_policy():
    with pytest.raises(TypeError, match=r"Policy\.from_dict"):
        refpay.Engine({"levels": []})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        refpay.Engine(refpay.Policy.from_dict({})).apply("join")  # type: ignore[arg-type]


def test_reserve_changes_no_result_and_refuses_bad_counts():
    reserved = refpay.Engine(refpay.Policy.from_dict(
        {"levels": [{"fixed": "20.00"}, {"rate": "10%"}], "settlement": {"hold_days": 7}}))
    reserved.reserve(members=100, orders=100)
    for event in TREE:
        reserved.apply(event)
    pd.testing.assert_frame_equal(reserved.ledger(AS_OF), engine_with_tree().ledger(AS_OF))
    for members, orders in [(-1, 0), (0, 2**31)]:
        with pytest.raises(refpay.EventError, match="must be in") as error:
            reserved.reserve(members, orders)
        assert error.value.code == "bad_value"
    assert (reserved.member_count, reserved.order_count) == (3, 1)
