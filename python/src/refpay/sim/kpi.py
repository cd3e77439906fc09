"""Key figures of a settled simulation, computed exactly from the ledger.

Money stays int64 fen (``*_fen``) with a yuan string beside it
(``*_yuan``); shares are exact ``fractions.Fraction`` values, each with a float
twin named ``*_plot_only`` for charts. Only the Gini coefficient (a
statistic, not money) is a plain float.

The KPI names, in the order :func:`compute` returns them:

==========================  =================================================
``members``, ``orders``     population size
``gmv_fen``                 sum of order amounts (before refunds)
``net_gmv_fen``             after refunds
``payout_fen``              net of every ledger entry, clawbacks included,
                            every status (held included)
``payout_yuan``             the same as a decimal string
``payout_share``            ``payout_fen / gmv_fen`` (Fraction)
``pending_fen`` …           by status: pending, frozen, available, held
``denied_fen``              rule amount of entries a check denied (not paid)
``clawback_fen``            sum of clawback rows (≤ 0)
``kind_<k>_fen``/``_share`` by ledger kind, share of ``payout_fen``
``leaders_fen``/``_share``  paid to members whose population role is leader
``earners``                 members with a positive total
``gini``                    of total earnings over *all* members (0 = equal)
``top1_share``              share of the payout earned by the top 1 % members
``above_threshold``         members whose total exceeds ``threshold_yuan``
``flags``, ``flags_<check>`` check hits
``errors``                  rows settle rejected
==========================  =================================================
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["KINDS", "STATUSES", "compute", "fen_to_yuan", "gini", "pct", "yuan_to_fen"]

KINDS = ("level1", "level2", "leader", "peer", "rank_bonus", "invite_reward")
STATUSES = ("pending", "frozen", "available", "held")
CHECKS = (
    "shared_identity",
    "split_orders",
    "velocity",
    "refund_rate",
    "invalid_invite",
    "cap_order",
    "cap_member",
    "budget_exhausted",
)


def fen_to_yuan(fen: int) -> str:
    """fen_to_yuan(12345) == "123.45"; exact, negative values keep their sign."""
    fen = int(fen)
    sign = "-" if fen < 0 else ""
    q, r = divmod(abs(fen), 100)
    return f"{sign}{q}.{r:02d}"


def yuan_to_fen(value: Any) -> int:
    """yuan_to_fen("800") == 80000. Accepts str, int (yuan) or Decimal with at
    most two decimals; a float is refused (ValueError), as everywhere in
    refpay."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"money must be a decimal string or an integer, not {value!r}")
    try:
        d = Decimal(str(value).strip())
    except Exception as exc:  # noqa: BLE001 - re-raised with the value
        raise ValueError(f"not a decimal amount: {value!r}") from exc
    fen = d * 100
    if not d.is_finite() or fen != fen.to_integral_value():
        raise ValueError(f"not an amount with at most 2 decimals: {value!r}")
    return int(fen)


def pct(share: Fraction | None, places: int = 2) -> Decimal | None:
    """pct(Fraction(1, 3)) == Decimal("33.33"): a share as a percentage,
    rounded half-up to ``places`` decimals (for tables; keep the Fraction for
    arithmetic)."""
    if share is None:
        return None
    q = Decimal(1).scaleb(-places)
    return (Decimal(share.numerator) * 100 / Decimal(share.denominator)).quantize(
        q, rounding=ROUND_HALF_UP
    )


def gini(values: np.ndarray | pd.Series) -> float:
    """gini(x): Gini coefficient of non-negative values (0 = all equal,
    → 1 = one member has everything); 0.0 for an empty or all-zero input."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n = len(x)
    total = x.sum()
    if n == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * ranks - n - 1) * x).sum() / (n * total))


def _money_col(ledger: pd.DataFrame, name: str) -> str:
    """The int64 fen column ``<name>_fen`` (refpay.settle), or ``<name>`` if
    that is the integer one."""
    if f"{name}_fen" in ledger.columns:
        return f"{name}_fen"
    if name in ledger.columns and pd.api.types.is_integer_dtype(ledger[name].dtype):
        return name
    raise KeyError(f"ledger has no int64 fen column {name}_fen")


def _is(col: pd.Series, value: str) -> np.ndarray:
    """Boolean mask col == value, cheap for categorical columns."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = list(col.cat.categories)
        if value not in cats:
            return np.zeros(len(col), dtype=bool)
        return col.cat.codes.to_numpy() == cats.index(value)
    return (col == value).to_numpy(dtype=bool)


