"""The Bybit stream handler, driven directly with V5-shaped frames (no sockets, no actors)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from exconn.book.local import LocalBook
from exconn.messages import (
    Bbo,
    BookDelta,
    BookReset,
    BookSnapshot,
    BookStale,
    Kline,
    MarkPrice,
    Ticker24h,
    Trade,
)
from exconn.model.enums import Exchange, Market, OrderSide
from exconn.outbox import Outbox
from exconn.topics import validate_subscription
from exconn.venues.bybit import urls
from exconn.venues.bybit.streams import RESUBSCRIBE_AFTER_DELTAS, StreamHandler, TradeTape
from exconn.venues.bybit.wire import RestTrade
from tests.unit.stream_support import OTHER, SUB, delivered, events, instrument

PERP = instrument(Exchange.BYBIT, Market.LINEAR, "BTC", "USDT", tick="0.10", step="0.001")
SPOT = instrument(
    Exchange.BYBIT, Market.SPOT, "BTC", "USDT", tick="0.01", step="0.000001", min_qty="0"
)
BOOK = "book.bybit.linear.BTC/USDT:USDT"
TRADES = "trades.bybit.linear.BTC/USDT:USDT"


def ob(kind: str, u: int, bids: Any = (), asks: Any = (), depth: int = 200) -> bytes:
    msg = {
        "topic": f"orderbook.{depth}.BTCUSDT",
        "type": kind,
        "ts": 1700000000000 + u,
        "data": {"s": "BTCUSDT", "b": list(bids), "a": list(asks), "u": u, "seq": 1000 + u},
        "cts": 1700000000000 + u,
    }
    return json.dumps(msg, separators=(",", ":")).encode()


def trades(*items: tuple[str, int, str]) -> bytes:
    data = [
        {"T": t, "s": "BTCUSDT", "S": side, "v": "0.001", "p": "30000.10", "i": i, "BT": False}
        for i, t, side in items
    ]
    msg = {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1, "data": data}
    return json.dumps(msg, separators=(",", ":")).encode()


def ticker(kind: str, **fields: str) -> bytes:
    msg = {
        "topic": "tickers.BTCUSDT",
        "type": kind,
        "data": {"symbol": "BTCUSDT", **fields},
        "cs": 1,
        "ts": 1760325052630,
    }
    return json.dumps(msg, separators=(",", ":")).encode()


FULL_TICKER = {
    "lastPrice": "66666.60",
    "prevPrice24h": "79206.20",
    "highPrice24h": "79266.30",
    "lowPrice24h": "65076.90",
    "turnover24h": "4936790807.6521",
    "volume24h": "73191.3870",
    "price24hPcnt": "-0.158315",
    "markPrice": "66666.60",
    "indexPrice": "66670.19",
    "fundingRate": "-0.005",
    "nextFundingTime": "1760342400000",
    "bid1Price": "66666.60",
    "bid1Size": "2",
    "ask1Price": "66666.70",
    "ask1Size": "3",
}


def live_book(handler: StreamHandler | None = None) -> tuple[StreamHandler, LocalBook]:
    """A linear handler with a book at u 10 that the subscriber's LocalBook holds."""
    h = handler or StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    h.set_route(BOOK, [SUB], out)
    h.on_frames([ob("snapshot", 10, [["100.00", "1.000"]], [["101.00", "2.000"]])], out)
    local = LocalBook()
    assert all(local.on_event(e) for e in events(out))
    assert local.update_id == 10
    return h, local


def feed(local: LocalBook, out: Outbox) -> list:
    """Apply the book events ``SUB`` received to its ``LocalBook``; returns all events."""
    evs = events(out)
    for e in evs:
        if isinstance(e, BookSnapshot | BookDelta | BookReset | BookStale):
            assert local.on_event(e), f"{e} does not fit the book at {local.update_id}"
    return evs


# -- routing ------------------------------------------------------------------------------------


