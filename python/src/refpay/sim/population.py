"""Synthetic member trees and order streams for policy simulation.

A :class:`Population` is two DataFrames in exactly the shape
:func:`refpay.settle` takes (``members`` and ``orders``) plus what was used to
make them and which rows are injected abuse. :func:`generate` builds one from
a seed, deterministically: the same seed and parameters give identical frames,
on any machine, because every random draw comes from
``numpy.random.Generator(PCG64(...))`` streams spawned from the seed, one per
stage (tree, times, roles, orders, abuse), so switching abuse on does not
change the underlying tree or order stream.

    pop = refpay.sim.generate(20_000, seed=7)
    pop = refpay.sim.generate(
        1_000_000, seed=1,
        tree=refpay.sim.TreeSpec(offspring="zipf", mean_invites=0.9),
        orders=refpay.sim.OrderSpec(n_orders=5_000_000, median_yuan="150"),
        abuse=refpay.sim.AbuseSpec(second_accounts=0.01, invite_farms=20))

Everything is vectorised over members and orders; the only Python loops run
over tree depth or attachment batches (tens to a few hundred iterations even
for millions of members).

Money is int64 fen throughout. Distribution parameters given in yuan
(``median_yuan``, ``max_yuan``) are read as decimals (strings, ints or
``Decimal``); they only shape the random draws.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "AbuseSpec",
    "OrderSpec",
    "Population",
    "RoleSpec",
    "TreeSpec",
    "generate",
]

_US_PER_S = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_S
_DEFAULT_REGIONS: Mapping[str, float] = {
    "shanghai": 0.18,
    "beijing": 0.15,
    "guangzhou": 0.13,
    "shenzhen": 0.12,
    "hangzhou": 0.11,
    "chengdu": 0.11,
    "wuhan": 0.10,
    "xian": 0.10,
}


# --------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeSpec:
    """How members join and who invited whom.

    ``model="branching"``: a Galton–Watson process. A share ``root_share`` of
    the members join on their own (no inviter); every member then invites a
    random number of others, drawn from ``offspring``:

    - ``"geometric"`` (default): mean ``mean_invites``, most invite nobody;
    - ``"poisson"``: mean ``mean_invites``, fewer zeros, thin tail;
    - ``"zipf"``: heavy tail (a few members invite hundreds). A member is an
      inviter with probability q and then invites ``Zipf(zipf_a)`` members;
      q is set so the mean is ``mean_invites`` (capped at 1).

    ``depth_profile`` multiplies the mean by depth (roots are depth 0; the
    last value repeats), e.g. ``(1.5, 1.2, 1.0, 0.8)`` for early members who
    invite more. If the process dies out before the population is full,
    another batch of organic members joins (so the final root share can be
    above ``root_share``; see ``Population.meta``).

    ``model="preferential"``: members arrive one after another; each is
    organic with probability ``root_share``, else it attaches to an existing
    member with weight ``invitees + attachment_alpha`` (rich get richer). It
    is computed in batches of ``attachment_batch`` × the current size, with
    weights fixed within a batch (an approximation that keeps it vectorised).

    Times: organic members join uniformly over the first ``join_days``; an
    invitee joins an exponential delay (mean ``invite_delay_days``) after
    its inviter. All join offsets are then scaled to fit in ``join_days``,
    and every invitee joins at least one second after its inviter.
    """

    model: str = "branching"
    offspring: str = "geometric"
    mean_invites: float = 0.95
    zipf_a: float = 2.2
    max_invites: int = 2_000
    depth_profile: tuple[float, ...] = ()
    root_share: float = 0.05
    attachment_alpha: float = 1.0
    attachment_batch: float = 0.02
    join_days: float = 90.0
    invite_delay_days: float = 4.0


@dataclass(frozen=True)
class RoleSpec:
    """Who starts with a role (the ``role`` and ``rank`` member columns).

    ``leader_share`` of members get role ``"leader"``, chosen by
    ``leader_rule``: ``"top_inviters"`` (most direct invitees; ties go to the
    earlier joiner) or ``"random"``. With ``leader_ranks`` (lowest first, as in
    ``leader.ranks`` of a differential policy), leaders are split into equal
    groups by invitee count and the top group gets the last rank.
    ``super_share`` / ``super_rule`` do the same for role ``super_role`` among
    the non-leaders. A member has at most one role.
    """

    leader_share: float = 0.01
    leader_rule: str = "top_inviters"
    leader_ranks: tuple[str, ...] = ()
    super_share: float = 0.0
    super_rule: str = "top_inviters"
    super_role: str = "super"


@dataclass(frozen=True)
class OrderSpec:
    """The order stream.

    ``buyer_share`` of members buy at all; each buyer places one order, and
    the remaining orders (``n_orders`` in total, or ``orders_per_member`` ×
    members) go to buyers in proportion to a log-normal activity
    (``activity_sigma``). Orders fall uniformly between the buyer's join and
    the end of the window (``days`` after the start, or one day after the last
    join if later).

    Amounts are log-normal with median ``median_yuan`` (per category if a
    mapping) and shape ``sigma``, rounded to the fen, at least 0.01 and at
    most ``max_yuan``. ``categories`` maps category → share (omitted: no
    ``category`` column).

    A share ``confirm_share`` of orders is confirmed after an exponential
    delay (mean ``confirm_delay_days``); ``refund_rate`` are refunded after
    ``refund_delay_days`` (exponential), fully or, for a share
    ``partial_refund_share`` of them, partially (10–90 %). A confirmation or
    refund that would fall after the window's end has not happened yet
    (``NaT`` / 0).
    """

    orders_per_member: float = 2.0
    n_orders: int | None = None
    buyer_share: float = 0.6
    activity_sigma: float = 1.0
    median_yuan: Any = "199"
    sigma: float = 0.8
    max_yuan: Any = "50000"
    categories: Mapping[str, float] | None = None
    days: float = 120.0
    confirm_share: float = 0.85
    confirm_delay_days: float = 5.0
    refund_rate: float = 0.05
    partial_refund_share: float = 0.3
    refund_delay_days: float = 6.0


@dataclass(frozen=True)
class AbuseSpec:
    """Injected abuse, recorded in ``Population.abuse``.

    - ``second_accounts``: this share of invited members who buy become second
      accounts (小号) of their inviter: they share its device (or, for every
      other one, its phone), so the inviter earns on "its own" purchases.
    - ``split_orders``: this share of orders (of at least 1 yuan per part) is
      split into ``split_parts`` (inclusive range) orders of the same buyer
      placed ``split_gap_minutes`` apart on average (拆单). The parts carry no
      refund.
    - ``invite_farms``: that many members each invite ``farm_size`` new
      members from another region within one hour (刷邀请); a share
      ``farm_buy_share`` of those buys once, a small order, within a day.
      Farm members count towards the population size.
    """

    second_accounts: float = 0.0
    split_orders: float = 0.0
    split_parts: tuple[int, int] = (3, 6)
    split_gap_minutes: float = 2.0
    invite_farms: int = 0
    farm_size: int = 30
    farm_buy_share: float = 0.3
    farm_order_yuan: Any = "9.90"


# --------------------------------------------------------------------------
# Population
# --------------------------------------------------------------------------


@dataclass
class Population:
    """Members and orders ready for :func:`refpay.settle`, plus metadata.

    ``members``: member (str), inviter (str or None), joined_at (tz-aware),
    role, rank, region, device, phone, payment (str or None).
    ``orders``: id, buyer, amount_fen (int64), at (tz-aware), [category],
    confirmed_at (NaT = not confirmed), refund_amount_fen (int64, 0 = none),
    refunded_at.
    ``abuse``: kind (second_account, split_order, invite_farmer,
    invite_farm_member), member, order, related, detail — one row per
    injected abusive member or order.
    ``end`` is the end of the simulated window, the default ``as_of``.
    """

    members: pd.DataFrame
    orders: pd.DataFrame
    abuse: pd.DataFrame = field(default_factory=lambda: _empty_abuse())
    seed: int | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_frames(
        cls,
        members: pd.DataFrame,
        orders: pd.DataFrame,
        *,
        end: Any = None,
        abuse: pd.DataFrame | None = None,
    ) -> Population:
        """Population.from_frames() wraps hand-made frames (e.g. a tiny test
        tree). ``end`` defaults to the latest time in them."""
        times = (
            [members["joined_at"].max(), orders["at"].max()]
            if len(orders)
            else [members["joined_at"].max()]
        )
        for col in ("confirmed_at", "refunded_at"):
            if col in orders and orders[col].notna().any():
                times.append(orders[col].max())
        last = max(t for t in times if not pd.isna(t))
        end_ts = pd.Timestamp(end) if end is not None else last
        start = members["joined_at"].min()
        return cls(
            members=members,
            orders=orders,
            abuse=_empty_abuse() if abuse is None else abuse,
            seed=None,
            start=start,
            end=end_ts,
            meta={"source": "frames", "n_members": len(members), "n_orders": len(orders)},
        )

    def until(self, as_of: Any) -> Population:
        """Population.until(t): the population as it stands at ``t`` — members
        who joined by then, orders placed by then, and only the confirmations
        and refunds that happened by then (later ones become NaT / 0).
        ``sim.run(..., as_of=t)`` uses it, since a settlement cannot be read
        at a time before its last event."""
        t = pd.Timestamp(as_of)
        if t.tzinfo is None:
            raise ValueError(f"as_of must carry a time zone: {as_of!r}")
        members = self.members[self.members["joined_at"] <= t].reset_index(drop=True)
        orders = self.orders[self.orders["at"] <= t].reset_index(drop=True)
        if "confirmed_at" in orders:
            late = (orders["confirmed_at"] > t).to_numpy()
            if late.any():
                orders["confirmed_at"] = orders["confirmed_at"].mask(late)
        if "refunded_at" in orders:
            late = (orders["refunded_at"] > t).to_numpy()
            if late.any():
                orders["refunded_at"] = orders["refunded_at"].mask(late)
                if "refund_amount_fen" in orders:
                    orders["refund_amount_fen"] = orders["refund_amount_fen"].mask(late, 0)
        ab = self.abuse
        keep = ab["member"].isin(members["member"]) & (
            ab["order"].isna() | ab["order"].isin(orders["id"])
        )
        return Population(
            members=members,
            orders=orders,
            abuse=ab[keep].reset_index(drop=True),
            seed=self.seed,
            start=self.start,
            end=t,
            meta={**self.meta, "until": t, "n_members": len(members), "n_orders": len(orders)},
        )

    @property
    def gmv_fen(self) -> int:
        """Population.gmv_fen: sum of order amounts (before refunds), in fen."""
        return int(self.orders["amount_fen"].sum())

    @property
    def net_gmv_fen(self) -> int:
        """Population.net_gmv_fen: order amounts net of refunds, in fen."""
        o = self.orders
        refunds = o["refund_amount_fen"].sum() if "refund_amount_fen" in o else 0
        return int(o["amount_fen"].sum() - refunds)

    def summary(self) -> pd.Series:
        """Population.summary(): sizes, shares and the shape of the tree."""
        m, o = self.members, self.orders
        invited = m["inviter"].notna()
        invitees = m.loc[invited, "inviter"].value_counts()
        buyers = o["buyer"].nunique()
        gmv = self.gmv_fen
        out: dict[str, Any] = {
            "members": len(m),
            "organic_members": int((~invited).sum()),
            "max_depth": self.meta.get("max_depth"),
            "max_invitees": int(invitees.max()) if len(invitees) else 0,
            "leaders": int((m["role"] == "leader").sum()) if "role" in m else 0,
            "buyers": int(buyers),
            "orders": len(o),
            "gmv_yuan": _yuan(gmv),
            "median_order_yuan": _yuan(int(o["amount_fen"].median())) if len(o) else "0.00",
            "confirmed_share": round(float(o["confirmed_at"].notna().mean()), 4)
            if "confirmed_at" in o and len(o)
            else 0.0,
            "refunded_share": round(float((o["refund_amount_fen"] > 0).mean()), 4)
            if "refund_amount_fen" in o and len(o)
            else 0.0,
            "start": self.start,
            "end": self.end,
        }
        for kind, n in self.abuse["kind"].value_counts(sort=False).items():
            if n:
                out[f"abuse_{kind}"] = int(n)
        return pd.Series(out, name="population")


def _empty_abuse() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": pd.Categorical([], categories=_ABUSE_KINDS),
            "member": pd.Series([], dtype=object),
            "order": pd.Series([], dtype=object),
            "related": pd.Series([], dtype=object),
            "detail": pd.Series([], dtype=object),
        }
    )


_ABUSE_KINDS = ["second_account", "split_order", "invite_farmer", "invite_farm_member"]


from .kpi import fen_to_yuan as _yuan  # noqa: E402


def _to_fen(value: Any, name: str) -> int:
    if isinstance(value, float):
        # A distribution parameter, not money; still keep it to the fen.
        value = repr(value)
    try:
        d = Decimal(str(value))
    except Exception as exc:  # noqa: BLE001 - re-raised with the field name
        raise ValueError(f"{name}: not a decimal amount: {value!r}") from exc
    fen = d * 100
    if fen != fen.to_integral_value() or fen <= 0:
        raise ValueError(f"{name}: must be a positive amount with at most 2 decimals: {value!r}")
    return int(fen)


# --------------------------------------------------------------------------
# generate()
# --------------------------------------------------------------------------


def generate(
    n_members: int,
    *,
    seed: int = 0,
    tree: TreeSpec | None = None,
    roles: RoleSpec | None = None,
    orders: OrderSpec | None = None,
    abuse: AbuseSpec | None = None,
    regions: Mapping[str, float] | Sequence[str] | None = None,
    region_stickiness: float = 0.9,
    identities: bool = True,
    start: Any = "2026-03-01T00:00:00+08:00",
    timezone: str = "Asia/Shanghai",
) -> Population:
    """generate() builds a deterministic synthetic population.

    ``n_members`` members (including invite-farm members), with
    ``regions`` (name → share; a list means equal shares) inherited from the
    inviter with probability ``region_stickiness``, and unique device, phone
    and payment ids when ``identities`` (abuse may make some shared).
    ``start`` is the first possible join (tz-aware, or read in ``timezone``).
    Raises ``ValueError`` on inconsistent parameters.
    """
    tree = tree or TreeSpec()
    roles = roles or RoleSpec()
    ospec = orders or OrderSpec()
    abuse = abuse or AbuseSpec()
    region_names, region_p = _regions(regions)
    n_members = int(n_members)
    farm_total = int(abuse.invite_farms) * int(abuse.farm_size)
    n_tree = n_members - farm_total
    if n_tree < max(1, abuse.invite_farms):
        raise ValueError(
            f"n_members={n_members} leaves no room for {abuse.invite_farms} farms of "
            f"{abuse.farm_size}"
        )
    if abuse.invite_farms and len(region_names) < 2:
        raise ValueError("invite_farms needs at least two regions")
    _check_share("tree.root_share", tree.root_share, allow_zero=False)
    for name in ("leader_share", "super_share"):
        _check_share(f"roles.{name}", getattr(roles, name))
    for name in ("buyer_share", "confirm_share", "refund_rate", "partial_refund_share"):
        _check_share(f"orders.{name}", getattr(ospec, name))
    _check_share("abuse.second_accounts", abuse.second_accounts)
    _check_share("abuse.split_orders", abuse.split_orders)
    _check_share("region_stickiness", region_stickiness)

    start_ts = pd.Timestamp(start)
    if start_ts.tzinfo is None:
        start_ts = start_ts.tz_localize(timezone)
    start_us = int(start_ts.value // 1000)

    ss = np.random.SeedSequence(seed)
    rng_tree, rng_time, rng_region, rng_roles, rng_orders, rng_abuse, _spare = (
        np.random.Generator(np.random.PCG64(s)) for s in ss.spawn(7)
    )

    # 1. Tree structure (indices in creation order, parent < child not assumed).
    if tree.model == "branching":
        parent = _branching(n_tree, tree, rng_tree)
    elif tree.model == "preferential":
        parent = _preferential(n_tree, tree, rng_tree)
    else:
        raise ValueError(f"tree.model: expected 'branching' or 'preferential', got {tree.model!r}")
    depth = _depths(parent)
    levels = _levels(depth)

    # 2. Join times (µs since epoch), inviter strictly earlier.
    join_us = _join_times(parent, depth, levels, tree, rng_time, start_us)

    # 3. Regions, inherited down the tree.
    region = _inherit_regions(parent, levels, region_p, region_stickiness, rng_region)

    # 4. Invite farms: append farm members under chosen farmers.
    join_end_us = start_us + int(tree.join_days * _US_PER_DAY)
    farmer_idx = np.empty(0, np.int64)
    farm_parent = np.empty(0, np.int64)
    if farm_total:
        farmer_idx, farm_parent, farm_join, farm_region = _farms(
            join_us, region, len(region_names), abuse, rng_abuse, join_end_us
        )
        parent = np.concatenate([parent, farm_parent])
        join_us = np.concatenate([join_us, farm_join])
        region = np.concatenate([region, farm_region])
        depth = np.concatenate([depth, depth[farm_parent] + 1])
    n = len(parent)
    is_farm = np.zeros(n, bool)
    is_farm[n_tree:] = True
    # Whole seconds, every invitee at least one second after its inviter.
    join_us = _floor_s(join_us)
    for lvl in _levels(depth)[1:]:
        join_us[lvl] = np.maximum(join_us[lvl], join_us[parent[lvl]] + _US_PER_S)

    end_us = max(start_us + int(ospec.days * _US_PER_DAY), int(join_us.max()) + _US_PER_DAY)

    # 5. Roles.
    role, rank = _roles(parent, roles, rng_roles)

    # 6. Orders.
    o = _orders(n, join_us, end_us, ospec, rng_orders, is_farm)
    if farm_total:
        fo = _farm_orders(n_tree, n, join_us, end_us, abuse, rng_abuse)
        o = {k: np.concatenate([o[k], fo[k]]) for k in o}

    # 7. Identities and second accounts.
    device_share = np.full(n, -1, np.int64)  # member whose device this one uses
    phone_share = np.full(n, -1, np.int64)
    second = np.empty(0, np.int64)
    if abuse.second_accounts > 0:
        second, via_device = _second_accounts(parent, o["buyer"], is_farm, abuse, rng_abuse)
        device_share[second[via_device]] = parent[second[via_device]]
        phone_share[second[~via_device]] = parent[second[~via_device]]
    else:
        via_device = np.empty(0, bool)

    # 8. Split orders.
    split_group = np.full(len(o["buyer"]), -1, np.int64)
    if abuse.split_orders > 0:
        o, split_group = _split_orders(o, end_us, abuse, rng_abuse)

    # 9. Order members by join time, orders by time; assign ids.
    for key in ("at", "confirmed", "refunded"):
        o[key] = np.where(o[key] == _NAT, _NAT, _floor_s(o[key]))
    m_order = np.lexsort((np.arange(n), join_us))
    m_rank = np.empty(n, np.int64)
    m_rank[m_order] = np.arange(n)
    width_m = max(6, len(str(n - 1)))
    member_ids = _ids("m", n, width_m)  # by final position
    ids_by_old = member_ids[m_rank]

    parent_new = np.where(parent >= 0, m_rank[np.maximum(parent, 0)], -1)[m_order]
    inviter_col = member_ids.optional(parent_new)

    def ident(prefix: str, share: np.ndarray, width: int) -> _Strings:
        owner = np.where(share >= 0, share, np.arange(n))
        return _ids(prefix, n, width)[m_rank[owner][m_order]]

    tz = timezone
    members = pd.DataFrame(
        {
            "member": member_ids.series(),
            "inviter": inviter_col,
            "joined_at": _ts(join_us[m_order], tz),
            "role": _optional_labels(role[m_order], ["leader", roles.super_role]),
            "rank": _optional_labels(rank[m_order], list(roles.leader_ranks)),
            "region": pd.array(
                np.asarray(region_names, dtype=object)[region[m_order]], dtype="str"
            ),
        }
    )
    if identities:
        members["device"] = ident("dev", device_share, width_m).series()
        members["phone"] = (
            ident("13", phone_share, 9) if n < 10**9 else ident("p", phone_share, width_m)
        ).series()
        members["payment"] = ident("pay", np.full(n, -1, np.int64), width_m).series()

    n_o = len(o["buyer"])
    o_order = np.lexsort((o["buyer"], o["at"]))  # time, then buyer's creation index
    order_ids = _ids("o", n_o, max(7, len(str(n_o - 1))))
    o_rank = np.empty(n_o, np.int64)
    o_rank[o_order] = np.arange(n_o)
    orders_df = pd.DataFrame(
        {
            "id": order_ids.series(),
            "buyer": ids_by_old[o["buyer"][o_order]].series(),
            "amount_fen": o["amount"][o_order].astype(np.int64),
            "at": _ts(o["at"][o_order], tz),
        }
    )
    if ospec.categories:
        cats = list(ospec.categories)
        orders_df["category"] = pd.Categorical.from_codes(
            o["category"][o_order], categories=pd.Index(cats)
        )
    orders_df["confirmed_at"] = _ts(o["confirmed"][o_order], tz)
    orders_df["refund_amount_fen"] = o["refund"][o_order].astype(np.int64)
    orders_df["refunded_at"] = _ts(o["refunded"][o_order], tz)

    # 10. Abuse record.
    rows: list[pd.DataFrame] = []
    if len(second):
        rows.append(
            pd.DataFrame(
                {
                    "kind": "second_account",
                    "member": ids_by_old[second].tolist(),
                    "order": None,
                    "related": ids_by_old[parent[second]].tolist(),
                    "detail": np.where(via_device, "device", "phone"),
                }
            )
        )
    if (split_group >= 0).any():
        parts = np.flatnonzero(split_group >= 0)
        parts = parts[np.lexsort((o["at"][parts], split_group[parts]))]
        g = split_group[parts]
        starts = np.r_[True, g[1:] != g[:-1]]
        first_idx = parts[starts]
        first_of_group = np.repeat(first_idx, np.diff(np.r_[np.flatnonzero(starts), len(parts)]))
        rows.append(
            pd.DataFrame(
                {
                    "kind": "split_order",
                    "member": ids_by_old[o["buyer"][parts]].tolist(),
                    "order": order_ids[o_rank[parts]].tolist(),
                    "related": order_ids[o_rank[first_of_group]].tolist(),
                    "detail": None,
                }
            )
        )
    if farm_total:
        rows.append(
            pd.DataFrame(
                {
                    "kind": "invite_farmer",
                    "member": ids_by_old[farmer_idx].tolist(),
                    "order": None,
                    "related": None,
                    "detail": f"{abuse.farm_size} invitees within 1 h",
                }
            )
        )
        rows.append(
            pd.DataFrame(
                {
                    "kind": "invite_farm_member",
                    "member": ids_by_old[np.arange(n_tree, n)].tolist(),
                    "order": None,
                    "related": ids_by_old[farm_parent].tolist(),
                    "detail": None,
                }
            )
        )
    if rows:
        ab = pd.concat([_empty_abuse()] + [r.astype(object) for r in rows], ignore_index=True)
        ab["kind"] = pd.Categorical(ab["kind"], categories=_ABUSE_KINDS)
    else:
        ab = _empty_abuse()

    meta = {
        "n_members": n,
        "n_orders": n_o,
        "max_depth": int(depth.max()) if n else 0,
        "root_share": float((parent < 0).mean()) if n else 0.0,
        "timezone": tz,
        "spec": {
            "tree": dataclasses.asdict(tree),
            "roles": dataclasses.asdict(roles),
            "orders": dataclasses.asdict(ospec),
            "abuse": dataclasses.asdict(abuse),
            "regions": dict(zip(region_names, region_p.tolist(), strict=True)),
            "region_stickiness": region_stickiness,
            "identities": identities,
        },
    }
    return Population(
        members=members,
        orders=orders_df,
        abuse=ab,
        seed=seed,
        start=start_ts.tz_convert(tz),
        end=pd.Timestamp(end_us * 1000, tz="UTC").tz_convert(tz),
        meta=meta,
    )


# --------------------------------------------------------------------------
# Stages
# --------------------------------------------------------------------------


def _check_share(name: str, v: float, *, allow_zero: bool = True) -> None:
    if not (0.0 <= v <= 1.0) or (not allow_zero and v == 0):
        raise ValueError(
            f"{name}: expected a share in {'[0' if allow_zero else '(0'}, 1], got {v!r}"
        )


def _regions(regions: Mapping[str, float] | Sequence[str] | None) -> tuple[list[str], np.ndarray]:
    if regions is None:
        regions = _DEFAULT_REGIONS
    if isinstance(regions, Mapping):
        names = [str(k) for k in regions]
        p = np.array([float(v) for v in regions.values()], dtype=float)
    else:
        names = [str(r) for r in regions]
        p = np.ones(len(names))
    if not names or (p < 0).any() or p.sum() <= 0:
        raise ValueError("regions: need at least one region with a positive share")
    return names, p / p.sum()


def _offspring(mean: np.ndarray, spec: TreeSpec, rng: np.random.Generator) -> np.ndarray:
    cap = int(spec.max_invites)
    if spec.offspring == "geometric":
        k = rng.geometric(1.0 / (1.0 + mean)) - 1
    elif spec.offspring == "poisson":
        k = rng.poisson(mean)
    elif spec.offspring == "zipf":
        q = np.minimum(1.0, mean / _zipf_capped_mean(spec.zipf_a, cap))
        active = rng.random(len(mean)) < q
        k = np.where(active, rng.zipf(spec.zipf_a, len(mean)), 0)
    else:
        raise ValueError(
            f"tree.offspring: expected 'geometric', 'poisson' or 'zipf', got {spec.offspring!r}"
        )
    return np.minimum(k, cap).astype(np.int64)


def _zipf_capped_mean(a: float, cap: int) -> float:
    """E[min(X, cap)] for X ~ Zipf(a) (P(X=k) ∝ k^-a, k ≥ 1)."""
    if a <= 1:
        raise ValueError(f"tree.zipf_a: must be > 1, got {a!r}")
    kk = np.arange(1, 200_001, dtype=float)
    terms = kk**-a
    big = kk[-1]
    zeta = terms.sum() + big ** (1 - a) / (a - 1) - big**-a / 2  # Euler–Maclaurin tail
    below = np.arange(1, cap, dtype=float)
    p_below = below**-a / zeta
    return float((below * p_below).sum() + cap * (1.0 - p_below.sum()))


def _mean_at(depth: np.ndarray, spec: TreeSpec) -> np.ndarray:
    if not spec.depth_profile:
        return np.full(len(depth), float(spec.mean_invites))
    prof = np.asarray(spec.depth_profile, dtype=float)
    return spec.mean_invites * prof[np.minimum(depth, len(prof) - 1)]


def _branching(n: int, spec: TreeSpec, rng: np.random.Generator) -> np.ndarray:
    """Galton–Watson tree, generation by generation; returns parent indices."""
    n_roots = max(1, min(n, round(spec.root_share * n)))
    parents = [np.full(n_roots, -1, np.int64)]
    frontier = np.arange(n_roots, dtype=np.int64)
    frontier_depth = np.zeros(n_roots, np.int64)
    count = n_roots
    while count < n:
        if len(frontier) == 0:  # died out: another batch of organic members
            k = max(1, min(n - count, n_roots))
            parents.append(np.full(k, -1, np.int64))
            frontier = np.arange(count, count + k, dtype=np.int64)
            frontier_depth = np.zeros(k, np.int64)
            count += k
            continue
        kids = _offspring(_mean_at(frontier_depth, spec), spec, rng)
        child_parent = np.repeat(frontier, kids)
        child_depth = np.repeat(frontier_depth + 1, kids)
        room = n - count
        if len(child_parent) > room:  # keep an unbiased subset of the last generation
            keep = np.sort(rng.permutation(len(child_parent))[:room])
            child_parent, child_depth = child_parent[keep], child_depth[keep]
        parents.append(child_parent)
        frontier = np.arange(count, count + len(child_parent), dtype=np.int64)
        frontier_depth = child_depth
        count += len(child_parent)
    return np.concatenate(parents)


def _preferential(n: int, spec: TreeSpec, rng: np.random.Generator) -> np.ndarray:
    """Batched preferential attachment; returns parent indices (parent < child)."""
    parent = np.full(n, -1, np.int64)
    invitees = np.zeros(n, np.float64)
    alpha = float(spec.attachment_alpha)
    if alpha <= 0:
        raise ValueError(f"tree.attachment_alpha: must be > 0, got {alpha!r}")
    i = 1
    while i < n:
        b = min(n - i, max(1, math.ceil(spec.attachment_batch * i)))
        cum = np.cumsum(invitees[:i] + alpha)
        picks = np.searchsorted(cum, rng.random(b) * cum[-1], side="right")
        picks = np.minimum(picks, i - 1)
        organic = rng.random(b) < spec.root_share
        picks = np.where(organic, -1, picks)
        parent[i : i + b] = picks
        invitees += np.bincount(picks[picks >= 0], minlength=n)
        i += b
    return parent


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depth of every node (roots 0) by pointer jumping: O(n log depth)."""
    anc = parent.copy()
    dist = (parent >= 0).astype(np.int64)
    while True:
        has = anc >= 0
        if not has.any():
            return dist
        a = anc[has]
        new_dist = dist.copy()
        new_anc = anc.copy()
        new_dist[has] = dist[has] + dist[a]
        new_anc[has] = anc[a]
        dist, anc = new_dist, new_anc


