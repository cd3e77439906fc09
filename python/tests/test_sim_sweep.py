"""refpay.sim.sweep and policy paths."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from refpay import sim

HAIER = {
    "name": "maker",
    "levels": [
        {
            "tiers": [
                {"below": "3000", "rate": "4%"},
                {"from": "3000", "below": "5000", "rate": "5%"},
                {"from": "5000", "rate": "8%"},
            ]
        }
    ],
}
COURSE = {"name": "course", "levels": [{"fixed": "20.00"}], "leader": {"fixed": "10.00"}}


@pytest.fixture(scope="module")
def pop():
    return sim.generate(2000, seed=21, orders=sim.OrderSpec(median_yuan="3000", sigma=0.4))


def test_set_and_get_paths():
    p = sim.set_path(HAIER, "levels[0].tiers[1].from", "3500")
    assert sim.get_path(p, "levels[0].tiers[1].from") == "3500"
    assert sim.get_path(HAIER, "levels[0].tiers[1].from") == "3000"  # base untouched
    p = sim.set_path(p, "caps.order_total", "30%")  # tables are created on the way
    assert p["caps"] == {"order_total": "30%"}
    p = sim.set_path(p, "caps.order_total", None)  # None removes
    assert p["caps"] == {}
    assert sim.set_path(COURSE, "levels[-1].fixed", "5")["levels"][0]["fixed"] == "5"
    with pytest.raises(IndexError, match=r"levels\[3\]"):
        sim.set_path(HAIER, "levels[3].rate", "1%")
    with pytest.raises(IndexError, match="no list"):
        sim.set_path(HAIER, "leader.ranks[0].rate", "1%")
    with pytest.raises(KeyError):
        sim.get_path(HAIER, "leader.fixed")
    for bad in ("", "levels[", "levels..x", "[0]", "levels[0]x", ".levels", "levels."):
        with pytest.raises(ValueError, match="bad policy path"):
            sim.set_path(HAIER, bad, 1)


def test_grid_points_are_the_cartesian_product():
    pts = sim.grid_points({"a": [1, 2, 3], "b.c[0]": ["x", "y"]})
    assert len(pts) == 6
    assert pts[0] == {"a": 1, "b.c[0]": "x"} and pts[-1] == {"a": 3, "b.c[0]": "y"}
    with pytest.raises(TypeError):
        sim.grid_points({"a": "10.00"})


def test_sweep_shape_and_varied_values(pop):
    grid = {
        "leader.fixed": ["5.00", "10.00", "20.00"],
        "levels[0].fixed": ["10.00", "20.00"],
    }
    df = sim.sweep(COURSE, grid, pop, progress=False)
    assert len(df) == 6
    assert list(df.columns[:3]) == ["policy", "leader.fixed", "levels[0].fixed"]
    assert list(df["leader.fixed"]) == ["5.00", "5.00", "10.00", "10.00", "20.00", "20.00"]
    assert list(df["levels[0].fixed"]) == ["10.00", "20.00"] * 3
    assert df.attrs["varied"] == ["leader.fixed", "levels[0].fixed"]
    assert df["policy"].is_unique
    assert df["payout_fen"].dtype == np.int64
    # The leader bonus only moves the leader kind; the level only moves level1.
    lvl = df.groupby("levels[0].fixed")["kind_level1_fen"].nunique()
    assert (lvl == 1).all()
    by_leader = df[df["levels[0].fixed"] == "20.00"].set_index("leader.fixed")["kind_leader_fen"]
    assert (
        by_leader["5.00"] * 2 == by_leader["10.00"] and by_leader["10.00"] * 2 == by_leader["20.00"]
    )
    # Same result as a single run of the same policy.
    one = sim.run(sim.set_path(COURSE, "leader.fixed", "20.00"), pop).kpis
    row = df[(df["leader.fixed"] == "20.00") & (df["levels[0].fixed"] == "20.00")].iloc[0]
    assert row["payout_fen"] == one["payout_fen"]


def test_sweep_tier_boundary(pop):
    # Tiers must meet exactly, so a boundary moves on both sides at once.
    df = sim.sweep(
        HAIER,
        {"levels[0].tiers[1].below": ["4000"], "levels[0].tiers[2].from": ["4000"]},
        pop,
        progress=False,
    )
    base = sim.run(HAIER, pop).kpis
    assert len(df) == 1
    assert df["payout_fen"].iloc[0] > base["payout_fen"]  # 8 % starts earlier


def test_sweep_fails_fast_on_a_bad_point(pop):
    with pytest.raises(Exception, match="sweep point"):
        sim.sweep(COURSE, {"leader.fixd": ["5.00"]}, pop, progress=False)


def test_progress_counter_without_tqdm(pop, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    sim.sweep(COURSE, {"leader.fixed": ["1.00", "2.00"]}, pop, progress=True)
    err = capsys.readouterr().err
    assert "sweep: 2/2" in err


def test_progress_off_is_silent(pop, capsys):
    sim.sweep(COURSE, {"leader.fixed": ["1.00"]}, pop, progress=False)
    assert capsys.readouterr().err == ""


def test_on_result_sees_every_run(pop):
    seen = []
    sim.sweep(
        COURSE,
        {"leader.fixed": ["1.00", "2.00"]},
        pop,
        progress=False,
        on_result=lambda point, res: seen.append((point, res.kpis["payout_fen"])),
    )
    assert [p for p, _ in seen] == [{"leader.fixed": "1.00"}, {"leader.fixed": "2.00"}]


def test_parallel_sweep_matches_sequential(pop):
    grid = {"leader.fixed": ["1.00", "2.00", "3.00"]}
    one = sim.sweep(COURSE, grid, pop, progress=False)
    two = sim.sweep(COURSE, grid, pop, progress=False, n_jobs=2)
    drop = ["seconds"]
    assert one.drop(columns=drop).equals(two.drop(columns=drop))
    with pytest.raises(ValueError, match="on_result"):
        sim.sweep(COURSE, grid, pop, progress=False, n_jobs=2, on_result=lambda p, r: None)


def test_sweep_from_a_policy_file_with_a_removed_key(pop, tmp_path):
    path = tmp_path / "course.toml"
    path.write_text(
        'name = "course"\nlevels = [{ fixed = "20.00" }]\n'
        '[leader]\nfixed = "10.00"\nmax_depth = 2\n'
    )
    assert sim.policy_dict(path)["leader"] == {"fixed": "10.00", "max_depth": 2}
    df = sim.sweep(
        path,
        {"leader.fixed": ["5.00", "10.00"], "leader.max_depth": [1, None]},
        pop,
        progress=False,
    )
    assert list(df["leader.max_depth"]) == [1, None, 1, None]
    deeper = df.set_index(["leader.fixed", df["leader.max_depth"].map(str)])["kind_leader_fen"]
    assert deeper[("5.00", "None")] >= deeper[("5.00", "1")]
    fig = sim.plots.sweep_curves(df, y="payout_yuan_plot_only")
    labels = sorted(line.get_label() for line in fig.axes[0].lines)
    assert labels == ["leader.max_depth=1", "leader.max_depth=None"]
