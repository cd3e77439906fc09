"""Settle a policy on a population, and sweep a policy grid.

Nothing here computes money: every fen comes from :func:`refpay.settle_ledger`
(the columnar kernel where the policy allows, else the engine; the same
ledger as :func:`refpay.settle`), or :func:`refpay.settle` itself with
``engine=True``; this module only feeds it and summarises the result (see
:mod:`.kpi`).

    res = refpay.sim.run(policy, pop)          # policy: dict, path or refpay.Policy
    res.kpis["payout_yuan"], res.by_kind(), res.by_role()
    df = refpay.sim.sweep(base, {"leader.fixed": ["5.00", "10.00"]}, pop)
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
import multiprocessing as _mp
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

from . import kpi as _kpi
from .population import Population

__all__ = [
    "SimResult",
    "get_path",
    "grid_points",
    "policy_dict",
    "run",
    "set_path",
    "share_frame",
    "sweep",
]


def _refpay() -> Any:
    import refpay  # late: refpay may import refpay.sim

    if not hasattr(refpay, "settle"):
        raise ImportError(
            "refpay.sim needs the compiled refpay package (refpay.settle); "
            "install it with `pip install ./python`"
        )
    return refpay


def _load_policy(policy: Any) -> tuple[Any, str]:
    """Returns (refpay.Policy, display name)."""
    rp = _refpay()
    if isinstance(policy, Mapping):
        obj = rp.Policy.from_dict(_plain(policy))
        name = str(policy.get("name") or "")
    elif isinstance(policy, (str, os.PathLike)):
        obj = rp.Policy.from_file(policy)
        name = os.path.splitext(os.path.basename(os.fspath(policy)))[0]
    else:
        obj = policy
        name = ""
    name = str(getattr(obj, "name", "") or name or "policy")
    return obj, name


def policy_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """policy_dict("policies/course_leader.toml"): a policy file (``.json``
    or ``.toml``) as plain Python data, to vary with :func:`set_path` or
    :func:`sweep`. Values are kept as written (money stays a string); the
    file is not validated here — ``refpay.Policy.from_dict`` does that."""
    p = os.fspath(path)
    if p.lower().endswith(".toml"):
        try:
            import tomllib
        except ImportError:  # Python < 3.11
            try:
                import tomli as tomllib  # type: ignore[no-redef]
            except ImportError as exc:
                raise ImportError("reading TOML policies needs Python 3.11+ or tomli") from exc
        with open(p, "rb") as f:
            data = tomllib.load(f)
    else:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: a policy is a table/object, not {type(data).__name__}")
    return data


def _plain(x: Any) -> Any:
    """A deep copy with plain dicts and lists (mappings from configs, tuples)."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


