"""Shared fixtures of the refpay Python tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import Population, make_population, public_cases_dir


@pytest.fixture
def public_cases() -> Path:
    return public_cases_dir()


@pytest.fixture(scope="session")
def population() -> Population:
    return make_population(3000, 6000, seed=2026)