def test_kinds_map_to_v5_topics() -> None:
    assert urls.stream_for("book", "BTCUSDT", Market.LINEAR) == "orderbook.200.BTCUSDT"
    assert urls.stream_for("book", "BTCUSDT", Market.SPOT, 50) == "orderbook.50.BTCUSDT"
    assert urls.stream_for("trades", "BTCUSDT") == "publicTrade.BTCUSDT"
    assert urls.stream_for("bbo", "BTCUSDT") == "orderbook.1.BTCUSDT"
    assert urls.stream_for("ticker", "BTCUSDT") == "tickers.BTCUSDT"
    assert urls.stream_for("mark", "BTCUSDT", Market.LINEAR) == "tickers.BTCUSDT"
    assert urls.stream_for("kline_1h", "BTCUSDT") == "kline.60.BTCUSDT"
    assert urls.stream_for("kline_1d", "BTCUSDT") == "kline.D.BTCUSDT"
    assert urls.stream_for("kline_1M", "BTCUSDT") == "kline.M.BTCUSDT"
    with pytest.raises(ValueError, match="mark price"):
        urls.stream_for("mark", "BTCUSDT", Market.SPOT)
    with pytest.raises(ValueError, match="kline interval"):
        urls.stream_for("kline_8h", "BTCUSDT")
    with pytest.raises(ValueError, match="aggtrades"):
        urls.stream_for("aggtrades", "BTCUSDT")
    for kind in ("book", "trades", "bbo", "ticker", "mark", "kline_1h"):
        validate_subscription(f"{kind}.bybit.linear.BTC/USDT:USDT")
    assert urls.default_urls(Market.SPOT, "live") == (
        "https://api.bybit.com",
        "wss://stream.bybit.com/v5/public/spot",
    )
    assert urls.default_urls(Market.LINEAR, "demo")[1] == "wss://stream.bybit.com/v5/public/linear"
    assert urls.private_url("demo") == "wss://stream-demo.bybit.com/v5/private"
    with pytest.raises(ValueError, match="sim"):
        urls.default_urls(Market.SPOT, "sim")
    assert urls.route_for(Market.LINEAR, "book") == ""
    assert urls.combined_url("wss://x/v5/public/linear/", ["a", "b"]) == "wss://x/v5/public/linear"
    assert urls.expected_cadence("orderbook.1.BTCUSDT") == 3.0
    assert urls.expected_cadence("orderbook.200.BTCUSDT") == 0.1
    assert urls.expected_cadence("tickers.BTCUSDT") == urls.TICKER_PUSH_S
    assert urls.expected_cadence("publicTrade.BTCUSDT") is None
    assert urls.PING_INTERVAL_S == 20.0


def test_routes_open_and_close_streams_with_shared_ticker_topic() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    assert h.set_route(BOOK, [SUB], out).subscribe == ["orderbook.200.BTCUSDT"]
    assert h.set_route("ticker.bybit.linear.BTC/USDT:USDT", [SUB], out).subscribe == [
        "tickers.BTCUSDT"
    ]
    # mark rides on the same topic: nothing more to subscribe, and it outlives the ticker.
    assert h.set_route("mark.bybit.linear.BTC/USDT:USDT", [OTHER], out).subscribe == []
    assert h.set_route("ticker.bybit.linear.BTC/USDT:USDT", [], out).unsubscribe == []
    assert h.set_route("mark.bybit.linear.BTC/USDT:USDT", [], out).unsubscribe == [
        "tickers.BTCUSDT"
    ]
    assert h.set_route("kline_5m.bybit.linear.BTC/USDT:USDT", [SUB], out).subscribe == [
        "kline.5.BTCUSDT"
    ]
    assert h.streams == {"orderbook.200.BTCUSDT", "kline.5.BTCUSDT"}
    assert h.set_route(BOOK, [], out).unsubscribe == ["orderbook.200.BTCUSDT"]
    with pytest.raises(ValueError, match="not a bybit linear topic"):
        h.set_route("book.binance.linear.BTC/USDT:USDT", [SUB], out)
    with pytest.raises(ValueError):
        h.set_route("depth5.bybit.linear.BTC/USDT:USDT", [SUB], out)
    with pytest.raises(ValueError, match="bbo"):
        StreamHandler(Market.LINEAR, [PERP], book_depth=1)
    with pytest.raises(ValueError, match="depth 500"):
        StreamHandler(Market.LINEAR, [PERP], book_depth=500)


