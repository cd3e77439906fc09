"""Engine.snapshot / Engine.restore: a run survives a restart exactly."""

from __future__ import annotations

import random

import pytest

import refpay

POLICY = {"levels": [{"rate": "10%"}, {"rate": "5%"}], "leader": {"fixed": "2.00"},
          "caps": {"order_total": "30%", "member_month": "50"},
          "settlement": {"hold_days": 1}, "binding": {"mode": "free"}}


def events(n: int, seed: int) -> list[dict[str, object]]:
    """A reproducible stream of joins, roles, orders, confirmations and
    refunds, some of them rejected."""
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    members, orders = 0, 0
    for i in range(n):
        at = f"2026-03-{1 + i // 200:02d}T{(i // 10) % 24:02d}:{i % 10 * 5:02d}:00+08:00"
        kind = rng.random()
        if members < 3 or kind < 0.3:
            join: dict[str, object] = {"type": "join", "member": f"m{members}", "at": at,
                                       "event_id": f"e{i}"}
            if members:
                join["inviter"] = f"m{rng.randrange(members)}"
            out.append(join)
            members += 1
        elif kind < 0.35:
            out.append({"type": "set_role", "member": f"m{rng.randrange(members)}",
                        "role": "leader", "at": at})
        elif kind < 0.75:
            out.append({"type": "order", "id": f"o{orders}", "buyer": f"m{rng.randrange(members)}",
                        "amount": f"{rng.randrange(1, 100000) / 100:.2f}", "at": at,
                        "event_id": f"e{i}"})
            orders += 1
        elif kind < 0.9 and orders:
            out.append({"type": "confirm", "order": f"o{rng.randrange(orders)}", "at": at})
        elif orders:
            out.append({"type": "refund", "order": f"o{rng.randrange(orders)}",
                        "amount": f"{rng.randrange(1, 30000) / 100:.2f}", "at": at})
    return out


@pytest.mark.parametrize("seed", range(5))
def test_restore_at_any_point_continues_exactly(seed: int) -> None:
    stream = events(400, seed)
    whole = refpay.Engine(refpay.Policy.from_dict(POLICY))
    whole.apply_many(stream)
    cut = random.Random(seed).randrange(len(stream))
    first = refpay.Engine(refpay.Policy.from_dict(POLICY))
    first.apply_many(stream[:cut])
    resumed = refpay.Engine.restore(first.snapshot())
    assert resumed.snapshot() == first.snapshot()
    resumed.apply_many(stream[cut:])
    assert resumed.snapshot() == whole.snapshot()
    as_of = "2026-04-01T00:00:00+08:00"
    assert resumed.ledger(as_of).equals(whole.ledger(as_of))
    # Re-delivering an already applied event after the restart is refused.
    redelivered = next(e for e in stream[:cut] if "event_id" in e) if cut else None
    if redelivered is not None:
        with pytest.raises(refpay.EventError) as error:
            resumed.apply(redelivered)
        assert error.value.code == "duplicate_event"


def test_restored_engine_keeps_the_policy() -> None:
    engine = refpay.Engine(refpay.Policy.from_dict(POLICY))
    restored = refpay.Engine.restore(engine.snapshot())
    for attribute in ("name", "currency", "timezone", "rounding", "hold_days"):
        assert getattr(restored.policy, attribute) == getattr(engine.policy, attribute)
    assert restored.policy.lint().equals(engine.policy.lint())


@pytest.mark.parametrize(("damage", "code"), [
    (lambda b: b[: len(b) // 2], "bad_snapshot"),
    (lambda b: b[:-1], "bad_snapshot"),
    (lambda b: b[:20] + bytes([b[20] ^ 0xFF]) + b[21:], "bad_snapshot"),
    (lambda b: b"", "bad_snapshot"),
    (lambda b: b"REFPAYSN" + b"\xff" * 4 + b[12:], "snapshot_version"),
])
def test_damaged_snapshots_are_clear_errors(damage, code) -> None:  # type: ignore[no-untyped-def]
    engine = refpay.Engine(refpay.Policy.from_dict(POLICY))
    engine.apply_many(events(50, 1))
    with pytest.raises(refpay.SnapshotError) as error:
        refpay.Engine.restore(damage(engine.snapshot()))
    assert error.value.code == code
    assert isinstance(error.value, ValueError)


def test_restore_needs_bytes() -> None:
    with pytest.raises(TypeError, match="needs bytes"):
        refpay.Engine.restore("not bytes")  # type: ignore[arg-type]
