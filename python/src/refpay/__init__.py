"""refpay — exact referral/distribution commissions (分销佣金) for Python.

The refpay C++ engine computes every commission to the fen with no binary
floating point; this package gives it a typed, pandas-friendly face:

>>> import refpay
>>> policy = refpay.Policy.from_dict({"name": "course", "levels": [{"fixed": "20.00"}],
...                                   "leader": {"fixed": "10.00", "max_depth": 3}})
>>> engine = refpay.Engine(policy)
>>> engine.apply_many([
...     {"type": "join", "member": "A", "at": "2026-03-01T09:00:00+08:00"},
...     {"type": "set_role", "member": "A", "role": "leader", "at": "2026-03-01T09:00:00+08:00"},
...     {"type": "join", "member": "B", "inviter": "A", "at": "2026-03-01T09:00:00+08:00"},
...     {"type": "order", "id": "o1", "buyer": "B", "amount": "100.00",
...      "at": "2026-03-02T10:00:00+08:00"},
... ]).empty
True
>>> engine.balances("2026-03-03T00:00:00+08:00")
  member   status amount  amount_fen
0      A  pending  30.00        3000

- :class:`Policy` — a validated policy (``from_file``, ``from_toml``,
  ``from_json``, ``from_dict``) and its ``lint()``;
- :class:`Engine` — events one by one; ledger, balances, totals, flags;
- :func:`settle` — whole member/order tables at once (the fast path);
- :func:`settle_totals` — only the per-member totals of those tables, by a
  columnar kernel where the policy allows (simulations, sweeps);
- :func:`settle_ledger` — the ledger, totals and flags of those tables by
  the same kernel, without an engine (no explanations);
- :func:`run_case`, :func:`check_cases` — audit cases (SPEC §8), also
  collected by pytest through ``refpay.pytest_plugin``;
- :class:`Money`, :class:`Rate`, :class:`RoundingMode`, :func:`apply_rate` —
  the exact arithmetic itself;
- :class:`RefpayError` and its subclasses, each with ``.code``.

See docs/python.md.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._errors import (CaseError, EventError, PolicyError, RefpayError, SnapshotError,
                      UnknownIdError)

try:
    from ._core import Money, Rate, RoundingMode, apply_rate
except ImportError as error:  # pragma: no cover - depends on the installation
    raise ImportError(
        "refpay's compiled module refpay._core is missing or cannot load "
        f"({error}). Build and install the package from the repository root with "
        "`pip install ./python` (needs a C++20 compiler, CMake >= 3.20 and Debian's "
        "libabsl-dev libboost-dev nlohmann-json3-dev libtomlplusplus-dev); do not "
        "import refpay from the source tree python/src without installing it."
    ) from error

from ._cases import CaseResult, check_cases, run_case
from ._engine import Engine
from ._policy import Policy
from ._settle import (LedgerResult, SettleResult, TotalsResult, settle, settle_ledger,
                      settle_totals)

try:
    __version__ = version("refpay")
except PackageNotFoundError:  # pragma: no cover - imported without being installed
    __version__ = "unknown"

__all__ = [
    "CaseError",
    "CaseResult",
    "Engine",
    "EventError",
    "LedgerResult",
    "Money",
    "Policy",
    "PolicyError",
    "Rate",
    "RefpayError",
    "RoundingMode",
    "SettleResult",
    "SnapshotError",
    "TotalsResult",
    "UnknownIdError",
    "__version__",
    "apply_rate",
    "check_cases",
    "run_case",
    "settle",
    "settle_ledger",
    "settle_totals",
]
