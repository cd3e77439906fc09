"""The exceptions refpay raises.

Each carries the engine's message and ``.code``, the stable SPEC error code
(``"cycle"``, ``"tier_gap"``, ``"bad_amount"``, …), and subclasses the
matching builtin so ordinary ``except ValueError`` / ``except KeyError`` code
keeps working::

    try:
        engine.apply({"type": "rebind", "member": "A", "inviter": "C", "at": t})
    except refpay.EventError as e:
        print(e.code)   # "cycle"

The compiled module raises these classes by name (``python/src/module.cc``).
"""

from __future__ import annotations

__all__ = ["CaseError", "EventError", "PolicyError", "RefpayError", "SnapshotError",
           "UnknownIdError"]


class RefpayError(Exception):
    """Base class of every refpay error; ``.code`` is the SPEC error code."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[RefpayError], tuple[str, str]]:
        return type(self), (self.message, self.code)


class PolicyError(RefpayError, ValueError):
    """A policy that cannot be used: unknown key, bad amount, tier gap, … (SPEC §3)."""


class EventError(RefpayError, ValueError):
    """An event or input value the engine rejects: bad_event, bad_time,
    out_of_order, cycle, over_refund, bad_amount, … (SPEC §2)."""


class UnknownIdError(RefpayError, KeyError):
    """An event or query names a member or order the engine does not know
    (``unknown_member``, ``unknown_order``)."""


class SnapshotError(RefpayError, ValueError):
    """Bytes that are not a snapshot this version can restore: corrupt or
    truncated (``bad_snapshot``) or of another format (``snapshot_version``)."""


class CaseError(RefpayError, ValueError):
    """An audit case that cannot be run: not JSON, no events, a bad ``as_of``
    (``bad_case``) (SPEC §8)."""
