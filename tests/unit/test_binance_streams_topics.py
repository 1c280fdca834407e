"""The Binance stream handler's bbo / aggtrades / mark topics, driven directly with real-shaped
frames (no sockets, no actors)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from exconn.messages import AggTrade, Bbo, MarkPrice, Trade
from exconn.model.enums import Exchange, Market, OrderSide
from exconn.outbox import Outbox
from exconn.topics import validate_subscription
from exconn.venues.binance import urls
from exconn.venues.binance.streams import StreamHandler
from tests.unit.stream_support import OTHER, SUB, events, instrument
from tests.unit.test_binance_streams import BTC

PERP = instrument(Exchange.BINANCE, Market.LINEAR, "BTC", "USDT", tick="0.1", step="0.001")


# Spot bookTicker: no "e", "E" or "T" (binance.md §6).
def spot_bbo(u: int, bid: str = "25.35190000", ask: str = "25.36520000") -> bytes:
    return (
        '{"stream":"btcusdt@bookTicker","data":{"u":'
        f'{u},"s":"BTCUSDT","b":"{bid}","B":"31.21000000","a":"{ask}","A":"40.66000000"}}}}'
    ).encode()


def usdm_bbo(u: int) -> bytes:
    return (
        '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":'
        f'{u},"s":"BTCUSDT","b":"25.3519","B":"31.21","a":"25.3652","A":"40.66",'
        '"T":1568014460891,"E":1568014460893}}'
    ).encode()


def agg(a: int, first: int, last: int, maker_buyer: bool = True) -> bytes:
    m = "true" if maker_buyer else "false"
    return (
        '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1672515782136,'
        f'"s":"BTCUSDT","a":{a},"p":"0.001","q":"100","f":{first},"l":{last},'
        f'"T":1672515782136,"m":{m},"M":true}}}}'
    ).encode()


def mark(price: str = "11794.15000000") -> bytes:
    return (
        '{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1562305380000,'
        f'"s":"BTCUSDT","p":"{price}","i":"11784.62659091","P":"11784.25641265",'
        '"r":"0.00038167","T":1562306400000}}'
    ).encode()


def depth(first: int, last: int) -> bytes:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,'
        f'"s":"BTCUSDT","U":{first},"u":{last},"b":[],"a":[]}}}}'
    ).encode()


def trade(tid: int) -> bytes:
    return (
        '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":'
        f'{tid},"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}}}'
    ).encode()


def test_kinds_are_known_topics_with_their_streams_and_routes() -> None:
    for kind in ("bbo", "aggtrades", "mark"):
        validate_subscription(f"{kind}.binance.linear.BTC/USDT:USDT")
    assert urls.stream_for("bbo", "BTCUSDT") == "btcusdt@bookTicker"
    assert urls.stream_for("aggtrades", "BTCUSDT") == "btcusdt@aggTrade"
    assert urls.stream_for("mark", "BTCUSDT", Market.LINEAR) == "btcusdt@markPrice@1s"
    with pytest.raises(ValueError, match="mark price"):
        urls.stream_for("mark", "BTCUSDT", Market.SPOT)
    assert urls.route_for(Market.LINEAR, "bbo") == urls.PUBLIC_ROUTE
    assert urls.route_for(Market.LINEAR, "aggtrades") == urls.MARKET_ROUTE
    assert urls.route_for(Market.LINEAR, "mark") == urls.MARKET_ROUTE
    assert urls.route_for(Market.SPOT, "aggtrades") == ""


def test_spot_bbo_without_event_tag_is_delivered() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    change = h.set_route("bbo.binance.spot.BTC/USDT", [SUB], out)
    assert change.subscribe == ["btcusdt@bookTicker"]
    h.on_frames([spot_bbo(400900217)], out)
    (bbo,) = events(out)
    assert bbo == Bbo(
        exchange="binance",
        market="spot",
        symbol="BTC/USDT",
        bid_price=Decimal("25.35190000"),
        bid_qty=Decimal("31.21000000"),
        ask_price=Decimal("25.36520000"),
        ask_qty=Decimal("40.66000000"),
        update_id=400900217,
        ts=None,
    )
    assert h.malformed == 0
    change = h.set_route("bbo.binance.spot.BTC/USDT", [], out)
    assert change.unsubscribe == ["btcusdt@bookTicker"] and not h.streams
    h.on_frames([spot_bbo(400900218)], out)
    assert events(out) == [] and h.malformed == 0


def test_aggtrades_are_delivered_and_deduplicated_by_aggregate_id() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    assert h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out).subscribe == [
        "btcusdt@aggTrade"
    ]
    h.on_frames([agg(10, 100, 105), agg(10, 100, 105), agg(9, 90, 99), agg(11, 106, 106)], out)
    first, second = events(out)
    assert isinstance(first, AggTrade) and first.agg_id == "10"
    assert (first.first_trade_id, first.last_trade_id) == (100, 105)
    assert first.side is OrderSide.SELL  # the buyer was the maker
    assert first.price == Decimal("0.001") and first.qty == Decimal("100")
    assert first.ts == datetime.fromtimestamp(1672515782.136, UTC)
    assert second.agg_id == "11"
    h.on_frames([agg(14, 110, 110)], out)  # a jump waits for the missed ones (REST)
    assert events(out) == []
    (backfill,) = h.backfills()
    assert (backfill.kind, backfill.path) == ("aggtrades", "/api/v3/aggTrades")
    assert backfill.params == {"symbol": "BTCUSDT", "limit": "1000", "fromId": "12"}


def test_usdm_bbo_and_mark() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    h.set_route("bbo.binance.linear.BTC/USDT:USDT", [SUB], out)
    change = h.set_route("mark.binance.linear.BTC/USDT:USDT", [SUB], out)
    assert change.subscribe == ["btcusdt@markPrice@1s"]
    h.on_frames([usdm_bbo(7), mark()], out)
    bbo, mp = events(out)
    assert isinstance(bbo, Bbo) and bbo.symbol == "BTC/USDT:USDT" and bbo.update_id == 7
    assert bbo.ts == datetime.fromtimestamp(1568014460.891, UTC)  # T, the engine time
    assert isinstance(mp, MarkPrice)
    assert mp.mark_price == Decimal("11794.15000000")
    assert mp.funding_rate == Decimal("0.00038167")
    assert mp.next_funding_time == datetime.fromtimestamp(1562306400, UTC)
    assert h.malformed == 0


def test_spot_refuses_mark() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    with pytest.raises(ValueError, match="mark price"):
        h.set_route("mark.binance.spot.BTC/USDT", [SUB], Outbox())
    assert not h.streams


def test_each_kind_reaches_only_its_subscribers() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("bbo.binance.spot.BTC/USDT", [SUB], out)
    h.set_route("aggtrades.binance.spot.BTC/USDT", [OTHER], out)
    h.set_route("trades.binance.spot.BTC/USDT", [OTHER], out)
    h.on_frames([spot_bbo(1), agg(1, 1, 1), trade(1), depth(1, 1)], out)
    batches = dict(out.drain())
    assert [type(e) for e in batches[SUB].events] == [Bbo]
    assert [type(e) for e in batches[OTHER].events] == [AggTrade, Trade]


def test_malformed_bbo_and_agg_frames_are_counted() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("bbo.binance.spot.BTC/USDT", [SUB], out)
    h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out)
    bad_bbo = b'{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT"}}'
    bad_number = spot_bbo(2, bid="not-a-number")
    bad_agg = b'{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","s":"BTCUSDT"}}'
    h.on_frames([bad_bbo, bad_number, bad_agg, spot_bbo(3)], out)
    assert h.malformed == 3
    (bbo,) = events(out)
    assert bbo.update_id == 3


def test_rotation_switches_bbo_at_promotion_and_deduplicates_aggtrades() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("bbo.binance.spot.BTC/USDT", [SUB], out)
    h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out)
    h.on_frames([spot_bbo(1), agg(1, 1, 1)], out)
    assert len(events(out)) == 2
    h.begin_candidate()
    # The candidate overlaps the live socket: its quotes wait, its aggTrades are buffered.
    h.on_frames([spot_bbo(2), agg(2, 2, 2), agg(3, 3, 3)], out, candidate=True)
    assert events(out) == []
    h.on_frames([spot_bbo(2), agg(2, 2, 2)], out)  # the live socket still delivers
    assert [getattr(e, "update_id", None) or e.agg_id for e in events(out)] == [2, "2"]
    assert h.ready_to_promote()  # no book to continue
    h.promote(out)
    (promoted,) = events(out)
    assert promoted.agg_id == "3"  # aggregate 2 came over both sockets, delivered once
    h.on_frames([spot_bbo(4), agg(3, 3, 3), agg(4, 4, 4)], out)
    assert [getattr(e, "update_id", None) or e.agg_id for e in events(out)] == [4, "4"]
    assert h.backfills() == []  # no aggregate id was missed


def test_drop_candidate_forgets_its_aggtrades() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out)
    h.begin_candidate()
    h.on_frames([agg(5, 5, 5)], out, candidate=True)
    h.drop_candidate()
    h.promote(out)
    assert events(out) == []
