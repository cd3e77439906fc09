"""Audit cases (SPEC §8): run a case file and compare with its ``expect``."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import _core
from ._errors import CaseError, RefpayError
from ._json import dumps

__all__ = ["CaseResult", "check_cases", "run_case"]

#: A case: a path to its JSON file, or the case document itself.
CaseLike = str | os.PathLike[str] | Mapping[str, Any]


@dataclass(frozen=True)
class CaseResult:
    """A case's outcome compared with its expectations.

    ``diff`` has one readable line per difference (empty when ``passed``);
    ``outcome`` is the computed {ledger, balances, flags, errors, lint} in
    the shape of a case's ``expect``.
    """

    name: str
    passed: bool
    diff: list[str] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def report(self) -> str:
        """``PASS name`` or ``FAIL name`` followed by the diff, one line each."""
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.name}"
        return "\n".join([head, *(f"    {line}" for line in self.diff)])


def run_case(case: CaseLike) -> CaseResult:
    """run_case(case) runs one audit case: a path to a case file, or a case
    document as a dict (a ``policy_file`` in it is relative to the current
    directory).

    Raises FileNotFoundError, or CaseError (``bad_case``) when the case itself
    is malformed (not JSON, no events, an ``as_of`` before the last event).

    >>> result = run_case({"policy": {"levels": [{"fixed": "5.00"}]},
    ...                    "events": [{"type": "join", "member": "A",
    ...                                "at": "2026-03-01T09:00:00+08:00"}],
    ...                    "as_of": "2026-03-02T00:00:00+08:00",
    ...                    "expect": {"ledger": []}})
    >>> result.passed, result.diff
    (True, [])
    """
    if isinstance(case, Mapping):
        path = None
        result = _core.run_case_text(dumps(case, CaseError, "bad_case"), os.getcwd())
    else:
        path = Path(case)
        if not path.is_file():
            raise FileNotFoundError(errno.ENOENT, "no such case file", os.fspath(path))
        result = _core.check_case_file(os.fspath(path))
    return CaseResult(
        name=result.name,
        passed=result.passed,
        diff=list(result.diff),
        outcome=json.loads(result.outcome_json()),
        path=path,
    )


def _case_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*.json"))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(errno.ENOENT, "no such case file or directory", os.fspath(path))
    return files


def check_cases(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """check_cases(paths) runs every case given: files, or directories (each
    ``*.json`` inside, sorted), like ``refpay case check``. Returns a
    DataFrame [file, name, passed, diff] with the diff lines joined by
    newlines; a malformed case is a failed row whose diff is
    ``error: <code>: <message>``.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    rows = []
    for file in _case_files(paths):
        try:
            result = run_case(file)
            rows.append((str(file), result.name, result.passed, "\n".join(result.diff)))
        except RefpayError as error:
            rows.append((str(file), "", False, f"error: {error.code}: {error}"))
    return pd.DataFrame(rows, columns=["file", "name", "passed", "diff"]).astype(
        {"file": "str", "name": "str", "passed": bool, "diff": "str"}
    )