# -- control frames -----------------------------------------------------------------------------


def test_control_frames_are_chunked_by_the_category_limit() -> None:
    spot = StreamHandler(Market.SPOT, [SPOT])
    streams = [f"publicTrade.S{i}USDT" for i in range(25)]
    frames = spot.control_frames("subscribe", streams, 7)
    decoded = [json.loads(f) for f in frames]
    assert [len(d["args"]) for d in decoded] == [10, 10, 5]  # spot: 10 args per request
    assert [d["req_id"] for d in decoded] == ["7", "8", "9"]
    assert all(d["op"] == "subscribe" for d in decoded)
    assert [a for d in decoded for a in d["args"]] == streams
    linear = StreamHandler(Market.LINEAR, [PERP])
    many = [f"orderbook.50.S{i}USDT" for i in range(250)]
    chunks = [json.loads(f) for f in linear.control_frames("unsubscribe", many, 1)]
    assert [len(c["args"]) for c in chunks] == [200, 50]
    assert chunks[0]["op"] == "unsubscribe"
    assert linear.control_frames("subscribe", [], 1) == []
    with pytest.raises(ValueError, match="subscribe or unsubscribe"):
        linear.control_frames("SUBSCRIBE", many, 1)
    assert json.loads(StreamHandler.ping_frame()) == {"op": "ping"}
    assert json.loads(StreamHandler.ping_frame(5)) == {"op": "ping", "req_id": "5"}


@pytest.mark.parametrize(
    "reply",
    [
        b'{"success":true,"ret_msg":"pong","conn_id":"0970e817","op":"ping"}',  # spot
        b'{"success":true,"ret_msg":"pong","conn_id":"465772b1","req_id":"","op":"ping"}',
        b'{"req_id":"test","op":"pong","args":["1675418560633"],"conn_id":"cfcb4"}',  # private
        b'{"args":["1672916271846"],"op":"pong"}',  # option
    ],
    ids=["spot", "linear", "private", "option"],
)
def test_pongs_are_recognised_not_malformed(reply: bytes) -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.on_frames([reply], Outbox(), now=42.0)
    assert (h.pongs, h.last_pong, h.malformed, h.failed_requests) == (1, 42.0, 0, 0)


def test_op_replies_are_classified() -> None:
    h = StreamHandler(Market.SPOT, [SPOT])
    frames = [
        b'{"success":true,"ret_msg":"subscribe","conn_id":"2324","req_id":"10001",'
        b'"op":"subscribe"}',
        b'{"success":false,"ret_msg":"Invalid topic: invalid.topic.BTCUSDT","conn_id":"c",'
        b'"op":"subscribe"}',
        b'{"success":false,"ret_msg":"error:already subscribed,topic:publicTrade.BTCUSDT",'
        b'"conn_id":"c","req_id":"3","op":"subscribe"}',
    ]
    h.on_frames(frames, Outbox())
    assert (h.malformed, h.failed_requests, h.pongs) == (0, 1, 0)


# -- malformed input ----------------------------------------------------------------------------


def test_malformed_frames_are_counted_and_skipped() -> None:
    h, local = live_book()
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    frames = [
        b'{"topic":"orderbook.200.BTCUSDT","type":"delta", bad json',
        b"\xff\xfe",
        b"[1,2,3]",
        b'{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1}',  # data missing
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1}]}',
        trades(("t1", 1700000000001, "sideways")),  # neither Buy nor Sell
        ob("delta", 11, [["100.50", "1.000"]]),
        b'{"topic":"liquidation.BTCUSDT","type":"snapshot","ts":1,"data":{}}',  # not ours
    ]
    h.on_frames(frames, out)
    assert h.malformed == 6
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookDelta]
    assert local.update_id == 11 and h.resyncs == 0


