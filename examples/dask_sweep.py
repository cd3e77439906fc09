"""refpay across machines with Dask: a policy sweep, and one settlement split
by order batches (docs/scale.md explains when the split is exact).

    python examples/dask_sweep.py [--members 20000] [--workers 2] [--scheduler tcp://host:8786]

Without ``--scheduler`` it starts a LocalCluster. Either way it computes the
sweep and the split settlement on the cluster, computes them again in this
process, and fails unless every member's totals are equal, fen for fen.

Both functions take a ``distributed.Client``; the member table (the tree,
roles and identities) goes to every worker once (``scatter(broadcast=True)``)
and policies travel as plain dicts (a ``refpay.Policy`` is built where it
is used).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import refpay
from refpay import sim

TOTAL_COLUMNS = ["pending_fen", "frozen_fen", "available_fen", "held_fen", "total_fen"]

#: Policy features whose result for one order depends on other orders or on
#: history, so that settling order batches apart and adding them up would
#: not be the single run's result (docs/scale.md).
STATEFUL = {
    "caps.member_month": "a member's monthly cap spans every order of the month",
    "caps.budget": "the budget is first come, first served over the whole run",
    "promotions": "promotions grant roles from earlier orders",
    "invite_rewards": "invite rewards count invitees (and are not per order)",
    "checks.split_orders": "split_orders looks at the buyer's earlier orders",
    "checks.refund_rate": "refund_rate looks at a member's earlier orders and refunds",
    "checks.velocity": "velocity looks at earlier joins (invite rewards)",
}


def stateful_features(policy: Mapping[str, Any]) -> list[str]:
    """The STATEFUL paths a policy dict uses (also inside by_category)."""
    found = []
    scopes = [policy, *dict(policy.get("by_category") or {}).values()]
    for path in STATEFUL:
        head, _, tail = path.partition(".")
        for scope in scopes:
            value = scope.get(head)
            if tail:
                value = value.get(tail) if isinstance(value, Mapping) else None
            if value not in (None, "off", [], {}) and not (
                    isinstance(value, Mapping) and value.get("action") == "off"):
                found.append(path)
                break
    return found


def settle_totals(members: pd.DataFrame, orders: pd.DataFrame, policy: Mapping[str, Any],
                  as_of: Any) -> pd.DataFrame:
    """One refpay.settle_totals (the columnar kernel where the policy
    allows); the per-member totals, indexed by member id."""
    result = refpay.settle_totals(members, orders, refpay.Policy.from_dict(dict(policy)),
                                  as_of=as_of)
    if len(result.errors):
        raise ValueError(f"rejected rows:\n{result.errors.head()}")
    return result.totals.set_index("member")[TOTAL_COLUMNS]


def _settle_point(members: pd.DataFrame, orders: pd.DataFrame, base: Mapping[str, Any],
                  point: Mapping[str, Any], as_of: Any) -> pd.DataFrame:
    policy = dict(base)
    for path, value in point.items():
        policy = sim.set_path(policy, path, value)
    return settle_totals(members, orders, policy, as_of)


def sweep(client: Any, base_policy: Mapping[str, Any], grid: Mapping[str, Sequence[Any]],
          members: pd.DataFrame, orders: pd.DataFrame, as_of: Any) -> list[pd.DataFrame]:
    """Every grid point (cartesian product, sim.grid_points order) settled on
    the cluster, one task per policy; returns the totals per point. The data
    are broadcast to every worker once."""
    members_f, orders_f = client.scatter([members, orders], broadcast=True, hash=False)
    futures = [client.submit(_settle_point, members_f, orders_f, dict(base_policy), point,
                             as_of, pure=False)
               for point in sim.grid_points(grid)]
    return client.gather(futures)


def settle_partitioned(client: Any, members: pd.DataFrame, orders: pd.DataFrame,
                       policy: Mapping[str, Any], as_of: Any, parts: int) -> pd.DataFrame:
    """One settlement split into ``parts`` batches of orders (each with its
    confirmation and refund), the whole member table broadcast to each; the
    batches' totals are added up. Exact for policies without STATEFUL
    features (raises ValueError naming them otherwise)."""
    found = stateful_features(policy)
    if found:
        raise ValueError("cannot split by orders: " + "; ".join(
            f"{path} ({STATEFUL[path]})" for path in found))
    members_f = client.scatter(members, broadcast=True, hash=False)
    bounds = np.linspace(0, len(orders), parts + 1).astype(int)
    batches = [orders.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    futures = [client.submit(settle_totals, members_f, batch, dict(policy), as_of, pure=False)
               for batch in batches]
    totals = client.gather(futures)
    out = totals[0].copy()
    for t in totals[1:]:
        out = out.add(t, fill_value=0)
    return out.astype("int64")


STANDARD = {
    "name": "standard",
    "levels": [{"tiers": [{"below": "3000", "rate": "4%"},
                          {"from": "3000", "below": "5000", "rate": "5%"},
                          {"from": "5000", "rate": "8%"}]},
               {"rate": "5%"}],
    "leader": {"rate": "2%"},
    "caps": {"order_total": "30%"},
    "settlement": {"hold_days": 7},
}
GRID = {"leader.rate": ["1%", "2%", "3%"], "caps.order_total": ["10%", "30%"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", help="address of a running dask scheduler")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    pop = sim.generate(args.members, seed=args.seed)
    as_of = pop.end
    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                     dashboard_address=None))
    with client:
        t0 = time.perf_counter()
        swept = sweep(client, STANDARD, GRID, pop.members, pop.orders, as_of)
        t1 = time.perf_counter()
        split = settle_partitioned(client, pop.members, pop.orders, STANDARD, as_of,
                                   parts=4 * args.workers)
        t2 = time.perf_counter()
    ok = True
    for point, totals in zip(sim.grid_points(GRID), swept):
        single = _settle_point(pop.members, pop.orders, STANDARD, point, as_of)
        same = totals.equals(single)
        ok &= same
        print(f"{point}: payout {int(totals['total_fen'].sum()):,} fen, "
              f"{'equal' if same else 'DIFFERENT'} to one process")
    single = settle_totals(pop.members, pop.orders, STANDARD, as_of)
    same = split.equals(single)
    ok &= same
    print(f"split settlement ({4 * args.workers} order batches): "
          f"{'equal' if same else 'DIFFERENT'} to one process")
    print(f"sweep {t1 - t0:.2f} s, split settlement {t2 - t1:.2f} s on the cluster")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
