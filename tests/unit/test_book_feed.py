"""The venue-neutral book topic state (``exconn.venues.book_feed``), alone and through both
venues' stream handlers."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from exconn.book.local import LocalBook
from exconn.messages import BookDelta, BookReset, BookSnapshot, BookStale
from exconn.model.enums import Exchange, Market
from exconn.outbox import Outbox
from exconn.venues.binance import streams as binance
from exconn.venues.binance.book_sync import SPOT_RULES
from exconn.venues.binance.wire import DepthSnapshot
from exconn.venues.book_feed import BookFeed
from exconn.venues.bybit import streams as bybit
from tests.unit.stream_support import OTHER, SUB, delivered, events
from tests.unit.test_binance_streams import BTC, depth
from tests.unit.test_bybit_streams import PERP, ob

ROUTE = ((SUB, SUB),)


def live_feed(update_id: int = 10) -> BookFeed:
    feed = BookFeed(
        instrument=BTC,
        exchange="binance",
        market="spot",
        rules=SPOT_RULES,
        price_scale=2,
        qty_scale=5,
    )
    feed.route(ROUTE, Outbox())
    feed.sync.on_snapshot(update_id, [("100.00", "1.00000")], [("101.00", "2.00000")])
    return feed


def test_a_new_subscriber_of_a_live_book_gets_its_snapshot_the_others_nothing() -> None:
    feed = live_feed()
    out = Outbox()
    feed.route(((SUB, SUB), (OTHER, OTHER)), out)
    got = delivered(out)
    assert list(got) == [OTHER]
    (snap,) = got[OTHER]
    assert isinstance(snap, BookSnapshot) and snap.update_id == 10
    assert snap.bids == ((Decimal("100.00"), Decimal("1.00000")),)


def test_closing_the_book_forgets_every_socket_state() -> None:
    feed = live_feed()
    feed.lose_socket("gone", Outbox(), announce=False)
    feed.begin_candidate()
    assert feed.held is not None and feed.next_sync is not None
    feed.route((), Outbox())
    assert feed.held is None and feed.next_sync is None and not feed.sync.live


def test_a_lost_socket_holds_a_live_book_and_says_it_is_stale() -> None:
    feed = live_feed()
    book = feed.sync.book
    out = Outbox()
    feed.lose_socket("disconnected", out, announce=True)
    assert feed.held is book and feed.held_fresh and not feed.sync.live
    (stale,) = events(out)
    assert isinstance(stale, BookStale) and stale.reason == "disconnected"
    # A replacement already taking over: no announcement.
    quiet = live_feed()
    quiet.lose_socket("rotated", out, announce=False)
    assert quiet.held is not None and events(out) == []


def test_a_book_still_syncing_just_starts_over() -> None:
    feed = live_feed()
    feed.sync.reset()
    out = Outbox()
    feed.lose_socket("disconnected", out, announce=True)
    assert feed.held is None and events(out) == []


def test_a_promoted_candidate_keeps_the_older_book_subscribers_hold() -> None:
    feed = live_feed(10)
    older = feed.sync.book
    feed.lose_socket("disconnected", Outbox(), announce=False)
    feed.sync.on_snapshot(11, [("100.00", "1.00000")], [])  # the next socket, still behind
    feed.begin_candidate()
    feed.take_candidate()
    assert feed.held is older and feed.next_sync is None and not feed.sync.live


def test_catch_up_is_one_delta_from_the_held_book_to_the_live_one() -> None:
    feed = live_feed(10)
    local = LocalBook()
    assert local.on_event(feed.snapshot_event())
    feed.lose_socket("disconnected", Outbox(), announce=False)
    feed.sync.on_snapshot(12, [("100.00", "3.00000"), ("99.00", "1.00000")], [])
    out = Outbox()
    feed.catch_up(out)
    (delta,) = events(out)
    assert isinstance(delta, BookDelta) and (delta.prev_update_id, delta.update_id) == (10, 12)
    assert delta.asks == ((Decimal("101.00"), Decimal(0)),)  # a level gone says qty 0
    assert local.on_event(delta) and feed.held is None
    snap = feed.snapshot_event()
    assert local.top(10) == (list(snap.bids), list(snap.asks))


def test_expiring_a_held_book_resets_it_once() -> None:
    feed = live_feed()
    feed.lose_socket("disconnected", Outbox(), announce=False)
    out = Outbox()
    assert feed.expire_held("no data", out)
    assert [type(e) for e in events(out)] == [BookReset]
    assert not feed.expire_held("no data", out) and events(out) == []


def test_deltas_carry_the_venue_strings_and_seconds() -> None:
    delta = live_feed().delta_event([("100.00", "0")], [], 10, 11, 1_700_000_000_123)
    assert delta.bids == [("100.00", "0")] and delta.ts == 1_700_000_000.123
    assert (delta.exchange, delta.market, delta.symbol) == ("binance", "spot", "BTC/USDT")


# -- the same scenario through each venue's handler ---------------------------------------------


Handler = binance.StreamHandler | bybit.StreamHandler


def _binance_live() -> tuple[Handler, str]:
    h = binance.StreamHandler(Market.SPOT, [BTC])
    topic = "book.binance.spot.BTC/USDT"
    h.set_route(topic, [SUB], Outbox())
    h.on_frames([depth(11, 11, bids='[["100.00","1.0"]]')], Outbox())
    snap = DepthSnapshot(lastUpdateId=10, bids=[("99.00", "2")], asks=[("101.00", "3")])
    h.on_snapshot("BTCUSDT", snap, Outbox())
    return h, topic


def _bybit_live() -> tuple[Handler, str]:
    h = bybit.StreamHandler(Market.LINEAR, [PERP])
    topic = "book.bybit.linear.BTC/USDT:USDT"
    h.set_route(topic, [SUB], Outbox())
    h.on_frames([ob("snapshot", 10, [["100.00", "1.000"]], [["101.00", "2.000"]])], Outbox())
    return h, topic


VENUES = pytest.mark.parametrize(
    ("make", "exchange"),
    [(_binance_live, Exchange.BINANCE), (_bybit_live, Exchange.BYBIT)],
    ids=["binance", "bybit"],
)


@VENUES
def test_every_venue_holds_a_lost_book_then_expires_it(
    make: Callable[[], tuple[Handler, str]], exchange: Exchange
) -> None:
    h, _ = make()
    out = Outbox()
    h.on_disconnect("disconnected: eof", out)
    (stale,) = events(out)
    assert isinstance(stale, BookStale) and stale.reason == "disconnected: eof"
    assert stale.exchange == exchange.value and h.held_symbols() == ["BTCUSDT"]
    resyncs = h.resyncs
    h.expire_held("no data after a socket change", out)
    (reset,) = events(out)
    assert isinstance(reset, BookReset) and h.held_symbols() == []
    assert h.resyncs == resyncs + 1


@VENUES
def test_every_venue_sends_a_late_subscriber_the_live_book_and_closes_with_the_last(
    make: Callable[[], tuple[Handler, str]], exchange: Exchange
) -> None:
    h, topic = make()
    (stream,) = h.streams
    out = Outbox()
    assert h.set_route(topic, [SUB, OTHER], out).subscribe == []
    got = delivered(out)
    assert list(got) == [OTHER]
    (snap,) = got[OTHER]
    assert isinstance(snap, BookSnapshot) and snap.exchange == exchange.value
    assert h.set_route(topic, [OTHER], out).unsubscribe == []
    assert h.set_route(topic, [], out).unsubscribe == [stream] and h.streams == set()
    assert delivered(out) == {}