def _levels(depth: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[order], np.arange(int(depth.max()) + 2 if len(depth) else 1))
    return [order[bounds[d] : bounds[d + 1]] for d in range(len(bounds) - 1)]


def _join_times(
    parent: np.ndarray,
    depth: np.ndarray,
    levels: list[np.ndarray],
    spec: TreeSpec,
    rng: np.random.Generator,
    start_us: int,
) -> np.ndarray:
    n = len(parent)
    span_s = spec.join_days * 86_400.0
    if spec.model == "preferential":
        # Arrival order is join order: sorted uniform times, strictly increasing.
        t = np.sort(rng.random(n)) * span_s
        us = (t * _US_PER_S).astype(np.int64) + np.arange(n, dtype=np.int64)
        return start_us + us
    off = np.empty(n, np.float64)  # seconds after start
    roots = levels[0]
    off[roots] = rng.random(len(roots)) * span_s
    delay = rng.exponential(spec.invite_delay_days * 86_400.0, n) + 60.0
    for lvl in levels[1:]:
        off[lvl] = off[parent[lvl]] + delay[lvl]
    top = off.max() if n else 0.0
    if top > span_s:
        off *= span_s / top
    us = start_us + (off * _US_PER_S).astype(np.int64)
    for lvl in levels[1:]:  # at least one second after the inviter
        us[lvl] = np.maximum(us[lvl], us[parent[lvl]] + _US_PER_S)
    return us


