"""Properties of the pure market model and flood generator (no sockets)."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from exconn.sim.fixed import fmt_units, to_units
from exconn.sim.flood import iter_flood
from exconn.sim.market import Book, Market, MarketSpec, SymbolMarket

FAST = settings(max_examples=60, deadline=None)


def spec(mid_ticks: int = 6_000_000, min_steps: int = 1, max_steps: int = 500) -> MarketSpec:
    return MarketSpec("TESTUSDT", mid_ticks, min_steps, max_steps)


def assert_sane(book: Book, levels: int) -> None:
    assert book.bids and book.asks
    assert book.best_bid() < book.best_ask(), "book crossed"
    assert all(p > 0 and q > 0 for p, q in book.bids.items())
    assert all(p > 0 and q > 0 for p, q in book.asks.items())
    assert len(book.bids) <= levels and len(book.asks) <= levels


@FAST
@given(
    seed=st.integers(0, 2**32),
    levels=st.integers(1, 60),
    steps=st.integers(1, 80),
    mid_ticks=st.sampled_from([2, 7, 150, 15_000, 6_000_000]),
)
def test_diffs_rebuild_the_book_and_never_cross(
    seed: int, levels: int, steps: int, mid_ticks: int
) -> None:
    market = SymbolMarket(spec(mid_ticks), levels, random.Random(seed), 1_000_000, 1)
    replica = market.book.copy()
    assert_sane(market.book, levels)
    previous_last = market.book.update_id
    previous_trade = 0
    for i in range(steps):
        interval = market.step(time_ms=i)
        diff = interval.diff
        assert diff.first_id == previous_last + 1, "update ids must be contiguous"
        if diff.last_id < diff.first_id:
            # Nothing could change (a grid too small to move on): no ids consumed, no event.
            assert not diff.bids and not diff.asks
            continue
        prices = [p for p, _ in diff.bids] + [p for p, _ in diff.asks]
        assert len(set(p for p, _ in diff.bids)) == len(diff.bids), "a level appears once"
        assert len(set(p for p, _ in diff.asks)) == len(diff.asks)
        assert all(q >= 0 for _, q in diff.bids + diff.asks) and prices
        for trade in interval.trades:
            assert trade.trade_id > previous_trade and trade.qty > 0
            previous_trade = trade.trade_id
        replica.apply(diff)
        assert_sane(market.book, levels)
        assert replica == market.book
        # The served book is the matching engine's own state, not a separate model.
        assert (market.book.bids, market.book.asks) == (market.engine.bids, market.engine.asks)
        assert market.book.update_id == market.engine.update_id
        previous_last = diff.last_id
    # Levels per side are refilled to exactly `levels` when there is room on the grid.
    if mid_ticks >= 4 * levels:
        assert len(market.book.bids) == levels == len(market.book.asks)


def test_same_seed_same_market() -> None:
    specs = [spec(), MarketSpec("OTHER", 300, 1, 10)]
    a, b = Market(specs, 20, seed=5), Market(specs, 20, seed=5)
    assert [a.step(1) for _ in range(50)] == [b.step(1) for _ in range(50)]
    c = Market(specs, 20, seed=6)
    assert c.get("TESTUSDT").book != Market(specs, 20, seed=5).get("TESTUSDT").book


def test_symbols_get_distinct_update_id_ranges() -> None:
    market = Market([spec(), MarketSpec("OTHER", 300, 1, 10)], 10, seed=1)
    ids = [market.get(s).book.update_id for s in market.symbols]
    assert len(set(ids)) == 2 and min(ids) >= 1_000_000


@FAST
@given(
    seed=st.integers(0, 2**32),
    levels=st.integers(1, 40),
    n_updates=st.integers(0, 400),
    per_update=st.integers(1, 6),
)
def test_flood_is_contiguous_and_rebuilds_the_final_book(
    seed: int, levels: int, n_updates: int, per_update: int
) -> None:
    start = SymbolMarket(spec(1_000), levels, random.Random(seed), 5_000, 1).book
    replica, final = start.copy(), start.copy()
    expected_id = start.update_id
    for diff in iter_flood(final, n_updates, per_update, levels, 1, 50, random.Random(seed)):
        expected_id += 1
        assert diff.first_id == diff.last_id == expected_id
        touched = [p for p, _ in diff.bids] + [p for p, _ in diff.asks]
        assert len(touched) <= per_update
        replica.apply(diff)
        assert not replica.is_crossed() and replica.bids and replica.asks
    assert replica == final
    assert final.update_id == start.update_id + n_updates


@given(units=st.integers(0, 10**20))
def test_fixed_point_round_trip(units: int) -> None:
    text = fmt_units(units)
    assert len(text.split(".")[1]) == 8
    assert to_units(Decimal(text)) == units


def test_fixed_point_rejects_more_than_eight_decimals() -> None:
    try:
        to_units(Decimal("0.000000001"))
    except ValueError:
        return
    raise AssertionError("expected ValueError")
