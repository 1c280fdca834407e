"""Binance base URLs per environment and stream-name builders.

Sources: ../shared/reference/binance.md §1 (base URLs) and §6 (stream names).
"""

from __future__ import annotations

from exconn.model.enums import Market

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

# Stream kinds exconn subscribes to for each topic kind.
DEPTH_SPEED = "100ms"
MARK_PRICE_SPEED = "1s"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_INCOMING_MESSAGES_PER_SECOND = 5


def default_urls(market: Market, environment: str) -> tuple[str, str]:
    table = SPOT_URLS if market is Market.SPOT else LINEAR_URLS
    try:
        return table[environment]
    except KeyError:
        raise ValueError(
            f"binance {market}: no built-in URLs for environment {environment!r}; "
            "set rest_url and ws_url explicitly"
        ) from None


def depth_stream(venue_symbol: str) -> str:
    return f"{venue_symbol.lower()}@depth@{DEPTH_SPEED}"


def trade_stream(venue_symbol: str) -> str:
    return f"{venue_symbol.lower()}@trade"


def book_ticker_stream(venue_symbol: str) -> str:
    return f"{venue_symbol.lower()}@bookTicker"


def agg_trade_stream(venue_symbol: str) -> str:
    return f"{venue_symbol.lower()}@aggTrade"


def mark_price_stream(venue_symbol: str) -> str:
    return f"{venue_symbol.lower()}@markPrice@{MARK_PRICE_SPEED}"


def stream_for(kind: str, venue_symbol: str, market: Market | None = None) -> str:
    """The stream that carries a topic kind: ``book`` -> diff depth, ``trades`` -> trade,
    ``bbo`` -> bookTicker, ``aggtrades`` -> aggTrade, ``mark`` -> markPrice@1s (USD-M only:
    pass ``market`` to have spot refused)."""
    if kind == "book":
        return depth_stream(venue_symbol)
    if kind == "trades":
        return trade_stream(venue_symbol)
    if kind == "bbo":
        return book_ticker_stream(venue_symbol)
    if kind == "aggtrades":
        return agg_trade_stream(venue_symbol)
    if kind == "mark":
        if market is Market.SPOT:
            raise ValueError("binance spot has no mark price stream (USD-M only)")
        return mark_price_stream(venue_symbol)
    raise ValueError(f"binance: no stream for topic kind {kind!r}")


def combined_url(ws_base: str, streams: list[str]) -> str:
    return f"{ws_base.rstrip('/')}/stream?streams={'/'.join(streams)}"


# USD-M routed URLs (binance.md §8.1): high-frequency book streams on /public, the rest on
# /market; an unrouted connection only gets /public streams.
PUBLIC_ROUTE = "public"
MARKET_ROUTE = "market"
MAX_STREAMS_PER_CONNECTION_USDM = 200
DEPTH_SILENCE_S = 0.1  # @depth@100ms: one event per 100 ms while the book changes


def max_streams(market: Market) -> int:
    return MAX_STREAMS_PER_CONNECTION if market is Market.SPOT else MAX_STREAMS_PER_CONNECTION_USDM


def route_for(market: Market, kind: str) -> str:
    """The USD-M route a topic kind's stream is served on ("" for spot: one base URL)."""
    if market is Market.SPOT:
        return ""
    return PUBLIC_ROUTE if kind in ("book", "bbo") else MARKET_ROUTE


def routed_base(ws_base: str, route: str) -> str:
    """The base URL of a route. A configured USD-M URL may already name a route
    (``wss://fstream.binance.com/public``): it is replaced, never doubled."""
    base = ws_base.rstrip("/")
    for known in (PUBLIC_ROUTE, MARKET_ROUTE):
        if base.endswith("/" + known):
            base = base[: -len(known) - 1]
    return f"{base}/{route}" if route else base


def expected_cadence(stream: str) -> float | None:
    """How often a stream speaks when the market moves (None: only on events, e.g. trades,
    so silence proves nothing)."""
    if "@depth" in stream:
        return DEPTH_SILENCE_S
    return None


def recent_trades_path(market: Market) -> str:
    return "/api/v3/trades" if market is Market.SPOT else "/fapi/v1/trades"
