"""refpay.Policy: every way in gives the same policy; every problem is a
PolicyError with the engine's message and code."""

from __future__ import annotations

import json
from decimal import Decimal

import pandas as pd
import pytest

import refpay

DOCUMENT = {"name": "haier", "levels": [{"tiers": [
    {"below": "3000", "rate": "4%"}, {"from": "3000", "below": "5000", "rate": "5%"},
    {"from": "5000", "rate": "8%"}]}], "settlement": {"hold_days": 7}}
TOML = """
name = "haier"
[settlement]
hold_days = 7
[[levels]]
tiers = [{below = "3000", rate = "4%"}, {from = "3000", below = "5000", rate = "5%"},
         {from = "5000", rate = "8%"}]
"""


def outcome(policy: refpay.Policy) -> list[str]:
    engine = refpay.Engine(policy)
    engine.apply_many([
        {"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"},
        {"type": "join", "member": "B", "inviter": "A", "at": "2026-03-01T09:00:00+08:00"},
        {"type": "order", "id": "o1", "buyer": "B", "amount": "4999.99",
         "at": "2026-03-02T09:00:00+08:00"},
    ])
    return engine.net_ledger("2026-03-03T00:00:00+08:00")["amount"].tolist()


def test_every_constructor_reads_the_same_policy(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps(DOCUMENT))
    (tmp_path / "p.toml").write_text(TOML)
    policies = [refpay.Policy.from_dict(DOCUMENT), refpay.Policy.from_json(json.dumps(DOCUMENT)),
                refpay.Policy.from_toml(TOML), refpay.Policy.from_file(tmp_path / "p.json"),
                refpay.Policy.from_file(str(tmp_path / "p.toml"))]
    for policy in policies:
        assert (policy.name, policy.hold_days, policy.timezone, policy.currency) == (
            "haier", 7, "Asia/Shanghai", "CNY")
        assert policy.rounding is refpay.RoundingMode.HALF_UP
        assert outcome(policy) == ["250.00"]  # 5% * 4999.99 = 249.9995, rounded once


def test_from_dict_refuses_a_float_with_the_engine_error():
    with pytest.raises(refpay.PolicyError) as raised:
        refpay.Policy.from_dict({"levels": [{"fixed": 20.5}]})
    assert raised.value.code == "bad_amount"
    assert str(raised.value) == (
        'levels[0].fixed: money must be a string like "199.00" or an integer number of '
        "yuan, not a float 20.5")


def test_from_dict_accepts_decimals_and_integer_yuan():
    policy = refpay.Policy.from_dict({"levels": [{"fixed": Decimal("5.50")}, {"fixed": 2}]})
    engine = refpay.Engine(policy)
    engine.apply_many([
        {"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"},
        {"type": "join", "member": "B", "inviter": "A", "at": "2026-03-01T09:00:00+08:00"},
        {"type": "join", "member": "C", "inviter": "B", "at": "2026-03-01T09:00:00+08:00"},
        {"type": "order", "id": "o1", "buyer": "C", "amount": "100",
         "at": "2026-03-02T09:00:00+08:00"},
    ])
    ledger = engine.net_ledger("2026-03-03T00:00:00+08:00")
    assert ledger[["member", "kind", "amount"]].values.tolist() == [
        ["A", "level2", "2.00"], ["B", "level1", "5.50"]]


@pytest.mark.parametrize(("document", "code", "path"), [
    ({"levels": [{"rat": "4%"}]}, "unknown_key", "levels[0].rat"),
    ({"levels": [{"tiers": [{"below": "3000", "rate": "4%"},
                            {"from": "3001", "rate": "5%"}]}]}, "tier_gap", "levels[0]"),
    ({"rounding": "nearest"}, "bad_value", "rounding"),
    ({"levels": [{"rate": "4.00001%"}]}, "bad_rate", "levels[0].rate"),
])
def test_policy_errors_name_the_path_and_carry_the_code(document, code, path):
    with pytest.raises(refpay.PolicyError) as raised:
        refpay.Policy.from_dict(document)
    assert raised.value.code == code
    assert str(raised.value).startswith(path)
    assert isinstance(raised.value, ValueError)


def test_bad_text_is_a_policy_error():
    with pytest.raises(refpay.PolicyError) as raised:
        refpay.Policy.from_json("{")
    assert raised.value.code == "bad_json"
    with pytest.raises(refpay.PolicyError) as raised:
        refpay.Policy.from_toml("levels = [")
    assert raised.value.code == "bad_toml"


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        refpay.Policy.from_file(tmp_path / "nope.toml")
    with pytest.raises(FileNotFoundError):
        refpay.Policy.lint_file(tmp_path / "nope.toml")


def test_lint_reports_warnings_as_a_frame():
    policy = refpay.Policy.from_dict({"levels": [{"rate": "10%"}] * 3,
                                      "leader": {"rate": "30%"}})
    lint = policy.lint()
    assert list(lint.columns) == ["code", "severity", "path", "message"]
    assert {"paid_depth", "leader_unbounded", "total_rate"} <= set(lint["code"])
    assert set(lint["severity"]) == {"warning"}
    assert all(pd.api.types.is_string_dtype(lint[c]) for c in lint.columns)


def test_lint_file_reports_every_error_without_raising(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"levels": [{"rat": "4%"}, {"rate": 0.1}], "colour": "red"}))
    lint = refpay.Policy.lint_file(path)
    assert (lint["severity"] == "error").sum() >= 3
    assert {"unknown_key", "bad_rate"} <= set(lint["code"])


def test_policy_needs_a_constructor():
    with pytest.raises(TypeError, match="from_dict"):
        refpay.Policy({"levels": []})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mapping"):
        refpay.Policy.from_dict("levels")  # type: ignore[arg-type]
