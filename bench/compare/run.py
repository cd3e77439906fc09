"""refpay against its peers, one run, same data (issue #4).

    python bench/compare/run.py --size small|standard|large [--seed 1]
    python bench/compare/run.py --members N --orders N
    python bench/compare/run.py --check-only --size test     # correctness only

Generates (or reuses) the data set, runs every peer in its own subprocess
(peak RSS and CPU time from os.wait4), checks that each peer's per-member
totals equal refpay's exactly (exit status 1 and the first differing
members otherwise), prints the table and writes it into docs/performance.md
between markers for that size (--no-docs to skip). See README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import gen  # noqa: E402
import peers  # noqa: E402

POLICIES = ("standard", "tiers_only", "leader_only", "capped")
DOCS = ROOT / "docs" / "performance.md"
DEFAULT_BIN = ROOT / "build" / "bin" / "refpay_settle_columns"

# name → (kind, argument (a C++ mode and its options, or a worker peer), what it is)
PEERS: dict[str, tuple[str, str, str]] = {
    "refpay_cc_kernel_int_ids": ("cc", "kernel --ids int",
                                 "refpay C++ `SettleTotals` (columnar kernel), integer id columns "
                                 "(checked; what `refpay.settle_totals` passes for integer ids)"),
    "refpay_cc_kernel": ("cc", "kernel",
                         "refpay C++ `SettleTotals` (columnar kernel), string id columns"),
    "refpay_cc_kernel_no_ids": ("cc", "kernel --ids none",
                                "refpay C++ `SettleTotals`, no id columns (rows are the ids, "
                                "as the peers assume)"),
    "refpay_cc_ledger_kernel": ("cc", "ledger-kernel --ids int",
                                "refpay C++ `SettleLedger` (columnar kernel, full ledger), "
                                "integer id columns (what `refpay.settle_ledger` passes)"),
    "refpay_cc": ("cc", "totals", "refpay C++ `SettleBatch` + `Engine::Totals`"),
    "refpay_cc_ledger": ("cc", "ledger", "refpay C++ `SettleBatch` + `Engine::LedgerTable` (full ledger)"),
    "refpay_cc_events": ("cc", "events", "refpay C++ `Engine::Apply` per event + `Totals`"),
    "refpay_py_totals": ("py", "refpay_py_totals",
                         "refpay Python `refpay.settle_totals` (columnar kernel), pandas in/out"),
    "refpay_py_ledger_kernel": ("py", "refpay_py_ledger_kernel",
                                "refpay Python `refpay.settle_ledger` (columnar kernel, ledger "
                                "frame), pandas in/out"),
    "refpay_py": ("py", "refpay_py", "refpay Python `refpay.settle(..., ledger=False)`, pandas in/out"),
    "duckdb": ("py", "duckdb", "DuckDB SQL (recursive CTE, integer fen)"),
    "pandas": ("py", "pandas", "pandas/numpy vectorised (int64 fen)"),
    "python": ("py", "python", "pure-Python loop over orders"),
}
DEFAULT_PEERS = tuple(PEERS)
# The reference takes the ids as the peers' tables have them, integers, and
# checks them (the peers do not).
REFERENCE = "refpay_cc_kernel_int_ids"


@dataclass
class Measurement:
    peer: str
    orders: int
    load_s: float
    compute_s: float
    compute_cpu_s: float
    cpu_s: float
    rss_mib: float
    totals: Path
    extra: dict[str, Any] = field(default_factory=dict)


def _run(cmd: list[str], timeout: float) -> tuple[dict[str, Any], float, float]:
    """Runs one measurement under /usr/bin/time; returns (its JSON line, CPU
    seconds, peak RSS MiB). /usr/bin/time, not os.wait4 from here: a child
    forked from this process inherits its resident-set high-water mark
    (Linux keeps it across exec), so every peer would report at least
    run.py's own size."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as usage:
        try:
            proc = subprocess.run(["/usr/bin/time", "-o", usage.name, "-f", "%M %U %S", *cmd],
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise TimeoutError(f"{shlex.join(cmd)} ran past {timeout:.0f} s") from e
        if proc.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({proc.returncode}):\n"
                               f"{proc.stderr[-4000:]}")
        rss_kib, user, system = usage.read().split()[-3:]
    return (json.loads(proc.stdout.strip().splitlines()[-1]), float(user) + float(system),
            int(rss_kib) / 1024)