@dataclass
class SimResult:
    """One settled policy on one population.

    ``kpis`` is the dict of :func:`refpay.sim.kpi.compute` (plus ``policy``
    and ``seconds``); ``settled`` is the raw ``refpay.LedgerResult``, or the
    ``refpay.SettleResult`` (with its ``engine``) of ``run(..., engine=True)``.
    """

    name: str
    policy: Any
    population: Population
    settled: Any
    kpis: dict[str, Any]
    seconds: float
    as_of: pd.Timestamp | None = None
    _roles: pd.Series | None = field(default=None, repr=False)

    @functools.cached_property
    def ledger(self) -> pd.DataFrame:
        """SimResult.ledger: the settle ledger (one row per entry or
        clawback), with ``order`` and ``member`` ids as in
        :func:`refpay.settle`'s; from :func:`refpay.settle_ledger` also its
        ``order_row`` and ``member_row``. The ids are attached on first use
        (the KPIs do not need them)."""
        ledger: pd.DataFrame = self.settled.ledger
        if "member" in ledger.columns:
            return ledger
        # Late, as _refpay(): these need the compiled core.
        from .._settle import _Ids

        # The ids as the settlement read them (7.0 is "7").
        order_ids = _Ids(self.population.orders["id"], "orders.id", nullable=False)
        member_ids = _Ids(self.population.members["member"], "members.member", nullable=False)
        return pd.concat([
            pd.DataFrame({
                "order": order_ids.of_rows(ledger["order_row"].to_numpy()).astype("category"),
                "member": member_ids.of_rows(ledger["member_row"].to_numpy()).astype("category"),
            }),
            ledger], axis=1)

    @property
    def totals(self) -> pd.DataFrame:
        """SimResult.totals: per-member balances in fen."""
        return self.settled.totals

    @property
    def flags(self) -> pd.DataFrame:
        """SimResult.flags: check hits (check, member, order)."""
        return self.settled.flags

    @property
    def errors(self) -> pd.DataFrame:
        """SimResult.errors: rows settle rejected."""
        return self.settled.errors

    def kpi_frame(self) -> pd.DataFrame:
        """SimResult.kpi_frame(): the KPIs as a one-row DataFrame."""
        return pd.DataFrame([self.kpis])

    def earnings(self) -> pd.Series:
        """SimResult.earnings(): total fen per member, every member (0 if
        nothing earned), indexed by member id."""
        members = self.population.members["member"]
        out = pd.Series(0, index=pd.Index(members, name="member"), dtype=np.int64, name="total_fen")
        if len(self.totals):
            t = self.totals.set_index("member")["total_fen"].astype(np.int64)
            out = out.add(t, fill_value=0).astype(np.int64)
        return out

    def by_kind(self) -> pd.DataFrame:
        """SimResult.by_kind(): fen, yuan and share of the payout per ledger kind."""
        total = int(self.kpis["payout_fen"])
        rows = []
        for key, val in self.kpis.items():
            if key.startswith("kind_") and key.endswith("_fen"):
                kind = key[len("kind_") : -len("_fen")]
                share = _kpi._share(val, total)
                rows.append(
                    {
                        "kind": kind,
                        "amount_fen": int(val),
                        "amount_yuan": _kpi.fen_to_yuan(val),
                        "share_pct": _kpi.pct(share),
                        "amount_yuan_plot_only": val / 100.0,
                    }
                )
        df = pd.DataFrame(rows)
        df["amount_fen"] = df["amount_fen"].astype(np.int64)
        return df

    def by_role(self) -> pd.DataFrame:
        """SimResult.by_role(): who earns what — per population role
        (``member`` for none): members, earners, total, share of the payout,
        mean and largest earnings (fen, rounded half-up for the mean)."""
        m = self.population.members
        role = m["role"].fillna("member") if "role" in m else pd.Series("member", index=m.index)
        e = self.earnings().to_numpy()
        df = pd.DataFrame({"role": role.to_numpy(dtype=object), "fen": e})
        total = int(e.sum())
        rows = []
        for r, g in df.groupby("role", sort=True):
            s = int(g["fen"].sum())
            n = len(g)
            mean = (2 * s + n) // (2 * n) if n else 0  # half-up on non-negative sums
            rows.append(
                {
                    "role": r,
                    "members": n,
                    "earners": int((g["fen"] > 0).sum()),
                    "total_fen": s,
                    "total_yuan": _kpi.fen_to_yuan(s),
                    "share_pct": _kpi.pct(_kpi._share(s, total)),
                    "mean_yuan": _kpi.fen_to_yuan(mean),
                    "max_yuan": _kpi.fen_to_yuan(int(g["fen"].max())),
                }
            )
        return pd.DataFrame(rows)

    def top_earners(self, n: int = 10) -> pd.DataFrame:
        """SimResult.top_earners(n): the n best-paid members with their role,
        direct invitees and earnings."""
        e = self.earnings()
        m = self.population.members.set_index("member")
        top = e.sort_values(ascending=False, kind="stable").head(n)
        invitees = self.population.members["inviter"].value_counts()
        return pd.DataFrame(
            {
                "member": top.index,
                "role": m.loc[top.index, "role"].to_numpy() if "role" in m else None,
                "invitees": invitees.reindex(top.index).fillna(0).astype(np.int64).to_numpy(),
                "total_fen": top.to_numpy(dtype=np.int64),
                "total_yuan": [_kpi.fen_to_yuan(v) for v in top.to_numpy()],
            }
        )


