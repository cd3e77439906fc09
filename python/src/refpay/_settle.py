"""refpay.settle: settle whole member and order tables at once (the fast path).

The tables become numpy columns without a Python loop over rows (ids looked
up with Arrow's hash-based ``index_in``, aware datetimes viewed as int64
microseconds, decimal strings parsed by the engine's own money parser) and go to the C++
``SettleBatch`` in one call, which merges them into one time-ordered event
stream (members before orders at the same instant; confirmations and refunds
at their own times) and runs it through the same Engine as the event path.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import _core
from ._engine import Engine, _exact_total, ledger_frame
from ._errors import EventError
from ._policy import Policy
from ._time import NO_TIME, TimeLike, micros_of, time_column_micros, timestamps

__all__ = ["LedgerResult", "SettleResult", "TotalsResult", "settle", "settle_ledger", "settle_totals"]

_MEMBER_STRING_COLUMNS = ("role", "rank", "region", "device", "phone", "payment")


@dataclass(frozen=True, eq=False, repr=False)
class SettleResult:
    """What :func:`settle` computed, at ``as_of``.

    - ``totals``: one row per member in join order, [member, pending_fen,
      frozen_fen, available_fen, held_fen, total_fen] (int64 fen);
    - ``ledger``: one row per entry or clawback, [order, member, kind,
      amount_fen, rule_amount_fen, status, action, clawback,
      amount_yuan_plot_only] with categorical ids, kinds and statuses (None
      when settled with ``ledger=False``);
    - ``flags``: [check, member, order], in the order they happened;
    - ``errors``: rejected rows, [table, row, code, message] (``row`` is the
      0-based position in ``members`` or ``orders``);
    - ``engine``: the settled :class:`Engine` (``explain``, ``net_ledger``, …);
    - ``as_of``: the time the statuses are taken at.
    """

    totals: pd.DataFrame
    ledger: pd.DataFrame | None
    flags: pd.DataFrame
    errors: pd.DataFrame
    engine: Engine
    as_of: pd.Timestamp

    def __repr__(self) -> str:
        ledger = "not built" if self.ledger is None else f"{len(self.ledger)} rows"
        return (f"<refpay.SettleResult as_of={self.as_of} members={len(self.totals)} "
                f"ledger={ledger} flags={len(self.flags)} errors={len(self.errors)}>")


def _as_frame(table: Any, name: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if isinstance(table, pa.Table):
        frame: pd.DataFrame = table.to_pandas()
        return frame
    raise TypeError(
        f"{name} must be a pandas DataFrame or a pyarrow Table, not {type(table).__name__}")


def _require(frame: pd.DataFrame, table: str, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise EventError(f"{table} has no column {', '.join(missing)}", "bad_event")


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _float_ids_as_integers(column: pd.Series, missing: np.ndarray) -> pd.Series:
    """A float id column as the Int64 column pandas' cast makes of it, by
    numpy when every present value is a whole number that fits int64 (0.5 s
    faster for 10 million ids); anything else goes through pandas' cast,
    which refuses it with its own error, as before."""
    values = np.where(missing, 0.0, column.to_numpy(dtype=np.float64))
    with np.errstate(invalid="ignore"):
        integers = values.astype(np.int64)
    # A value that is not whole, or past int64 (inf too), does not survive
    # the round trip: 2**63 becomes -2**63.
    if np.array_equal(integers.astype(np.float64), values):
        return pd.Series(pd.arrays.IntegerArray(integers, missing), index=column.index,
                         name=column.name)
    return column.astype("Int64")


class _Ids:
    """An id column: its missing cells, the ids as int64 (missing cells 0)
    when it holds integers, and as Arrow strings (missing cells ""), made
    on first use: integer ids that only need matching (inviters, buyers)
    never become strings unless an error names one."""

    def __init__(self, column: pd.Series, name: str, *, nullable: bool) -> None:
        missing = column.isna().to_numpy()
        if missing.any() and not nullable:
            raise EventError(f"{name}[{_first_row(missing)}]: missing id", "bad_event")
        # Integer ids stored as floats because of missing cells are integers:
        # 7.0 is "7".
        if pd.api.types.is_float_dtype(column.dtype):
            column = _float_ids_as_integers(column, missing)
        self.missing = missing
        self.integers: np.ndarray | None = None
        if pd.api.types.is_signed_integer_dtype(column.dtype) or (
                pd.api.types.is_unsigned_integer_dtype(column.dtype)
                and column.dtype.itemsize < 8):
            self.integers = column.fillna(0).to_numpy(dtype=np.int64)
        self._column = column

    @functools.cached_property
    def strings(self) -> pa.LargeStringArray:
        return _strings(self._column)

    def __len__(self) -> int:
        return len(self.missing)

    def of_rows(self, rows: np.ndarray) -> pd.Series:
        """The ids of table rows as a str Series (row -1: missing), without a
        Python object per cell. Integer ids not yet made strings become
        strings only for the rows asked for, when those are fewer: a
        settlement's few flags must not turn 10 million order ids into
        strings."""
        rows = pa.array(rows)
        at = pc.if_else(pc.less(rows, 0), None, rows)
        if self.integers is not None and "strings" not in self.__dict__ and len(rows) < len(self):
            integers = pa.array(self.integers, mask=self.missing)
            taken = pc.take(integers, at).cast(pa.large_string())
        else:
            taken = pc.take(self.strings, at)
        return pd.Series(pd.array(taken, dtype="str"))


def _member_rows(members: _Ids, *queries: _Ids) -> list[np.ndarray]:
    """The members-table row of each id of each query (its first row if
    repeated), -1 if it is not a member. Integer ids are matched as
    integers (str() is one-to-one on them, so this is the string match,
    without building strings into a hash table), by offset when they are
    dense; others by one Arrow lookup for all queries."""
    if members.integers is not None and all(q.integers is not None for q in queries):
        ids = members.integers
        # Offsets wrap modulo 2**64 like every int64 array operation; a
        # query then lands on row k only if it equals ids[k], so the match
        # stays exact at the ends of the int64 range.
        if len(ids) and np.array_equal(ids - ids[0], np.arange(len(ids))):
            # Dense ids (auto-increment keys, row numbers): the row is the
            # id's offset from the first.
            found = []
            for query in queries:
                offset = query.integers - ids[0]
                rows = offset.astype(np.int32)
                # One unsigned compare is both bounds: a negative offset
                # wraps past len(ids).
                outside = offset.view(np.uint64) >= len(ids)
                outside |= query.missing
                rows[outside] = -1
                found.append(rows)
            return found
        index = pd.Index(ids)
        if index.is_unique:
            found = []
            for query in queries:
                rows = index.get_indexer(query.integers).astype(np.int32)
                rows[query.missing] = -1
                found.append(rows)
            return found
    rows = pc.index_in(pa.chunked_array([q.strings for q in queries], pa.large_string()),
                       value_set=members.strings)
    rows = np.asarray(rows.fill_null(-1)).astype(np.int32)  # a writable copy
    return np.split(rows, np.cumsum([len(q) for q in queries])[:-1])


def _strings(column: pd.Series) -> pa.LargeStringArray:
    """A column as one Arrow large_string array; missing cells are "".
    Columns that are strings already (Arrow-backed or str objects) are not
    turned into Python objects; others are read as their str."""
    if isinstance(column.dtype, (pd.StringDtype, pd.ArrowDtype)):
        array = pa.array(column, from_pandas=True)
    elif pd.api.types.is_integer_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        # Arrow writes integers as str() does ("-7"), in C++.
        array = pa.array(column, from_pandas=True).cast(pa.large_string())
    else:
        cells = column.to_numpy(dtype=object, na_value="")
        if pd.api.types.infer_dtype(cells, skipna=False) not in ("string", "empty"):
            cells = cells.astype(str).astype(object)
        array = pa.array(cells, pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())
    return array.fill_null("")


def _buffers(array: pa.LargeStringArray) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, data) of a large_string array without nulls: how
    ``_core.settle_batch`` reads a string column without a str per cell."""
    _, offsets, data = array.buffers()
    start = array.offset
    return (np.frombuffer(offsets, dtype=np.int64)[start:start + len(array) + 1],
            np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8))


