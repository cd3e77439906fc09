"""Runs one peer in its own process (run.py starts one per measurement, so
each peak RSS is that peer's alone) and prints one JSON object.

    python bench/compare/worker.py PEER --data DIR --policy FILE --out totals.npy
                                   [--orders-limit K]

PEER: duckdb, pandas, python, refpay_py_totals (refpay.settle_totals, the
columnar kernel), refpay_py_ledger_kernel (refpay.settle_ledger, the same
kernel writing the ledger frame), refpay_py (refpay.settle, ledger=False),
refpay_py_ledger (refpay.settle with the ledger frame). ``load_s`` is
reading the Parquet files into the peer's own structures (DuckDB tables,
DataFrames, Python lists); ``compute_s`` is from there to per-member totals (wall clock), ``compute_cpu_s``
the same span's CPU time (all threads).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("peer")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--orders-limit", type=int)
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's)")
    args = parser.parse_args()
    meta = json.loads((args.data / "meta.json").read_text())
    n_members = meta["members"]
    limit = args.orders_limit if args.orders_limit is not None else meta["orders"]
    limit = min(limit, meta["orders"])
    info: dict[str, object] = {"peer": args.peer, "orders": limit, "members": n_members}

    t0 = time.perf_counter()
    if args.peer == "duckdb":
        import duckdb
        con = duckdb.connect()
        if args.threads:
            con.execute(f"SET threads = {args.threads}")
        info["threads"] = con.execute("SELECT current_setting('threads')").fetchone()[0]
        info["duckdb"] = duckdb.__version__
        peers.duckdb_load(con, args.data, limit if limit < meta["orders"] else None)
        rules = peers.read_rules(args.policy)
        t1 = time.perf_counter()
        c1 = time.process_time()
        totals = peers.duckdb_totals(con, rules, n_members)
        t2 = time.perf_counter()
        c2 = time.process_time()
    elif args.peer == "pandas":
        import pandas as pd
        members = pd.read_parquet(args.data / "members.parquet")
        orders = pd.read_parquet(args.data / "orders.parquet",
                                 columns=["id", "buyer", "amount_fen", "refund_amount_fen"])
        orders = orders.iloc[:limit]
        rules = peers.read_rules(args.policy)
        t1 = time.perf_counter()
        c1 = time.process_time()
        totals = peers.pandas_totals(members, orders, rules)
        t2 = time.perf_counter()
        c2 = time.process_time()
    elif args.peer == "python":
        import pyarrow.parquet as pq
        m = pq.read_table(args.data / "members.parquet", columns=["inviter", "role"])
        o = pq.read_table(args.data / "orders.parquet",
                          columns=["buyer", "amount_fen", "refund_amount_fen"]).slice(0, limit)
        inviter = m["inviter"].to_numpy(zero_copy_only=False)
        inviter_list = np.where(np.isnan(inviter), -1, inviter).astype(np.int64).tolist() \
            if inviter.dtype.kind == "f" else m["inviter"].fill_null(-1).to_numpy().tolist()
        is_leader = [r == "leader" for r in m["role"].to_pylist()]
        buyer = o["buyer"].to_numpy().tolist()
        amount = o["amount_fen"].to_numpy().tolist()
        refund = o["refund_amount_fen"].to_numpy().tolist()
        rules = peers.read_rules(args.policy)
        t1 = time.perf_counter()
        c1 = time.process_time()
        totals = np.array(peers.python_totals(inviter_list, is_leader, buyer, amount, refund,
                                              rules), dtype=np.int64)
        t2 = time.perf_counter()
        c2 = time.process_time()
    elif args.peer in ("refpay_py_totals", "refpay_py_ledger_kernel"):
        import pandas as pd
        import refpay
        members = pd.read_parquet(args.data / "members.parquet")
        orders = pd.read_parquet(args.data / "orders.parquet").iloc[:limit]
        policy = refpay.Policy.from_file(args.policy)
        settle = refpay.settle_totals if args.peer == "refpay_py_totals" else refpay.settle_ledger
        t1 = time.perf_counter()
        c1 = time.process_time()
        kernel = settle(members, orders, policy, as_of=meta["as_of"])
        t2 = time.perf_counter()
        c2 = time.process_time()
        if len(kernel.errors) or kernel.engine_reason:
            raise SystemExit(f"refpay.{settle.__name__} used the engine: {kernel.engine_reason}")
        if args.peer == "refpay_py_totals":
            totals = kernel.totals["total_fen"].to_numpy(dtype=np.int64)  # by member row
        else:  # from the ledger rows, so they are checked too
            totals = peers.ledger_sums(kernel.ledger, n_members)
            info["ledger_rows"] = len(kernel.ledger)
    elif args.peer in ("refpay_py", "refpay_py_ledger"):
        import pandas as pd
        import refpay
        members = pd.read_parquet(args.data / "members.parquet")
        orders = pd.read_parquet(args.data / "orders.parquet").iloc[:limit]
        policy = refpay.Policy.from_file(args.policy)
        t1 = time.perf_counter()
        c1 = time.process_time()
        result = refpay.settle(members, orders, policy, as_of=meta["as_of"],
                               ledger=args.peer == "refpay_py_ledger")
        t2 = time.perf_counter()
        c2 = time.process_time()
        if len(result.errors):
            raise SystemExit(f"refpay.settle rejected rows:\n{result.errors.head()}")
        totals = np.zeros(n_members, dtype=np.int64)
        totals[result.totals["member"].astype("int64").to_numpy()] = \
            result.totals["total_fen"].to_numpy(dtype=np.int64)
        if result.ledger is not None:
            info["ledger_rows"] = len(result.ledger)
    else:
        raise SystemExit(f"unknown peer {args.peer}")
    info["load_s"] = round(t1 - t0, 4)
    info["compute_s"] = round(t2 - t1, 4)
    info["compute_cpu_s"] = round(c2 - c1, 4)
    np.save(args.out, totals)
    print(json.dumps(info))


if __name__ == "__main__":
    main()