def test_unparseable_level_voids_the_book_and_resubscribes() -> None:
    h, _ = live_book()
    out = Outbox()
    h.on_frames([ob("delta", 11, [["1.0.0", "1"]])], out)
    assert [type(e) for e in events(out)] == [BookReset]
    assert h.malformed == 1 and h.resyncs == 1
    assert not h.feeds["BTCUSDT"].sync.live
    assert h.streams_to_resubscribe() == ["orderbook.200.BTCUSDT"]


def test_ticker_with_a_bad_number_is_malformed_not_fatal() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route("ticker.bybit.linear.BTC/USDT:USDT", [SUB], Outbox())
    out = Outbox()
    h.on_frames([ticker("snapshot", **{**FULL_TICKER, "lastPrice": "n/a"})], out)
    assert h.malformed == 1 and events(out) == []


# -- books --------------------------------------------------------------------------------------


def test_gap_resets_and_asks_for_a_resubscription_once() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_frames([ob("delta", 11), ob("delta", 13)], out)
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookDelta, BookReset]
    assert not local.valid and h.resyncs == 1
    assert h.streams_to_resubscribe() == ["orderbook.200.BTCUSDT"]
    # Deltas still in flight before the unsubscribe lands do not ask again...
    h.on_frames([ob("delta", 14 + i) for i in range(RESUBSCRIBE_AFTER_DELTAS - 2)], Outbox())
    assert h.streams_to_resubscribe() == []
    # ...unless so many come that the request must have been lost.
    h.on_frames([ob("delta", 500), ob("delta", 501)], Outbox())
    assert h.streams_to_resubscribe() == ["orderbook.200.BTCUSDT"]
    # The fresh snapshot brings the book back.
    out = Outbox()
    h.on_frames([ob("snapshot", 600, [["99.00", "1.000"]], [["102.00", "1.000"]])], out)
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookSnapshot] and local.update_id == 600
    assert h.streams_to_resubscribe() == []


def test_delta_before_any_snapshot_asks_for_one() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(BOOK, [SUB], Outbox())
    h.on_frames([ob("delta", 5)], Outbox())  # the subscription's snapshot is awaited
    assert h.streams_to_resubscribe() == []
    h.on_disconnect("lost", Outbox())
    h.on_frames([ob("snapshot", 6), ob("delta", 7)], Outbox())
    assert h.feeds["BTCUSDT"].sync.book.update_id == 7
    assert h.symbols_needing_snapshot() == []


def test_service_restart_u_equal_1_replaces_the_book() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_frames([ob("delta", 11, [["100.50", "3.000"]]), ob("delta", 1, [["50.00", "1.000"]])], out)
    h.on_frames([ob("delta", 2, asks=[["51.00", "1.000"]])], out)
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookDelta, BookSnapshot, BookDelta]
    assert local.update_id == 2
    assert local.top(5) == ([(Decimal("50.00"), Decimal("1.000"))], [(Decimal("51.00"), 1)])


def test_resent_snapshot_replaces_and_a_late_subscriber_gets_one() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_frames([ob("snapshot", 30, [["100.10", "1.000"]], [["100.20", "1.000"]])], out)
    assert [type(e) for e in feed(local, out)] == [BookSnapshot]
    out = Outbox()
    assert h.set_route(BOOK, [SUB, OTHER], out).subscribe == []
    late = events(out, OTHER)
    assert [type(e) for e in late] == [BookSnapshot] and late[0].update_id == 30
    assert events(out, SUB) == []


def test_book_prices_keep_their_exact_decimals() -> None:
    h, local = live_book()
    out = Outbox()
    # Bybit prints prices with the tick's decimals ("0.10": 2) and sizes with the step's;
    # shorter forms are read exactly too.
    h.on_frames([ob("delta", 11, [["100.05", "0.5"]], [["101.00", "0"]])], out)
    feed(local, out)
    assert local.best() == ((Decimal("100.05"), Decimal("0.5")), None)
    assert h.feeds["BTCUSDT"].sync.book.best_bid() == (Decimal("100.05"), Decimal("0.5"))