def _fen(frame: pd.DataFrame, column: str, name: str, *, missing_is_zero: bool) -> np.ndarray:
    """Money as int64 fen, from ``<column>_fen`` (integers) or ``<column>``
    (decimal strings or integer yuan, read by the engine's parser)."""
    if column in frame.columns and f"{column}_fen" in frame.columns:
        raise EventError(f"{name} has both {column} and {column}_fen: keep one", "bad_event")
    if f"{column}_fen" in frame.columns:
        fen = frame[f"{column}_fen"]
        if not pd.api.types.is_integer_dtype(fen.dtype):
            raise EventError(
                f"{name}.{column}_fen is {fen.dtype}: fen must be integers "
                "(use .astype('Int64') for a column with missing cells)", "bad_amount")
        if missing_is_zero:
            fen = fen.fillna(0)
        missing = fen.isna().to_numpy()
        if missing.any():
            raise EventError(f"{name}.{column}_fen[{_first_row(missing)}]: missing amount",
                             "bad_amount")
        return fen.to_numpy(dtype=np.int64)
    cells = frame[column]
    if missing_is_zero:
        cells = cells.astype(object).where(cells.notna(), "0")
    return _core.parse_money_column(cells.to_numpy(dtype=object), f"{name}.{column}")


@dataclass(frozen=True)
class _Columns:
    """The batch columns of both tables, and what rewording errors needs."""

    members: dict[str, Any]
    orders: dict[str, Any]
    unknown_inviter: np.ndarray  # member rows whose inviter id is not a member
    inviter_ids: _Ids
    unknown_buyer: np.ndarray  # order rows whose buyer id is not a member
    buyer_ids: _Ids
    member_id_column: _Ids
    order_id_column: _Ids

    @property
    def member_ids(self) -> pa.LargeStringArray:
        return self.member_id_column.strings

    @property
    def order_ids(self) -> pa.LargeStringArray:
        """Made on first use: integer order ids reach C++ as integers and
        become strings only if a flag or an error names one."""
        return self.order_id_column.strings


