"""JSON text for the engine from Python values (policies, events, cases).

Decimals become decimal strings, aware datetimes ISO-8601 with their offset,
numpy scalars plain numbers. Python floats are written as JSON floats on
purpose: the engine then refuses a float amount with its own error naming the
field, exactly as it would for a JSON document.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np

from ._errors import RefpayError

__all__ = ["dumps"]


def dumps(value: Any, error: type[RefpayError], code: str) -> str:
    """dumps(value, error, code) is ``value`` as JSON text. A naive datetime
    raises ``error`` with code ``bad_time``; any other value JSON cannot hold
    raises ``error`` with ``code``."""

    def encode(item: Any) -> Any:
        if isinstance(item, datetime):
            if item.utcoffset() is None:
                raise error(
                    f"{item!r} is a naive time: give it a time zone (e.g. +08:00)", "bad_time"
                )
            return item.isoformat()
        if isinstance(item, Decimal):
            return format(item, "f")
        if isinstance(item, np.integer):
            return int(item)
        if isinstance(item, np.bool_):
            return bool(item)
        raise error(f"{item!r} ({type(item).__name__}) cannot be written as JSON", code)

    return json.dumps(value, default=encode, ensure_ascii=False)
