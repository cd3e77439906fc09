"""refpay.Engine: apply events one by one, read the ledger as DataFrames."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import _core
from ._errors import EventError
from ._json import dumps
from ._policy import Policy
from ._time import TimeLike, micros_of, timestamps

__all__ = ["ACTIONS", "STATUSES", "Engine"]

#: Entry statuses in SPEC order (the categories of every ``status`` column).
STATUSES: tuple[str, ...] = _core.ENTRY_STATUSES
#: Check actions, weakest first (the categories of the ``action`` column).
ACTIONS: tuple[str, ...] = tuple(a for a in _core.ACTIONS if a is not None)


def ledger_frame(table: dict[str, Any], **keys: Any) -> pd.DataFrame:
    """The ledger DataFrame of ``_core`` ledger columns: ``keys`` (the
    order and member columns, as the caller names them), then [kind,
    amount_fen, rule_amount_fen, status, action, clawback,
    amount_yuan_plot_only]."""
    amount = table["amount"]
    return pd.DataFrame({
        **keys,
        "kind": pd.Categorical.from_codes(table["kind"], pd.Index(table["kind_names"])),
        "amount_fen": amount,
        "rule_amount_fen": table["rule_amount"],
        "status": pd.Categorical.from_codes(table["status"], pd.Index(STATUSES)),
        "action": pd.Categorical.from_codes(table["action"].astype(np.int8) - 1,
                                            pd.Index(ACTIONS)),
        "clawback": table["clawback"].astype(bool),
        "amount_yuan_plot_only": amount / 100,
    }, copy=False)  # the columns are ours: no copy into consolidated blocks


_REJECTED_COLUMNS = ["index", "code", "message"]


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NaT or value is pd.NA or (
        isinstance(value, float) and math.isnan(value)
    )


def _event_rows(
    events: Iterable[Mapping[str, Any]] | pd.DataFrame,
) -> tuple[pd.Index, list[Any]]:
    """(labels, events): a DataFrame's index and rows without their missing
    cells, or the given mappings numbered from 0."""
    if isinstance(events, pd.DataFrame):
        rows = [
            {key: value for key, value in record.items() if not _is_missing(value)}
            for record in events.to_dict("records")
        ]
        return events.index, rows
    given = list(events)
    return pd.RangeIndex(len(given)), given


def _exact_total(columns: list[np.ndarray]) -> np.ndarray:
    """The element-wise sum of int64 columns; EventError (overflow) instead
    of a wrap."""
    # Bounds in Python integers (exact): when the largest magnitudes add up
    # within int64 no row can overflow, and the sum is taken in place, one
    # array instead of a temporary per step (10 million members: 0.35 s
    # → a few passes that allocate nothing).
    bound = sum(max(abs(int(c.max())), abs(int(c.min()))) for c in columns if len(c))
    if bound <= np.iinfo(np.int64).max:
        total = columns[0].copy()
        for column in columns[1:]:
            np.add(total, column, out=total)
        return total
    total = np.zeros_like(columns[0])
    for column in columns:
        summed = total + column
        if (((total ^ summed) & (column ^ summed)) < 0).any():
            raise EventError("a member total overflows int64 fen", "overflow")
        total = summed
    return total


class Engine:
    """The commission engine for one run: events in, ledger out.

    Events are dicts in the SPEC §2 shapes, applied in non-decreasing time;
    a rejected event changes nothing. Reads take an ``as_of`` time (ISO
    string with offset, or an aware datetime / ``pandas.Timestamp``) that
    decides each entry's status. Money columns are exact: ``amount`` is a
    decimal string and ``*_fen`` are int64 fen; the only float is
    ``amount_yuan_plot_only``, for charts.

    >>> policy = Policy.from_dict({"levels": [{"fixed": "20.00"}]})
    >>> engine = Engine(policy)
    >>> engine.apply({"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"})
    >>> engine.apply({"type": "join", "member": "B", "inviter": "A",
    ...               "at": "2026-03-01T09:00:00+08:00"})
    >>> engine.apply({"type": "order", "id": "o1", "buyer": "B", "amount": "100.00",
    ...               "at": "2026-03-02T10:00:00+08:00"})
    >>> engine.net_ledger("2026-03-03T00:00:00+08:00")[["order", "member", "amount"]]
      order member amount
    0    o1      A  20.00

    An Engine is not thread-safe: use one per thread.
    """

    __slots__ = ("_core", "_policy", "_rejected", "_submitted")

    def __init__(self, policy: Policy) -> None:
        """Engine(policy) starts an empty run under ``policy``."""
        if not isinstance(policy, Policy):
            raise TypeError(
                "Engine(policy) needs a refpay.Policy (Policy.from_dict, from_file, …), "
                f"not {type(policy).__name__}"
            )
        self._adopt_core(_core.Engine(policy._core), policy)

    @classmethod
    def _adopt(cls, core: _core.Engine, policy: Policy) -> Engine:
        """An Engine around an already settled compiled engine (refpay.settle)."""
        engine = cls.__new__(cls)
        engine._adopt_core(core, policy)
        return engine

    def _adopt_core(self, core: _core.Engine, policy: Policy) -> None:
        self._core = core
        self._policy = policy
        self._submitted = 0  # events given to apply/apply_many: the `event` numbering
        self._rejected: list[pd.DataFrame] = []

    # ------------------------------------------------------------------ events

    def apply(self, event: Mapping[str, Any]) -> None:
        """engine.apply(event) applies one SPEC §2 event, e.g.
        ``{"type": "order", "id": "o1", "buyer": "C", "amount": "99.00",
        "at": "2026-03-08T20:00:00+08:00"}`` (``at`` may also be an aware
        datetime, amounts a ``Decimal``).

        Raises EventError (``bad_event``, ``out_of_order``, ``cycle``,
        ``over_refund``, …) or UnknownIdError (``unknown_member``,
        ``unknown_order``), with ``.code``; a rejected event changes nothing.
        """
        if not isinstance(event, Mapping):
            raise TypeError(f"an event is a mapping, not {type(event).__name__}")
        self._submitted += 1
        self._core.apply_json(dumps(event, EventError, "bad_event"))

    def reserve(self, members: int, orders: int) -> None:
        """engine.reserve(members, orders) makes room for that many more
        members and orders and faults the memory in now, so that a service
        applying events one by one never waits for an array to grow or a
        page to fault until the room is used. It changes no result:

        >>> engine = Engine(Policy.from_toml('levels = [{rate = "10%"}]'))
        >>> engine.reserve(members=1000, orders=5000)
        >>> engine.member_count
        0

        Raises EventError (``bad_value`` for a negative count or totals
        past 2147483647, ``out_of_memory``) and changes nothing then.
        """
        self._core.reserve(members, orders)

    def apply_many(self, events: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
        """engine.apply_many(events) applies events in order, from a list of
        dicts or a DataFrame with one event per row (missing cells are left
        out of the event). Rejected events do not raise: they are returned as
        a DataFrame [index, code, message], ``index`` being the row's label
        (the position in a list), and remembered in :meth:`errors`.

        The events are applied with the GIL released.
        """
        labels, rows = _event_rows(events)
        rejected: list[tuple[int, str, str]] = []
        texts: list[str] = []
        positions: list[int] = []
        for position, row in enumerate(rows):
            if not isinstance(row, Mapping):
                rejected.append((position, "bad_event", f"an event is a mapping, not {row!r}"))
                continue
            try:
                texts.append(dumps(row, EventError, "bad_event"))
            except EventError as error:
                rejected.append((position, error.code, error.message))
                continue
            positions.append(position)
        rejected += [(positions[i], code, message)
                     for i, code, message in self._core.apply_json_many(texts)]
        rejected.sort(key=lambda item: item[0])
        first_event = self._submitted
        self._submitted += len(rows)
        at = np.asarray([position for position, _, _ in rejected], dtype=np.int64)
        frame = pd.DataFrame({
            "index": labels[at],
            "code": pd.Series([code for _, code, _ in rejected], dtype="str"),
            "message": pd.Series([message for _, _, message in rejected], dtype="str"),
        })
        self._rejected.append(
            frame.assign(event=at + first_event)
            [["event", *_REJECTED_COLUMNS]]
        )
        return frame

    def errors(self) -> pd.DataFrame:
        """engine.errors() is every event apply_many rejected so far:
        [event, index, code, message], ``event`` being the position in
        everything given to apply and apply_many (like a case's ``errors``)."""
        if not self._rejected:
            return pd.DataFrame({
                "event": pd.Series(dtype=np.int64),
                **{column: pd.Series(dtype="str") for column in _REJECTED_COLUMNS},
            })
        return pd.concat(self._rejected, ignore_index=True)

    # ------------------------------------------------------------------- reads

    def _at(self, micros: np.ndarray) -> pd.DatetimeIndex:
        return timestamps(micros, self._policy.timezone)

    def ledger(self, as_of: TimeLike) -> pd.DataFrame:
        """engine.ledger(as_of) is every entry and clawback in application
        order: [order, member, kind, amount, amount_fen, status, action,
        clawback, at, explanation, amount_yuan_plot_only]. ``order`` is
        missing for invite rewards, ``action`` where no check hit, ``at`` is
        in the policy's time zone.

        Raises EventError (``bad_as_of``) if ``as_of`` precedes the last event.
        """
        columns = self._core.ledger(micros_of(as_of))
        frame = pd.DataFrame({
            "order": pd.Series(columns["order"], dtype="str"),
            "member": pd.Series(columns["member"], dtype="str"),
            "kind": pd.Series(columns["kind"], dtype="str"),
            "amount": pd.Series(columns["amount"], dtype="str"),
            "amount_fen": columns["amount_fen"],
            "status": pd.Series(columns["status"], dtype="str"),
            "action": pd.Series(columns["action"], dtype="str"),
            "clawback": columns["clawback"],
            "at": self._at(columns["at"]),
            "explanation": pd.Series(columns["explanation"], dtype="str"),
        })
        frame["amount_yuan_plot_only"] = frame["amount_fen"] / 100
        return frame

    def net_ledger(self, as_of: TimeLike) -> pd.DataFrame:
        """engine.net_ledger(as_of) is the SPEC §8 ledger: the net amount per
        (order, member, kind, status), zero rows left out, as [order, member,
        kind, amount, amount_fen, status]."""
        columns = self._core.net_ledger(micros_of(as_of))
        return pd.DataFrame({
            "order": pd.Series(columns["order"], dtype="str"),
            "member": pd.Series(columns["member"], dtype="str"),
            "kind": pd.Series(columns["kind"], dtype="str"),
            "amount": pd.Series(columns["amount"], dtype="str"),
            "amount_fen": columns["amount_fen"],
            "status": pd.Series(columns["status"], dtype="str"),
        })

    def balances(self, as_of: TimeLike) -> pd.DataFrame:
        """engine.balances(as_of) is what each member has in each status,
        non-zero only, members sorted by id: [member, status, amount,
        amount_fen]."""
        columns = self._core.balances(micros_of(as_of))
        return pd.DataFrame({
            "member": pd.Series(columns["member"], dtype="str"),
            "status": pd.Series(columns["status"], dtype="str"),
            "amount": pd.Series(columns["amount"], dtype="str"),
            "amount_fen": columns["amount_fen"],
        })

    def totals(self, as_of: TimeLike) -> pd.DataFrame:
        """engine.totals(as_of) is one row per member in join order (every
        member, zeros included): [member, pending_fen, frozen_fen,
        available_fen, held_fen, total_fen], all int64 fen. Built from dense
        numpy columns: the fast summary for large runs."""
        sums = self._core.totals(micros_of(as_of))
        fen = {f"{status}_fen": sums[status] for status in STATUSES}
        return pd.DataFrame({
            "member": pd.Series(self._core.member_ids, dtype="str"),
            **fen,
            "total_fen": _exact_total(list(fen.values())),
        })

    def ledger_table(self, as_of: TimeLike) -> pd.DataFrame:
        """engine.ledger_table(as_of) is the ledger as compact columns, one row
        per entry or clawback in application order, without explanations:
        [order, member, kind, amount_fen, rule_amount_fen, status, action,
        clawback, amount_yuan_plot_only]. ``order``, ``member``, ``kind``,
        ``status`` and ``action`` are categoricals; ``rule_amount_fen`` is
        what the rule gave before checks and caps."""
        table = self._core.ledger_table(micros_of(as_of))
        return ledger_frame(
            table, order=pd.Categorical.from_codes(table["order"], pd.Index(self._core.order_ids)),
            member=pd.Categorical.from_codes(table["member"], pd.Index(self._core.member_ids)))

    def flags(self) -> pd.DataFrame:
        """engine.flags() is every check hit and cap cut in the order it
        happened: [check, member, order] (``order`` missing where none)."""
        columns = self._core.flags()
        return pd.DataFrame({name: pd.Series(values, dtype="str")
                             for name, values in columns.items()})

    def explain(self, order_id: str) -> list[str]:
        """engine.explain(order_id) explains every entry of an order, one line
        each (rule, arithmetic, caps, checks, refunds). Raises UnknownIdError
        (``unknown_order``)."""
        return self._core.explain(str(order_id))

    # ------------------------------------------------------- snapshot, restore

    def snapshot(self) -> bytes:
        """engine.snapshot() is the whole state of the run (policy, tree,
        roles, orders, ledger, cap room, check state, applied event ids)
        as versioned, checksummed bytes, to store and :meth:`restore` after a
        restart. The same state always gives the same bytes.

        >>> engine = Engine(Policy.from_dict({"levels": [{"rate": "10%"}]}))
        >>> engine.apply({"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"})
        >>> restored = Engine.restore(engine.snapshot())
        >>> restored.snapshot() == engine.snapshot()
        True
        """
        return self._core.snapshot()

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """Engine.restore(data) rebuilds an engine from :meth:`snapshot` bytes;
        it continues exactly as the original would. Raises SnapshotError
        (``bad_snapshot`` for corrupt or truncated bytes, ``snapshot_version``
        for another format version). The :meth:`errors` log of rejected
        events is not part of the state and starts empty."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"Engine.restore(data) needs bytes, not {type(data).__name__}")
        core = _core.Engine.restore(bytes(data))
        return cls._adopt(core, Policy(core.policy))

    @property
    def policy(self) -> Policy:
        """The policy this engine runs."""
        return self._policy

    @property
    def member_count(self) -> int:
        """Members joined so far."""
        return self._core.member_count

    @property
    def order_count(self) -> int:
        """Orders placed so far."""
        return self._core.order_count

    @property
    def last_event_time(self) -> pd.Timestamp | None:
        """The time of the last applied event (policy time zone), or None."""
        micros = self._core.last_event_time
        return None if micros is None else self._at(np.array([micros]))[0]

    def __repr__(self) -> str:
        return (f"<refpay.Engine policy={self._policy.name!r} members={self.member_count} "
                f"orders={self.order_count}>")