def run(
    policy: Any,
    population: Population,
    as_of: Any = None,
    *,
    threshold: Any = "800.00",
    name: str | None = None,
    engine: bool = False,
) -> SimResult:
    """run() settles ``policy`` (a dict, a JSON/TOML path or a
    ``refpay.Policy``) on ``population`` at ``as_of`` (default: the end of the
    population's window) and computes the KPIs. An earlier ``as_of`` settles
    the population as it stood then (``population.until(as_of)``): later
    joins, orders, confirmations and refunds have not happened. Raises what
    ``refpay.Policy.from_dict`` / ``refpay.settle`` raise (a bad policy is a
    ``ValueError`` with the key path).

    Settles with :func:`refpay.settle_ledger` (several times faster where
    its columnar kernel applies, and the same ledger, totals, flags and
    errors either way); ``engine=True`` uses :func:`refpay.settle` and keeps
    its engine in ``settled.engine`` (``explain`` an order)."""
    rp = _refpay()
    pol, pname = _load_policy(policy)
    as_of_ts = _as_of(as_of, population)
    if as_of_ts is not None and population.end is not None and as_of_ts < population.end:
        population = population.until(as_of_ts)
    t0 = time.perf_counter()
    settle = rp.settle if engine else rp.settle_ledger
    settled = settle(population.members, population.orders, pol, as_of=as_of_ts)
    seconds = time.perf_counter() - t0
    k = _kpi.compute(
        settled.ledger,
        settled.totals,
        population.members,
        population.orders,
        flags=getattr(settled, "flags", None),
        errors=getattr(settled, "errors", None),
        threshold=threshold,
    )
    label = name or pname
    kpis = {"policy": label, **k, "seconds": round(seconds, 3)}
    return SimResult(
        name=label,
        policy=pol,
        population=population,
        settled=settled,
        kpis=kpis,
        seconds=seconds,
        as_of=as_of_ts,
    )


def _as_of(as_of: Any, population: Population) -> pd.Timestamp | None:
    if as_of is None:
        return population.end
    ts = pd.Timestamp(as_of)
    if ts.tzinfo is None:
        raise ValueError(f"as_of must carry a time zone: {as_of!r}")
    return ts


# --------------------------------------------------------------------------
# Dotted paths
# --------------------------------------------------------------------------

_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]|(\.)")


def _parse_path(path: str) -> list[str | int]:
    """ "levels[0].tiers[1].from" -> ["levels", 0, "tiers", 1, "from"]."""
    out: list[str | int] = []
    pos = 0
    expect_name = True
    for m in _TOKEN.finditer(path):
        if m.start() != pos:
            break
        name, index, dot = m.groups()
        if dot:
            if expect_name:
                break
            expect_name = True
        elif name is not None:
            if not expect_name:
                break
            out.append(name)
            expect_name = False
        else:
            if expect_name:
                break
            out.append(int(index))
        pos = m.end()
    if pos != len(path) or expect_name or not out:
        raise ValueError(f"bad policy path {path!r}: expected e.g. 'levels[0].tiers[1].from'")
    return out


def get_path(policy: Mapping[str, Any], path: str) -> Any:
    """get_path(policy, "levels[0].fixed"): the value at a dotted path
    (KeyError / IndexError naming the path if it is not there)."""
    toks = _parse_path(path)
    cur: Any = policy
    for i, tok in enumerate(toks):
        if isinstance(tok, int):
            if not isinstance(cur, (list, tuple)) or not -len(cur) <= tok < len(cur):
                raise IndexError(f"{path}: nothing at {_fmt(toks[: i + 1])}")
        elif not isinstance(cur, Mapping) or tok not in cur:
            raise KeyError(f"{path}: nothing at {_fmt(toks[: i + 1])}")
        cur = cur[tok]
    return cur


