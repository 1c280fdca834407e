"""Normalized symbols and the metadata-driven venue mapping."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn.errors import InvalidSymbol, UnknownSymbol
from exconn.model.enums import Exchange, Market
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap, make_symbol, parse_symbol


def inst(
    symbol: str,
    venue: str,
    exchange: Exchange = Exchange.BINANCE,
    market: Market = Market.SPOT,
) -> Instrument:
    base, quote, settle = parse_symbol(symbol)
    return Instrument(
        exchange=exchange,
        market=market,
        symbol=symbol,
        venue_symbol=venue,
        base=base,
        quote=quote,
        settle=settle,
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.001"),
        min_qty=Decimal("0.001"),
    )


def test_make_symbol() -> None:
    assert make_symbol("btc", "usdt") == "BTC/USDT"
    assert make_symbol("BTC", "USDT", "usdt") == "BTC/USDT:USDT"
    assert make_symbol("1000SHIB", "USDT", "USDT") == "1000SHIB/USDT:USDT"


@pytest.mark.parametrize(
    ("base", "quote", "settle"),
    [
        ("", "USDT", None),
        ("BTC", "", None),
        ("BTC", "USDT", ""),
        ("BT/C", "USDT", None),
        ("BTC", "US:DT", None),
        ("BTC ", "USDT", None),
        ("BTC", "USDT", "US-DT"),
    ],
)
def test_make_symbol_rejects_bad_parts(base: str, quote: str, settle: str | None) -> None:
    with pytest.raises(InvalidSymbol):
        make_symbol(base, quote, settle)


def test_parse_symbol() -> None:
    assert parse_symbol("BTC/USDT") == ("BTC", "USDT", None)
    assert parse_symbol("BTC/USDT:USDT") == ("BTC", "USDT", "USDT")


@pytest.mark.parametrize(
    "bad",
    [
        "BTCUSDT",
        "BTC/",
        "/USDT",
        "BTC/USDT:",
        "btc/usdt",
        "BTC/USDT:USDT:X",
        "BTC//USDT",
        "BTC/USDT/ETH",
        " BTC/USDT",
        "",
        "BTC-USDT",
    ],
)
def test_parse_symbol_rejects_malformed(bad: str) -> None:
    with pytest.raises(InvalidSymbol) as info:
        parse_symbol(bad)
    assert isinstance(info.value, ValueError)


asset = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=10)


@given(asset, asset, st.none() | asset)
def test_make_and_parse_round_trip(base: str, quote: str, settle: str | None) -> None:
    assert parse_symbol(make_symbol(base, quote, settle)) == (base, quote, settle)


def test_symbol_map_both_ways() -> None:
    m = SymbolMap.from_instruments([inst("BTC/USDT", "BTCUSDT"), inst("ETH/BTC", "ETHBTC")])
    assert m.to_venue("BTC/USDT") == "BTCUSDT"
    assert m.from_venue("ETHBTC") == "ETH/BTC"
    assert "BTC/USDT" in m and "BTCUSDT" not in m
    assert m.symbols() == ["BTC/USDT", "ETH/BTC"]
    assert len(m) == 2
    assert (m.exchange, m.market) == (Exchange.BINANCE, Market.SPOT)


def test_symbol_map_uses_metadata_not_string_guessing() -> None:
    # Bybit names its USDC perpetual BTCPERP: nothing in the string says USDC.
    m = SymbolMap(Exchange.BYBIT, Market.LINEAR)
    m.add("BTC/USDC:USDC", "BTCPERP")
    assert m.from_venue("BTCPERP") == "BTC/USDC:USDC"
    assert m.to_venue("BTC/USDC:USDC") == "BTCPERP"


def test_unknown_symbol_names_exchange_market_and_symbol() -> None:
    m = SymbolMap.from_instruments([inst("BTC/USDT", "BTCUSDT")])
    with pytest.raises(UnknownSymbol) as info:
        m.to_venue("ETH/USDT")
    assert str(info.value).startswith("binance spot: unknown symbol 'ETH/USDT'")
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownSymbol, match="unknown venue symbol 'btcusdt'"):
        m.from_venue("btcusdt")


def test_add_is_idempotent_and_refuses_conflicts() -> None:
    m = SymbolMap(Exchange.BINANCE, Market.SPOT)
    m.add("BTC/USDT", "BTCUSDT")
    m.add("BTC/USDT", "BTCUSDT")
    assert len(m) == 1
    with pytest.raises(ValueError, match="already"):
        m.add("BTC/USDT", "XBTUSDT")
    with pytest.raises(ValueError, match="already"):
        m.add("XBT/USDT", "BTCUSDT")
    # A refused add leaves the map as it was.
    assert m.to_venue("BTC/USDT") == "BTCUSDT"
    assert "XBT/USDT" not in m
    with pytest.raises(InvalidSymbol):
        m.add("btcusdt", "BTCUSDT")
    with pytest.raises(ValueError):
        m.add("ETH/USDT", "")


def test_from_instruments_refuses_mixed_venues_and_empty() -> None:
    with pytest.raises(ValueError, match="bybit"):
        SymbolMap.from_instruments(
            [inst("BTC/USDT", "BTCUSDT"), inst("ETH/USDT", "ETHUSDT", Exchange.BYBIT)]
        )
    with pytest.raises(ValueError):
        SymbolMap.from_instruments(
            [inst("BTC/USDT", "BTCUSDT"), inst("ETH/USDT:USDT", "ETHUSDT", market=Market.LINEAR)]
        )
    with pytest.raises(ValueError):
        SymbolMap.from_instruments([])
    # Two instruments with the same normalized name (e.g. a perpetual and a dated future) must
    # not silently overwrite each other.
    with pytest.raises(ValueError):
        SymbolMap.from_instruments(
            [
                inst("BTC/USDT:USDT", "BTCUSDT", market=Market.LINEAR),
                inst("BTC/USDT:USDT", "BTCUSDT_250328", market=Market.LINEAR),
            ]
        )
