"""bench/compare's correctness check (issue #4): DuckDB, pandas and a plain
Python loop compute every member's total on generated data, and refpay's
must equal each of them fen for fen, on every benchmark policy. No timing is
asserted. duckdb is a test requirement (scripts/setup.sh installs it): if it
is missing this file fails, it does not skip."""

from __future__ import annotations

import filecmp
import os
import sys
from pathlib import Path

import duckdb  # noqa: F401  (a hard requirement: fail, never skip)
import numpy as np

COMPARE = Path(__file__).resolve().parents[2] / "bench" / "compare"
sys.path.insert(0, str(COMPARE))
import gen  # noqa: E402
import run  # noqa: E402


def test_peers_agree_with_refpay_on_every_policy(tmp_path: Path) -> None:
    data = gen.generate(2_000, 10_000, seed=1, cache=tmp_path, quiet=True)
    cc = os.environ.get("REFPAY_SETTLE_COLUMNS")  # the C++ program too, when built
    problems = run.check(data, cc_bin=Path(cc) if cc else None)
    assert problems == []


def test_the_data_exercises_what_the_peers_must_get_right(tmp_path: Path) -> None:
    data = gen.generate(2_000, 10_000, seed=1, cache=tmp_path, quiet=True)
    meta = run.json.loads((data / "meta.json").read_text())
    assert meta["leaders"] == 20
    assert meta["refunds_full"] > 0 and meta["refunds_partial"] > 0
    amount = np.fromfile(data / "bin" / "amount.i64", dtype="<i8")
    assert {299_999, 300_000, 499_999, 500_000} <= set(amount.tolist())  # tier bounds


def test_a_wrong_peer_is_caught(tmp_path: Path) -> None:
    want = np.array([0, 120, 7], dtype=np.int64)
    assert run.mismatch("p", want.copy(), want, "refpay") is None
    got = want.copy()
    got[1] += 1
    assert "member 1: 121 vs 120 fen" in str(run.mismatch("p", got, want, "refpay"))


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = gen.generate(500, 2_000, seed=7, cache=tmp_path / "a", quiet=True)
    b = gen.generate(500, 2_000, seed=7, cache=tmp_path / "b", quiet=True)
    names = sorted(p.name for p in (a / "bin").iterdir())
    match, mismatch, errors = filecmp.cmpfiles(a / "bin", b / "bin", names, shallow=False)
    assert (mismatch, errors) == ([], []) and len(match) == 9