def measure(peer: str, data: Path, policy: Path, work: Path, cc_bin: Path, *,
            orders_limit: int | None = None, timeout: float = 3600,
            suffix: str = "") -> Measurement:
    kind, arg, _ = PEERS[peer]
    meta = json.loads((data / "meta.json").read_text())
    out = work / f"{peer}{suffix}.{'i64' if kind == 'cc' else 'npy'}"
    if kind == "cc":
        mode, *options = arg.split()
        cmd = [str(cc_bin), "--data", str(data / "bin"), "--policy", str(policy),
               "--as-of", str(meta["as_of_us"]), "--mode", mode, *options, "--out", str(out)]
    else:
        cmd = [sys.executable, str(HERE / "worker.py"), arg, "--data", str(data),
               "--policy", str(policy), "--out", str(out)]
    if orders_limit is not None:
        cmd += ["--orders-limit", str(orders_limit)]
    info, cpu, rss = _run(cmd, timeout)
    return Measurement(peer, int(info["orders"]), float(info["load_s"]),
                       float(info["compute_s"]), float(info["compute_cpu_s"]), cpu, rss, out,
                       {k: v for k, v in info.items()
                        if k not in ("orders", "load_s", "compute_s", "compute_cpu_s", "peer",
                                     "mode", "members")})


