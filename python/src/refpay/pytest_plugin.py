"""pytest plugin: audit case files (SPEC §8) as test items.

Installed with refpay (entry point ``pytest11``), it collects every file
matching ``refpay_case_patterns`` (default ``*.case.json``) as one test that
runs the case and fails with its readable diff::

    # pyproject.toml of a project whose cases are named otherwise
    [tool.pytest.ini_options]
    refpay_case_patterns = ["cases/*.json"]

A pattern with a ``/`` matches the end of the file's path, otherwise its name.
refpay itself is imported only when a case runs, so a broken build cannot
break unrelated test sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ._cases import CaseResult

__all__ = ["CaseFailed", "CaseFile", "CaseItem"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "refpay_case_patterns",
        type="args",
        default=["*.case.json"],
        help="glob patterns of refpay audit case files to collect (default *.case.json)",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    patterns = parent.config.getini("refpay_case_patterns")
    if any(PurePath(file_path).match(pattern) for pattern in patterns):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFailed(Exception):
    """Raised by a case item whose outcome differs from its ``expect``."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.report())
        self.result = result


class CaseFile(pytest.File):
    """A case file: one item."""

    def collect(self) -> Iterator[CaseItem]:
        yield CaseItem.from_parent(self, name=self.path.name)


class CaseItem(pytest.Item):
    """Runs one case with refpay.run_case."""

    def runtest(self) -> None:
        from refpay import run_case

        result = run_case(self.path)
        if not result.passed:
            raise CaseFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from refpay import RefpayError

        if isinstance(excinfo.value, CaseFailed):
            return excinfo.value.result.report()
        if isinstance(excinfo.value, RefpayError):
            return f"case error {excinfo.value.code}: {excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"refpay case {self.name}"
