"""Reference-counted venue streams, topic resolution and malformed-frame counting: the pieces
every venue's stream handler shares (``exconn.venues.subscriptions``, ``.malformed``)."""

from __future__ import annotations

import pytest
from loguru import logger

from exconn.errors import UnknownSymbol
from exconn.model.enums import Exchange, Market
from exconn.model.symbols import SymbolMap
from exconn.venues.malformed import LOG_EVERY, MalformedFrames
from exconn.venues.subscriptions import StreamRefs, resolve_topic
from tests.unit.stream_support import instrument

TICKERS = "tickers.BTCUSDT"
TICKER, MARK = "ticker.bybit.linear.BTC/USDT:USDT", "mark.bybit.linear.BTC/USDT:USDT"


def test_the_first_topic_opens_a_shared_stream_and_the_last_closes_it() -> None:
    refs = StreamRefs()
    assert refs.add(TICKERS, TICKER)
    assert not refs.add(TICKERS, MARK)
    assert not refs.add(TICKERS, MARK)  # the same topic routed again: still one user
    assert not refs.remove(TICKERS, TICKER)
    assert refs.streams == {TICKERS}
    assert refs.remove(TICKERS, MARK) and refs.streams == set()
    assert refs.add(TICKERS, MARK)  # opens again after closing


def test_closing_what_was_never_opened_changes_nothing() -> None:
    refs = StreamRefs()
    assert not refs.remove(TICKERS, TICKER)
    refs.add(TICKERS, TICKER)
    assert not refs.remove(TICKERS, MARK) and refs.streams == {TICKERS}


def test_topics_resolve_to_venue_symbols_of_their_own_venue_and_market() -> None:
    btc = instrument(Exchange.BINANCE, Market.SPOT, "BTC", "USDT", tick="0.01", step="0.001")
    symbols = SymbolMap.from_instruments([btc])
    topic, venue_symbol = resolve_topic("book.binance.spot.BTC/USDT", "binance", "spot", symbols)
    assert (topic.kind, venue_symbol) == ("book", "BTCUSDT")
    with pytest.raises(ValueError, match="not a binance spot topic"):
        resolve_topic("book.bybit.spot.BTC/USDT", "binance", "spot", symbols)
    with pytest.raises(ValueError, match="no instruments loaded"):
        resolve_topic("book.binance.spot.BTC/USDT", "binance", "spot", None)
    with pytest.raises(UnknownSymbol):
        resolve_topic("book.binance.spot.ETH/USDT", "binance", "spot", symbols)


def test_malformed_frames_are_all_counted_and_logged_sparingly() -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        frames = MalformedFrames(logger)
        for _ in range(LOG_EVERY + 1):
            frames.add(b"x" * 500)
    finally:
        logger.remove(sink)
    assert frames.count == LOG_EVERY + 1
    assert [line.split(" (")[0] for line in lines] == [
        "skipped malformed frame #1",
        f"skipped malformed frame #{LOG_EVERY + 1}",
    ]
    assert "(500 bytes)" in lines[0] and len(lines[0]) < 200  # the frame is shown cut short
