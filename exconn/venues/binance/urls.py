"""Binance base URLs per environment, the market-data channel table and stream-name builders.

Sources: ../shared/reference/binance.md §1 (base URLs), §6 (spot streams) and §8.1 (USD-M
streams and routes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import msgspec

from exconn.model.enums import Market
from exconn.topics import KLINE_INTERVALS, KLINE_PREFIX

# (rest, market-data websocket) per environment; "sim" URLs come from the running simulator.
SPOT_URLS: dict[str, tuple[str, str]] = {
    "live": ("https://api.binance.com", "wss://stream.binance.com:9443"),
    "testnet": ("https://testnet.binance.vision", "wss://stream.testnet.binance.vision"),
    "demo": ("https://demo-api.binance.com", "wss://demo-stream.binance.com"),
}
LINEAR_URLS: dict[str, tuple[str, str]] = {
    "live": ("https://fapi.binance.com", "wss://fstream.binance.com/public"),
    "testnet": ("https://testnet.binancefuture.com", "wss://fstream.binancefuture.com/public"),
    "demo": ("https://demo-fapi.binance.com", "wss://demo-fstream.binance.com/public"),
}

DEPTH_SPEED = "100ms"
MARK_PRICE_SPEED = "1s"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_INCOMING_MESSAGES_PER_SECOND = 5
# Streams named in one SUBSCRIBE/UNSUBSCRIBE: a long list is split so that one request stays
# well inside what the server parses (an oversized one is refused with code 2).
STREAMS_PER_CONTROL_MESSAGE = 200

# USD-M routed URLs (binance.md §8.1): high-frequency book streams on /public, the rest on
# /market; an unrouted connection only gets /public streams.
PUBLIC_ROUTE = "public"
MARKET_ROUTE = "market"
MAX_STREAMS_PER_CONNECTION_USDM = 200


def default_urls(market: Market, environment: str) -> tuple[str, str]:
    table = SPOT_URLS if market is Market.SPOT else LINEAR_URLS
    try:
        return table[environment]
    except KeyError:
        raise ValueError(
            f"binance {market}: no built-in URLs for environment {environment!r}; "
            "set rest_url and ws_url explicitly"
        ) from None


# ============================================================================================
# Channel table: one row per topic kind. Adding a kind is adding a row (the stream handler
# keeps the wire type and parser of each row, streams.py).


@dataclass(frozen=True, slots=True)
class Channel:
    """How a topic kind is carried on Binance.

    ``cadence`` is the push interval binance.md promises whatever the market does (seconds);
    the liveness watchdog allows ``max(stream_silence_s, cadence)`` of silence on such a
    stream. None: the stream speaks only when something happens (a trade, a quote change),
    so its silence proves nothing and it is not watched.
    """

    kind: str
    suffix: str  # the stream name after "<lower-case symbol>@"
    route: str  # USD-M route serving it (spot has one base URL)
    cadence: float | None
    spot: bool = True
    linear: bool = True


# @depth@100ms pushes while the book changes (binance.md §6); a liquid book the engine holds
# changes far more often than the silence allowance, so the book stream stays watched.
DEPTH_SILENCE_S = 0.1
MARK_CADENCE_S = 1.0  # <s>@markPrice@1s
TICKER_CADENCE_S = 1.0  # <s>@ticker: 1000 ms
KLINE_1S_CADENCE_S = 1.0  # <s>@kline_1s: 1000 ms
KLINE_CADENCE_S = 2.0  # every other interval: 2000 ms. USD-M's cadence is not in binance.md;
# the spot figure bounds it (futures push klines at least as often), so silence beyond it is
# still a fault there.
PARTIAL_DEPTHS = (5, 10, 20)


def _channels() -> Iterator[Channel]:
    yield Channel("book", f"depth@{DEPTH_SPEED}", PUBLIC_ROUTE, DEPTH_SILENCE_S)
    yield Channel("trades", "trade", MARKET_ROUTE, None)
    yield Channel("bbo", "bookTicker", PUBLIC_ROUTE, None)
    yield Channel("aggtrades", "aggTrade", MARKET_ROUTE, None)
    yield Channel("mark", f"markPrice@{MARK_PRICE_SPEED}", MARKET_ROUTE, MARK_CADENCE_S, spot=False)
    yield Channel("ticker", "ticker", MARKET_ROUTE, TICKER_CADENCE_S)
    for n in PARTIAL_DEPTHS:
        # Unwatched: binance.md gives the partial book a speed (1000 / 100 ms) but does not
        # say it is pushed when the top levels did not change; watching it could replace the
        # socket of a quiet symbol over and over (each replacement spends a connection
        # attempt of the 300 per 5 min the IP has).
        yield Channel(f"depth{n}", f"depth{n}@{DEPTH_SPEED}", PUBLIC_ROUTE, None)
    for interval in KLINE_INTERVALS:
        one_second = interval == "1s"
        yield Channel(
            KLINE_PREFIX + interval,
            f"kline_{interval}",
            MARKET_ROUTE,
            KLINE_1S_CADENCE_S if one_second else KLINE_CADENCE_S,
            linear=not one_second,  # 1s klines are spot only (binance.md §4)
        )


CHANNELS: dict[str, Channel] = {c.kind: c for c in _channels()}
_CADENCE_BY_SUFFIX: dict[str, float | None] = {c.suffix: c.cadence for c in CHANNELS.values()}


def channel(kind: str, market: Market | None = None) -> Channel:
    """The channel of a topic kind; ValueError if Binance (or ``market``) has none."""
    found = CHANNELS.get(kind)
    if found is None:
        raise ValueError(f"binance: no stream for topic kind {kind!r}")
    if market is Market.SPOT and not found.spot:
        if kind == "mark":
            raise ValueError("binance spot has no mark price stream (USD-M only)")
        raise ValueError(f"binance spot has no {kind} stream (USD-M only)")
    if market is Market.LINEAR and not found.linear:
        raise ValueError(f"binance USD-M has no {kind} stream (spot only)")
    return found


def stream_for(kind: str, venue_symbol: str, market: Market | None = None) -> str:
    """The stream that carries a topic kind, e.g. ``book`` -> ``btcusdt@depth@100ms``,
    ``depth20`` -> ``btcusdt@depth20@100ms``, ``kline_1m`` -> ``btcusdt@kline_1m``. Pass
    ``market`` to have kinds it does not serve refused (``mark`` on spot, ``kline_1s`` on
    USD-M)."""
    return f"{venue_symbol.lower()}@{channel(kind, market).suffix}"


def combined_url(ws_base: str, streams: list[str]) -> str:
    return f"{ws_base.rstrip('/')}/stream?streams={'/'.join(streams)}"


def max_streams(market: Market) -> int:
    return MAX_STREAMS_PER_CONNECTION if market is Market.SPOT else MAX_STREAMS_PER_CONNECTION_USDM


def route_for(market: Market, kind: str) -> str:
    """The USD-M route a topic kind's stream is served on ("" for spot: one base URL)."""
    if market is Market.SPOT:
        return ""
    return channel(kind).route