# -- bbo, ticker, kline -------------------------------------------------------------------------


def test_bbo_from_level_1_skips_the_3s_repeat() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    assert h.set_route("bbo.bybit.linear.BTC/USDT:USDT", [SUB], out).subscribe == [
        "orderbook.1.BTCUSDT"
    ]
    snap = ob("snapshot", 5, [["100.00", "1.000"]], [["100.10", "2.000"]], depth=1)
    moved = ob("snapshot", 6, [["100.00", "1.500"]], [["100.10", "2.000"]], depth=1)
    h.on_frames([snap, snap, moved], out)
    first, second = events(out)
    assert isinstance(first, Bbo) and first.update_id == 5 and first.ask_qty == Decimal("2")
    assert second.bid_qty == Decimal("1.5") and second.ts is not None


def test_linear_ticker_deltas_merge_into_full_state() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    out = Outbox()
    h.set_route("ticker.bybit.linear.BTC/USDT:USDT", [SUB], out)
    h.set_route("mark.bybit.linear.BTC/USDT:USDT", [OTHER], out)
    h.on_frames([ticker("snapshot", **FULL_TICKER)], out)
    h.on_frames([ticker("delta", lastPrice="66700.00")], out)  # ticker only
    h.on_frames([ticker("delta", markPrice="66690.00", openInterest="5")], out)  # mark only
    by_sub = delivered(out)
    got, marks = by_sub[SUB], by_sub[OTHER]
    assert [type(e) for e in got] == [Ticker24h, Ticker24h]
    assert [type(e) for e in marks] == [MarkPrice, MarkPrice]
    assert marks[1].mark_price == Decimal("66690.00")
    assert got[1].last_price == Decimal("66700.00") and got[1].high == Decimal("79266.30")
    assert got[1].bid_price == Decimal("66666.60")  # unchanged fields kept from the snapshot


def test_mark_follows_only_its_own_fields() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route("mark.bybit.linear.BTC/USDT:USDT", [SUB], Outbox())
    out = Outbox()
    h.on_frames(
        [
            ticker("snapshot", **FULL_TICKER),
            ticker("delta", lastPrice="66700.00"),
            ticker("delta", markPrice="66690.00"),
        ],
        out,
    )
    got = events(out)
    assert [type(e) for e in got] == [MarkPrice, MarkPrice]
    assert got[1].mark_price == Decimal("66690.00") and got[1].index_price == Decimal("66670.19")


def test_ticker_delta_before_snapshot_is_held_back() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route("ticker.bybit.linear.BTC/USDT:USDT", [SUB], Outbox())
    out = Outbox()
    h.on_frames([ticker("delta", lastPrice="1")], out)
    assert events(out) == [] and h.malformed == 0
    h.on_disconnect("lost", Outbox())
    h.on_frames([ticker("delta", lastPrice="1")], Outbox())  # awaited snapshot: no re-ask
    assert h.streams_to_resubscribe() == []


def test_spot_ticker_and_klines() -> None:
    h = StreamHandler(Market.SPOT, [SPOT])
    out = Outbox()
    h.set_route("ticker.bybit.spot.BTC/USDT", [SUB], out)
    h.set_route("kline_1m.bybit.spot.BTC/USDT", [SUB], out)
    spot_fields = {k: v for k, v in FULL_TICKER.items() if not k.startswith(("mark", "index"))}
    kline = {
        "topic": "kline.1.BTCUSDT",
        "type": "snapshot",
        "ts": 1672324988882,
        "data": [
            {
                "start": 1672324920000,
                "end": 1672324979999,
                "interval": "1",
                "open": "16649.5",
                "close": "16677",
                "high": "16677",
                "low": "16608",
                "volume": "2.081",
                "turnover": "34666.4005",
                "confirm": False,
                "timestamp": 1672324988882,
            }
        ],
    }
    seen: dict[str, float] = {}
    h.on_frames([ticker("snapshot", **spot_fields), json.dumps(kline).encode()], out, seen=seen)
    t, k = events(out)
    assert isinstance(t, Ticker24h) and t.last_price == Decimal("66666.60")
    assert isinstance(k, Kline) and k.interval == "1m" and not k.closed
    assert seen == {"tickers.BTCUSDT": 0.0, "kline.1.BTCUSDT": 0.0}


