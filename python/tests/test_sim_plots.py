"""refpay.sim.plots: every chart returns a matplotlib Figure (Agg-safe)."""

from __future__ import annotations

import pytest

from refpay import sim

pytest.importorskip("matplotlib", reason="refpay.sim.plots needs matplotlib")
from matplotlib.figure import Figure  # noqa: E402

COURSE = {"name": "course", "levels": [{"fixed": "20.00"}], "leader": {"fixed": "10.00"}}
CARD = {
    "name": "card",
    "levels": [{"fixed": "50.00"}, {"fixed": "50.00"}],
    "caps": {"order_total": "30%"},
}


@pytest.fixture(scope="module")
def results():
    pop = sim.generate(1500, seed=5)
    return {"course": sim.run(COURSE, pop), "card": sim.run(CARD, pop)}, pop


def test_earnings_histogram(results, tmp_path):
    res, _ = results
    for arg in (res["course"], res, list(res.values())):
        fig = sim.plots.earnings_histogram(arg)
        assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "h.png")
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_payout_by_kind(results, tmp_path):
    res, _ = results
    fig = sim.plots.payout_by_kind(res)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["course", "card"]
    fig = sim.plots.payout_by_kind(res["course"], share=True)
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "k.png")


def test_sweep_curves(results, tmp_path):
    _, pop = results
    df = sim.sweep(
        COURSE,
        {"leader.fixed": ["0.00", "10.00", "20.00"], "levels[0].fixed": ["10.00", "20.00"]},
        pop,
        progress=False,
    )
    fig = sim.plots.sweep_curves(df)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    fig = sim.plots.sweep_curves(df, y="payout_yuan_plot_only", hue="levels[0].fixed")
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2
    fig = sim.plots.payout_by_kind(df)
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "s.png")


def test_nobody_earns(results):
    _, pop = results
    res = sim.run({"name": "none", "levels": []}, pop)
    assert isinstance(sim.plots.earnings_histogram(res), Figure)
