"""Binance topic kinds depth5/10/20, kline_<interval> and ticker, the channel table behind them
(streams, USD-M routes, liveness cadences, control frames) and lossless aggTrades: driven
directly with real-shaped frames (no sockets, no actors). Payloads come from
../shared/reference/payloads where Binance publishes one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exconn.book.local import LocalBook
from exconn.messages import (
    AggTrade,
    BookDelta,
    BookReset,
    BookSnapshot,
    BookStale,
    BookTop,
    EventBatch,
    Kline,
    MarkPrice,
    Ticker24h,
)
from exconn.model.enums import Exchange, Market
from exconn.model.instruments import Instrument
from exconn.outbox import Outbox
from exconn.topics import KLINE_INTERVALS, is_market_kind, validate_subscription
from exconn.transport.lifecycle import Liveness
from exconn.venues.binance import endpoints, urls
from exconn.venues.binance.streams import BACKFILL_LIMIT, StreamHandler, TradeTape
from exconn.venues.binance.wire import DepthSnapshot, RestAggTrade
from tests.unit.test_binance_streams_topics import BTC, PERP, SUB, agg, depth, mark

OTHER = "subscriber-2"
BNB = Instrument(
    exchange=Exchange.BINANCE,
    market=Market.SPOT,
    symbol="BNB/BTC",
    venue_symbol="BNBBTC",
    base="BNB",
    quote="BTC",
    settle=None,
    tick_size=Decimal("0.0001"),
    step_size=Decimal("0.01"),
    min_qty=Decimal("0.01"),
)


def payload(reference: Path, name: str) -> dict[str, Any]:
    return json.loads((reference / "payloads" / name).read_text())


def combined(stream: str, data: dict[str, Any]) -> bytes:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":")).encode()


def batches(out: Outbox) -> dict[str, list[Any]]:
    """What each subscriber receives, decoded as the subscriber decodes it."""
    return {key: list(batch.events) for key, batch in out.drain()}


def usdm_depth(stream: str, first: int, last: int, prev: int, bids: str = "[]") -> bytes:
    """A USD-M depthUpdate: a diff on ``@depth@100ms``, the top N on ``@depth<N>@100ms``."""
    return (
        f'{{"stream":"{stream}","data":{{"e":"depthUpdate","E":1571889248277,'
        f'"T":1571889248276,"s":"BTCUSDT","U":{first},"u":{last},"pu":{prev},'
        f'"b":{bids},"a":[["7405.96","3.340"]]}}}}'
    ).encode()


def usdm_ticker() -> dict[str, Any]:
    # USD-M <s>@ticker is spot's 24hrTicker without x, b, B, a, A (binance.md §6, §8.1).
    return {
        "e": "24hrTicker",
        "E": 123456789,
        "s": "BTCUSDT",
        "p": "0.0015",
        "P": "250.00",
        "w": "0.0018",
        "c": "0.0025",
        "Q": "10",
        "o": "0.0010",
        "h": "0.0025",
        "l": "0.0010",
        "v": "10000",
        "q": "18",
        "O": 0,
        "C": 86400000,
        "F": 0,
        "L": 18150,
        "n": 18151,
    }


# -- topics, streams, routes, cadences, control frames -------------------------------------------


def test_topic_validation_accepts_exactly_binances_kline_intervals() -> None:
    assert len(KLINE_INTERVALS) == 16
    for interval in KLINE_INTERVALS:
        validate_subscription(f"kline_{interval}.binance.spot.BTC/USDT")
        assert is_market_kind(f"kline_{interval}")
    for kind in ("depth5", "depth10", "depth20", "ticker", "book", "mark"):
        validate_subscription(f"{kind}.binance.linear.BTC/USDT:USDT")
    for bad in ("kline_2m", "kline_1H", "kline_1mo", "kline_", "kline_1D"):
        assert not is_market_kind(bad)
        with pytest.raises(ValueError, match=r"unknown kline interval .*1s, 1m, 3m"):
            validate_subscription(f"{bad}.binance.spot.BTC/USDT")
    for bad in ("depth15", "klines_1m", "tickers", "Depth5"):
        with pytest.raises(ValueError, match=rf"unknown kind '{bad}'.*kline_<interval>"):
            validate_subscription(f"{bad}.binance.spot.BTC/USDT")
    validate_subscription("*.binance.spot.BTC/USDT")  # a wildcard kind is not checked


@pytest.mark.parametrize(
    ("kind", "stream", "route"),
    [
        ("book", "btcusdt@depth@100ms", urls.PUBLIC_ROUTE),
        ("bbo", "btcusdt@bookTicker", urls.PUBLIC_ROUTE),
        ("depth5", "btcusdt@depth5@100ms", urls.PUBLIC_ROUTE),
        ("depth10", "btcusdt@depth10@100ms", urls.PUBLIC_ROUTE),
        ("depth20", "btcusdt@depth20@100ms", urls.PUBLIC_ROUTE),
        ("aggtrades", "btcusdt@aggTrade", urls.MARKET_ROUTE),
        ("mark", "btcusdt@markPrice@1s", urls.MARKET_ROUTE),
        ("ticker", "btcusdt@ticker", urls.MARKET_ROUTE),
        ("kline_1m", "btcusdt@kline_1m", urls.MARKET_ROUTE),
        ("kline_1M", "btcusdt@kline_1M", urls.MARKET_ROUTE),
        ("kline_1w", "btcusdt@kline_1w", urls.MARKET_ROUTE),
    ],
)
def test_usdm_streams_and_routes(kind: str, stream: str, route: str) -> None:
    # binance.md §8.1: @depth* and @bookTicker on /public; kline, ticker, markPrice, aggTrade
    # on /market.
    assert urls.stream_for(kind, "BTCUSDT", Market.LINEAR) == stream
    assert urls.route_for(Market.LINEAR, kind) == route
    assert urls.route_for(Market.SPOT, kind) == ""


def test_spot_only_and_usdm_only_kinds_are_refused_where_they_do_not_exist() -> None:
    assert urls.stream_for("kline_1s", "BTCUSDT", Market.SPOT) == "btcusdt@kline_1s"
    with pytest.raises(ValueError, match="USD-M has no kline_1s stream"):
        urls.stream_for("kline_1s", "BTCUSDT", Market.LINEAR)
    with pytest.raises(ValueError, match="mark price"):
        urls.stream_for("mark", "BTCUSDT", Market.SPOT)
    with pytest.raises(ValueError, match="no stream for topic kind 'kline_2m'"):
        urls.stream_for("kline_2m", "BTCUSDT", Market.SPOT)
    h = StreamHandler(Market.LINEAR, [PERP])
    with pytest.raises(ValueError, match="spot only"):
        h.set_route("kline_1s.binance.linear.BTC/USDT:USDT", [SUB], Outbox())
    assert not h.streams


def test_cadences_watch_every_stream_with_a_promised_pace_and_no_other() -> None:
    cadence = urls.expected_cadence
    assert cadence("btcusdt@markPrice@1s") == 1.0
    assert cadence("btcusdt@ticker") == 1.0
    assert cadence("btcusdt@kline_1s") == 1.0  # binance.md §6: 1000 ms for 1s
    for interval in KLINE_INTERVALS[1:]:
        assert cadence(f"btcusdt@kline_{interval}") == 2.0  # 2000 ms for the others
    assert cadence("btcusdt@depth@100ms") == urls.DEPTH_SILENCE_S
    # Only when something happens, or no promise of pushes without a change: not watched.
    for stream in ("btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker"):
        assert cadence(stream) is None
    for n in (5, 10, 20):
        assert cadence(f"btcusdt@depth{n}@100ms") is None


def test_a_silent_mark_price_stream_is_resubscribed_then_its_socket_replaced() -> None:
    live = Liveness(2.0, 0.0, urls.expected_cadence)
    live.watch(["btcusdt@markPrice@1s", "btcusdt@aggTrade"], 0.0)
    live.last_seen["btcusdt@markPrice@1s"] = 1.0
    live.last_seen["btcusdt@aggTrade"] = 1.0
    assert live.check(2.9).resubscribe == []
    verdict = live.check(3.5)
    assert verdict.resubscribe == ["btcusdt@markPrice@1s"] and not verdict.replace
    assert live.check(6.0).replace  # still silent after the resubscription


def test_control_frames_are_the_venues_json_split_in_chunks() -> None:
    streams = [f"s{i}usdt@trade" for i in range(450)]
    frames = urls.control_frames("SUBSCRIBE", streams, 7)
    decoded = [json.loads(f) for f in frames]
    assert [d["id"] for d in decoded] == [7, 8, 9]
    assert [len(d["params"]) for d in decoded] == [200, 200, 50]
    assert [p for d in decoded for p in d["params"]] == streams
    assert all(
        d["method"] == "SUBSCRIBE" and list(d) == ["method", "params", "id"] for d in decoded
    )
    assert frames[0].startswith('{"method":"SUBSCRIBE","params":["s0usdt@trade",')
    (one,) = StreamHandler(Market.SPOT, [BTC]).control_frames("UNSUBSCRIBE", ["a@trade"], 1)
    assert one == '{"method":"UNSUBSCRIBE","params":["a@trade"],"id":1}'
    assert urls.control_frames("SUBSCRIBE", [], 1) == []
    with pytest.raises(ValueError, match="LIST_SUBSCRIPTIONS"):
        urls.control_frames("LIST_SUBSCRIPTIONS", ["a@trade"], 1)


# -- partial depth ---------------------------------------------------------------------------------


def test_spot_partial_depth_is_a_book_top_named_by_its_stream(reference: Path) -> None:
    h = StreamHandler(Market.SPOT, [BNB, BTC])
    out = Outbox()
    change = h.set_route("depth10.binance.spot.BNB/BTC", [SUB], out)
    assert change.subscribe == ["bnbbtc@depth10@100ms"]
    frame = combined(
        "bnbbtc@depth10@100ms", payload(reference, "binance_spot_ws_partialDepth.json")
    )
    h.on_frames([frame], out)
    (top,) = batches(out)[SUB]
    assert top == BookTop(
        exchange="binance",
        market="spot",
        symbol="BNB/BTC",
        depth=10,
        update_id=160,
        bids=((Decimal("0.0024"), Decimal("10")),),
        asks=((Decimal("0.0026"), Decimal("100")),),
        ts=None,
    )
    assert h.malformed == 0
    # After the stream closed, a frame still in flight is neither delivered nor malformed.
    assert h.set_route("depth10.binance.spot.BNB/BTC", [], out).unsubscribe == [
        "bnbbtc@depth10@100ms"
    ]
    h.on_frames([frame], out)
    assert batches(out) == {} and h.malformed == 0


def test_a_book_subscriber_that_also_takes_depth5_keeps_an_exact_book() -> None:
    """The top-5 views never reach the LocalBook of the book topic as a snapshot or a delta."""
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("book.binance.spot.BTC/USDT", [SUB], out)
    h.set_route("depth5.binance.spot.BTC/USDT", [SUB], out)
    top = (
        b'{"stream":"btcusdt@depth5@100ms","data":{"lastUpdateId":101,'
        b'"bids":[["100.00","1.0"]],"asks":[["101.00","3"]]}}'
    )
    h.on_frames([depth(99, 101), top], out)
    snap = DepthSnapshot(
        lastUpdateId=100,
        bids=[("100.00", "1.0"), ("99.00", "2"), ("98.00", "4")],
        asks=[("101.00", "3"), ("102.00", "5")],
    )
    h.on_snapshot("BTCUSDT", snap, out)
    h.on_frames([top, depth(102, 102), top], out)
    book, tops = LocalBook(), []
    for event in batches(out)[SUB]:
        if isinstance(event, BookTop):
            tops.append(event)
        elif isinstance(event, BookSnapshot | BookDelta | BookReset | BookStale):
            assert book.on_event(event)
    assert len(tops) == 3 and all(t.depth == 5 and len(t.bids) == 1 for t in tops)
    assert book.update_id == 102 and len(book.bids) == 3 and len(book.asks) == 2


def test_usdm_partial_depth_never_touches_the_book_even_after_its_stream_closed() -> None:
    """USD-M top-N frames are tagged depthUpdate like diffs: told apart by their stream."""
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    h.set_route("book.binance.linear.BTC/USDT:USDT", [SUB], out)
    change = h.set_route("depth20.binance.linear.BTC/USDT:USDT", [OTHER], out)
    assert change.subscribe == ["btcusdt@depth20@100ms"]
    h.on_frames([usdm_depth("btcusdt@depth@100ms", 150, 160, 149)], out)
    h.on_snapshot("BTCUSDT", DepthSnapshot(lastUpdateId=155, bids=[], asks=[]), out)
    top = usdm_depth("btcusdt@depth20@100ms", 150, 170, 160, '[["7403.89","0.002"]]')
    h.on_frames([top, usdm_depth("btcusdt@depth@100ms", 161, 165, 160)], out)
    got = batches(out)
    assert [type(e) for e in got[SUB]] == [BookSnapshot, BookDelta]
    assert got[SUB][1].update_id == 165
    (book_top,) = got[OTHER]
    assert isinstance(book_top, BookTop) and book_top.symbol == "BTC/USDT:USDT"
    assert (book_top.depth, book_top.update_id) == (20, 170)
    assert book_top.bids == ((Decimal("7403.89"), Decimal("0.002")),)
    assert book_top.ts == datetime.fromtimestamp(1571889248.276, UTC)  # T, the engine time
    # Closed: a top frame still in flight would decode as a diff; the book must not take it.
    h.set_route("depth20.binance.linear.BTC/USDT:USDT", [], out)
    h.on_frames([usdm_depth("btcusdt@depth20@100ms", 166, 180, 170)], out)
    h.on_frames([usdm_depth("btcusdt@depth@100ms", 166, 168, 165)], out)
    (delta,) = batches(out)[SUB]
    assert isinstance(delta, BookDelta) and (delta.prev_update_id, delta.update_id) == (165, 168)
    assert h.resyncs == 0 and h.malformed == 0


# -- klines and tickers ----------------------------------------------------------------------------


def test_klines_reach_the_subscribers_of_their_interval_only(reference: Path) -> None:
    h = StreamHandler(Market.SPOT, [BNB])
    out = Outbox()
    assert h.set_route("kline_1m.binance.spot.BNB/BTC", [SUB], out).subscribe == ["bnbbtc@kline_1m"]
    h.set_route("kline_5m.binance.spot.BNB/BTC", [OTHER], out)
    one_minute = payload(reference, "binance_spot_ws_kline.json")
    assert one_minute["k"]["i"] == "1m"
    five = json.loads(json.dumps(one_minute))
    five["k"]["i"] = "5m"
    h.on_frames([combined("bnbbtc@kline_1m", one_minute), combined("bnbbtc@kline_5m", five)], out)
    got = batches(out)
    (k,) = got[SUB]
    assert isinstance(k, Kline) and k.symbol == "BNB/BTC" and k.interval == "1m"
    assert k.open == Decimal(one_minute["k"]["o"]) and k.close == Decimal(one_minute["k"]["c"])
    assert k.volume == Decimal(one_minute["k"]["v"]) and k.trades == one_minute["k"]["n"]
    assert k.closed is one_minute["k"]["x"]
    assert k.open_time == datetime.fromtimestamp(one_minute["k"]["t"] / 1000, UTC)
    assert [e.interval for e in got[OTHER]] == ["5m"]
    assert h.malformed == 0


def test_usdm_kline_ticker_and_mark_together(reference: Path) -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    for kind in ("kline_1h", "ticker", "mark"):
        h.set_route(f"{kind}.binance.linear.BTC/USDT:USDT", [SUB], out)
    kline = payload(reference, "binance_usdm_ws_kline.json")
    kline["k"]["i"] = "1h"
    h.on_frames(
        [
            combined("btcusdt@kline_1h", kline),
            combined("btcusdt@ticker", usdm_ticker()),
            mark(),
        ],
        out,
    )
    k, t, m = batches(out)[SUB]
    assert isinstance(k, Kline) and k.symbol == "BTC/USDT:USDT" and k.interval == "1h"
    assert isinstance(t, Ticker24h) and t.symbol == "BTC/USDT:USDT"
    assert t.last_price == Decimal("0.0025") and t.bid_price is None and t.trades == 18151
    assert isinstance(m, MarkPrice)


def test_spot_ticker_carries_best_bid_and_ask(reference: Path) -> None:
    h = StreamHandler(Market.SPOT, [BNB])
    out = Outbox()
    assert h.set_route("ticker.binance.spot.BNB/BTC", [SUB], out).subscribe == ["bnbbtc@ticker"]
    h.on_frames(
        [combined("bnbbtc@ticker", payload(reference, "binance_spot_ws_24hrTicker.json"))], out
    )
    (t,) = batches(out)[SUB]
    assert isinstance(t, Ticker24h) and t.symbol == "BNB/BTC"
    assert (t.bid_price, t.ask_price) == (Decimal("0.0024"), Decimal("0.0026"))
    assert t.price_change_percent == Decimal("250.00")
    assert t.ts == datetime.fromtimestamp(1672515782.136, UTC)


def test_states_of_a_candidate_socket_are_dropped_and_bad_numbers_counted(
    reference: Path,
) -> None:
    h = StreamHandler(Market.SPOT, [BNB])
    out = Outbox()
    h.set_route("ticker.binance.spot.BNB/BTC", [SUB], out)
    h.set_route("depth5.binance.spot.BNB/BTC", [SUB], out)
    ticker = payload(reference, "binance_spot_ws_24hrTicker.json")
    top = payload(reference, "binance_spot_ws_partialDepth.json")
    h.begin_candidate()
    h.on_frames(
        [combined("bnbbtc@ticker", ticker), combined("bnbbtc@depth5@100ms", top)],
        out,
        candidate=True,
    )
    assert batches(out) == {}
    bad = dict(ticker, c="not-a-number")
    bad_top = dict(top, bids=[["x", "1"]])
    h.on_frames([combined("bnbbtc@ticker", bad), combined("bnbbtc@depth5@100ms", bad_top)], out)
    assert batches(out) == {} and h.malformed == 2


def test_new_events_cross_an_event_batch() -> None:
    top = BookTop(
        exchange="binance",
        market="linear",
        symbol="BTC/USDT:USDT",
        depth=5,
        update_id=9,
        bids=((Decimal("1.5"), Decimal("2")),),
        asks=(),
        ts=datetime.fromtimestamp(1.5, UTC),
    )
    assert EventBatch.of([top]).events == (top,)


# -- aggTrades: lossless through REST --------------------------------------------------------------


def rest_agg(a: int) -> RestAggTrade:
    return RestAggTrade(a=a, p="0.001", q="1", f=a * 10, l=a * 10, T=1672515782136, m=False)


def test_tape_pages_forward_and_holds_again_at_a_gap_among_held_prints() -> None:
    tape = TradeTape()
    assert tape.offer(10, "e10") and tape.offer(11, "e11")
    assert not tape.offer(11, "dup") and not tape.offer(5, "old")
    assert not tape.offer(15, "e15")  # 12..14 missed: held
    assert not tape.offer(16, "e16") and not tape.offer(18, "e18")  # 17 missed as well
    # One page that stops short of the hold: delivered, the hold stays.
    fill, live = tape.backfill([(12, "r12")], complete=False)
    assert (fill, live, tape.last, tape.hold is not None) == (["r12"], [], 12, True)
    fill, live = tape.backfill([(13, "r13"), (14, "r14"), (15, "r15")], complete=True)
    assert fill == ["r13", "r14"] and live == ["e15", "e16"]  # the held copy of 15 wins
    assert tape.hold == [(18, "e18")] and tape.last == 16  # 17: another read
    fill, live = tape.backfill([(17, "r17"), (18, "r18")], complete=True)
    assert (fill, live, tape.hold, tape.lost) == (["r17"], ["e18"], None, 0)
    # A read that finds nothing still makes progress: the gap is counted lost.
    assert not tape.offer(21, "e21")
    assert tape.backfill([], complete=True) == ([], ["e21"])
    assert (tape.lost, tape.last, tape.hold) == (2, 21, None)
    assert tape.offer(22, "e22")


def test_a_jump_in_aggregate_ids_is_backfilled_exactly_once() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out)
    h.on_frames([agg(10, 100, 100), agg(13, 130, 130), agg(14, 140, 140), agg(14, 140, 140)], out)
    assert [e.agg_id for e in batches(out)[SUB]] == ["10"]
    (b,) = h.backfills()
    assert (b.kind, b.venue_symbol, b.path) == ("aggtrades", "BTCUSDT", "/api/v3/aggTrades")
    assert b.params == {"symbol": "BTCUSDT", "limit": str(BACKFILL_LIMIT), "fromId": "11"}
    # The REST answer as Binance writes it (binance_spot_rest_aggTrades.json's shape).
    body = [
        {"a": a, "p": "0.001", "q": "1", "f": a * 10, "l": a * 10, "T": 1672515782136, "m": True}
        for a in (11, 12, 13, 14)
    ]
    rows = b.decoder.decode(json.dumps(body).encode())
    assert h.on_backfill(b.kind, b.venue_symbol, rows, out) == 0
    got = batches(out)[SUB]
    assert all(isinstance(e, AggTrade) for e in got)
    assert [e.agg_id for e in got] == ["11", "12", "13", "14"]
    assert [e.first_trade_id for e in got] == [110, 120, 130, 140]
    assert h.backfills() == []
    h.on_frames([agg(14, 140, 140), agg(15, 150, 150)], out)
    assert [e.agg_id for e in batches(out)[SUB]] == ["15"]


def test_usdm_aggtrades_backfill_pages_through_a_long_gap() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    h.set_route("aggtrades.binance.linear.BTC/USDT:USDT", [SUB], out)
    h.on_frames([agg(1, 1, 1), agg(2500, 2500, 2500)], out)
    delivered = [int(e.agg_id) for e in batches(out)[SUB]]
    # binance.md §8.2: /fapi/v1/aggTrades weighs 20 (spot's /api/v3/aggTrades 4).
    spot_agg, usdm_agg = endpoints.SPOT["agg_trades"], endpoints.LINEAR["agg_trades"]
    assert (spot_agg.path, spot_agg.weight) == ("/api/v3/aggTrades", 4)
    assert (usdm_agg.path, usdm_agg.weight) == ("/fapi/v1/aggTrades", 20)
    pages = 0
    while (requests := h.backfills()) and pages < 10:  # bounded
        (b,) = requests
        assert b.path == "/fapi/v1/aggTrades"
        start = int(b.params["fromId"])
        rows = [rest_agg(a) for a in range(start, min(start + BACKFILL_LIMIT, 2501))]
        assert h.on_backfill(b.kind, b.venue_symbol, rows, out) == 0
        delivered += [int(e.agg_id) for e in batches(out)[SUB]]
        pages += 1
    assert pages == 3 and delivered == list(range(1, 2501))


def test_aggtrades_missed_by_a_socket_change_come_back() -> None:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out)
    h.on_frames([agg(1, 1, 1)], out)
    h.on_disconnect("dropped", out)
    h.on_frames([agg(4, 4, 4)], out)  # the new socket starts after 2 and 3
    (b,) = h.backfills()
    assert h.on_backfill(b.kind, b.venue_symbol, [rest_agg(2), rest_agg(3), rest_agg(4)], out) == 0
    assert [e.agg_id for e in batches(out)[SUB]] == ["1", "2", "3", "4"]
    # Closing the topic forgets the tape: a later subscription starts afresh.
    h.set_route("aggtrades.binance.spot.BTC/USDT", [], out)
    h.set_route("aggtrades.binance.spot.BTC/USDT", [SUB], out)
    h.on_frames([agg(9, 9, 9)], out)
    assert [e.agg_id for e in batches(out)[SUB]] == ["9"] and h.backfills() == []