def _id_columns(ids: _Ids) -> dict[str, Any]:
    """An id column as SettleBatch takes it: integers as ``int_ids`` (each
    stands for its str(), so results are the same), others as strings."""
    if ids.integers is not None:
        return {"int_ids": ids.integers}
    return {"ids": _buffers(ids.strings)}


def _batch_columns(members: pd.DataFrame, orders: pd.DataFrame) -> _Columns:
    _require(members, "members", ("member", "joined_at"))
    _require(orders, "orders", ("id", "buyer", "at"))
    if "amount" not in orders.columns and "amount_fen" not in orders.columns:
        raise EventError("orders has no column amount or amount_fen", "bad_event")

    member_ids = _Ids(members["member"], "members.member", nullable=False)
    inviter_ids = (_Ids(members["inviter"], "members.inviter", nullable=True)
                   if "inviter" in members.columns else None)
    buyer_ids = _Ids(orders["buyer"], "orders.buyer", nullable=True)
    if inviter_ids is None:
        buyer, = _member_rows(member_ids, buyer_ids)
        inviter = np.full(len(members), -1, dtype=np.int32)
        unknown_inviter = np.zeros(len(members), dtype=bool)  # no row is unknown
        inviter_ids = _Ids(pd.Series([], dtype="str"), "members.inviter", nullable=True)
    else:
        inviter, buyer = _member_rows(member_ids, inviter_ids, buyer_ids)
        unknown_inviter = (inviter < 0) & ~inviter_ids.missing
        inviter[unknown_inviter] = -2  # out of range: SettleBatch rejects the join
    member_columns: dict[str, Any] = {
        **_id_columns(member_ids),
        "joined_at": time_column_micros(members["joined_at"], "members.joined_at", required=True),
        "inviter": inviter,
    }
    for column in _MEMBER_STRING_COLUMNS:
        if column in members.columns:
            member_columns[column] = _buffers(_strings(members[column]))

    order_ids = _Ids(orders["id"], "orders.id", nullable=False)
    order_columns: dict[str, Any] = {
        **_id_columns(order_ids),
        "buyer": buyer,
        "amount": _fen(orders, "amount", "orders", missing_is_zero=False),
        "at": time_column_micros(orders["at"], "orders.at", required=True),
    }
    if "category" in orders.columns:
        order_columns["category"] = _buffers(_strings(orders["category"]))
    if "confirmed_at" in orders.columns:
        order_columns["confirmed_at"] = time_column_micros(
            orders["confirmed_at"], "orders.confirmed_at", required=False)
    if "refund_amount" in orders.columns or "refund_amount_fen" in orders.columns:
        refund = _fen(orders, "refund_amount", "orders", missing_is_zero=True)
        _require(orders, "orders", ("refunded_at",))
        refunded_at = time_column_micros(orders["refunded_at"], "orders.refunded_at",
                                         required=False)
        undated = (refund != 0) & (refunded_at == NO_TIME)
        if undated.any():
            raise EventError(f"orders.refunded_at[{_first_row(undated)}]: missing time of a refund",
                             "bad_time")
        order_columns["refund_amount"] = refund
        order_columns["refunded_at"] = refunded_at
    return _Columns(member_columns, order_columns, unknown_inviter, inviter_ids, buyer < 0,
                    buyer_ids, member_ids, order_ids)


