"""Times at the boundary: everything reaches the engine as Unix microseconds.

An ``as_of`` or an event time is an ISO-8601 string with an offset
(``"2026-04-01T00:00:00+08:00"``), a time-zone-aware ``datetime`` or a
``pandas.Timestamp``. A naive time is refused (``EventError``, code
``bad_time``): commissions depend on the hour, so refpay never guesses a zone.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from . import _core
from ._errors import EventError

__all__ = ["NO_TIME", "TimeLike", "micros_of", "time_column_micros", "timestamps"]

#: A time: ISO-8601 text with an offset, or an aware datetime / pandas.Timestamp.
TimeLike = str | datetime

#: The int64 that marks "no time" in a column (the same bits as numpy's NaT).
NO_TIME: int = _core.NO_TIME

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _naive_time(what: str, value: object) -> EventError:
    return EventError(
        f"{what} is a naive time ({value!r}): give it a time zone, e.g. "
        "pd.Timestamp(...).tz_localize('Asia/Shanghai') or an ISO string ending in +08:00",
        "bad_time",
    )


def micros_of(value: TimeLike, what: str = "as_of") -> int:
    """micros_of(value) is ``value`` in Unix microseconds (exact).

    >>> micros_of("1970-01-01T08:00:00.000001+08:00")
    1
    """
    if isinstance(value, str):
        return _core.parse_timestamp(value)
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise _naive_time(what, value)
        return (value - _EPOCH) // _MICROSECOND
    if isinstance(value, np.datetime64):
        raise _naive_time(what, value)
    raise TypeError(f"{what} must be an ISO-8601 string or an aware datetime, not {value!r}")


def timestamps(micros: np.ndarray, zone: str) -> pd.DatetimeIndex:
    """timestamps(micros, zone) turns Unix microseconds (NO_TIME → NaT) into
    aware timestamps in ``zone``."""
    as_utc = pd.DatetimeIndex(np.asarray(micros, dtype=np.int64).view("datetime64[us]"))
    return as_utc.tz_localize("UTC").tz_convert(zone)


def time_column_micros(column: pd.Series, name: str, *, required: bool) -> np.ndarray:
    """time_column_micros(column, name, required=...) is a column of times as
    int64 Unix microseconds, NO_TIME where missing (an error if ``required``).

    A tz-aware ``datetime64`` column converts without a Python loop; a column
    of ISO strings (or of datetimes) is read by the engine's own parser, so it
    accepts exactly what an event's ``at`` accepts. A naive ``datetime64``
    column is refused.
    """
    dtype = column.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        # An aware column holds UTC instants already: asking numpy for them
        # in microseconds is a view when that is the column's unit (finer
        # units truncate toward the past, as astype does; NaT is NO_TIME).
        micros: np.ndarray = column.to_numpy(dtype="datetime64[us]").view(np.int64)
        if required and (micros == NO_TIME).any():
            row = int(np.flatnonzero(micros == NO_TIME)[0])
            raise EventError(f"{name}[{row}]: missing time", "bad_time")
        return micros
    if pd.api.types.is_datetime64_dtype(dtype):
        raise _naive_time(name, dtype)
    cells = column.astype(object).where(column.notna(), None)
    return _core.parse_time_column(cells.to_numpy(), name, required)
