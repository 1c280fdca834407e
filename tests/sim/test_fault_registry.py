from __future__ import annotations

import pytest

from exconn.sim.fault_registry import FaultKind, FaultRegistry


def test_count_limited_fault_fires_then_disappears() -> None:
    reg = FaultRegistry()
    reg.add(FaultKind.HTTP_429, endpoint="GET /api/v3/depth", count=2, retry_after=3)
    assert reg.take(FaultKind.HTTP_429, 0, endpoint="GET /api/v3/time") is None
    first = reg.take(FaultKind.HTTP_429, 0, endpoint="GET /api/v3/depth")
    assert first is not None and first.params == {"retry_after": 3}
    assert reg.take(FaultKind.HTTP_429, 0, endpoint="GET /api/v3/depth") is not None
    assert reg.take(FaultKind.HTTP_429, 0, endpoint="GET /api/v3/depth") is None
    assert reg.list(0) == []


def test_duration_fault_lasts_until_its_deadline_and_active_does_not_consume() -> None:
    reg = FaultRegistry()
    reg.add(FaultKind.STALL, connection=3, count=None, duration_ms=1000, now_ms=10_000)
    assert reg.active(FaultKind.STALL, 10_500, connection=4) is None
    assert reg.active(FaultKind.STALL, 10_500, connection=3) is not None
    assert reg.take(FaultKind.STALL, 10_600, connection=3) is not None  # unlimited count
    assert reg.active(FaultKind.STALL, 11_000, connection=3) is None  # deadline passed


def test_count_and_duration_whichever_ends_first() -> None:
    reg = FaultRegistry()
    reg.add(FaultKind.DROP, count=5, duration_ms=100, now_ms=0)
    assert reg.take(FaultKind.DROP, 50) is not None
    assert reg.take(FaultKind.DROP, 100) is None


def test_json_body_and_validation() -> None:
    reg = FaultRegistry()
    fid = reg.add_json(
        {
            "kind": "clock_skew",
            "venue": "binance_spot",
            "duration_ms": 5000,
            "params": {"skew_ms": 2000},
        },
        now_ms=0,
    )
    (listed,) = reg.list(1)
    assert listed["id"] == fid and listed["count"] is None and listed["params"]["skew_ms"] == 2000
    with pytest.raises(ValueError):
        reg.add_json({"kind": "nope"}, 0)
    with pytest.raises(ValueError):
        reg.add_json({"kind": "drop", "bogus": 1}, 0)
    with pytest.raises(ValueError):
        reg.add("drop", count=None)
    assert reg.remove(fid) and not reg.remove(fid)