def _share(part: int, whole: int) -> Fraction | None:
    return Fraction(int(part), int(whole)) if whole else None


def _plot(share: Fraction | None) -> float:
    return float(share) if share is not None else math.nan


def compute(
    ledger: pd.DataFrame,
    totals: pd.DataFrame,
    members: pd.DataFrame,
    orders: pd.DataFrame,
    *,
    flags: pd.DataFrame | None = None,
    errors: pd.DataFrame | None = None,
    threshold: Any = "800.00",
    top_fraction: Fraction = Fraction(1, 100),
) -> dict[str, Any]:
    """compute() turns a settle result into the KPI dict described above.

    ``threshold`` (yuan, str/int/Decimal) is the bar for ``above_threshold``
    (default 800 yuan, the per-payment threshold of China's tax on labour
    remuneration); ``top_fraction`` the top group for ``top1_share``.
    """
    threshold_fen = yuan_to_fen(threshold)
    k: dict[str, Any] = {}
    n_members = len(members)
    k["members"] = n_members
    k["orders"] = len(orders)
    gmv = int(orders["amount_fen"].sum()) if len(orders) else 0
    refunds = int(orders["refund_amount_fen"].sum()) if "refund_amount_fen" in orders else 0
    k["gmv_fen"] = gmv
    k["net_gmv_fen"] = gmv - refunds

    amount_col = _money_col(ledger, "amount")
    amount = ledger[amount_col].to_numpy(dtype=np.int64)
    payout = int(amount.sum())
    k["payout_fen"] = payout
    k["payout_yuan"] = fen_to_yuan(payout)
    k["payout_share"] = _share(payout, gmv)
    k["payout_share_plot_only"] = _plot(k["payout_share"])
    k["payout_yuan_plot_only"] = payout / 100.0

    for s in STATUSES:
        k[f"{s}_fen"] = int(amount[_is(ledger["status"], s)].sum())
    clawback = ledger["clawback"].to_numpy(dtype=bool)
    rule = ledger[_money_col(ledger, "rule_amount")].to_numpy(dtype=np.int64)
    k["denied_fen"] = int(rule[_is(ledger["action"], "deny") & ~clawback].sum())
    k["clawback_fen"] = int(amount[clawback].sum())

    by_kind = ledger.groupby("kind", observed=True, sort=False)[amount_col].sum()
    by_kind.index = by_kind.index.astype(str)
    kinds = list(KINDS) + sorted(set(by_kind.index) - set(KINDS))
    for kind in kinds:
        fen = int(by_kind.get(kind, 0))
        k[f"kind_{kind}_fen"] = fen
        k[f"kind_{kind}_share"] = _share(fen, payout)

    # Per-member earnings over the whole population (members who earn nothing count as 0).
    earned = pd.Series(0, index=pd.Index(members["member"], name="member"), dtype=np.int64)
    if len(totals):
        t = totals.set_index("member")["total_fen"].astype(np.int64)
        earned = earned.add(t, fill_value=0).astype(np.int64)
    e = earned.to_numpy(dtype=np.int64)

    if "role" in members:
        leader_ids = members.loc[members["role"] == "leader", "member"]
        leaders_fen = int(earned.reindex(leader_ids).fillna(0).sum())
    else:
        leaders_fen = 0
    k["leaders_fen"] = leaders_fen
    k["leaders_share"] = _share(leaders_fen, payout)

    k["earners"] = int((e > 0).sum())
    k["gini"] = gini(e)
    n_top = math.ceil(len(e) * top_fraction) if len(e) else 0
    top = int(np.sort(e)[::-1][:n_top].sum()) if n_top else 0
    k["top1_share"] = _share(top, payout)
    k["top1_share_plot_only"] = _plot(k["top1_share"])
    k["threshold_yuan"] = fen_to_yuan(threshold_fen)
    k["above_threshold"] = int((e > threshold_fen).sum())

    if flags is not None:
        k["flags"] = len(flags)
        counts = flags["check"].astype(str).value_counts() if len(flags) else pd.Series(dtype=int)
        for check in list(CHECKS) + sorted(set(counts.index) - set(CHECKS)):
            k[f"flags_{check}"] = int(counts.get(check, 0))
    if errors is not None:
        k["errors"] = len(errors)
    return k