# -- trades -------------------------------------------------------------------------------------


def test_trades_are_delivered_once() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    t0 = 1700000000000
    h.on_frames([trades(("a", t0, "Buy"), ("b", t0, "Sell"))], out)
    h.on_frames([trades(("b", t0, "Sell"), ("c", t0 + 5, "Buy"))], out)  # b repeated
    h.on_frames([trades(("old", t0 - 5000, "Buy"))], out)  # far behind: a replay
    got = events(out)
    assert [(e.trade_id, e.side) for e in got] == [
        ("a", OrderSide.BUY),
        ("b", OrderSide.SELL),
        ("c", OrderSide.BUY),
    ]
    assert all(isinstance(e, Trade) and e.ts.tzinfo is not None for e in got)


def test_trade_tape_window_keeps_memory_bounded() -> None:
    tape = TradeTape(window_ms=100)
    for i in range(1000):
        assert tape.accept(f"id{i}", i * 10)
    assert len(tape._ids) <= 11
    assert not tape.accept("id999", 9990)  # within the window: known
    assert tape.accept("late", 9950)  # within the window, new: a reordered trade


# -- socket changes -----------------------------------------------------------------------------


def ack(handler: StreamHandler, streams: list[str], first_id: int) -> list[bytes]:
    """The subscribe frames the actor would send on the candidate and Bybit's acks to them."""
    frames = handler.control_frames("subscribe", streams, first_id)
    return [
        json.dumps(
            {"success": True, "ret_msg": "", "conn_id": "c", "req_id": json.loads(f)["req_id"]}
            | {"op": "subscribe"}
        ).encode()
        for f in frames
    ]


def test_candidate_rotation_is_invisible_to_subscribers() -> None:
    h, local = live_book()
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    t0 = 1700000000000
    h.on_frames([ob("delta", 11, [["100.10", "1.000"]]), trades(("a", t0, "Buy"))], out)
    before = feed(local, out)
    h.begin_candidate()
    assert not h.ready_to_promote()
    acks = ack(h, sorted(h.streams), 100)
    snap = ob("snapshot", 11, [["100.10", "1.000"], ["100.00", "1.000"]], [["101.00", "2.000"]])
    # The candidate is subscribed and has its snapshot; the live socket moves on meanwhile.
    h.on_frames([*acks, snap, trades(("a", t0, "Buy"), ("b", t0 + 1, "Sell"))], out, candidate=True)
    h.on_frames([ob("delta", 12, asks=[["101.00", "1.500"]]), trades(("b", t0 + 1, "Sell"))], out)
    assert not h.ready_to_promote()  # candidate book at 11, subscribers at 12
    h.on_frames([ob("delta", 12, asks=[["101.00", "1.500"]])], out, candidate=True)
    assert h.ready_to_promote()
    h.promote(out)
    h.on_frames([ob("delta", 13, [["100.20", "1.000"]]), trades(("c", t0 + 2, "Buy"))], out)
    evs = feed(local, out)
    assert local.current and local.update_id == 13
    kinds = [type(e).__name__ for e in evs]
    assert "BookReset" not in kinds and "BookSnapshot" not in kinds
    # Each trade once, though "a" and "b" came on both sockets.
    assert [e.trade_id for e in before + evs if isinstance(e, Trade)] == ["a", "b", "c"]
    assert local.best() == ((Decimal("100.20"), Decimal("1.000")), (Decimal("101.00"), 1.5))


