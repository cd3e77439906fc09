"""The package itself: its public names, typing, stubs and docstring examples."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

import refpay

MODULES = ["refpay", "refpay._cases", "refpay._engine", "refpay._policy", "refpay._settle",
           "refpay._time"]


def test_public_names():
    assert sorted(refpay.__all__) == refpay.__all__
    for name in refpay.__all__:
        assert getattr(refpay, name) is not None, name
    assert refpay.__version__ == "0.1.0"


def test_exception_hierarchy():
    assert issubclass(refpay.PolicyError, refpay.RefpayError)
    assert issubclass(refpay.PolicyError, ValueError)
    assert issubclass(refpay.EventError, ValueError)
    assert issubclass(refpay.UnknownIdError, KeyError)
    assert issubclass(refpay.CaseError, ValueError)
    assert issubclass(refpay.SnapshotError, ValueError)


def test_typed_package_ships_its_marker_and_stubs():
    package = files("refpay")
    assert package.joinpath("py.typed").is_file()
    assert package.joinpath("_core.pyi").is_file()


def test_stubs_match_the_compiled_module():
    pytest.importorskip("mypy", reason="stubtest needs mypy")
    allowlist = Path(__file__).with_name("stubtest-allowlist.txt")
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "refpay._core", "--allowlist", str(allowlist)],
        capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_missing_compiled_module_says_how_to_install():
    code = "import sys; sys.modules['refpay._core'] = None; import refpay"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert run.returncode != 0
    assert "pip install ./python" in run.stderr


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