def _prepare(members: Any, orders: Any, policy: Policy, as_of: TimeLike | None,
             caller: str) -> tuple[_Columns, int, pd.Timestamp]:
    """What every batch entry point starts with: the tables as columns, and
    ``as_of`` (default: the latest time in them) as Unix microseconds and as
    a timestamp in the policy's time zone."""
    if not isinstance(policy, Policy):
        raise TypeError(f"{caller} needs a refpay.Policy, not {type(policy).__name__}")
    columns = _batch_columns(_as_frame(members, "members"), _as_frame(orders, "orders"))
    as_of_us = _latest_time(columns) if as_of is None else micros_of(as_of)
    return columns, as_of_us, timestamps(np.array([as_of_us]), policy.timezone)[0]


def _latest_time(columns: _Columns) -> int:
    """The latest time in the data (Unix microseconds), 0 if there is none."""
    times = [columns.members["joined_at"], columns.orders["at"],
             *(columns.orders[c] for c in ("confirmed_at", "refunded_at") if c in columns.orders)]
    latest = max((int(t.max()) for t in times if len(t)), default=NO_TIME)  # NO_TIME is the least
    return 0 if latest == NO_TIME else latest


def _error_frame(rejected: dict[str, Any], columns: _Columns) -> pd.DataFrame:
    """The rejected rows, with unknown ids named instead of SettleBatch's
    out-of-range row numbers."""
    frame = pd.DataFrame({
        "table": pd.Series(rejected["table"], dtype="str"),
        "row": rejected["row"],
        "code": pd.Series(rejected["code"], dtype="str"),
        "message": pd.Series(rejected["message"], dtype="str"),
    })
    for table, unknown, ids, what in (
        ("members", columns.unknown_inviter, columns.inviter_ids, "inviter"),
        ("orders", columns.unknown_buyer, columns.buyer_ids, "buyer"),
    ):
        hits = np.flatnonzero((frame["code"] == "unknown_member") & (frame["table"] == table))
        rows = frame["row"].to_numpy()[hits]
        hits, rows = hits[unknown[rows]], rows[unknown[rows]]
        frame.loc[hits, "message"] = [
            f"{what} {ids.strings[int(row)].as_py()!r} is not a member" for row in rows]
    return frame