def routed_base(ws_base: str, route: str) -> str:
    """The base URL of a route. A configured USD-M URL may already name a route
    (``wss://fstream.binance.com/public``): it is replaced, never doubled."""
    base = ws_base.rstrip("/")
    for known in (PUBLIC_ROUTE, MARKET_ROUTE):
        if base.endswith("/" + known):
            base = base[: -len(known) - 1]
    return f"{base}/{route}" if route else base


def expected_cadence(stream: str) -> float | None:
    """How often a stream speaks at the least (None: only on events, e.g. trades, so
    silence proves nothing). Streams exconn does not open are not watched."""
    return _CADENCE_BY_SUFFIX.get(stream.partition("@")[2])


# ============================================================================================
# Control frames (binance.md §6: the same JSON methods on spot and USD-M).

_encode = msgspec.json.Encoder().encode
CONTROL_ACTIONS = frozenset({"SUBSCRIBE", "UNSUBSCRIBE"})


def control_frames(action: str, streams: Sequence[str], first_id: int) -> list[str]:
    """The text frames asking for ``action`` (``SUBSCRIBE`` / ``UNSUBSCRIBE``) on
    ``streams``, at most ``STREAMS_PER_CONTROL_MESSAGE`` streams each, with request ids
    ``first_id``, ``first_id + 1``, ...: ``{"method":"SUBSCRIBE","params":[...],"id":1}``."""
    if action not in CONTROL_ACTIONS:
        raise ValueError(f"binance: unknown control action {action!r}")
    step = STREAMS_PER_CONTROL_MESSAGE
    return [
        _encode(
            {"method": action, "params": list(streams[i : i + step]), "id": first_id + n}
        ).decode()
        for n, i in enumerate(range(0, len(streams), step))
    ]
