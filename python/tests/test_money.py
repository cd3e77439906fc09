"""refpay.Money, Rate, apply_rate: exact arithmetic, checked against Python's decimal."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import refpay
from refpay import Money, Rate, RoundingMode, apply_rate

DECIMAL_ROUNDING = {
    RoundingMode.HALF_UP: ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: ROUND_HALF_EVEN,
    RoundingMode.DOWN: ROUND_DOWN,
}


@pytest.mark.parametrize(("text", "fen", "shown"),
                         [("199.00", 19900, "199.00"), ("50", 5000, "50.00"),
                          ("0.5", 50, "0.50"), ("-5", -500, "-5.00")])
def test_money_parses_and_prints_exactly(text, fen, shown):
    money = Money.parse(text)
    assert money.fen == fen
    assert str(money) == shown
    assert money == Money.from_fen(fen)
    assert hash(money) == hash(Money.from_fen(fen))
    assert repr(money) == f"Money('{shown}')"


@pytest.mark.parametrize("text", ["1.005", "1e3", " 5", "+5", "1,000.00", "", "abc"])
def test_money_refuses_what_is_not_an_amount(text):
    with pytest.raises(refpay.EventError) as raised:
        Money.parse(text)
    assert raised.value.code == "bad_amount"
    assert isinstance(raised.value, ValueError)


def test_money_orders():
    assert Money.parse("0.01") < Money.parse("0.10") <= Money.parse("0.1")
    assert sorted([Money.parse("3"), Money.parse("-1")]) == [Money.parse("-1"), Money.parse("3")]


def test_rates():
    assert Rate.parse("12.5%").ppm == 125_000
    assert Rate.parse("0.04") == Rate.from_ppm(40_000)
    assert str(Rate.parse("0.04")) == "4%"
    with pytest.raises(refpay.PolicyError) as raised:
        Rate.parse("101%")
    assert raised.value.code == "bad_rate"


def test_apply_rate_example_from_the_header():
    assert str(apply_rate(Money.parse("4999.99"), Rate.parse("5%"))) == "250.00"


@pytest.mark.parametrize(("fen", "expected"), [(250, {RoundingMode.HALF_UP: 13,
                                                      RoundingMode.HALF_EVEN: 12,
                                                      RoundingMode.DOWN: 12}),
                                               (-250, {RoundingMode.HALF_UP: -13,
                                                       RoundingMode.HALF_EVEN: -12,
                                                       RoundingMode.DOWN: -12})])
def test_rounding_ties(fen, expected):
    for mode, rounded in expected.items():
        assert apply_rate(Money.from_fen(fen), Rate.parse("5%"), mode).fen == rounded


@given(fen=st.integers(-(10**15), 10**15), ppm=st.integers(0, 1_000_000),
       mode=st.sampled_from(list(RoundingMode)))
def test_apply_rate_agrees_with_decimal(fen, ppm, mode):
    exact = Decimal(fen) * Decimal(ppm) / Decimal(1_000_000)
    expected = int(exact.quantize(Decimal(1), rounding=DECIMAL_ROUNDING[mode]))
    assert apply_rate(Money.from_fen(fen), Rate.from_ppm(ppm), mode).fen == expected


@given(fen=st.integers(-(2**63) + 1, 2**63 - 1))
def test_money_text_round_trips(fen):
    money = Money.from_fen(fen)
    assert Money.parse(str(money)) == money
    assert Decimal(str(money)) * 100 == fen