def settle(
    members: Any,
    orders: Any,
    policy: Policy,
    *,
    as_of: TimeLike | None = None,
    ledger: bool = True,
) -> SettleResult:
    """settle(members, orders, policy) settles whole tables at once.

    ``members`` and ``orders`` are pandas DataFrames or pyarrow Tables.

    members: ``member`` (ids of any dtype, compared as str), ``joined_at``
    (aware datetime64 or ISO-8601 strings with offset), optional ``inviter``
    (a member id or missing), ``role`` (a non-empty role becomes a
    ``set_role`` at ``joined_at``), ``rank``, ``region``, ``device``,
    ``phone``, ``payment``.

    orders: ``id``, ``buyer`` (a member id), ``amount`` (decimal strings
    such as ``"199.00"``, or integer yuan) or ``amount_fen`` (int64), ``at``;
    optional ``category``, ``confirmed_at`` (missing = not confirmed),
    ``refund_amount`` / ``refund_amount_fen`` (missing or 0 = no refund) with
    ``refunded_at``. Other columns are ignored.

    ``as_of`` defaults to the latest time in the data. With ``ledger=False``
    the per-entry ledger frame is not built (the totals are). Rows the engine
    rejects (unknown buyer, duplicate order, over-refund, …) are reported in
    ``errors``, never half-applied; a malformed cell (an amount with three
    decimals, a naive time) raises EventError naming ``table.column[row]``.

    >>> members = pd.DataFrame({"member": ["A", "B"], "inviter": [None, "A"],
    ...                         "joined_at": ["2026-03-01T09:00:00+08:00"] * 2})
    >>> orders = pd.DataFrame({"id": ["o1"], "buyer": ["B"], "amount": ["100.00"],
    ...                        "at": ["2026-03-02T10:00:00+08:00"]})
    >>> policy = Policy.from_dict({"levels": [{"rate": "10%"}]})
    >>> settle(members, orders, policy).totals[["member", "pending_fen"]]
      member  pending_fen
    0      A         1000
    1      B            0
    """
    columns, _, at = _prepare(members, orders, policy, as_of, "settle")
    core_engine, rejected = _core.settle_batch(policy._core, columns.members, columns.orders)
    engine = Engine._adopt(core_engine, policy)
    return SettleResult(
        totals=engine.totals(at),
        ledger=engine.ledger_table(at) if ledger else None,
        flags=engine.flags(),
        errors=_error_frame(rejected, columns),
        engine=engine,
        as_of=at,
    )


@dataclass(frozen=True, eq=False, repr=False)
class TotalsResult:
    """What :func:`settle_totals` computed, at ``as_of``.

    - ``totals``: one row per row of ``members`` (in that order; a member
      that did not join has zeros): [member, pending_fen, frozen_fen,
      available_fen, held_fen, total_fen] (int64 fen);
    - ``errors``: rejected rows, as in :class:`SettleResult`;
    - ``engine_reason``: why the engine settled instead of the columnar
      kernel ("the policy has promotions", …), ``""`` when the kernel did;
    - ``as_of``: the time the statuses are taken at.
    """

    totals: pd.DataFrame
    errors: pd.DataFrame
    engine_reason: str
    as_of: pd.Timestamp

    def __repr__(self) -> str:
        path = f"engine: {self.engine_reason}" if self.engine_reason else "kernel"
        return (f"<refpay.TotalsResult as_of={self.as_of} members={len(self.totals)} "
                f"errors={len(self.errors)} settled by {path}>")


def settle_totals(
    members: Any,
    orders: Any,
    policy: Policy,
    *,
    as_of: TimeLike | None = None,
) -> TotalsResult:
    """settle_totals(members, orders, policy) is :func:`settle` when only the
    per-member totals are wanted (simulations, policy sweeps): the same
    tables, the same totals and errors, no ledger and no engine.

    Under a policy whose entries depend only on the order and the tree
    (levels, tiers, fixed amounts, a nearest leader, ``caps.order_total``,
    ``hold_days``), a batch the engine would accept row for row is settled by
    a columnar kernel, several times faster than :func:`settle`; anything
    else by the engine (``engine_reason`` says why). The totals are by
    member row, aligned with ``members``.

    >>> members = pd.DataFrame({"member": ["A", "B"], "inviter": [None, "A"],
    ...                         "joined_at": ["2026-03-01T09:00:00+08:00"] * 2})
    >>> orders = pd.DataFrame({"id": ["o1"], "buyer": ["B"], "amount": ["100.00"],
    ...                        "at": ["2026-03-02T10:00:00+08:00"]})
    >>> policy = Policy.from_dict({"levels": [{"rate": "10%"}]})
    >>> result = settle_totals(members, orders, policy)
    >>> result.totals[["member", "pending_fen"]]
      member  pending_fen
    0      A         1000
    1      B            0
    >>> result.engine_reason
    ''
    """
    columns, as_of_us, at = _prepare(members, orders, policy, as_of, "settle_totals")
    sums, rejected, reason = _core.settle_totals(policy._core, columns.members, columns.orders,
                                                 as_of_us)
    return TotalsResult(
        totals=_totals_by_row(sums, columns),
        errors=_error_frame(rejected, columns),
        engine_reason=reason,
        as_of=at,
    )


