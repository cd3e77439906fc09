"""refpay.sim — compare payout policies on simulated populations.

"What would this policy cost on a million members?" in three steps:

    import refpay.sim as sim
    pop = sim.generate(100_000, seed=1)                 # members + orders
    res = sim.run({"levels": [{"rate": "10%"}]}, pop)    # settle + KPIs
    res.kpis["payout_yuan"], res.by_kind(), res.by_role()
    df = sim.sweep(base, {"leader.fixed": ["5.00", "10.00", "20.00"]}, pop)
    sim.plots.sweep_curves(df)

Every fen comes from :func:`refpay.settle_ledger` (or :func:`refpay.settle`
with ``run(..., engine=True)``); this package only generates
inputs (:mod:`.population`), summarises outputs (:mod:`.kpi`) and draws them
(:mod:`.plots`, needs matplotlib). Deterministic for a given seed. See
``docs/simulation.md``.
"""

from __future__ import annotations

from typing import Any

from .kpi import KINDS, fen_to_yuan, gini, pct, yuan_to_fen
from .kpi import compute as compute_kpis
from .population import AbuseSpec, OrderSpec, Population, RoleSpec, TreeSpec, generate
from .run import (
    SimResult,
    get_path,
    grid_points,
    policy_dict,
    run,
    set_path,
    share_frame,
    sweep,
)

__all__ = [
    "KINDS",
    "AbuseSpec",
    "OrderSpec",
    "Population",
    "RoleSpec",
    "SimResult",
    "TreeSpec",
    "compute_kpis",
    "fen_to_yuan",
    "generate",
    "get_path",
    "gini",
    "grid_points",
    "pct",
    "plots",
    "policy_dict",
    "run",
    "set_path",
    "share_frame",
    "sweep",
    "yuan_to_fen",
]


def __getattr__(name: str) -> Any:
    # matplotlib is optional: import the plots module on first use.
    if name == "plots":
        import importlib

        mod = importlib.import_module(".plots", __name__)
        globals()["plots"] = mod
        return mod
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
