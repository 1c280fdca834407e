"""The Binance stream handler, driven directly (no sockets, no actors)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exconn.book.sync import SyncResult
from exconn.messages import BookDelta, BookReset, BookSnapshot, Trade
from exconn.model.enums import Exchange, Market, OrderSide
from exconn.outbox import Outbox
from exconn.venues.binance.streams import StreamHandler
from exconn.venues.binance.wire import DepthSnapshot
from tests.unit.stream_support import SUB, events, instrument

BTC = instrument(Exchange.BINANCE, Market.SPOT, "BTC", "USDT", tick="0.01", step="0.00001")


def depth(first: int, last: int, bids: str = "[]", asks: str = "[]") -> bytes:
    return (
        '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,'
        f'"s":"BTCUSDT","U":{first},"u":{last},"b":{bids},"a":{asks}}}}}'
    ).encode()


def trade(tid: int, maker_buyer: bool) -> bytes:
    m = "true" if maker_buyer else "false"
    return (
        '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":'
        f'{tid},"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":{m},"M":true}}}}'
    ).encode()


@pytest.fixture
def handler() -> StreamHandler:
    h = StreamHandler(Market.SPOT, [BTC])
    out = Outbox()
    change = h.set_route("book.binance.spot.BTC/USDT", [SUB], out)
    assert change.subscribe == ["btcusdt@depth@100ms"]
    h.set_route("trades.binance.spot.BTC/USDT", [SUB], out)
    return h


def test_sync_then_deltas_then_trades(handler: StreamHandler) -> None:
    out = Outbox()
    handler.on_frames([depth(99, 101, bids='[["100.00","1.0"]]')], out)
    assert handler.symbols_needing_snapshot() == ["BTCUSDT"]
    snap = DepthSnapshot(lastUpdateId=100, bids=[("99.00", "2")], asks=[("101.00", "3")])
    assert handler.on_snapshot("BTCUSDT", snap, out) is SyncResult.SYNCED
    handler.on_frames([depth(102, 102, asks='[["101.00","0"]]'), trade(7, True)], out)
    snapshot, delta, tr = events(out)
    assert isinstance(snapshot, BookSnapshot) and snapshot.update_id == 101
    assert snapshot.bids == ((Decimal("100.00"), Decimal("1.0")), (Decimal("99"), Decimal("2")))
    assert isinstance(delta, BookDelta)
    assert (delta.prev_update_id, delta.update_id) == (101, 102)
    assert delta.asks == ((Decimal("101.00"), Decimal("0")),)
    assert isinstance(tr, Trade) and tr.side is OrderSide.SELL and tr.trade_id == "7"
    assert tr.ts.tzinfo is not None


def test_malformed_frames_are_counted_and_skipped(handler: StreamHandler) -> None:
    out = Outbox()
    handler.on_frames([depth(1, 1)], out)
    handler.on_snapshot("BTCUSDT", DepthSnapshot(lastUpdateId=1, bids=[], asks=[]), out)
    frames = [
        b'{"stream": "btcusdt@depth@100ms", "data": {bad json',
        b"\xff\xfe",
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"}}',  # fields missing
        depth(2, 2, bids='[["1.00","1"]]'),
        b'{"result":null,"id":1}',  # a control ack is not malformed
    ]
    handler.on_frames(frames, out)
    assert handler.malformed == 3
    assert [type(e) for e in events(out)] == [BookSnapshot, BookDelta]


def test_unparseable_level_voids_the_book(handler: StreamHandler) -> None:
    out = Outbox()
    handler.on_frames([depth(1, 1)], out)
    handler.on_snapshot("BTCUSDT", DepthSnapshot(lastUpdateId=1, bids=[], asks=[]), out)
    handler.on_frames([depth(2, 2, bids='[["1.0.0","1"]]')], out)
    assert isinstance(events(out)[-1], BookReset)
    assert handler.malformed == 1 and handler.resyncs == 1
    assert not handler.feeds["BTCUSDT"].sync.live


def test_gap_emits_reset_and_asks_for_a_snapshot(handler: StreamHandler) -> None:
    out = Outbox()
    handler.on_frames([depth(1, 1)], out)
    handler.on_snapshot("BTCUSDT", DepthSnapshot(lastUpdateId=1, bids=[], asks=[]), out)
    handler.on_frames([depth(5, 6)], out)
    assert isinstance(events(out)[-1], BookReset)
    assert handler.symbols_needing_snapshot() == ["BTCUSDT"]


def test_new_subscriber_of_a_live_book_gets_a_snapshot(handler: StreamHandler) -> None:
    out = Outbox()
    handler.on_frames([depth(1, 1)], out)
    handler.on_snapshot("BTCUSDT", DepthSnapshot(lastUpdateId=1, bids=[("1", "1")], asks=[]), out)
    out2 = Outbox()
    change = handler.set_route("book.binance.spot.BTC/USDT", [SUB, "late"], out2)
    assert change.subscribe == []  # stream already open
    assert out2.events_for(SUB) == []
    assert [type(e) for e in events(out2, "late")] == [BookSnapshot]


def test_last_subscriber_leaving_closes_the_stream(handler: StreamHandler) -> None:
    change = handler.set_route("book.binance.spot.BTC/USDT", [], Outbox())
    assert change.unsubscribe == ["btcusdt@depth@100ms"]
    assert "btcusdt@depth@100ms" not in handler.streams


def test_exchange_info_maps_symbols_from_assets_not_strings(reference) -> None:
    from exconn.model.symbols import SymbolMap
    from exconn.venues.binance.parse import parse_exchange_info
    from exconn.venues.binance.wire import exchange_info_decoder

    raw = (reference / "payloads" / "binance_spot_rest_exchangeInfo.json").read_bytes()
    instruments = parse_exchange_info(exchange_info_decoder.decode(raw), Market.SPOT)
    assert instruments
    mapping = SymbolMap.from_instruments(instruments)
    for inst in instruments:
        assert inst.symbol == f"{inst.base}/{inst.quote}"
        assert mapping.from_venue(inst.venue_symbol) == inst.symbol
        assert mapping.to_venue(inst.symbol) == inst.venue_symbol
        assert inst.tick_size > 0 and inst.step_size > 0


def test_usdm_exchange_info_keeps_perpetuals_only(corpus) -> None:
    from exconn.venues.binance.parse import parse_exchange_info
    from exconn.venues.binance.wire import exchange_info_decoder

    path = (
        corpus
        / "binance/usdm/rest/nautilus-py__http_responses_http_futures_market_exchange_info.json"
    )
    if not path.exists():
        pytest.skip(f"{path.name} not in the corpus")
    instruments = parse_exchange_info(
        exchange_info_decoder.decode(path.read_bytes()), Market.LINEAR
    )
    assert instruments and all(i.symbol.endswith(f":{i.settle}") for i in instruments)
    assert len({i.symbol for i in instruments}) == len(instruments)
