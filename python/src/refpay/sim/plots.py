"""Charts for simulation results; each function returns a matplotlib Figure.

Figures are built with ``matplotlib.figure.Figure`` directly, never pyplot,
so they work under any backend (Agg on a server, inline in a notebook) and
leave no global state behind. Save with ``fig.savefig("x.png")``; in a
notebook with ``%matplotlib inline`` a returned Figure displays itself.

Money is converted to float yuan here, for drawing only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.figure import Figure

from .kpi import KINDS
from .run import SimResult

__all__ = ["earnings_histogram", "payout_by_kind", "sweep_curves"]


def _named(
    results: SimResult | Mapping[str, SimResult] | Sequence[SimResult],
) -> dict[str, SimResult]:
    if isinstance(results, SimResult):
        return {results.name: results}
    if isinstance(results, Mapping):
        return dict(results)
    return {r.name: r for r in results}


def earnings_histogram(
    results: SimResult | Mapping[str, SimResult] | Sequence[SimResult],
    *,
    bins: int = 30,
    title: str = "Member earnings",
    figsize: tuple[float, float] = (7.0, 4.0),
) -> Figure:
    """earnings_histogram(res): how many members earn how much, on log-scale
    axes (log-spaced yuan bins). Several results (a dict name → result) are
    overlaid as step lines. Members who earn nothing are counted in the
    legend, since a log axis cannot show 0."""
    named = _named(results)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    per = {name: r.earnings().to_numpy(dtype=np.int64) for name, r in named.items()}
    positive = [e[e > 0] for e in per.values() if (e > 0).any()]
    if positive:
        lo = max(min(int(p.min()) for p in positive), 1) / 100.0
        hi = max(int(p.max()) for p in positive) / 100.0
        edges = np.geomspace(lo, hi * 1.0001 if hi > lo else lo * 10, bins + 1)
        for name, e in per.items():
            yuan = e[e > 0] / 100.0  # plot only
            zero = int((e <= 0).sum())
            ax.hist(
                yuan,
                bins=edges.tolist(),
                histtype="step",
                linewidth=1.5,
                label=f"{name} ({zero:,} earn nothing)",
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        ax.text(
            0.5, 0.5, "nobody earned anything", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_xlabel("earnings per member (yuan, log scale)")
    ax.set_ylabel("members")
    ax.set_title(title)
    return fig


def _kind_table(source: Any) -> pd.DataFrame:
    """rows = policies, columns = kinds, values = fen."""
    if isinstance(source, pd.DataFrame):
        cols = [c for c in source.columns if c.startswith("kind_") and c.endswith("_fen")]
        if not cols:
            raise ValueError("payout_by_kind: the frame has no kind_<kind>_fen columns")
        idx = source["policy"] if "policy" in source else source.index
        t = source[cols].copy()
        t.index = list(idx)
        t.columns = [c[len("kind_") : -len("_fen")] for c in cols]
        return t
    named = _named(source)
    rows = {}
    for name, r in named.items():
        rows[name] = {
            k[len("kind_") : -len("_fen")]: v
            for k, v in r.kpis.items()
            if k.startswith("kind_") and k.endswith("_fen")
        }
    return pd.DataFrame.from_dict(rows, orient="index").fillna(0)


def payout_by_kind(
    source: SimResult | Mapping[str, SimResult] | Sequence[SimResult] | pd.DataFrame,
    *,
    title: str = "Payout by kind",
    share: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """payout_by_kind(res): a bar per policy, stacked by ledger kind (level1,
    level2, leader, peer, rank_bonus, invite_reward), in yuan — or, with
    ``share=True``, as a share of each policy's payout. Accepts one result, a
    dict of results, or a KPI frame (from :func:`sweep` or
    ``pd.concat(r.kpi_frame() …)``). Kinds that pay nothing anywhere are
    left out."""
    t = _kind_table(source).astype(np.int64)
    order = [k for k in KINDS if k in t.columns] + [k for k in t.columns if k not in KINDS]
    t = t[order]
    t = t.loc[:, (t != 0).any(axis=0)]
    values = t.to_numpy(dtype=np.float64) / 100.0  # plot only
    if share:
        sums = values.sum(axis=1, keepdims=True)
        values = np.divide(values * 100.0, sums, out=np.zeros_like(values), where=sums != 0)
    n = len(t)
    fig = Figure(figsize=figsize or (7.0, 1.2 + 0.55 * max(n, 1)), layout="constrained")
    ax = fig.subplots()
    left = np.zeros(n)
    y = np.arange(n)
    for j, kind in enumerate(t.columns):
        ax.barh(y, values[:, j], left=left, label=kind)
        left += values[:, j]
    ax.set_yticks(y, [str(i) for i in t.index])
    ax.invert_yaxis()
    ax.set_xlabel("share of payout (%)" if share else "payout (yuan)")
    if not share:
        ax.xaxis.set_major_formatter(ticker.EngFormatter(sep=""))
    ax.set_title(title)
    if len(t.columns):
        fig.legend(fontsize="small", ncols=min(len(t.columns), 6), loc="outside lower center")
    return fig


def _as_number(v: Any) -> float:
    """Sweep values ("10.00", "4%", 3) as floats for the x axis (plot only)."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    s = str(v).strip()
    pct = s.endswith("%")
    try:
        d = Decimal(s[:-1] if pct else s)
    except InvalidOperation:
        return float("nan")
    return float(d)