def set_path(policy: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """set_path(policy, path, value) returns a deep copy of ``policy`` with
    ``value`` at ``path`` (``"leader.fixed"``, ``"levels[0].tiers[1].from"``).

    Missing tables on the way are created (``"caps.order_total"`` on a policy
    without caps); list indices must exist. ``value=None`` removes the key
    (e.g. no cap). Values are not converted: give money as strings
    (``"10.00"``) — a float is refused by the policy loader."""
    toks = _parse_path(path)
    root = _plain(policy)
    cur: Any = root
    for i, tok in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        if isinstance(tok, int):
            if not isinstance(cur, list) or not -len(cur) <= tok < len(cur):
                raise IndexError(f"{path}: no element {_fmt(toks[: i + 1])}")
            cur = cur[tok]
        else:
            if not isinstance(cur, dict):
                raise KeyError(f"{path}: {_fmt(toks[:i])} is not a table")
            if tok not in cur:
                if isinstance(nxt, int):
                    raise IndexError(f"{path}: no list at {_fmt(toks[: i + 1])}")
                cur[tok] = {}
            cur = cur[tok]
    last = toks[-1]
    if isinstance(last, int):
        if not isinstance(cur, list) or not -len(cur) <= last < len(cur):
            raise IndexError(f"{path}: no element {_fmt(toks)}")
        cur[last] = value
    else:
        if not isinstance(cur, dict):
            raise KeyError(f"{path}: {_fmt(toks[:-1])} is not a table")
        if value is None:
            cur.pop(last, None)
        else:
            cur[last] = copy.deepcopy(value)
    return root


def _fmt(toks: Sequence[str | int]) -> str:
    s = ""
    for t in toks:
        s += f"[{t}]" if isinstance(t, int) else (f".{t}" if s else t)
    return s or "(root)"


# --------------------------------------------------------------------------
# Sweep
# --------------------------------------------------------------------------


class _Counter:
    """A minimal stderr progress counter for when tqdm is not installed."""

    def __init__(self, total: int, desc: str) -> None:
        self.total, self.n, self.desc = total, 0, desc
        self.t0 = time.perf_counter()

    def update(self, k: int = 1) -> None:
        self.n += k
        el = time.perf_counter() - self.t0
        end = "\n" if self.n >= self.total else ""
        print(
            f"\r{self.desc}: {self.n}/{self.total} ({el:.1f} s)",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    def set_postfix_str(self, s: str) -> None:  # tqdm API
        pass

    def close(self) -> None:
        pass


class _Silent:
    def update(self, k: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool, desc: str) -> Any:
    if not enabled:
        return _Silent()
    try:
        from tqdm import tqdm  # plain text bar: works in terminals and notebooks
    except ImportError:
        return _Counter(total, desc)
    return tqdm(total=total, desc=desc, unit="policy", file=sys.stderr)


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """grid_points({"a": [1, 2], "b": [3]}) == [{"a": 1, "b": 3}, {"a": 2, "b": 3}]:
    the cartesian product, first key varying slowest."""
    for path, values in grid.items():
        _parse_path(path)
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"grid[{path!r}]: expected a list of values, got {values!r}")
    keys = list(grid)
    combos = itertools.product(*(list(grid[k]) for k in keys))
    return [dict(zip(keys, combo, strict=True)) for combo in combos]


_WORK: dict[str, Any] = {}  # what forked sweep workers inherit


def _work(task: tuple[int, dict[str, Any], str]) -> tuple[int, dict[str, Any]]:
    i, policy, label = task
    res = run(policy, _WORK["population"], _WORK["as_of"], threshold=_WORK["threshold"], name=label)
    return i, {k: v for k, v in res.kpis.items() if k != "policy"}


def sweep(
    base_policy: Mapping[str, Any] | str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]],
    population: Population,
    *,
    as_of: Any = None,
    progress: bool = True,
    threshold: Any = "800.00",
    on_result: Callable[[dict[str, Any], SimResult], None] | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """sweep() runs every combination of ``grid`` (dotted path → values,
    cartesian product) on ``base_policy`` (a dict, or a JSON/TOML file read
    with :func:`policy_dict`) and returns one KPI row per policy.

    Columns: ``policy`` (base name + point), one column per varied path
    holding the value used, then the KPIs of :func:`run` and ``seconds``.
    Every policy is validated before the first settle, so a typo in the grid
    fails fast (``ValueError`` naming the point). ``progress`` shows a tqdm bar
    (or a stderr counter without tqdm). ``on_result(point, result)`` is called
    after each run, e.g. to keep a ledger; results are not kept otherwise.

    ``n_jobs > 1`` settles that many policies at once in forked worker
    processes (POSIX only; each worker holds one ledger in memory). Rows come
    back in grid order either way; ``on_result`` needs ``n_jobs=1``.
    """
    rp = _refpay()
    if isinstance(base_policy, (str, os.PathLike)):
        base_policy = policy_dict(base_policy)
    points = grid_points(grid)
    base_name = str(base_policy.get("name") or "policy")
    policies = []
    for point in points:
        d = _plain(base_policy)
        for path, value in point.items():
            d = set_path(d, path, value)
        label = base_name + " [" + ", ".join(f"{p}={v}" for p, v in point.items()) + "]"
        d["name"] = label
        try:
            pol = rp.Policy.from_dict(d)
        except Exception as exc:  # re-raised as is, with the point in the message
            msg = f"sweep point {point}: {exc}"
            try:
                err = type(exc)(msg)
                if hasattr(exc, "code"):
                    try:
                        err.code = exc.code  # type: ignore[attr-defined]
                    except AttributeError:
                        pass
            except Exception:  # noqa: BLE001 - exotic constructor
                err = ValueError(msg)
            raise err from exc
        policies.append((point, pol, label, d))

    n_jobs = max(1, min(int(n_jobs), len(policies)))
    if n_jobs > 1 and on_result is not None:
        raise ValueError("sweep: on_result needs n_jobs=1 (results stay in the workers)")
    if n_jobs > 1 and "fork" not in _mp.get_all_start_methods():
        n_jobs = 1
    rows: list[dict[str, Any] | None] = [None] * len(policies)
    bar = _progress(len(policies), progress, "sweep")
    try:
        if n_jobs == 1:
            for i, (point, pol, label, _) in enumerate(policies):
                res = run(pol, population, as_of, threshold=threshold, name=label)
                rows[i] = {
                    "policy": label,
                    **point,
                    **{k: v for k, v in res.kpis.items() if k != "policy"},
                }
                if on_result is not None:
                    on_result(point, res)
                bar.update(1)
        else:
            _WORK.update(population=population, as_of=as_of, threshold=threshold)
            try:
                tasks = [(i, d, label) for i, (_, _, label, d) in enumerate(policies)]
                with _mp.get_context("fork").Pool(n_jobs) as pool:
                    for i, kp in pool.imap_unordered(_work, tasks):
                        point, label = policies[i][0], policies[i][2]
                        rows[i] = {"policy": label, **point, **kp}
                        bar.update(1)
            finally:
                _WORK.clear()
    finally:
        bar.close()
    df = pd.DataFrame(rows)
    for path in grid:  # the values exactly as given (no int → float for a None)
        df[path] = pd.Series([point[path] for point, *_ in policies], dtype=object)
    for col in df.columns:
        if col.endswith("_fen") or col in ("members", "orders", "earners", "above_threshold"):
            df[col] = df[col].astype(np.int64)
    df.attrs["varied"] = list(grid)
    return df


def share_frame(df: pd.DataFrame, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """share_frame(kpis): the Fraction columns of a KPI frame as rounded
    percentages (Decimal, 2 places) for display."""
    out = df.copy()
    cols = columns or [c for c in df.columns if df[c].map(lambda v: isinstance(v, Fraction)).any()]
    for c in cols:
        out[c] = df[c].map(lambda v: _kpi.pct(v) if isinstance(v, Fraction) else v)
    return out
