"""refpay.Policy: a parsed, validated payout policy (SPEC §3)."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from . import _core
from ._errors import PolicyError
from ._json import dumps

__all__ = ["Policy"]

_LINT_COLUMNS = ["code", "severity", "path", "message"]


def _lint_frame(findings: list[_core.LintFinding]) -> pd.DataFrame:
    return pd.DataFrame(
        {column: pd.Series([getattr(f, column) for f in findings], dtype="str")
         for column in _LINT_COLUMNS}
    )


def _existing_file(path: str | os.PathLike[str]) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(errno.ENOENT, "no such policy file", os.fspath(path))
    return os.fspath(path)


class Policy:
    """A validated payout policy. Build one with a ``from_*`` constructor;
    every problem is a :class:`PolicyError` whose message names the key path
    and whose ``.code`` is the reason (``unknown_key``, ``tier_gap``,
    ``bad_amount``, …).

    >>> policy = Policy.from_dict({"name": "course", "levels": [{"fixed": "20.00"}]})
    >>> policy.name
    'course'
    >>> try:
    ...     Policy.from_dict({"levels": [{"fixed": 20.5}]})
    ... except PolicyError as e:
    ...     print(e.code)
    bad_amount
    """

    __slots__ = ("_core",)

    def __init__(self, core: _core.Policy) -> None:
        """Policy(core) wraps a compiled policy; use the ``from_*`` constructors."""
        if not isinstance(core, _core.Policy):
            raise TypeError(
                "make a Policy with Policy.from_dict, from_json, from_toml or from_file"
            )
        self._core = core

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Policy.from_file(path) reads a ``.json`` or ``.toml`` file.

        Raises FileNotFoundError, or PolicyError for an invalid policy.
        """
        return cls(_core.Policy.from_file(_existing_file(path)))

    @classmethod
    def from_json(cls, text: str) -> Policy:
        """Policy.from_json(text) parses a JSON policy document."""
        return cls(_core.Policy.from_json(text))

    @classmethod
    def from_toml(cls, text: str) -> Policy:
        """Policy.from_toml(text) parses a TOML policy document.

        >>> Policy.from_toml('name = "haier"\\n[[levels]]\\nrate = "4%"').name
        'haier'
        """
        return cls(_core.Policy.from_toml(text))

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Policy:
        """Policy.from_dict(d) reads a policy given as Python data (the JSON
        data model). Money and rates are strings (``"20.00"``, ``"4%"``) or
        integer yuan; a Python float is refused with the engine's error naming
        the field. ``Decimal`` values are written as decimal strings.
        """
        if not isinstance(document, Mapping):
            raise TypeError(f"Policy.from_dict needs a mapping, not {type(document).__name__}")
        return cls.from_json(dumps(document, PolicyError, "bad_value"))

    @staticmethod
    def lint_file(path: str | os.PathLike[str]) -> pd.DataFrame:
        """Policy.lint_file(path) reports every problem of a policy file, errors
        and SPEC §7 warnings, as a DataFrame [code, severity, path, message]
        in document order. It does not raise for an invalid policy: that is
        what it reports."""
        return _lint_frame(_core.lint_file(_existing_file(path)))

    def lint(self) -> pd.DataFrame:
        """policy.lint() reports the SPEC §7 warnings of this policy
        (paid_depth, leader_unbounded, fixed_over_amount, total_rate) as a
        DataFrame [code, severity, path, message].

        >>> Policy.from_dict({"levels": [{"rate": "10%"}] * 3}).lint()["code"].tolist()
        ['paid_depth']
        """
        return _lint_frame(self._core.lint())

    @property
    def name(self) -> str:
        """The policy's ``name`` ("" if none)."""
        return self._core.name

    @property
    def currency(self) -> str:
        """The currency code, ``"CNY"`` by default (amounts are in 1/100 units)."""
        return self._core.currency

    @property
    def timezone(self) -> str:
        """The policy's time zone (``"Asia/Shanghai"`` by default)."""
        return self._core.timezone

    @property
    def rounding(self) -> _core.RoundingMode:
        """How each entry is rounded to fen."""
        return self._core.rounding

    @property
    def hold_days(self) -> int:
        """``settlement.hold_days``: the freeze after confirmation."""
        return self._core.hold_days

    def __repr__(self) -> str:
        return f"<refpay.Policy {self.name!r}>"
