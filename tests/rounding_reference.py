#!/usr/bin/env python3
"""Writes tests/data/rounding.tsv: exact rate products rounded by Python's
`decimal`, the reference refpay's RoundingMode must agree with.

Rows: fen, ppm, mode, expected_fen. Chosen for odd divisors, exact ties,
near-ties, negatives and large magnitudes.

    python3 tests/rounding_reference.py > tests/data/rounding.tsv
"""
import decimal
import itertools

MODES = {"half_up": decimal.ROUND_HALF_UP, "half_even": decimal.ROUND_HALF_EVEN,
         "down": decimal.ROUND_DOWN}
AMOUNTS = [1, 2, 3, 5, 7, 10, 15, 25, 35, 45, 99, 125, 250, 333, 499999, 499_999_99,
           -1, -5, -15, -25, -35, -125, 9_223_372_036_854_775_807, -9_223_372_036_854_775_807]
RATES = [0, 1, 3, 7, 333_333, 500_000, 125_000, 50_000, 40_000, 55_555, 666_667, 999_999,
         1_000_000, 33_333, 5]


def main() -> None:
    decimal.getcontext().prec = 60
    print("fen\tppm\tmode\texpected_fen")
    for fen, ppm, (name, mode) in itertools.product(AMOUNTS, RATES, MODES.items()):
        exact = decimal.Decimal(fen) * decimal.Decimal(ppm) / decimal.Decimal(1_000_000)
        rounded = exact.quantize(decimal.Decimal(1), rounding=mode)
        print(f"{fen}\t{ppm}\t{name}\t{rounded}")


if __name__ == "__main__":
    main()
