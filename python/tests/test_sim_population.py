"""refpay.sim population generators: determinism and invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from refpay import sim

TZ = "Asia/Shanghai"


def _abusive(seed: int = 3, n: int = 4000, **tree) -> sim.Population:
    return sim.generate(
        n,
        seed=seed,
        tree=sim.TreeSpec(**tree),
        roles=sim.RoleSpec(
            leader_share=0.02, leader_ranks=("bronze", "silver", "gold"), super_share=0.01
        ),
        orders=sim.OrderSpec(
            categories={"course": 0.3, "card": 0.5, "appliance": 0.2},
            median_yuan={"course": "99", "card": "199", "appliance": "3200"},
        ),
        abuse=sim.AbuseSpec(second_accounts=0.05, split_orders=0.02, invite_farms=3, farm_size=25),
    )


def test_same_seed_gives_identical_population():
    a, b = _abusive(seed=11), _abusive(seed=11)
    pd.testing.assert_frame_equal(a.members, b.members)
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.abuse, b.abuse)
    assert a.end == b.end and a.meta == b.meta


def test_different_seed_gives_different_population():
    a, b = _abusive(seed=11), _abusive(seed=12)
    assert not a.members["inviter"].equals(b.members["inviter"])
    assert not a.orders["amount_fen"].equals(b.orders["amount_fen"])


def test_abuse_does_not_change_the_tree():
    base = sim.generate(3000, seed=5)
    more = sim.generate(3000, seed=5, abuse=sim.AbuseSpec(second_accounts=0.1))
    pd.testing.assert_series_equal(base.members["inviter"], more.members["inviter"])
    pd.testing.assert_frame_equal(base.orders, more.orders)
    assert not base.members["device"].equals(more.members["device"])


def _check_invariants(pop: sim.Population) -> None:
    m, o = pop.members, pop.orders
    assert m["member"].is_unique and o["id"].is_unique
    for col in ("joined_at",):
        assert str(m[col].dt.tz) == TZ
    for col in ("at", "confirmed_at", "refunded_at"):
        assert str(o[col].dt.tz) == TZ
    # Members are listed by join time; every inviter exists and joined strictly earlier.
    assert m["joined_at"].is_monotonic_increasing
    joined = m.set_index("member")["joined_at"]
    inv = m[m["inviter"].notna()]
    assert inv["inviter"].isin(m["member"]).all()
    assert (joined.loc[inv["inviter"]].to_numpy() < inv["joined_at"].to_numpy()).all()
    assert (pop.start <= m["joined_at"]).all()
    # Orders: after the buyer joined, inside the window, in time order.
    assert o["buyer"].isin(m["member"]).all()
    assert o["at"].is_monotonic_increasing
    assert (joined.loc[o["buyer"]].to_numpy() < o["at"].to_numpy()).all()
    assert (o["at"] <= pop.end).all()
    assert o["amount_fen"].dtype == np.int64 and (o["amount_fen"] > 0).all()
    assert o["refund_amount_fen"].dtype == np.int64
    assert ((o["refund_amount_fen"] >= 0) & (o["refund_amount_fen"] <= o["amount_fen"])).all()
    c = o[o["confirmed_at"].notna()]
    assert (c["confirmed_at"] > c["at"]).all() and (c["confirmed_at"] <= pop.end).all()
    refunded = o["refund_amount_fen"] > 0
    assert (refunded == o["refunded_at"].notna()).all()
    r = o[refunded]
    assert (r["refunded_at"] > r["at"]).all() and (r["refunded_at"] <= pop.end).all()
    # No float money anywhere.
    for df in (m, o):
        assert not any(df[c].dtype.kind == "f" for c in df.columns)


@pytest.mark.parametrize(
    "tree",
    [
        {},
        {"offspring": "poisson", "mean_invites": 1.3},
        {"offspring": "zipf", "zipf_a": 2.1, "mean_invites": 0.8},
        {"depth_profile": (2.0, 1.5, 1.0, 0.5)},
        {"model": "preferential", "attachment_alpha": 0.5},
    ],
    ids=["geometric", "poisson", "zipf", "depth_profile", "preferential"],
)
def test_invariants_hold_for_every_tree_model(tree):
    pop = _abusive(**tree)
    assert len(pop.members) == 4000
    _check_invariants(pop)


def test_exact_sizes_and_shape_without_abuse():
    pop = sim.generate(5000, seed=2, orders=sim.OrderSpec(n_orders=12_345))
    assert len(pop.members) == 5000 and len(pop.orders) == 12_345
    assert list(pop.members.columns) == [
        "member",
        "inviter",
        "joined_at",
        "role",
        "rank",
        "region",
        "device",
        "phone",
        "payment",
    ]
    assert list(pop.orders.columns) == [
        "id",
        "buyer",
        "amount_fen",
        "at",
        "confirmed_at",
        "refund_amount_fen",
        "refunded_at",
    ]
    assert pop.abuse.empty
    _check_invariants(pop)


def test_amounts_follow_the_median_and_categories():
    pop = sim.generate(
        20_000,
        seed=4,
        orders=sim.OrderSpec(
            categories={"a": 0.75, "b": 0.25}, median_yuan={"a": "100", "b": "3000"}, sigma=0.5
        ),
    )
    o = pop.orders
    share_a = (o["category"] == "a").mean()
    assert 0.72 < share_a < 0.78
    med = o.groupby("category", observed=True)["amount_fen"].median()
    assert 9_000 < med["a"] < 11_000 and 270_000 < med["b"] < 330_000


def test_confirm_and_refund_rates():
    pop = sim.generate(
        20_000,
        seed=8,
        orders=sim.OrderSpec(
            confirm_share=0.5,
            refund_rate=0.2,
            partial_refund_share=0.5,
            refund_delay_days=1,
            confirm_delay_days=1,
        ),
    )
    o = pop.orders
    assert 0.45 < o["confirmed_at"].notna().mean() < 0.52
    refunded = o[o["refund_amount_fen"] > 0]
    assert 0.17 < len(refunded) / len(o) < 0.21
    partial = (refunded["refund_amount_fen"] < refunded["amount_fen"]).mean()
    assert 0.4 < partial < 0.6


def test_leaders_are_the_top_inviters_with_ranks():
    pop = _abusive()
    m = pop.members
    invitees = m["inviter"].value_counts().reindex(m["member"]).fillna(0).to_numpy()
    is_leader = (m["role"] == "leader").to_numpy()
    assert is_leader.sum() == round(0.02 * len(m))
    assert invitees[is_leader].min() >= invitees[~is_leader].max()
    assert set(m.loc[is_leader, "rank"]) == {"bronze", "silver", "gold"}
    assert m.loc[~is_leader, "rank"].isna().all()
    gold = invitees[(m["rank"] == "gold").to_numpy()]
    bronze = invitees[(m["rank"] == "bronze").to_numpy()]
    assert gold.min() >= bronze.max()
    assert (m["role"] == "super").sum() == round(0.01 * len(m))


def test_regions_are_mostly_inherited():
    pop = sim.generate(10_000, seed=9, region_stickiness=0.9)
    m = pop.members
    reg = m.set_index("member")["region"]
    inv = m[m["inviter"].notna()]
    same = (reg.loc[inv["inviter"]].to_numpy() == inv["region"].to_numpy()).mean()
    assert same > 0.88


def test_second_accounts_share_device_or_phone_with_inviter():
    pop = _abusive()
    m = pop.members.set_index("member")
    sa = pop.abuse[pop.abuse["kind"] == "second_account"]
    assert len(sa) > 0
    assert (m.loc[sa["member"], "inviter"].to_numpy() == sa["related"].to_numpy()).all()
    for detail in ("device", "phone"):
        rows = sa[sa["detail"] == detail]
        assert len(rows) > 0
        assert (
            m.loc[rows["member"], detail].to_numpy() == m.loc[rows["related"], detail].to_numpy()
        ).all()
    # Everyone else keeps an identity of their own.
    others = m.drop(index=sa["member"])
    assert others["device"].is_unique and others["phone"].is_unique
    # Second accounts buy (their inviter is paid level 1 on "its own" purchases).
    assert sa["member"].isin(pop.orders["buyer"]).all()


def test_split_orders_are_bursts_within_minutes():
    pop = _abusive()
    o = pop.orders.set_index("id")
    sp = pop.abuse[pop.abuse["kind"] == "split_order"]
    assert len(sp) > 0
    for _first, g in sp.groupby("related"):
        parts = o.loc[g["order"]]
        assert 3 <= len(parts) <= 6
        assert parts["buyer"].nunique() == 1
        span = parts["at"].max() - parts["at"].min()
        assert span <= pd.Timedelta(minutes=2 * 6 * 2)
        assert (parts["amount_fen"] > 0).all()


def test_invite_farms_are_many_invitees_from_another_region_within_an_hour():
    pop = _abusive()
    m = pop.members.set_index("member")
    farmers = pop.abuse[pop.abuse["kind"] == "invite_farmer"]["member"]
    farm = pop.abuse[pop.abuse["kind"] == "invite_farm_member"]
    assert len(farmers) == 3 and len(farm) == 75
    for farmer, g in farm.groupby("related"):
        assert farmer in set(farmers)
        rows = m.loc[g["member"]]
        assert len(rows) == 25
        assert (rows["inviter"] == farmer).all()
        assert (rows["region"] != m.loc[farmer, "region"]).all()
        assert rows["joined_at"].max() - rows["joined_at"].min() < pd.Timedelta(hours=1)
        assert (rows["joined_at"] > m.loc[farmer, "joined_at"]).all()


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="offspring"):
        sim.generate(100, tree=sim.TreeSpec(offspring="pareto"))
    with pytest.raises(ValueError, match="median_yuan"):
        sim.generate(100, orders=sim.OrderSpec(median_yuan="1.234"))
    with pytest.raises(ValueError, match="regions"):
        sim.generate(100, regions=["x"], abuse=sim.AbuseSpec(invite_farms=1, farm_size=5))
    with pytest.raises(ValueError, match="buyer_share"):
        sim.generate(100, orders=sim.OrderSpec(buyer_share=1.5))


def test_summary_and_from_frames():
    pop = _abusive()
    s = pop.summary()
    assert s["members"] == 4000 and s["abuse_invite_farmer"] == 3
    again = sim.Population.from_frames(pop.members, pop.orders)
    assert again.end <= pop.end and again.gmv_fen == pop.gmv_fen


def test_until_is_the_population_as_it_stood():
    pop = _abusive()
    t = pd.Timestamp("2026-04-15T00:00:00+08:00")
    early = pop.until(t)
    assert early.end == t
    assert 0 < len(early.members) < len(pop.members) and 0 < len(early.orders) < len(pop.orders)
    o = early.orders
    for col in ("at", "confirmed_at", "refunded_at"):
        assert (o[col].dropna() <= t).all()
    assert (early.members["joined_at"] <= t).all()
    assert o["refund_amount_fen"].dtype == np.int64
    assert ((o["refund_amount_fen"] > 0) == o["refunded_at"].notna()).all()
    assert early.abuse["member"].isin(early.members["member"]).all()
    _check_invariants(early)