def load_totals(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<i8") if path.suffix == ".i64" else np.load(path)


def mismatch(name: str, got: np.ndarray, want: np.ndarray, want_name: str) -> str | None:
    if got.shape == want.shape and np.array_equal(got, want):
        return None
    if got.shape != want.shape:
        return f"{name}: {got.shape[0]} members, {want_name} {want.shape[0]}"
    rows = np.flatnonzero(got != want)
    first = ", ".join(f"member {r}: {got[r]} vs {want[r]} fen" for r in rows[:5])
    return (f"{name} disagrees with {want_name} on {len(rows)} members "
            f"(sum {got.sum()} vs {want.sum()} fen); first: {first}")


# --------------------------------------------------------------------------
# Correctness only, in process (the pytest): every peer on every policy


def check(data: Path, policies: tuple[str, ...] = POLICIES,
          cc_bin: Path | None = None) -> list[str]:
    """Every peer (and the C++ program, if given) against refpay.settle on
    every policy; returns the disagreements (empty = all agree)."""
    import duckdb
    import pandas as pd
    import refpay

    meta = json.loads((data / "meta.json").read_text())
    members = pd.read_parquet(data / "members.parquet")
    orders = pd.read_parquet(data / "orders.parquet")
    con = duckdb.connect()
    peers.duckdb_load(con, data)
    inviter = members["inviter"].fillna(-1).astype("int64").tolist()
    is_leader = (members["role"] == "leader").tolist()
    problems = []
    for name in policies:
        path = HERE / "policies" / f"{name}.toml"
        rules = peers.read_rules(path)
        result = refpay.settle(members, orders, refpay.Policy.from_file(path),
                               as_of=meta["as_of"], ledger=True)
        if len(result.errors):
            problems.append(f"{name}: refpay.settle rejected rows: {result.errors.head()}")
        want = np.zeros(len(members), dtype=np.int64)
        want[result.totals["member"].astype("int64").to_numpy()] = \
            result.totals["total_fen"].to_numpy(dtype=np.int64)
        by_ledger = np.zeros(len(members), dtype=np.int64)
        sums = result.ledger.groupby("member", observed=True)["amount_fen"].sum()
        by_ledger[sums.index.astype("int64").to_numpy()] = sums.to_numpy(dtype=np.int64)
        kernel_ledger = refpay.settle_ledger(members, orders, refpay.Policy.from_file(path),
                                             as_of=meta["as_of"]).ledger
        got = {
            "refpay ledger": by_ledger,
            "refpay settle_ledger": peers.ledger_sums(kernel_ledger, len(members)),
            "duckdb": peers.duckdb_totals(con, rules, len(members)),
            "pandas": peers.pandas_totals(members, orders, rules),
            "python": np.array(peers.python_totals(
                inviter, is_leader, orders["buyer"].tolist(), orders["amount_fen"].tolist(),
                orders["refund_amount_fen"].tolist(), rules), dtype=np.int64),
        }
        if cc_bin is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for mode in ("kernel", "ledger-kernel", "totals", "ledger", "events"):
                    out = Path(tmp) / f"{mode}.i64"
                    subprocess.run([str(cc_bin), "--data", str(data / "bin"), "--policy",
                                    str(path), "--as-of", str(meta["as_of_us"]), "--mode", mode,
                                    "--out", str(out)], check=True, capture_output=True)
                    got[f"C++ {mode}"] = load_totals(out)
        for peer, totals in got.items():
            problem = mismatch(f"{name}: {peer}", totals, want, "refpay.settle")
            if problem:
                problems.append(problem)
        if not want.any():
            problems.append(f"{name}: refpay paid nothing: the check would prove nothing")
    return problems


# --------------------------------------------------------------------------
# The timed run


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, AttributeError):
        pass
    versions = {}
    for module in ("numpy", "pandas", "pyarrow", "duckdb"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            versions[module] = "missing"
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout
    commit = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s"],
                            capture_output=True, text=True).stdout.strip()
    os_name = platform.platform()
    try:
        os_name = re.search(r'PRETTY_NAME="([^"]+)"', Path("/etc/os-release").read_text()).group(1)
    except (OSError, AttributeError):
        pass
    return {
        "cpu": f"{os.cpu_count()} × {cpu}", "memory": mem, "os": os_name,
        "compiler": gxx.splitlines()[0] if gxx else "?",
        "python": platform.python_version(),
        "libraries": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "commit": commit,
    }


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k" if x >= 1e3 else f"{x:.0f}"


def table(results: list[Measurement], total_orders: int) -> list[str]:
    ref = next(m for m in results if m.peer == REFERENCE)
    rows = ["| peer | orders run | seconds | orders/s | time ÷ refpay C++ | CPU s | "
            "CPU ÷ refpay C++ | load s | process CPU s | peak RSS |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in results:
        rate = m.orders / m.compute_s if m.compute_s > 0 else float("inf")
        scale = total_orders / m.orders  # extrapolated for a subsample
        note = "" if m.orders == total_orders else " *"
        rows.append(
            f"| {PEERS[m.peer][2]} | {m.orders:,} | {m.compute_s:.2f}{note} | {fmt_rate(rate)} | "
            f"{m.compute_s * scale / ref.compute_s:.2f}{note} | {m.compute_cpu_s:.2f} | "
            f"{m.compute_cpu_s * scale / ref.compute_cpu_s:.2f}{note} | {m.load_s:.2f} | "
            f"{m.cpu_s:.1f} | {m.rss_mib:,.0f} MiB |")
    return rows


def write_docs(section: str, body: list[str]) -> None:
    begin = f"<!-- bench/compare {section}: generated by bench/compare/run.py, begin -->"
    end = f"<!-- bench/compare {section}: end -->"
    text = DOCS.read_text()
    block = "\n".join([begin, *body, end])
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        heading = "## refpay against DuckDB, pandas and Python (bench/compare)"
        if heading not in text:
            text = text.rstrip("\n") + f"\n\n{heading}\n"
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text)


