"""ClockOffset driven directly with local times in ms."""

from __future__ import annotations

import pytest

from exconn.transport.clock import ClockOffset


def test_midpoint_offset_from_one_sample() -> None:
    clock = ClockOffset()
    assert not clock.synced
    # sent at 1000, answered 40 ms later; server read 1520 in the middle -> offset 500
    assert clock.add_sample(1000, 40, 1520) == pytest.approx(500)
    assert clock.uncertainty_ms == 20
    assert clock.server_time_ms(2000) == 2500
    assert clock.timestamp_ms(2000) == 2480  # never ahead of the server


def test_min_rtt_samples_win_over_slow_ones() -> None:
    clock = ClockOffset()
    clock.add_sample(0, 2, 501)  # offset 500 +- 1
    clock.add_sample(10, 300, 10 + 150 + 640)  # offset 640 +- 150: consistent but imprecise
    assert clock.offset_ms == pytest.approx(500)
    assert clock.uncertainty_ms == 1


def test_median_of_good_samples_smooths_jitter() -> None:
    clock = ClockOffset()
    for i, offset in enumerate([500, 502, 499, 501, 500]):
        clock.add_sample(i * 1000, 4, i * 1000 + 2 + offset)
    assert clock.offset_ms == 500


def test_a_step_drops_inconsistent_samples_at_once() -> None:
    clock = ClockOffset()
    for i in range(5):
        clock.add_sample(i * 1000, 2, i * 1000 + 1 + 500)
    clock.add_sample(6000, 2, 6000 + 1 - 1500)  # the server clock jumped back 2 s
    assert clock.offset_ms == pytest.approx(-1500)
    assert len(clock.samples) == 1


def test_slow_drift_is_tracked_by_ageing_samples_out() -> None:
    clock = ClockOffset(max_age_ms=60_000, drift_ppm=200)
    # the local clock drifts 100 ppm: +6 ms per minute
    for minute in range(10):
        t = minute * 60_000
        clock.add_sample(t, 2, t + 1 + 500 + minute * 6)
    assert clock.offset_ms == pytest.approx(500 + 9 * 6, abs=6)


def test_invalidate_and_needs_sync() -> None:
    clock = ClockOffset()
    assert clock.needs_sync(0, 1000)
    clock.add_sample(0, 2, 100)
    assert not clock.needs_sync(999, 1000)
    assert clock.needs_sync(1000, 1000)
    clock.invalidate()
    assert not clock.synced and clock.needs_sync(1001, 1000)


def test_negative_rtt_is_treated_as_zero() -> None:
    clock = ClockOffset()
    clock.add_sample(0, -5, 100)
    assert clock.uncertainty_ms == 0
    assert clock.offset_ms == 100
