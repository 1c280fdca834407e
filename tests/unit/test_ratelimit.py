"""WeightLimiter driven directly: fixed windows, guard band, header correction, stops."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn.transport.ratelimit import Cost, Limit, WeightLimiter, limit_from_binance

MINUTE = limit_from_binance("REQUEST_WEIGHT", "MINUTE", 1, 100)
HEADERS = {"X-MBX-USED-WEIGHT-": "REQUEST_WEIGHT", "X-MBX-ORDER-COUNT-": "ORDERS"}
T0 = 28_333_333 * 60_000 + 40_000.0  # epoch ms, 40 s into a minute


def limiter(*limits: Limit, guard_ms: float = 250.0) -> WeightLimiter:
    return WeightLimiter(
        limits or (MINUTE,), header_prefixes=HEADERS, guard_ms=guard_ms, headroom=1.0
    )


def test_limit_from_exchange_info_names_the_header_suffix() -> None:
    assert limit_from_binance("ORDERS", "SECOND", 10, 50) == Limit("ORDERS", 10_000, 50, "10S")
    assert limit_from_binance("ORDERS", "DAY", 1, 9).interval_ms == 86_400_000
    with pytest.raises(ValueError):
        limit_from_binance("ORDERS", "WEEK", 1, 9)


def test_reserves_until_the_budget_then_waits_for_the_window_reset() -> None:
    lim = limiter()
    assert T0 % 60_000 == 40_000
    for _ in range(10):
        assert lim.try_reserve(Cost(weight=10), T0) == 0.0
    wait = lim.try_reserve(Cost(weight=1), T0)
    # the minute resets at :00, 20 s away, plus the guard band
    assert wait == pytest.approx(20_000 + 250)
    assert lim.used(MINUTE, T0) == 100
    assert lim.try_reserve(Cost(weight=1), T0 + wait) == 0.0


def test_a_reservation_near_the_boundary_counts_in_both_windows() -> None:
    lim = limiter()
    edge = T0 + 20_000 - 100  # 100 ms before :00
    assert lim.try_reserve(Cost(weight=30), edge) == 0.0
    assert lim.used(MINUTE, edge) == 30
    assert lim.used(MINUTE, edge + 200) == 30  # it may arrive after :00


def test_headers_correct_upwards_only() -> None:
    lim = limiter()
    lim.try_reserve(Cost(weight=10), T0)
    lim.observe({"X-MBX-USED-WEIGHT-1M": "60"}, T0)
    assert lim.used(MINUTE, T0) == 60  # another process spent weight on our IP
    lim.observe({"x-mbx-used-weight-1m": "5"}, T0)
    assert lim.used(MINUTE, T0) == 60  # our own in-flight count stays
    lim.observe({"X-MBX-USED-WEIGHT-1S": "99", "X-MBX-USED-WEIGHT-1M": "junk"}, T0)
    assert lim.used(MINUTE, T0) == 60  # unknown window, unreadable value: ignored


def test_orders_count_only_for_order_entry() -> None:
    orders = limit_from_binance("ORDERS", "SECOND", 10, 2)
    lim = limiter(MINUTE, orders)
    assert lim.try_reserve(Cost(weight=1, orders=1), T0) == 0.0
    assert lim.try_reserve(Cost(weight=1, orders=1), T0) == 0.0
    assert lim.try_reserve(Cost(weight=1, orders=1), T0) > 0  # third order waits
    assert lim.try_reserve(Cost(weight=1), T0) == 0.0  # reads still go
    lim.observe({"X-MBX-ORDER-COUNT-10S": "2"}, T0)
    assert lim.used(orders, T0) == 2


def test_a_cost_above_the_whole_budget_goes_in_an_empty_window() -> None:
    lim = limiter()
    assert lim.try_reserve(Cost(weight=500), T0) == 0.0
    assert lim.try_reserve(Cost(weight=1), T0) > 0


def test_release_gives_back_an_unsent_reservation() -> None:
    lim = limiter()
    lim.try_reserve(Cost(weight=40), T0)
    lim.release(Cost(weight=40), T0)
    assert lim.used(MINUTE, T0) == 0


def test_stop_refuses_until_the_deadline() -> None:
    lim = limiter()
    lim.stop(T0 + 1000, 429)
    assert lim.stopped(T0, is_order=False) is not None
    assert lim.stopped(T0 + 999, is_order=True).remaining_s(T0 + 999) == pytest.approx(0.001)
    assert lim.stopped(T0 + 1000, is_order=False) is None
    lim.stop(T0 + 5000, 418)
    lim.stop(T0 + 2000, 429)  # a shorter stop never shortens a ban
    stop = lim.stopped(T0 + 3000, is_order=False)
    assert stop is not None and stop.status == 418 and stop.until_ms == T0 + 5000


def test_order_count_stop_leaves_reads_alone() -> None:
    lim = limiter()
    lim.stop(T0 + 1000, 429, orders_only=True)
    assert lim.stopped(T0, is_order=False) is None
    assert lim.stopped(T0, is_order=True) is not None


def test_reserve_checks_the_stops_then_charges_in_one_go() -> None:
    lim = limiter()
    lim.stop(T0 + 1000, 429, orders_only=True)
    stop, wait = lim.reserve(Cost(weight=10), T0, is_order=True)
    assert stop is not None and stop.orders_only and wait == 0.0
    assert lim.used(MINUTE, T0) == 0  # a stopped request is not charged
    assert lim.reserve(Cost(weight=60), T0, is_order=False) == (None, 0.0)  # reads go on
    assert lim.used(MINUTE, T0) == 60
    stop, wait = lim.reserve(Cost(weight=50), T0, is_order=False)
    assert stop is None and wait == pytest.approx(20_000 + 250)  # as try_reserve would wait
    assert lim.used(MINUTE, T0) == 60
    assert lim.reserve(Cost(weight=10), T0 + 1000, is_order=True) == (None, 0.0)  # stop over


def test_headroom_keeps_part_of_the_limit_free() -> None:
    lim = WeightLimiter([MINUTE], headroom=0.5, guard_ms=0)
    assert lim.try_reserve(Cost(weight=50), T0) == 0.0
    assert lim.try_reserve(Cost(weight=1), T0) > 0


@given(st.lists(st.tuples(st.integers(0, 5_000), st.integers(1, 30)), min_size=1, max_size=200))
def test_never_more_than_the_budget_in_any_window(steps: list[tuple[int, int]]) -> None:
    lim = limiter(guard_ms=0)
    now = T0
    sent: dict[int, int] = {}
    for advance, weight in steps:
        now += advance
        wait = lim.try_reserve(Cost(weight=weight), now)
        if wait > 0:
            assert wait <= 60_000
            continue
        bucket = int(now // 60_000)
        sent[bucket] = sent.get(bucket, 0) + weight
    assert all(total <= 100 for total in sent.values())
