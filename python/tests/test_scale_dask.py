"""docs/scale.md's claims, on a small Dask cluster: a policy sweep spread
over workers, and one settlement split into order batches with the member
table broadcast, give exactly the single-process totals (examples/
dask_sweep.py). dask and distributed are test requirements (scripts/setup.sh
installs them): if they are missing this file fails, it does not skip."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import distributed
import pytest
from refpay import sim

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import dask_sweep  # noqa: E402


@pytest.fixture(scope="module")
def client() -> Iterator[distributed.Client]:
    # Two single-threaded workers in this process: light, and refpay.settle
    # releases the GIL, so the two really run at once.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def population() -> sim.Population:
    return sim.generate(3_000, seed=11)


def test_a_sweep_on_workers_is_the_single_process_result(
        client: distributed.Client, population: sim.Population) -> None:
    grid = {"leader.rate": ["1%", "3%"], "caps.order_total": ["10%", "30%"]}
    swept = dask_sweep.sweep(client, dask_sweep.STANDARD, grid, population.members,
                             population.orders, population.end)
    points = sim.grid_points(grid)
    assert len(swept) == len(points) == 4
    payouts = set()
    for point, totals in zip(points, swept):
        policy = dask_sweep.STANDARD
        for path, value in point.items():
            policy = sim.set_path(policy, path, value)
        single = dask_sweep.settle_totals(population.members, population.orders, policy,
                                          population.end)
        assert totals.equals(single), point
        payouts.add(int(single["total_fen"].sum()))
    assert len(payouts) == 4  # the points really differ


def test_a_settlement_split_by_order_batches_is_the_single_process_result(
        client: distributed.Client, population: sim.Population) -> None:
    split = dask_sweep.settle_partitioned(client, population.members, population.orders,
                                          dask_sweep.STANDARD, population.end, parts=5)
    single = dask_sweep.settle_totals(population.members, population.orders,
                                      dask_sweep.STANDARD, population.end)
    assert split.equals(single)
    assert (single[["pending_fen", "frozen_fen", "available_fen"]] > 0).any().all()


@pytest.mark.parametrize("extra", [
    {"caps": {"order_total": "30%", "member_month": "500.00"}},
    {"caps": {"budget": "1000.00"}},
    {"promotions": [{"grant": "super", "when": {"referred_buyers": 3}}]},
    {"checks": {"refund_rate": {"min_orders": 5, "max_share": "50%", "action": "hold"}}},
    {"by_category": {"course": {"caps": {"member_month": "1.00"}}}},
])
def test_a_stateful_policy_is_not_split(client: distributed.Client,
                                        population: sim.Population, extra: dict) -> None:
    with pytest.raises(ValueError, match="cannot split by orders"):
        dask_sweep.settle_partitioned(client, population.members, population.orders,
                                      {**dask_sweep.STANDARD, **extra}, population.end, parts=2)


def test_stateless_checks_may_be_split() -> None:
    assert dask_sweep.stateful_features(
        {**dask_sweep.STANDARD, "checks": {"shared_identity": {"action": "deny"},
                                           "split_orders": "off"}}) == []
