"""refpay.settle: the batch path agrees exactly with the event path, and its
input conversion refuses what would lose exactness."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from support import RICH_POLICY, Population, fen_text, make_population

import refpay
from refpay._engine import _exact_total
from refpay._settle import _Ids
from refpay._time import NO_TIME, time_column_micros


@pytest.fixture(scope="module")
def policy() -> refpay.Policy:
    return refpay.Policy.from_dict(RICH_POLICY)


def batch_events(pop: Population) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """The events SettleBatch makes of the tables, in its merge order (by
    time; members, then orders, confirmations, refunds at equal times), each
    with the (table, row) it comes from."""
    steps: list[tuple[int, int, int, int, dict[str, Any], tuple[str, int]]] = []
    for row, m in enumerate(pop.members.itertuples(index=False)):
        join: dict[str, Any] = {"type": "join", "member": m.member, "at": m.joined_at,
                                "region": m.region, "device": m.device}
        if m.inviter is not None:
            join["inviter"] = m.inviter
        steps.append((m.joined_at.value, 0, row, 0, join, ("members", row)))
        if isinstance(m.role, str):
            steps.append((m.joined_at.value, 0, row, 1,
                          {"type": "set_role", "member": m.member, "role": m.role,
                           "at": m.joined_at}, ("members", row)))
    for row, o in enumerate(pop.orders.itertuples(index=False)):
        steps.append((o.at.value, 1, row, 0,
                      {"type": "order", "id": o.id, "buyer": o.buyer, "amount": o.amount,
                       "category": o.category, "at": o.at}, ("orders", row)))
        if o.confirmed_at is not pd.NaT:
            steps.append((o.confirmed_at.value, 2, row, 0,
                          {"type": "confirm", "order": o.id, "at": o.confirmed_at},
                          ("orders", row)))
        if o.refund_amount_fen:
            steps.append((o.refunded_at.value, 3, row, 0,
                          {"type": "refund", "order": o.id,
                           "amount": fen_text(np.array([o.refund_amount_fen]))[0],
                           "at": o.refunded_at}, ("orders", row)))
    steps.sort(key=lambda step: step[:4])
    return [step[4] for step in steps], [step[5] for step in steps]


@pytest.fixture(scope="module")
def both_paths(population: Population, policy: refpay.Policy) -> tuple[Any, refpay.Engine, Any]:
    settled = refpay.settle(population.members, population.orders, policy,
                            as_of=population.as_of)
    events, sources = batch_events(population)
    engine = refpay.Engine(policy)
    rejected = engine.apply_many(events)
    return settled, engine, (rejected, sources)


def test_settle_agrees_exactly_with_the_event_path(population, both_paths):
    settled, engine, _ = both_paths
    as_of = population.as_of
    assert settled.ledger is not None
    assert len(settled.ledger) > 5000
    pd.testing.assert_frame_equal(settled.ledger, engine.ledger_table(as_of))
    pd.testing.assert_frame_equal(settled.totals, engine.totals(as_of))
    pd.testing.assert_frame_equal(settled.flags, engine.flags())
    pd.testing.assert_frame_equal(settled.engine.net_ledger(as_of), engine.net_ledger(as_of))


def test_the_comparison_exercises_every_status_and_clawbacks(both_paths):
    ledger = both_paths[0].ledger
    assert set(ledger["status"]) == {"pending", "frozen", "available", "held"}
    assert ledger["clawback"].any()
    assert set(both_paths[0].flags["check"]) >= {"shared_identity", "split_orders", "cap_member"}


def test_settle_rejects_the_same_rows_as_the_event_path(both_paths):
    settled, _, (rejected, sources) = both_paths
    from_events = sorted((*sources[i], code)
                         for i, code in zip(rejected["index"], rejected["code"], strict=True))
    errors = settled.errors
    from_batch = sorted(zip(errors["table"], errors["row"], errors["code"], strict=True))
    assert from_batch == from_events
    assert {"unknown_member", "over_refund", "unknown_order"} <= {c for _, _, c in from_batch}


def test_unknown_ids_are_named_in_errors(both_paths):
    errors = both_paths[0].errors
    unknown = errors[errors["code"] == "unknown_member"]
    assert unknown["message"].str.contains("'ghost' is not a member").any()
    assert unknown["message"].str.contains("out of range").sum() == 0


def test_pyarrow_tables_give_the_same_result(population, policy, both_paths):
    settled = refpay.settle(pa.Table.from_pandas(population.members),
                            pa.Table.from_pandas(population.orders), policy,
                            as_of=population.as_of)
    expected = both_paths[0]
    pd.testing.assert_frame_equal(settled.ledger, expected.ledger)
    pd.testing.assert_frame_equal(settled.totals, expected.totals)
    pd.testing.assert_frame_equal(settled.errors, expected.errors)


def test_iso_strings_and_amount_fen_give_the_same_result(population, policy, both_paths):
    members = population.members.assign(
        joined_at=population.members["joined_at"].map(pd.Timestamp.isoformat))
    orders = population.orders.assign(
        amount_fen=(population.orders["amount"].str.replace(".", "", regex=False)
                    .astype(np.int64)),
        at=population.orders["at"].map(pd.Timestamp.isoformat),
    ).drop(columns="amount")
    settled = refpay.settle(members, orders, policy, as_of=population.as_of)
    pd.testing.assert_frame_equal(settled.ledger, both_paths[0].ledger)


def test_money_columns_hold_no_floats(both_paths):
    settled = both_paths[0]
    for frame in (settled.ledger, settled.totals):
        floats = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c].dtype)]
        assert floats == [c for c in frame.columns if c.endswith("_plot_only")]
        for column in frame.columns:
            if column.endswith("_fen"):
                assert frame[column].dtype == np.int64
    totals = settled.totals
    statuses = totals[["pending_fen", "frozen_fen", "available_fen", "held_fen"]].sum(axis=1)
    assert (statuses == totals["total_fen"]).all()


def test_categorical_ledger_columns(both_paths):
    ledger = both_paths[0].ledger
    for column in ("order", "member", "kind", "status", "action"):
        assert isinstance(ledger[column].dtype, pd.CategoricalDtype), column
    assert list(ledger["status"].cat.categories) == ["pending", "frozen", "available", "held"]
    assert list(ledger["action"].cat.categories) == ["flag", "hold", "deny"]


def test_engine_of_the_result_explains_orders(both_paths):
    settled = both_paths[0]
    order = str(settled.ledger["order"].dropna().iloc[0])
    assert settled.engine.explain(order)


def test_default_as_of_is_the_latest_time_in_the_data(policy):
    pop = make_population(50, 80, seed=3)
    settled = refpay.settle(pop.members, pop.orders, policy, ledger=False)
    latest = max(pop.members["joined_at"].max(), pop.orders["at"].max(),
                 pop.orders["confirmed_at"].max(), pop.orders["refunded_at"].max())
    assert settled.as_of == latest
    assert settled.ledger is None
    assert str(settled.as_of.tz) == "Asia/Shanghai"


TINY_MEMBERS = pd.DataFrame({
    "member": [1, 2, 3],
    "inviter": [np.nan, 1.0, 2.0],  # integer ids stored as floats because of the missing cell
    "joined_at": ["2026-03-01T09:00:00+08:00"] * 3,
})


def tiny_orders(**columns: Any) -> pd.DataFrame:
    orders = {"id": ["o1"], "buyer": [3], "amount": ["100.00"], "at": ["2026-03-02T10:00:00+08:00"]}
    orders.update(columns)
    return pd.DataFrame(orders)


def test_ids_of_any_dtype_are_compared_as_strings():
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}, {"rate": "5%"}]})
    settled = refpay.settle(TINY_MEMBERS, tiny_orders(), policy)
    assert settled.errors.empty
    assert settled.totals["member"].tolist() == ["1", "2", "3"]
    assert settled.totals["pending_fen"].tolist() == [500, 1000, 0]


@pytest.mark.parametrize("ids", [[10, 20, 30, 40], [7, 8, 9, 10], [10, 20, 30, 40, 20]],
                         ids=["sparse", "dense", "repeated"])
def test_integer_ids_match_as_their_strings(ids: list[int]) -> None:
    # Integer ids are matched as integers (by offset when dense, else by
    # hashing, else as strings when repeated); the result must be the
    # string match's, unknown ids included.
    n = len(ids)
    inviter = [np.nan, ids[0], ids[1], 99, ids[0]][:n]
    members = pd.DataFrame({"member": ids, "inviter": [float(i) for i in inviter],
                            "joined_at": ["2026-03-01T09:00:00+08:00"] * n})
    orders = tiny_orders(id=["o1", "o2", "o3", "o4"], buyer=[ids[2], 77, ids[1], 6],
                         amount=["100.00"] * 4, at=["2026-03-02T10:00:00+08:00"] * 4)
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}, {"rate": "5%"}]})
    as_ints = refpay.settle(members, orders, policy)
    as_strings = refpay.settle(
        members.assign(member=[str(i) for i in ids],
                       inviter=[None if i != i else str(int(i)) for i in inviter]),
        orders.assign(buyer=orders["buyer"].astype(str)), policy)
    pd.testing.assert_frame_equal(as_ints.totals, as_strings.totals)
    pd.testing.assert_frame_equal(as_ints.errors, as_strings.errors)
    messages = " ".join(as_ints.errors["message"])
    assert "'99' is not a member" in messages and "'77' is not a member" in messages
    assert "'6' is not a member" in messages  # below a dense range
    assert as_ints.totals["total_fen"].sum() > 0


def test_dense_integer_ids_at_the_ends_of_int64() -> None:
    # Offsets wrap modulo 2**64; a wrapped offset must never match a row.
    big = np.iinfo(np.int64).max
    members = pd.DataFrame({"member": np.array([big - 1, big], dtype=np.int64),
                            "inviter": pd.array([None, big - 1], dtype="Int64"),
                            "joined_at": ["2026-03-01T09:00:00+08:00"] * 2})
    orders = tiny_orders(id=["o1", "o2"], buyer=np.array([big, -big - 1], dtype=np.int64),
                         amount=["100.00"] * 2, at=["2026-03-02T10:00:00+08:00"] * 2)
    result = refpay.settle(members, orders, refpay.Policy.from_dict({"levels": [{"rate": "10%"}]}))
    assert result.totals["pending_fen"].tolist() == [1000, 0]
    assert result.errors["message"].tolist() == ["buyer '-9223372036854775808' is not a member"]


def test_arrow_decimal_amounts_are_exact():
    orders = pa.Table.from_pandas(tiny_orders(amount=[Decimal("100.05")]))
    assert orders.schema.field("amount").type == pa.decimal128(5, 2)
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}]})
    settled = refpay.settle(TINY_MEMBERS, orders, policy)
    assert settled.totals["pending_fen"].tolist() == [0, 1001, 0]  # 10.005 → 10.01 half_up
    assert repr(settled).startswith("<refpay.SettleResult as_of=2026-03-02 10:00:00+08:00")


def test_integer_amounts_are_yuan():
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}]})
    settled = refpay.settle(TINY_MEMBERS, tiny_orders(amount=[100]), policy)
    assert settled.totals["pending_fen"].tolist() == [0, 1000, 0]


@pytest.mark.parametrize(
    ("orders", "code", "text"),
    [
        (tiny_orders(amount=[99.9]), "bad_amount", "orders.amount[0]: money must be a string"),
        (tiny_orders(amount=["1.005"]), "bad_amount", "orders.amount[0]"),
        (tiny_orders(amount=[None]), "bad_amount", "orders.amount[0]: missing amount"),
        (tiny_orders(amount_fen=[1.5]).drop(columns="amount"), "bad_amount",
         "fen must be integers"),
        (tiny_orders(amount_fen=[100]), "bad_event", "both amount and amount_fen"),
        (tiny_orders(at=["2026-03-02 10:00:00"]), "bad_time", "orders.at[0]"),
        (tiny_orders(at=[pd.Timestamp("2026-03-02T10:00:00")]), "bad_time", "naive"),
        (tiny_orders(refund_amount=["1.00"], refunded_at=[None]), "bad_time", "refunded_at[0]"),
        (tiny_orders(id=[None]), "bad_event", "orders.id[0]: missing id"),
        (tiny_orders().drop(columns="at"), "bad_event", "orders has no column at"),
    ],
)
def test_malformed_cells_raise_event_error_naming_the_cell(orders, code, text):
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}]})
    with pytest.raises(refpay.EventError) as raised:
        refpay.settle(TINY_MEMBERS, orders, policy)
    assert raised.value.code == code
    assert text in str(raised.value)


def test_naive_datetime_column_is_rejected():
    members = TINY_MEMBERS.assign(joined_at=pd.Timestamp("2026-03-01T09:00:00"))
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}]})
    with pytest.raises(refpay.EventError, match="naive") as raised:
        refpay.settle(members, tiny_orders(), policy)
    assert raised.value.code == "bad_time"
    with pytest.raises(refpay.EventError, match="naive"):
        refpay.settle(TINY_MEMBERS, tiny_orders(), policy, as_of=pd.Timestamp("2026-04-01"))


def test_settle_needs_tables_and_a_policy():
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}]})
    with pytest.raises(TypeError, match="pandas DataFrame or a pyarrow Table"):
        refpay.settle({"member": []}, tiny_orders(), policy)
    with pytest.raises(TypeError, match=r"refpay\.Policy"):
        refpay.settle(TINY_MEMBERS, tiny_orders(), {"levels": []})


def _columns_of(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    array = pa.array(ids, pa.large_string())
    _, offsets, data = array.buffers()
    return np.frombuffer(offsets, dtype=np.int64), np.frombuffer(data, dtype=np.uint8)


def test_string_columns_as_arrow_buffers_equal_lists(policy: refpay.Policy) -> None:
    """settle_batch reads a string column as Arrow buffers exactly as it
    reads the same column as a list of str (non-ASCII ids included)."""
    ids = ["甲", "乙", "c"]
    members = {"inviter": np.array([-1, 0, 1], dtype=np.int32),
               "joined_at": np.array([0, 1, 2], dtype=np.int64)}
    orders = {"ids": ["o1"], "buyer": np.array([2], dtype=np.int32),
              "amount": np.array([10_000], dtype=np.int64), "at": np.array([3], dtype=np.int64)}
    from_list, _ = refpay._core.settle_batch(policy._core, {**members, "ids": ids}, orders)
    from_buffers, _ = refpay._core.settle_batch(
        policy._core, {**members, "ids": _columns_of(ids)}, orders)
    assert from_buffers.snapshot() == from_list.snapshot()
    assert from_buffers.member_ids == ids


@pytest.mark.parametrize(("offsets", "message"), [
    ([0, 100, 2], "offsets decrease at row 1"),
    ([0, 1, 99], "offsets point outside the data buffer"),
    ([-1, 1, 2], "offsets point outside the data buffer"),
])
def test_bad_arrow_buffers_are_errors_naming_the_column(
        policy: refpay.Policy, offsets: list[int], message: str) -> None:
    members = {"ids": (np.array(offsets, dtype=np.int64), np.frombuffer(b"ab", dtype=np.uint8)),
               "inviter": np.array([-1, 0], dtype=np.int32),
               "joined_at": np.array([0, 1], dtype=np.int64)}
    with pytest.raises(ValueError, match=f"members.ids {message}"):
        refpay._core.settle_batch(policy._core, members, {})


def test_arrow_buffers_of_the_wrong_type_are_a_type_error(policy: refpay.Policy) -> None:
    members = {"ids": (np.array([0, 1], dtype=np.float64), b"a"),
               "inviter": np.array([-1], dtype=np.int32),
               "joined_at": np.array([0], dtype=np.int64)}
    with pytest.raises(TypeError, match="members.ids as buffers"):
        refpay._core.settle_batch(policy._core, members, {})


@pytest.mark.parametrize("column", [
    pd.Series([0, -7, 2**62], dtype=np.int64),
    pd.Series([1, None, -3], dtype="Int64"),
    pd.Series([5, 2**64 - 1], dtype=np.uint64),
    pd.Series([True, False]),
    pd.Series(["甲", None, "c"], dtype="str"),
    pd.Series(["a", 1, None], dtype=object),
])
def test_id_columns_read_as_their_str(column: pd.Series) -> None:
    from refpay._settle import _strings
    expected = ["" if pd.isna(v) else str(v) for v in column.astype(object)]
    assert _strings(column).to_pylist() == expected


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "UTC"])
def test_aware_time_columns_are_the_instants_the_engine_parses(unit: str, zone: str) -> None:
    # An aware column is read as its UTC instants, in any unit and zone,
    # exactly as the engine reads the same times written as text.
    text = ["2026-03-01T09:00:00+08:00", "1969-12-31T23:59:59Z", None,
            "2026-11-01T01:30:00-04:00", "2000-02-29T12:00:00.123Z"]
    if unit == "s":
        text[-1] = "2000-02-29T12:00:00Z"
    column = pd.Series(pd.to_datetime(text, utc=True, format="ISO8601")).dt.tz_convert(zone)
    column = column.dt.as_unit(unit)
    as_text = pd.Series(text, dtype=object)
    expected = time_column_micros(as_text, "at", required=False)
    np.testing.assert_array_equal(time_column_micros(column, "at", required=False), expected)
    assert expected[2] == NO_TIME


def test_aware_time_columns_truncate_below_a_microsecond_toward_the_past() -> None:
    column = pd.Series(pd.to_datetime(["1969-12-31T23:59:59.9999995Z",
                                       "2026-03-01T01:00:00.0000017Z"], utc=True,
                                      format="ISO8601"))
    assert str(column.dtype) == "datetime64[ns, UTC]"
    np.testing.assert_array_equal(time_column_micros(column, "at", required=True),
                                  [-1, 1772326800000001])


@pytest.mark.parametrize("values", [
    [1.0, np.nan, 7.0, -(2.0**63), 2.0**53 + 2], [np.nan, np.nan], [0.0], [-5.0, 3.0]])
def test_float_ids_read_as_pandas_casts_them(values: list[float]) -> None:
    # Integer ids stored as floats (a column with missing cells) are the
    # integers pandas' Int64 cast makes of them: 7.0 is "7".
    column = pd.Series(values, name="inviter")
    ids = _Ids(column, "members.inviter", nullable=True)
    cast = column.astype("Int64")
    np.testing.assert_array_equal(ids.missing, cast.isna().to_numpy())
    np.testing.assert_array_equal(ids.integers, cast.fillna(0).to_numpy(dtype=np.int64))
    assert ids.strings.to_pylist() == ["" if pd.isna(v) else str(v) for v in cast]


@pytest.mark.parametrize("values", [[1.5, 2.0], [2.0**63], [-3.0, np.inf]])
def test_float_ids_that_are_no_integers_are_refused_as_pandas_refuses_them(
        values: list[float]) -> None:
    column = pd.Series(values)
    # numpy warns of the invalid cast before pandas refuses it.
    with np.errstate(invalid="ignore"):
        with pytest.raises((TypeError, OverflowError)) as refused:
            column.astype("Int64")
        with pytest.raises(refused.type, match=str(refused.value)):
            _Ids(column, "members.inviter", nullable=True)


def test_member_totals_add_exactly_and_refuse_to_wrap() -> None:
    big = np.iinfo(np.int64).max
    # Bounds within int64: summed in place.
    np.testing.assert_array_equal(
        _exact_total([np.array([big - 1, 0]), np.array([1, -5])]), [big, -5])
    # Bounds past int64 but no row past it: still exact.
    np.testing.assert_array_equal(
        _exact_total([np.array([big, 0]), np.array([-big, 5]), np.array([1, 0])]), [1, 5])
    for columns in ([np.array([big]), np.array([1])], [np.array([-big - 1]), np.array([-1])]):
        with pytest.raises(refpay.EventError, match="overflows"):
            _exact_total(columns)