def _inherit_regions(
    parent: np.ndarray,
    levels: list[np.ndarray],
    p: np.ndarray,
    stickiness: float,
    rng: np.random.Generator,
) -> np.ndarray:
    n = len(parent)
    fresh = rng.choice(len(p), size=n, p=p).astype(np.int64)
    stay = rng.random(n) < stickiness
    region = fresh.copy()
    for lvl in levels[1:]:
        region[lvl] = np.where(stay[lvl], region[parent[lvl]], fresh[lvl])
    return region


def _farms(
    join_us: np.ndarray,
    region: np.ndarray,
    n_regions: int,
    abuse: AbuseSpec,
    rng: np.random.Generator,
    join_end_us: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    hour = 3600 * _US_PER_S
    eligible = np.flatnonzero(join_us <= join_end_us - 2 * hour)
    if len(eligible) < abuse.invite_farms:
        eligible = np.arange(len(join_us))
    farmers = np.sort(rng.choice(eligible, size=abuse.invite_farms, replace=False))
    size = int(abuse.farm_size)
    # The farm starts some time after the farmer joined (before the join window ends).
    room = np.maximum(join_end_us - hour - join_us[farmers], _US_PER_S)
    t0 = join_us[farmers] + _US_PER_S + (rng.random(len(farmers)) * room).astype(np.int64)
    within = np.sort(rng.random((len(farmers), size)) * (hour - size), axis=1).astype(np.int64)
    within += np.arange(size, dtype=np.int64)  # strictly increasing, all inside the hour
    farm_join = (t0[:, None] + within).ravel()
    shift = rng.integers(1, n_regions, size=len(farmers))  # any other region
    farm_region = np.repeat((region[farmers] + shift) % n_regions, size)
    farm_parent = np.repeat(farmers, size)
    return farmers, farm_parent, farm_join, farm_region


def _roles(
    parent: np.ndarray, spec: RoleSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """role codes: -1 none, 0 leader, 1 super; rank codes: -1 none, else index."""
    n = len(parent)
    invitees = np.bincount(parent[parent >= 0], minlength=n)
    role = np.full(n, -1, np.int64)
    rank = np.full(n, -1, np.int64)

    def pick(k: int, rule: str, pool: np.ndarray, what: str) -> np.ndarray:
        if k <= 0 or len(pool) == 0:
            return np.empty(0, np.int64)
        k = min(k, len(pool))
        if rule == "top_inviters":
            order = np.lexsort((pool, -invitees[pool]))  # most invitees, then earliest index
            return pool[order[:k]]
        if rule == "random":
            return np.sort(rng.choice(pool, size=k, replace=False))
        raise ValueError(f"roles.{what}_rule: expected 'top_inviters' or 'random', got {rule!r}")

    leaders = pick(round(spec.leader_share * n), spec.leader_rule, np.arange(n), "leader")
    role[leaders] = 0
    if spec.leader_ranks and len(leaders):
        by_invites = leaders[np.lexsort((leaders, -invitees[leaders]))]
        groups = np.array_split(by_invites, len(spec.leader_ranks))
        for r, g in enumerate(reversed(groups)):  # top group gets the last (highest) rank
            rank[g] = r
    supers = pick(round(spec.super_share * n), spec.super_rule, np.flatnonzero(role < 0), "super")
    role[supers] = 1
    return role, rank


def _orders(
    n: int,
    join_us: np.ndarray,
    end_us: int,
    spec: OrderSpec,
    rng: np.random.Generator,
    exclude: np.ndarray,
) -> dict[str, np.ndarray]:
    pool = np.flatnonzero(~exclude)
    n_orders = spec.n_orders if spec.n_orders is not None else round(spec.orders_per_member * n)
    if n_orders < 0:
        raise ValueError(f"orders.n_orders: must be ≥ 0, got {n_orders}")
    buyers = pool[rng.random(len(pool)) < spec.buyer_share]
    if len(buyers) > n_orders:
        buyers = np.sort(rng.choice(buyers, size=n_orders, replace=False))
    if len(buyers) == 0 and n_orders > 0:
        buyers = pool[:1]
    counts = np.ones(len(buyers), np.int64)
    extra = n_orders - len(buyers)
    if extra > 0:
        w = rng.lognormal(0.0, spec.activity_sigma, len(buyers))
        cum = np.cumsum(w)
        pick = np.searchsorted(cum, rng.random(extra) * cum[-1], side="right")
        counts += np.bincount(np.minimum(pick, len(buyers) - 1), minlength=len(buyers))
    buyer = np.repeat(buyers, counts)
    m = len(buyer)
    lo = join_us[buyer] + _US_PER_S
    at = lo + (rng.random(m) * (end_us - lo)).astype(np.int64)

    cat_share: Mapping[str, float] = spec.categories or {}
    cats = list(cat_share)
    if cats:
        p = np.array([float(cat_share[c]) for c in cats])
        if (p < 0).any() or p.sum() <= 0:
            raise ValueError("orders.categories: shares must be ≥ 0 with a positive sum")
        category = rng.choice(len(cats), size=m, p=p / p.sum()).astype(np.int64)
    else:
        category = np.zeros(m, np.int64)
    if isinstance(spec.median_yuan, Mapping):
        med = np.array([_to_fen(spec.median_yuan[c], f"orders.median_yuan[{c}]") for c in cats])
        median_fen = med[category].astype(float)
    else:
        median_fen = np.full(m, float(_to_fen(spec.median_yuan, "orders.median_yuan")))
    max_fen = _to_fen(spec.max_yuan, "orders.max_yuan")
    amount = np.rint(median_fen * np.exp(spec.sigma * rng.standard_normal(m)))
    amount = np.clip(amount, 1, max_fen).astype(np.int64)

    confirm_delay = rng.exponential(spec.confirm_delay_days * 86_400.0, m) * _US_PER_S
    confirmed = np.where(
        rng.random(m) < spec.confirm_share, at + _US_PER_S + confirm_delay.astype(np.int64), _NAT
    )
    confirmed = np.where(confirmed > end_us, _NAT, confirmed)
    refunded_at = (
        at
        + _US_PER_S
        + (rng.exponential(spec.refund_delay_days * 86_400.0, m) * _US_PER_S).astype(np.int64)
    )
    is_refund = (rng.random(m) < spec.refund_rate) & (refunded_at <= end_us)
    partial = (rng.random(m) < spec.partial_refund_share) & (amount >= 2)
    part_amt = np.clip(np.floor(amount * rng.uniform(0.1, 0.9, m)), 1, np.maximum(amount - 1, 1))
    refund = np.where(is_refund, np.where(partial, part_amt.astype(np.int64), amount), 0)
    refunded_at = np.where(is_refund, refunded_at, _NAT)
    return {
        "buyer": buyer.astype(np.int64),
        "amount": amount,
        "at": at,
        "category": category,
        "confirmed": confirmed,
        "refund": refund.astype(np.int64),
        "refunded": refunded_at,
    }


_NAT = np.iinfo(np.int64).min


def _farm_orders(
    first: int, n: int, join_us: np.ndarray, end_us: int, abuse: AbuseSpec, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    farm = np.arange(first, n)
    buyer = farm[rng.random(len(farm)) < abuse.farm_buy_share]
    m = len(buyer)
    at = join_us[buyer] + _US_PER_S + (rng.random(m) * 86_400 * _US_PER_S).astype(np.int64)
    at = np.minimum(at, end_us)
    return {
        "buyer": buyer.astype(np.int64),
        "amount": np.full(m, _to_fen(abuse.farm_order_yuan, "abuse.farm_order_yuan"), np.int64),
        "at": at,
        "category": np.zeros(m, np.int64),
        "confirmed": np.full(m, _NAT, np.int64),
        "refund": np.zeros(m, np.int64),
        "refunded": np.full(m, _NAT, np.int64),
    }


def _second_accounts(
    parent: np.ndarray,
    order_buyer: np.ndarray,
    is_farm: np.ndarray,
    abuse: AbuseSpec,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    n = len(parent)
    buys = np.bincount(order_buyer, minlength=n) > 0
    cand = np.flatnonzero((parent >= 0) & buys & ~is_farm)
    k = round(abuse.second_accounts * len(cand))
    if k == 0:
        return np.empty(0, np.int64), np.empty(0, bool)
    chosen = np.sort(rng.choice(cand, size=k, replace=False))
    marked = np.zeros(n, bool)
    marked[chosen] = True
    chosen = chosen[~marked[parent[chosen]]]  # never a second account of a second account
    via_device = np.arange(len(chosen)) % 2 == 0
    return chosen, via_device


def _split_orders(
    o: dict[str, np.ndarray], end_us: int, abuse: AbuseSpec, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    lo, hi = (int(x) for x in abuse.split_parts)
    if lo < 2 or hi < lo:
        raise ValueError(
            f"abuse.split_parts: expected (lo, hi) with 2 ≤ lo ≤ hi, got {abuse.split_parts!r}"
        )
    gap_us = abuse.split_gap_minutes * 60 * _US_PER_S
    m = len(o["buyer"])
    cand = np.flatnonzero((o["amount"] >= 100 * hi) & (o["at"] <= end_us - 2 * hi * gap_us))
    k = round(abuse.split_orders * m)
    k = min(k, len(cand))
    group_of = np.full(m, -1, np.int64)
    if k == 0:
        return o, group_of
    chosen = np.sort(rng.choice(cand, size=k, replace=False))
    parts = rng.integers(lo, hi + 1, size=k)
    src = np.repeat(chosen, parts)
    grp = np.repeat(np.arange(k), parts)
    first = np.r_[0, np.cumsum(parts)[:-1]]
    pos = np.arange(len(src)) - np.repeat(first, parts)
    gaps = np.where(pos == 0, 0, rng.uniform(0.25, 1.75, len(src)) * gap_us).astype(np.int64)
    offset = _group_cumsum(gaps, first, parts)
    w = rng.random(len(src)) + 0.2
    wsum = np.repeat(np.add.reduceat(w, first), parts)
    amt = np.floor(o["amount"][src] * w / wsum).astype(np.int64)
    short = o["amount"][chosen] - np.add.reduceat(amt, first)
    amt[first] += short
    conf = o["confirmed"][src]
    conf = np.where(conf == _NAT, _NAT, conf + offset)
    conf = np.where(conf > end_us, _NAT, conf)
    new = {
        "buyer": o["buyer"][src],
        "amount": amt,
        "at": o["at"][src] + offset,
        "category": o["category"][src],
        "confirmed": conf,
        "refund": np.zeros(len(src), np.int64),
        "refunded": np.full(len(src), _NAT, np.int64),
    }
    keep = np.ones(m, bool)
    keep[chosen] = False
    out = {key: np.concatenate([o[key][keep], new[key]]) for key in o}
    group = np.concatenate([np.full(int(keep.sum()), -1, np.int64), grp])
    return out, group


def _group_cumsum(x: np.ndarray, first: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    c = np.cumsum(x)
    base = np.repeat(c[first] - x[first], sizes)
    return c - base


# --------------------------------------------------------------------------
# Column helpers
# --------------------------------------------------------------------------


def _floor_s(us: np.ndarray) -> np.ndarray:
    return (us // _US_PER_S) * _US_PER_S


class _Strings:
    """An array of id strings: pyarrow when installed (fast to build, index
    and hand to pandas), else numpy's StringDType."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr

    def __getitem__(self, idx: np.ndarray) -> _Strings:
        idx = np.asarray(idx, dtype=np.int64)
        if _pa is not None:
            return _Strings(self.arr.take(_pa.array(idx)))
        return _Strings(self.arr[idx])

    def __len__(self) -> int:
        return len(self.arr)

    def series(self) -> pd.Series:
        return pd.Series(self.arr, dtype="str")

    def tolist(self) -> list[str]:
        return [str(x) for x in (self.arr.to_pylist() if _pa is not None else self.arr.tolist())]

    def optional(self, idx: np.ndarray) -> pd.Series:
        """Object Series: the id at idx, None where idx < 0."""
        picked = self[np.maximum(idx, 0)]
        if _pa is not None:
            out = picked.arr.to_numpy(zero_copy_only=False).astype(object)
        else:
            out = np.asarray(picked.arr, dtype=object)
        out[idx < 0] = None
        return pd.Series(out, dtype=object)


try:
    import pyarrow as _pa
    import pyarrow.compute as _pc
except ImportError:  # pragma: no cover - pyarrow is optional
    _pa = None
    _pc = None


def _ids(prefix: str, n: int, width: int) -> _Strings:
    """prefix + zero-padded 0..n-1, e.g. m000000, m000001, …"""
    if _pa is not None:
        digits = _pc.utf8_lpad(
            _pc.cast(_pa.array(np.arange(n, dtype=np.int64)), _pa.string()), width, "0"
        )
        return _Strings(_pc.binary_join_element_wise(prefix, digits, "") if prefix else digits)
    digits = np.strings.zfill(np.arange(n).astype(np.dtypes.StringDType()), width)
    return _Strings(np.strings.add(prefix, digits) if prefix else digits)


def _optional_labels(codes: np.ndarray, labels: list[str]) -> pd.Series:
    out = np.full(len(codes), None, dtype=object)
    if labels:
        lab = np.asarray(labels, dtype=object)
        has = codes >= 0
        out[has] = lab[codes[has]]
    return pd.Series(out, dtype=object)


def _ts(us: np.ndarray, tz: str) -> pd.Series:
    arr = np.asarray(us, dtype=np.int64).view("datetime64[us]").copy()
    arr[np.asarray(us) == _NAT] = np.datetime64("NaT")
    return pd.Series(arr).dt.tz_localize("UTC").dt.tz_convert(tz)