def _flag_frame(flags: dict[str, Any], columns: _Columns) -> pd.DataFrame:
    """settle's flags frame [check, member, order] of flags in table rows."""
    return pd.DataFrame({
        "check": pd.Series(flags["check"], dtype="str"),
        "member": columns.member_id_column.of_rows(flags["member"]),
        "order": columns.order_id_column.of_rows(flags["order"]),
    })


def _totals_by_row(sums: dict[str, np.ndarray], columns: _Columns) -> pd.DataFrame:
    """The totals frame of per-member-row sums, aligned with ``members``."""
    fen = {f"{status}_fen": sums[status] for status in ("pending", "frozen", "available", "held")}
    # copy=False: the columns are ours, and consolidating five of them into
    # one block would copy 400 MB for 10 million members.
    return pd.DataFrame({"member": pd.Series(pd.array(columns.member_ids, dtype="str")), **fen,
                         "total_fen": _exact_total(list(fen.values()))}, copy=False)


@dataclass(frozen=True, eq=False, repr=False)
class LedgerResult:
    """What :func:`settle_ledger` computed, at ``as_of``.

    - ``ledger``: one row per entry or clawback, the rows of
      :attr:`SettleResult.ledger` in the same order, keyed by table row
      instead of id: [order_row, member_row, kind, amount_fen,
      rule_amount_fen, status, action, clawback, amount_yuan_plot_only];
      ``order_row`` / ``member_row`` (int32) are rows of ``orders`` /
      ``members`` (``order_row`` -1 for an invite reward). Rows rather than
      id categoricals because pandas takes longer to build a categorical of
      10 million order ids than the kernel takes to settle them; rows join
      back at numpy speed (``orders["id"].to_numpy()[ledger["order_row"]]``);
    - ``flags``: as :attr:`SettleResult.flags` ([check, member, order] ids);
    - ``totals``, ``errors``, ``engine_reason``, ``as_of``: as in
      :class:`TotalsResult`.
    """

    ledger: pd.DataFrame
    totals: pd.DataFrame
    flags: pd.DataFrame
    errors: pd.DataFrame
    engine_reason: str
    as_of: pd.Timestamp

    def __repr__(self) -> str:
        path = f"engine: {self.engine_reason}" if self.engine_reason else "kernel"
        return (f"<refpay.LedgerResult as_of={self.as_of} members={len(self.totals)} "
                f"ledger={len(self.ledger)} rows flags={len(self.flags)} "
                f"errors={len(self.errors)} settled by {path}>")


def settle_ledger(
    members: Any,
    orders: Any,
    policy: Policy,
    *,
    as_of: TimeLike | None = None,
) -> LedgerResult:
    """settle_ledger(members, orders, policy) is :func:`settle` without the
    engine: the same ledger rows, totals and errors, computed by the columnar
    kernel of :func:`settle_totals` where the policy and the data allow (else
    by the engine; ``engine_reason`` says why), and the same flags. No
    ``explain``: use :func:`settle` for that.

    >>> members = pd.DataFrame({"member": ["A", "B"], "inviter": [None, "A"],
    ...                         "joined_at": ["2026-03-01T09:00:00+08:00"] * 2})
    >>> orders = pd.DataFrame({"id": ["o1"], "buyer": ["B"], "amount": ["100.00"],
    ...                        "at": ["2026-03-02T10:00:00+08:00"]})
    >>> policy = Policy.from_dict({"levels": [{"rate": "10%"}, {"rate": "5%"}]})
    >>> ledger = settle_ledger(members, orders, policy).ledger
    >>> ledger[["order_row", "member_row", "kind", "amount_fen"]]
       order_row  member_row    kind  amount_fen
    0          0           0  level1        1000
    >>> members["member"].to_numpy()[ledger["member_row"]]
    array(['A'], dtype=object)
    """
    columns, as_of_us, at = _prepare(members, orders, policy, as_of, "settle_ledger")
    table, sums, flags, rejected, reason = _core.settle_ledger(policy._core, columns.members,
                                                               columns.orders, as_of_us)
    return LedgerResult(
        ledger=ledger_frame(table, order_row=table["order"], member_row=table["member"]),
        totals=_totals_by_row(sums, columns),
        flags=_flag_frame(flags, columns),
        errors=_error_frame(rejected, columns),
        engine_reason=reason,
        as_of=at,
    )
