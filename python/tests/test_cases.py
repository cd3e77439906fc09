"""Audit cases (SPEC §8) through run_case, check_cases and the pytest plugin."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from support import PUBLIC_CASES, public_cases_dir

import refpay


@pytest.mark.parametrize("path", sorted(PUBLIC_CASES.glob("*.json")), ids=lambda p: p.stem)
def test_public_case_passes(path):
    result = refpay.run_case(path)
    assert result.passed, result.report()
    assert result.diff == []
    assert set(result.outcome) == {"ledger", "balances", "flags", "errors", "lint"}
    assert result.path == path


def test_there_are_twelve_public_cases(public_cases):
    assert len(list(public_cases.glob("*.json"))) == 12


def test_check_cases_reports_a_frame(public_cases, tmp_path):
    broken = json.loads((public_cases / "p03_team_leader.json").read_text())
    broken["expect"]["balances"]["A"]["pending"] = "41.00"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    (tmp_path / "malformed.json").write_text('{"name": "no events", "as_of": "x"}')
    frame = refpay.check_cases([public_cases, tmp_path])
    assert list(frame.columns) == ["file", "name", "passed", "diff"]
    assert frame["passed"].dtype == bool
    assert frame["passed"].sum() == 12
    failed = frame[~frame["passed"]].set_index(frame[~frame["passed"]]["file"].map(
        lambda f: Path(f).name))
    assert "balances" in failed.loc["broken.json", "diff"]
    assert "41.00" in failed.loc["broken.json", "diff"]
    assert failed.loc["malformed.json", "diff"].startswith("error: bad_case: ")


def test_a_failing_case_has_a_readable_diff(public_cases):
    case = json.loads((public_cases / "p01_two_level_fixed.json").read_text())
    case["expect"]["ledger"][0]["amount"] = "51.00"
    result = refpay.run_case(case)
    assert not result.passed
    assert any("51.00" in line for line in result.diff)
    assert result.report().startswith("FAIL  two-level fixed")


def test_a_malformed_case_raises_case_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(refpay.CaseError) as raised:
        refpay.run_case(path)
    assert raised.value.code == "bad_case"
    assert isinstance(raised.value, ValueError)
    with pytest.raises(FileNotFoundError):
        refpay.run_case(tmp_path / "missing.json")


def test_plugin_is_registered_for_pytest():
    assert "refpay.pytest_plugin" in {ep.value for ep in entry_points(group="pytest11")}


def test_plugin_collects_case_files(pytester):
    for path in public_cases_dir().glob("*.json"):
        shutil.copy(path, pytester.path / f"{path.stem}.case.json")
    (pytester.path / "other.json").write_text("{}")  # not a case: not collected
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=12)


def test_plugin_fails_with_the_diff(pytester):
    case = json.loads((public_cases_dir() / "p03_team_leader.json").read_text())
    case["expect"]["balances"]["A"]["pending"] = "41.00"
    (pytester.path / "broken.case.json").write_text(json.dumps(case))
    (pytester.path / "malformed.case.json").write_text("{}")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*FAIL  team-leader bonus*", "*balances:*41.00*",
                                 "*case error bad_case:*"])


def test_plugin_patterns_are_configurable(pytester):
    shutil.copy(public_cases_dir() / "p01_two_level_fixed.json", pytester.path / "p01.json")
    pytester.makeini("[pytest]\nrefpay_case_patterns = p*.json\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