def test_candidate_needs_acks_for_streams_without_snapshots() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    h.begin_candidate()
    assert not h.ready_to_promote()  # closing the old socket now could lose trades
    h.on_frames(ack(h, sorted(h.streams), 1), Outbox(), candidate=True)
    assert h.ready_to_promote()


def test_forced_promotion_of_a_lagging_candidate_catches_up_later() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_frames([ob("delta", 11), ob("delta", 12, [["100.50", "1.000"]])], out)
    feed(local, out)
    h.begin_candidate()
    snap = ob("snapshot", 11, [["100.00", "1.000"]], [["101.00", "2.000"]])
    h.on_frames([snap], out, candidate=True)
    h.promote(out)  # the actor's deadline: the candidate's book is behind the held one
    assert events(out) == [] and h.held_symbols() == ["BTCUSDT"]
    h.on_frames([ob("delta", 12, [["100.50", "1.000"]])], out)
    h.on_frames([ob("delta", 13, [["100.60", "1.000"]])], out)
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookDelta, BookDelta]
    assert (evs[0].prev_update_id, evs[0].update_id) == (12, 12)
    assert local.update_id == 13 and h.held_symbols() == []


def test_candidate_gap_is_resubscribed_after_promotion() -> None:
    h, _ = live_book()
    h.begin_candidate()
    h.on_frames([ob("snapshot", 10), ob("delta", 12)], Outbox(), candidate=True)
    assert not h.ready_to_promote()
    assert h.streams_to_resubscribe() == []  # not while the candidate is not the live socket
    h.promote(Outbox())
    assert h.streams_to_resubscribe() == ["orderbook.200.BTCUSDT"]
    assert h.held_symbols() == ["BTCUSDT"]


def test_reconnect_continues_the_held_book() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_disconnect("socket closed", out)
    assert [type(e) for e in feed(local, out)] == [BookStale]
    assert h.held_symbols() == ["BTCUSDT"] and not local.current
    h.on_frames([ob("snapshot", 15, [["100.00", "1.000"]], [["100.90", "1.000"]])], out)
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookDelta]  # a catch-up delta, not a reset
    assert (evs[0].prev_update_id, evs[0].update_id) == (10, 15)
    assert local.current and local.best() == (
        (Decimal("100.00"), Decimal("1.000")),
        (Decimal("100.90"), Decimal("1.000")),
    )
    assert h.held_symbols() == []


def test_reconnect_after_a_restart_replaces_the_held_book() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_disconnect("socket closed", out)
    h.on_frames([ob("snapshot", 3, [["90.00", "1.000"]], [["91.00", "1.000"]])], out)
    evs = feed(local, out)
    assert [type(e) for e in evs] == [BookStale, BookSnapshot] and local.update_id == 3


def test_held_book_expires_with_a_reset() -> None:
    h, local = live_book()
    out = Outbox()
    h.on_disconnect("socket closed", out, announce=False)
    h.expire_held("no data after a socket change", out)
    assert [type(e) for e in feed(local, out)] == [BookReset] and not local.valid
    assert h.resyncs == 1


def test_trades_missed_by_a_lost_socket_come_from_rest() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    t0 = 1700000000000
    h.on_frames([trades(("a", t0, "Buy"))], out)
    h.on_disconnect("lost", out)
    h.on_frames([trades(("d", t0 + 30, "Buy"))], out)  # the new socket: held
    assert [e.trade_id for e in events(out)] == ["a"]
    assert h.symbols_needing_trades() == ["BTCUSDT"]
    (backfill,) = h.backfills()
    assert (backfill.kind, backfill.path) == ("trades", "/v5/market/recent-trade")
    assert backfill.params == {"category": "linear", "symbol": "BTCUSDT", "limit": "1000"}

    def row(i: str, t: int) -> RestTrade:
        return RestTrade(
            execId=i, symbol="BTCUSDT", price="30000", size="1", side="Sell", time=str(t)
        )

    rows = [row("d", t0 + 30), row("c", t0 + 20), row("b", t0 + 10), row("a", t0)]  # newest 1st
    body = json.dumps(
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {"category": "linear", "list": [msgspec.to_builtins(r) for r in rows]},
            "time": t0 + 40,
        }
    ).encode()
    lost = h.on_backfill("trades", "BTCUSDT", backfill.decoder.decode(body), out)
    assert lost == 0 and h.symbols_needing_trades() == []
    assert [e.trade_id for e in events(out)] == ["b", "c", "d"]
    # A REST window that starts after the last delivered trade may hide some.
    h.on_disconnect("lost", Outbox())
    h.on_frames([trades(("z", t0 + 9000, "Buy"))], Outbox())
    assert h.on_rest_trades("BTCUSDT", [row("y", t0 + 8000)], Outbox()) == 1
    assert h.on_rest_trades("BTCUSDT", [row("x", t0 + 8001)], Outbox()) == 0  # resolved