def sweep_curves(
    df: pd.DataFrame,
    x: str | None = None,
    y: str | Sequence[str] = ("payout_share_plot_only", "gini"),
    *,
    hue: str | None = None,
    title: str | None = None,
) -> Figure:
    """sweep_curves(df): KPI against a varied field of a :func:`sweep`
    frame, one panel per KPI in ``y``. ``x`` defaults to the first varied
    path; ``hue`` (default: the second varied path, if any) draws one line
    per value. Values like ``"10.00"`` or ``"5%"`` are read as numbers; a
    non-numeric x is drawn as categories. KPIs that are Fractions are drawn
    as floats."""
    varied = list(df.attrs.get("varied", []))
    if x is None:
        if not varied:
            raise ValueError("sweep_curves: give x= (the frame has no 'varied' attribute)")
        x = varied[0]
    if hue is None:
        others = [v for v in varied if v != x]
        hue = others[0] if others else None
    ys = [y] if isinstance(y, str) else list(y)
    fig = Figure(figsize=(5.0 * len(ys), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(ys)))
    xs = df[x].map(_as_number)
    categorical = xs.isna().any()
    if hue is None:
        groups: list[tuple[Any, pd.DataFrame]] = [(None, df)]
    else:  # None (a removed key) is a value of its own
        labels = df[hue].map(lambda v: "None" if v is None else str(v))
        groups = list(df.groupby(labels, sort=False))
    for ax, col in zip(axes, ys, strict=True):
        for key, g in groups:
            gx = g[x].map(_as_number)
            if categorical:
                xv = np.arange(len(g))
            else:
                xv = gx.to_numpy(dtype=np.float64)
            order = np.argsort(xv, kind="stable")
            yv = (
                g[col]
                .map(lambda v: float(v) if v is not None else np.nan)
                .to_numpy(dtype=np.float64)
            )
            ax.plot(
                xv[order], yv[order], marker="o", label=None if key is None else f"{hue}={key!s}"
            )
            if categorical:
                ax.set_xticks(xv, [str(v) for v in g[x]])
        ax.set_xlabel(x)
        ax.set_ylabel(col.replace("_plot_only", ""))
        if "share" in col:
            ax.yaxis.set_major_formatter(ticker.PercentFormatter(xmax=1.0))
        ax.grid(alpha=0.3)
        if hue is not None:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