def warm_memory(gib: int) -> float:
    """Touches `gib` GiB of memory once, all held at the same time, then frees
    it; returns the seconds it took. On the virtual machines measured here
    the first touch of a page the host does not back (never used since boot,
    or freed and reported back by the balloon a few seconds ago) waits for
    the host: 2.4 s per GiB, against 0.23 s for a backed page. A peer run on
    such memory pays for the machine's history, not for its own work; the
    warm-up narrows that for the peers run right after it, and its time in
    the table's heading says how cold the machine was."""
    started = time.perf_counter()
    held = [np.ones(1 << 30, dtype=np.uint8) for _ in range(gib)]
    del held
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(gen.SIZES))
    parser.add_argument("--members", type=int)
    parser.add_argument("--orders", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=gen.DEFAULT_CACHE)
    parser.add_argument("--policy", default="standard", choices=POLICIES)
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS),
                        help=f"comma-separated, from {','.join(PEERS)}")
    parser.add_argument("--python-orders", type=int, default=1_000_000,
                        help="the pure-Python loop runs on the first K orders (default 1M)")
    parser.add_argument("--cc-bin", type=Path, default=Path(os.environ.get(
        "REFPAY_SETTLE_COLUMNS", DEFAULT_BIN)))
    parser.add_argument("--timeout", type=float, default=3600, help="per peer, seconds")
    parser.add_argument("--check-only", action="store_true",
                        help="correctness of every peer on every policy, no timing")
    parser.add_argument("--no-docs", action="store_true")
    parser.add_argument("--warm-gib", type=int,
                        help="GiB of memory to touch once before the peers run (default: 12 "
                             "for the standard and large sizes, 1 otherwise; 0 to skip)")
    args = parser.parse_args()
    if args.size:
        members, orders = gen.SIZES[args.size]
    elif args.members and args.orders:
        members, orders = args.members, args.orders
    else:
        parser.error("give --size or both --members and --orders")
    data = gen.generate(members, orders, args.seed, args.cache)

    if args.check_only:
        cc = args.cc_bin if args.cc_bin.exists() else None
        found = check(data, cc_bin=cc)
        for p in found:
            print("MISMATCH", p, file=sys.stderr)
        print(f"{'FAIL' if found else 'OK'}: {', '.join(POLICIES)} on {members:,} members / "
              f"{orders:,} orders ({'with' if cc else 'without'} the C++ program)")
        return 1 if found else 0

    if not args.cc_bin.exists():
        parser.error(f"{args.cc_bin} not built: cmake --build <dir> --target "
                     "refpay_settle_columns, or set REFPAY_SETTLE_COLUMNS (run.sh does)")
    chosen = [p.strip() for p in args.peers.split(",") if p.strip()]
    if REFERENCE not in chosen:
        chosen.insert(0, REFERENCE)
    policy = HERE / "policies" / f"{args.policy}.toml"
    warm_gib = args.warm_gib if args.warm_gib is not None else (
        12 if orders >= 10_000_000 else 1)
    warmed_s = warm_memory(warm_gib)
    print(f"touched {warm_gib} GiB of memory once in {warmed_s:.1f} s", file=sys.stderr)
    started = dt.datetime.now(dt.timezone.utc)
    info = machine()
    results: list[Measurement] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="refpay-compare-") as tmp:
        work = Path(tmp)
        for peer in chosen:
            limit = args.python_orders if peer == "python" and args.python_orders < orders \
                else None
            print(f"[{time.strftime('%H:%M:%S')}] {peer}"
                  f"{f' (first {limit:,} orders)' if limit else ''} ...", file=sys.stderr,
                  flush=True)
            m = measure(peer, data, policy, work, args.cc_bin, orders_limit=limit,
                        timeout=args.timeout)
            results.append(m)
            print(f"    {m.compute_s:.2f} s (load {m.load_s:.2f} s), {m.rss_mib:,.0f} MiB",
                  file=sys.stderr, flush=True)
            want_path = results[0].totals
            if limit:  # refpay on the same subsample
                want_path = measure(REFERENCE, data, policy, work, args.cc_bin,
                                    orders_limit=limit, suffix="_subsample").totals
            problem = mismatch(peer, load_totals(m.totals), load_totals(want_path),
                               "refpay C++" + (f" on the first {limit:,} orders" if limit else ""))
            if problem:
                problems.append(problem)
                print("MISMATCH", problem, file=sys.stderr, flush=True)

    command = "python bench/compare/run.py " + (
        f"--size {args.size}" if args.size else f"--members {members} --orders {orders}")
    if args.policy != "standard":
        command += f" --policy {args.policy}"
    meta = json.loads((data / "meta.json").read_text())
    events = next((m for m in results if m.peer == "refpay_cc_events"), None)
    ledger = next((m for m in results if m.peer == "refpay_cc_ledger"), None)
    py = next((m for m in results if m.peer == "python"), None)
    lines = [
        f"{members:,} members, {orders:,} orders (seed {args.seed}: {meta['leaders']:,} leaders, "
        f"{meta['refunds_full']:,} full and {meta['refunds_partial']:,} partial refunds, "
        f"{meta['confirmed']:,} confirmations), policy `bench/compare/policies/{args.policy}.toml`. "
        f"Command: `{command}`, {started:%Y-%m-%d %H:%M} UTC, commit `{info['commit']}`.",
        "",
        f"Machine: {info['cpu']}, {info['memory']}, {info['os']}, {info['compiler']}, "
        f"Python {info['python']}, {info['libraries']}; load average at start "
        f"{info['load']} (the machine is shared: figures are upper bounds). Before the "
        f"peers, {warm_gib} GiB of memory were touched once ({warmed_s:.1f} s; about "
        "2.4 s per GiB means the host was not backing it: bench/compare/README.md).",
        "",
        *table(results, orders),
        "",
        "`seconds` (wall clock) and `CPU s` (all threads) are from data in the peer's own "
        "memory (C++ vectors, DuckDB tables, DataFrames, Python lists) to per-member totals; "
        "the ratios divide them by the first row's, refpay C++ with integer ids (below 1 = "
        "faster than it). "
        "`load s` (reading the files into that memory) is separate. `process CPU s` and "
        "`peak RSS` are the whole subprocess's, load included (/usr/bin/time). On a shared "
        "machine the CPU ratio is the steadier one. Every row's per-member totals were "
        "checked equal to refpay's, fen for fen" + (f" ({len(problems)} DISAGREED, see the run's output)."
                                   if problems else "."),
    ]
    if py and py.orders < orders:
        lines.append(f"\\* the pure-Python loop ran on the first {py.orders:,} orders (checked "
                     "against refpay on the same orders); its ratio is extrapolated linearly.")
    if events:
        lines.append(
            f"Event path: per-order `Engine::Apply` latency median "
            f"{int(events.extra['order_apply_p50_ns']) / 1000:.2f} µs, p99 "
            f"{int(events.extra['order_apply_p99_ns']) / 1000:.2f} µs, max "
            f"{int(events.extra['order_apply_max_ns']) / 1000:.0f} µs "
            f"({events.extra['events']:,} events; mean refund "
            f"{int(events.extra['refund_apply_mean_ns']) / 1000:.2f} µs).")
    if ledger:
        lines.append(f"Full ledger: {int(ledger.extra['ledger_rows']):,} rows.")
    duck = next((m for m in results if m.peer == "duckdb"), None)
    if duck:
        lines.append(f"DuckDB ran with {duck.extra.get('threads')} threads; refpay with one.")
    print("\n".join(lines))
    if not args.no_docs:
        section = args.size or f"m{members}_o{orders}"
        write_docs(section, [f"### {section}: {members:,} members / {orders:,} orders", "",
                             *lines])
        print(f"wrote {DOCS.relative_to(ROOT)} (section {section})", file=sys.stderr)
    if problems:
        print("FAIL: peers disagree with refpay:\n" + "\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