def test_rotation_overlap_needs_no_backfill_even_after_a_disconnect() -> None:
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    t0 = 1700000000000
    h.on_frames([trades(("a", t0, "Buy"))], out)
    h.begin_candidate()
    h.on_frames([trades(("a", t0, "Buy"), ("b", t0 + 1, "Buy"))], out, candidate=True)
    h.on_disconnect("lost", out, announce=False)  # the live one dies during the overlap
    h.promote(out)
    assert [e.trade_id for e in events(out)] == ["a", "b"]
    assert h.symbols_needing_trades() == []


def rest_trade(i: str, t: int) -> RestTrade:
    return RestTrade(execId=i, symbol="BTCUSDT", price="30000", size="1", side="Sell", time=str(t))


def test_a_candidate_with_no_trade_in_common_is_backfilled() -> None:
    # The live socket stalled after "a"; the candidate subscribed after "b" happened.
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    t0 = 1700000000000
    h.on_frames([trades(("a", t0, "Buy"))], out)
    h.begin_candidate()
    h.on_frames(ack(h, ["publicTrade.BTCUSDT"], 5), out, candidate=True)
    h.on_frames([trades(("c", t0 + 20, "Buy"))], out, candidate=True)
    h.promote(out)
    assert [e.trade_id for e in events(out)] == ["a"]
    assert h.symbols_needing_trades() == ["BTCUSDT"], "no overlap: read REST at once"
    rows = [rest_trade("c", t0 + 20), rest_trade("b", t0 + 10), rest_trade("a", t0)]
    assert h.on_rest_trades("BTCUSDT", rows, out) == 0
    assert [e.trade_id for e in events(out)] == ["b", "c"]


def test_the_gap_is_read_once_the_new_socket_carries_trades() -> None:
    # No trade needs to come first: a quiet market would otherwise delay the missed ones.
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    t0 = 1700000000000
    h.on_frames([trades(("a", t0, "Buy"))], Outbox())
    h.on_disconnect("lost", Outbox())
    assert h.symbols_needing_trades() == []
    h.on_frames(ack(h, ["publicTrade.BTCUSDT"], 9), Outbox())
    assert h.symbols_needing_trades() == ["BTCUSDT"]


def test_rest_rows_before_the_last_delivered_trade_stay_undelivered() -> None:
    # "a" happened just before the subscription: within the de-duplication window, never
    # delivered, and older than "b" in the venue's order, so it must not come after "b".
    h = StreamHandler(Market.LINEAR, [PERP])
    h.set_route(TRADES, [SUB], Outbox())
    out = Outbox()
    t0 = 1700000000000
    h.on_frames([trades(("b", t0 + 10, "Buy"))], out)
    h.on_disconnect("lost", out)
    h.on_frames([trades(("d", t0 + 30, "Buy"))], out)
    rows = [rest_trade(i, t0 + 10 * n) for n, i in enumerate("abcd")][::-1]  # newest first
    assert h.on_rest_trades("BTCUSDT", rows, out) == 0
    assert [e.trade_id for e in events(out)] == ["b", "c", "d"]
