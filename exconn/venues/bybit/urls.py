"""Bybit V5 base URLs per environment and the channel table (topic kind -> V5 topic).

Sources: ../shared/reference/bybit.md §1 (URLs), §6 (WebSocket protocol, arg limits, heartbeat),
§6.1 (public topics and push rates), §7 (order book depths), §10 (kline intervals).

Unlike Binance, a Bybit public socket names no streams in its URL: one URL per category
(``/v5/public/spot``, ``/v5/public/linear``) and topics are added after connecting with
``{"op":"subscribe","args":[...]}`` (``streams.StreamHandler.control_frames``). ``combined_url``
and ``routed_base`` exist so a connection can drive either venue through the same calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from exconn.model.enums import Market

# (rest, public market-data websocket) per environment; "sim" URLs come from the simulator.
# Demo trading has no public streams of its own: it uses mainnet's (bybit.md §1).
_REST = {
    "live": "https://api.bybit.com",
    "testnet": "https://api-testnet.bybit.com",
    "demo": "https://api-demo.bybit.com",
}
_PUBLIC_WS = {
    "live": "wss://stream.bybit.com/v5/public",
    "testnet": "wss://stream-testnet.bybit.com/v5/public",
    "demo": "wss://stream.bybit.com/v5/public",
}
_PRIVATE_WS = {
    "live": "wss://stream.bybit.com/v5/private",
    "testnet": "wss://stream-testnet.bybit.com/v5/private",
    "demo": "wss://stream-demo.bybit.com/v5/private",
}
# Order entry over WebSocket is not offered on demo (bybit.md §9).
_TRADE_WS = {
    "live": "wss://stream.bybit.com/v5/trade",
    "testnet": "wss://stream-testnet.bybit.com/v5/trade",
}

# Client-driven heartbeat: without a ping (or data) the server cuts the socket after ~10 min;
# pybit and the docs ping every 20 s (bybit.md §6).
PING_INTERVAL_S = 20.0
PING_TIMEOUT_S = 10.0

# Arg limits per public connection (bybit.md §6): spot takes at most 10 args per subscribe
# request; linear has no per-request limit today, so exconn picks one that keeps each frame
# small. All args of one connection together may not exceed 21,000 characters.
MAX_ARGS_PER_REQUEST: dict[Market, int] = {Market.SPOT: 10, Market.LINEAR: 200}
MAX_ARGS_CHARS = 21_000
# Streams per socket such that even 42-character topics stay within MAX_ARGS_CHARS
# ("orderbook.1000.1000000BABYDOGEUSDT" is 34).
MAX_STREAMS_PER_CONNECTION = 500

# Book depth of the ``book`` topic. 200 levels push every 100 ms on spot and linear (the
# cadence of Binance's depth@100ms, bybit.md §6.1, changelog 2026-03-19), deep enough for most
# strategies at a fifth of the message rate of depth 50 (20 ms). Other valid depths are listed
# so a configured depth can be checked; 1 is snapshot-only and serves ``bbo``.
BOOK_DEPTH: dict[Market, int] = {Market.SPOT: 200, Market.LINEAR: 200}
BOOK_DEPTHS: dict[Market, tuple[int, ...]] = {
    Market.SPOT: (1, 50, 200, 1000),
    Market.LINEAR: (1, 50, 200, 1000),
}
BBO_DEPTH = 1

# exconn kline interval (Binance notation) -> Bybit's (bybit.md §10). Bybit has no 1s, 8h, 3d.
KLINE_INTERVALS: dict[str, str] = {
    "1m": "1",
    "3m": "3",
    "5m": "5",
    "15m": "15",
    "30m": "30",
    "1h": "60",
    "2h": "120",
    "4h": "240",
    "6h": "360",
    "12h": "720",
    "1d": "D",
    "1w": "W",
    "1M": "M",
}
EXCONN_INTERVAL: dict[str, str] = {v: k for k, v in KLINE_INTERVALS.items()}
KLINE_KIND_PREFIX = "kline_"

# Liveness: the longest silence each topic family shows while its market moves (seconds).
# Level-1 books re-push an unchanged snapshot every 3 s (bybit.md §7), so their silence is
# always a fault; deeper books push every 20/100/200 ms on change; tickers every 50 ms (spot)
# or 100 ms (linear) on change; klines every 1-60 s. Trades speak only when trades happen.
_BOOK_PUSH_S = {1: 3.0, 50: 0.02, 200: 0.1, 1000: 0.2}
TICKER_PUSH_S = 0.1
KLINE_PUSH_S = 60.0


def _env(table: dict[str, str], environment: str, what: str) -> str:
    try:
        return table[environment]
    except KeyError:
        raise ValueError(
            f"bybit: no built-in {what} URL for environment {environment!r}; "
            "set rest_url and ws_url explicitly"
        ) from None


def default_urls(market: Market, environment: str) -> tuple[str, str]:
    """(REST base, public WebSocket URL of the market's category)."""
    rest = _env(_REST, environment, "REST")
    return rest, f"{_env(_PUBLIC_WS, environment, 'public stream')}/{Market(market).value}"


def private_url(environment: str) -> str:
    return _env(_PRIVATE_WS, environment, "private stream")


def trade_url(environment: str) -> str:
    """The order-entry WebSocket (``/v5/trade``); not available on demo."""
    return _env(_TRADE_WS, environment, "order-entry")


def book_depth(market: Market) -> int:
    return BOOK_DEPTH[Market(market)]


def check_depth(market: Market, depth: int) -> int:
    if depth not in BOOK_DEPTHS[Market(market)]:
        raise ValueError(
            f"bybit {market}: no orderbook depth {depth}; valid: {BOOK_DEPTHS[Market(market)]}"
        )
    return depth


def orderbook_stream(venue_symbol: str, depth: int) -> str:
    return f"orderbook.{depth}.{venue_symbol}"


def trade_stream(venue_symbol: str) -> str:
    return f"publicTrade.{venue_symbol}"


def ticker_stream(venue_symbol: str) -> str:
    return f"tickers.{venue_symbol}"


def kline_stream(venue_symbol: str, interval: str) -> str:
    """``interval`` in exconn notation (``1m``, ``1h``, ``1d``)."""
    try:
        bybit = KLINE_INTERVALS[interval]
    except KeyError:
        raise ValueError(
            f"bybit has no kline interval {interval!r}; valid: {', '.join(KLINE_INTERVALS)}"
        ) from None
    return f"kline.{bybit}.{venue_symbol}"


def stream_for(
    kind: str, venue_symbol: str, market: Market | None = None, depth: int | None = None
) -> str:
    """The V5 topic that carries a topic kind: ``book`` -> ``orderbook.<depth>`` (default per
    category, ``BOOK_DEPTH``), ``trades`` -> ``publicTrade``, ``bbo`` -> ``orderbook.1``,
    ``ticker`` -> ``tickers``, ``kline_<interval>`` -> ``kline.<bybit interval>``, ``mark`` ->
    ``tickers`` (linear only: mark, index and funding ride on the linear ticker). ``ticker``
    and ``mark`` share one topic, so the connection subscribes it once for both."""
    if kind == "book":
        if depth is None:
            depth = BOOK_DEPTH[Market(market)] if market is not None else BOOK_DEPTH[Market.SPOT]
        return orderbook_stream(venue_symbol, depth)
    if kind == "trades":
        return trade_stream(venue_symbol)
    if kind == "bbo":
        return orderbook_stream(venue_symbol, BBO_DEPTH)
    if kind == "ticker":
        return ticker_stream(venue_symbol)
    if kind == "mark":
        if market is Market.SPOT:
            raise ValueError("bybit spot has no mark price (linear tickers carry it)")
        return ticker_stream(venue_symbol)
    if kind.startswith(KLINE_KIND_PREFIX):
        return kline_stream(venue_symbol, kind[len(KLINE_KIND_PREFIX) :])
    raise ValueError(f"bybit: no stream for topic kind {kind!r}")


def topic_symbol(stream: str) -> str:
    """``orderbook.200.BTCUSDT`` / ``publicTrade.BTCUSDT`` -> ``BTCUSDT`` (the symbol is the
    last dot-separated part of every public V5 topic exconn uses)."""
    return stream.rpartition(".")[2]


def combined_url(ws_base: str, streams: list[str]) -> str:
    """Bybit takes no streams in the URL: the socket URL is the base itself; the streams are
    subscribed after connecting (``StreamHandler.control_frames``)."""
    return ws_base.rstrip("/")


def max_streams(market: Market) -> int:
    return MAX_STREAMS_PER_CONNECTION


def max_args_per_request(market: Market) -> int:
    return MAX_ARGS_PER_REQUEST[Market(market)]


CONTROL_ACTIONS = frozenset({"subscribe", "unsubscribe"})
_encode = msgspec.json.Encoder().encode


def control_frames(
    action: str, streams: Sequence[str], first_id: int, market: Market = Market.SPOT
) -> list[str]:
    """The text frames asking for ``action`` (``subscribe`` / ``unsubscribe``) on
    ``streams``, at most ``max_args_per_request(market)`` args each, with request ids
    ``first_id``, ``first_id + 1``, ... as strings:
    ``{"op":"subscribe","args":[...],"req_id":"1"}``. The default market chunks as spot
    does (the stricter limit)."""
    if action not in CONTROL_ACTIONS:
        raise ValueError(f"bybit: control action must be subscribe or unsubscribe: {action!r}")
    step = max_args_per_request(market)
    return [
        _encode(
            {"op": action, "args": list(streams[i : i + step]), "req_id": str(first_id + n)}
        ).decode()
        for n, i in enumerate(range(0, len(streams), step))
    ]


def ping_frame(req_id: int | str | None = None) -> str:
    """The application heartbeat (``{"op":"ping"}``), due every ``PING_INTERVAL_S``."""
    if req_id is None:
        return '{"op":"ping"}'
    return _encode({"op": "ping", "req_id": str(req_id)}).decode()


def route_for(market: Market, kind: str) -> str:
    """Bybit serves every public topic of a category on one URL: no routes ("")."""
    return ""


def routed_base(ws_base: str, route: str) -> str:
    return ws_base.rstrip("/")


def expected_cadence(stream: str) -> float | None:
    """How often a stream speaks when the market moves (None: only on events, e.g. trades,
    so silence proves nothing)."""
    family, _, rest = stream.partition(".")
    if family == "orderbook":
        depth = rest.partition(".")[0]
        return _BOOK_PUSH_S.get(int(depth), 0.2) if depth.isdigit() else None
    if family == "tickers":
        return TICKER_PUSH_S
    if family == "kline":
        return KLINE_PUSH_S
    return None


def recent_trades_path(market: Market) -> str:
    return "/v5/market/recent-trade"


def recent_trades_limit(market: Market) -> int:
    """Most rows ``/v5/market/recent-trade`` returns: 60 spot, 1000 linear (bybit.md §4)."""
    return 60 if Market(market) is Market.SPOT else 1000
