"""Binance REST endpoints as data: method, path, request weight (binance.md §3, §4, §8.2),
and the venue's rules the REST transport applies (costs, usage headers, signing, codes).

Pure: the transport (``exconn.transport.rest``) takes a ``RestVenue`` and never needs to know
Binance by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from exconn import errors as exconn_errors
from exconn.errors import ConfigError
from exconn.model.enums import Market
from exconn.transport.ratelimit import (
    Cost,
    Limit,
    StopRule,
    Usage,
    limit_from_binance,
    prefixed_usage,
    retry_after_header,
)
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.signing import encode_params, rest_payload
from exconn.venues.binance.wire import error_decoder
from exconn.venues.keys import Credentials


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    weight: int
    signed: bool = False
    orders: int = 0  # unfilled-order count it spends (ORDERS limiter)


SPOT = {
    "ping": Endpoint("GET", "/api/v3/ping", 1),
    "time": Endpoint("GET", "/api/v3/time", 1),
    "exchange_info": Endpoint("GET", "/api/v3/exchangeInfo", 20),
    "depth": Endpoint("GET", "/api/v3/depth", 5),  # weight by limit: depth_weight()
    "trades": Endpoint("GET", "/api/v3/trades", 25),
    "historical_trades": Endpoint("GET", "/api/v3/historicalTrades", 25),
    "agg_trades": Endpoint("GET", "/api/v3/aggTrades", 4),
    "klines": Endpoint("GET", "/api/v3/klines", 2),
    "ui_klines": Endpoint("GET", "/api/v3/uiKlines", 2),
    "avg_price": Endpoint("GET", "/api/v3/avgPrice", 2),
    "ticker_24hr": Endpoint("GET", "/api/v3/ticker/24hr", 80),  # by symbols: ticker_weight()
    "ticker_price": Endpoint("GET", "/api/v3/ticker/price", 4),
    "book_ticker": Endpoint("GET", "/api/v3/ticker/bookTicker", 4),
    "account": Endpoint("GET", "/api/v3/account", 20, signed=True),
    # Successful place/cancel cost 0 weight since 2026-04-02, failures the documented weight:
    # reserve the documented one (the usage header corrects it only upwards, so it is safe).
    "new_order": Endpoint("POST", "/api/v3/order", 1, signed=True, orders=1),
    "test_order": Endpoint("POST", "/api/v3/order/test", 1, signed=True),
    "cancel_order": Endpoint("DELETE", "/api/v3/order", 1, signed=True),
    "cancel_open_orders": Endpoint("DELETE", "/api/v3/openOrders", 1, signed=True),
    "cancel_replace": Endpoint("POST", "/api/v3/order/cancelReplace", 1, signed=True, orders=1),
    "amend_keep_priority": Endpoint("PUT", "/api/v3/order/amend/keepPriority", 4, signed=True),
    "query_order": Endpoint("GET", "/api/v3/order", 4, signed=True),
    "open_orders": Endpoint("GET", "/api/v3/openOrders", 80, signed=True),  # 6 with symbol
    "all_orders": Endpoint("GET", "/api/v3/allOrders", 20, signed=True),
    "my_trades": Endpoint("GET", "/api/v3/myTrades", 20, signed=True),  # 5 with orderId
    "order_rate_limit": Endpoint("GET", "/api/v3/rateLimit/order", 40, signed=True),
}
LINEAR = {
    "ping": Endpoint("GET", "/fapi/v1/ping", 1),
    "time": Endpoint("GET", "/fapi/v1/time", 1),
    "exchange_info": Endpoint("GET", "/fapi/v1/exchangeInfo", 1),
    "depth": Endpoint("GET", "/fapi/v1/depth", 2),
    "trades": Endpoint("GET", "/fapi/v1/trades", 5),
    "agg_trades": Endpoint("GET", "/fapi/v1/aggTrades", 20),
    "historical_trades": Endpoint("GET", "/fapi/v1/historicalTrades", 200),
    "klines": Endpoint("GET", "/fapi/v1/klines", 5),  # by limit: 1/2/5/10
    "ticker_24hr": Endpoint("GET", "/fapi/v1/ticker/24hr", 40),
    "book_ticker": Endpoint("GET", "/fapi/v1/ticker/bookTicker", 5),
    "premium_index": Endpoint("GET", "/fapi/v1/premiumIndex", 10),
    "account": Endpoint("GET", "/fapi/v3/account", 5, signed=True),
    "balance": Endpoint("GET", "/fapi/v3/balance", 5, signed=True),
    "balance_v2": Endpoint("GET", "/fapi/v2/balance", 5, signed=True),
    "position_risk": Endpoint("GET", "/fapi/v3/positionRisk", 5, signed=True),
    "position_risk_v2": Endpoint("GET", "/fapi/v2/positionRisk", 5, signed=True),
    # USD-M order entry: 0 IP weight, 1 on ORDER-COUNT-10S and -1M.
    "new_order": Endpoint("POST", "/fapi/v1/order", 0, signed=True, orders=1),
    "modify_order": Endpoint("PUT", "/fapi/v1/order", 0, signed=True, orders=1),
    "cancel_order": Endpoint("DELETE", "/fapi/v1/order", 1, signed=True),
    "cancel_all": Endpoint("DELETE", "/fapi/v1/allOpenOrders", 1, signed=True),
    "query_order": Endpoint("GET", "/fapi/v1/order", 1, signed=True),
    "open_orders": Endpoint("GET", "/fapi/v1/openOrders", 40, signed=True),  # 1 with symbol
    "all_orders": Endpoint("GET", "/fapi/v1/allOrders", 5, signed=True),
    "user_trades": Endpoint("GET", "/fapi/v1/userTrades", 5, signed=True),
    "leverage": Endpoint("POST", "/fapi/v1/leverage", 1, signed=True),
    "margin_type": Endpoint("POST", "/fapi/v1/marginType", 1, signed=True),
    "position_mode": Endpoint("POST", "/fapi/v1/positionSide/dual", 1, signed=True),
    "position_mode_get": Endpoint("GET", "/fapi/v1/positionSide/dual", 30, signed=True),
    "listen_key": Endpoint("POST", "/fapi/v1/listenKey", 1),
    "listen_key_keepalive": Endpoint("PUT", "/fapi/v1/listenKey", 1),
    "listen_key_close": Endpoint("DELETE", "/fapi/v1/listenKey", 1),
}


def endpoints(market: Market) -> dict[str, Endpoint]:
    return SPOT if market is Market.SPOT else LINEAR


def depth_weight(market: Market, limit: int) -> int:
    if market is Market.SPOT:
        if limit <= 100:
            return 5
        if limit <= 500:
            return 25
        if limit <= 1000:
            return 50
        return 250
    if limit <= 50:
        return 2
    if limit <= 100:
        return 5
    if limit <= 500:
        return 10
    return 20


def depth_params(venue_symbol: str, limit: int) -> dict[str, str]:
    return {"symbol": venue_symbol, "limit": str(limit)}


def prints_params(venue_symbol: str, limit: int, from_id: int | None = None) -> dict[str, str]:
    """Query of ``trades`` (the latest ``limit``) or ``agg_trades`` (``limit`` from aggregate
    id ``from_id`` on; binance.md §4: ``fromId``, ``limit`` <= 1000)."""
    params = {"symbol": venue_symbol, "limit": str(limit)}
    if from_id is not None:
        params["fromId"] = str(from_id)
    return params


# ------------------------------------------------------------------------------------------
# What the REST transport needs to know about Binance.

# Weight for an endpoint missing from the tables: high on purpose, since an under-estimate can
# cost a 429 while an over-estimate only slows a rare call (the usage header corrects upwards).
UNKNOWN_WEIGHT = 20

#: Usage headers (binance.md §3): prefix -> limiter kind; the suffix names the interval.
USAGE_HEADERS = {"X-MBX-USED-WEIGHT-": "REQUEST_WEIGHT", "X-MBX-ORDER-COUNT-": "ORDERS"}

# (rateLimitType, interval, intervalNum, limit): used until exchangeInfo has been read.
SPOT_DEFAULT_LIMITS = (
    ("REQUEST_WEIGHT", "MINUTE", 1, 6000),
    ("ORDERS", "SECOND", 10, 50),
    ("ORDERS", "DAY", 1, 160_000),
    ("RAW_REQUESTS", "MINUTE", 5, 300_000),
)
LINEAR_DEFAULT_LIMITS = (
    ("REQUEST_WEIGHT", "MINUTE", 1, 2400),
    ("ORDERS", "SECOND", 10, 300),
    ("ORDERS", "MINUTE", 1, 1200),
)

RECV_WINDOW_DEFAULT_MS = 5000
RECV_WINDOW_MAX_MS = 60_000

# Stop length when a 429/418 comes without a usable Retry-After (binance.md §3: bans start at
# 2 minutes; a 429 lasts at most until the minute window resets).
DEFAULT_429_STOP_S = 60.0
DEFAULT_418_STOP_S = 120.0

_server_time = msgspec.json.Decoder(dict[str, int])


def ticker_weight(n_symbols: int | None) -> int:
    """Spot ``GET /api/v3/ticker/24hr``: 2 for one symbol or up to 20, 40 to 100, else 80."""
    if n_symbols is None:
        return 80
    return 2 if n_symbols <= 20 else 40 if n_symbols <= 100 else 80


def futures_klines_weight(limit: int) -> int:
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


@dataclass(frozen=True)
class RestVenue:
    """Binance's rules for one REST host (spot or USD-M), as the transport consumes them
    (``exconn.transport.rest.RestVenue``)."""

    market: Market
    time_path: str
    default_limits: tuple[tuple[str, str, int, int], ...]
    usage_headers: Mapping[str, str] = field(default_factory=lambda: dict(USAGE_HEADERS))
    # Codes that mean "the order may exist": never retry, resolve by client id.
    unknown_outcome_codes: frozenset[int] = frozenset({-1006, -1007})
    clock_skew_codes: frozenset[int] = frozenset({-1021})
    # A 429 with this code is the per-account order count: stop orders, not reads.
    order_limit_codes: frozenset[int] = frozenset({-1015})
    # Binance says "too many requests" with an HTTP status, never in a 200 body.
    rate_limit_codes: frozenset[int] = frozenset()
    not_modified_codes: frozenset[int] = frozenset()
    stop_statuses: frozenset[int] = frozenset({429, 418})
    # Parameters travel in the query for every method (binance.md §2.3): what is signed.
    json_body_methods: frozenset[str] = frozenset()

    def limits(self) -> tuple[Limit, ...]:
        return tuple(limit_from_binance(*entry) for entry in self.default_limits)

    def server_time(self, body: bytes) -> int:
        return _server_time.decode(body)["serverTime"]

    def cost(self, method: str, path: str, params: Mapping[str, Any]) -> Cost:
        """Request weight and orders placed by one request."""
        table = endpoints(self.market)
        found = next((e for e in table.values() if e.method == method and e.path == path), None)
        if found is None:
            return Cost(weight=UNKNOWN_WEIGHT)
        weight = found.weight
        spot = self.market is Market.SPOT
        if found.path.endswith("/depth"):
            weight = depth_weight(self.market, int(params.get("limit", "100")))
        elif found.path.endswith("/openOrders") and method == "GET" and "symbol" in params:
            weight = 6 if spot else 1
        elif spot and found.path == "/api/v3/myTrades" and "orderId" in params:
            weight = 5
        elif spot and found.path == "/api/v3/order/test":
            weight = 20 if params.get("computeCommissionRates") == "true" else 1
        elif spot and found.path == "/api/v3/ticker/24hr":
            weight = ticker_weight(_count_symbols(params))
        elif spot and found.path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
            weight = 2 if "symbol" in params else 4
        elif not spot and found.path == "/fapi/v1/klines":
            weight = futures_klines_weight(int(params.get("limit", "500")))
        return Cost(weight=weight, orders=found.orders)

    def usage(self, headers: Mapping[str, str], cost: Cost) -> list[Usage]:
        """``X-MBX-USED-WEIGHT-1M`` and ``X-MBX-ORDER-COUNT-10S``-style counts."""
        return prefixed_usage(headers, self.usage_headers)

    def stop_after(
        self, status: int, code: int | None, retry_after: float | None
    ) -> StopRule | None:
        """429: stop for Retry-After (orders only for the account's order count, -1015);
        418: the IP is banned until Retry-After (binance.md §3)."""
        if status == 418:
            return StopRule(DEFAULT_418_STOP_S if retry_after is None else retry_after, 418)
        if status == 429:
            seconds = DEFAULT_429_STOP_S if retry_after is None else retry_after
            return StopRule(seconds, 429, orders_only=code in self.order_limit_codes)
        return None

    @staticmethod
    def retry_after(headers: Mapping[str, str], server_now_ms: float) -> float | None:
        return retry_after_header(headers)

    @staticmethod
    def error_fields(content: bytes) -> tuple[int | None, str | None]:
        try:
            body = error_decoder.decode(content)
        except msgspec.DecodeError:
            return None, None
        return body.code, body.msg

    @staticmethod
    def body_error(content: bytes) -> tuple[int, str | None] | None:
        return None  # a 2xx answer is a success

    @staticmethod
    def error_for(
        status: int,
        code: int | None,
        message: str | None,
        *,
        endpoint: str,
        retry_after: float | None = None,
    ) -> exconn_errors.ExconnError:
        return error_for(status, code, message, endpoint=endpoint, retry_after=retry_after)

    @staticmethod
    def client_order_id(params: Mapping[str, Any]) -> str | None:
        return params.get("newClientOrderId") or params.get("origClientOrderId")

    @staticmethod
    def requires_client_order_id(method: str, path: str) -> bool:
        # Every POST that is order entry places an order (new order, cancel-replace).
        return method == "POST"


def _count_symbols(params: Mapping[str, Any]) -> int | None:
    if "symbol" in params:
        return 1
    raw = params.get("symbols")
    if raw is None:
        return None
    return raw.count(",") + 1


SPOT_REST = RestVenue(Market.SPOT, SPOT["time"].path, SPOT_DEFAULT_LIMITS)
LINEAR_REST = RestVenue(Market.LINEAR, LINEAR["time"].path, LINEAR_DEFAULT_LIMITS)


def rest_venue(market: Market) -> RestVenue:
    return SPOT_REST if market is Market.SPOT else LINEAR_REST


def rate_limits(entries: Iterable[object]) -> list[tuple[str, str, int, int]]:
    """``exchangeInfo.rateLimits`` (dicts or ``wire.RateLimit``) as plain tuples."""
    out = []
    for entry in entries:
        if isinstance(entry, Mapping):
            kind, interval = entry["rateLimitType"], entry["interval"]
            num, limit = entry["intervalNum"], entry["limit"]
        else:
            kind, interval = entry.rateLimitType, entry.interval  # type: ignore[attr-defined]
            num, limit = entry.intervalNum, entry.limit  # type: ignore[attr-defined]
        out.append((str(kind), str(interval), int(num), int(limit)))
    return out


class RestSigner:
    """Signs a REST request as binance.md §2.3: ``recvWindow`` and ``timestamp`` appended to
    the query as it will be sent, the signature of query + body appended last, and the API
    key in ``X-MBX-APIKEY``. Its repr shows the key kind, never the secret."""

    __slots__ = ("credentials", "recv_window_ms")

    def __init__(
        self, credentials: Credentials, recv_window_ms: int = RECV_WINDOW_DEFAULT_MS
    ) -> None:
        if not 0 < recv_window_ms <= RECV_WINDOW_MAX_MS:
            raise ConfigError(
                f"recvWindow must be in 1..{RECV_WINDOW_MAX_MS} ms, not {recv_window_ms}"
            )
        self.credentials = credentials
        self.recv_window_ms = recv_window_ms

    def sign(self, query: str, body: str, timestamp_ms: int) -> tuple[str, dict[str, str]]:
        """(query to send, headers to add). ``query`` and ``body`` are already encoded."""
        timing = encode_params(
            [("recvWindow", str(self.recv_window_ms)), ("timestamp", str(timestamp_ms))]
        )
        query = f"{query}&{timing}" if query else timing
        signature = self.credentials.sign(rest_payload(query, body))
        signed = f"{query}&{encode_params([('signature', signature)])}"
        return signed, {"X-MBX-APIKEY": self.credentials.api_key}

    def __repr__(self) -> str:
        return f"RestSigner({self.credentials!r}, recv_window_ms={self.recv_window_ms})"


def api_key_headers(credentials: Credentials) -> dict[str, str]:
    """Headers of a keyed but unsigned request (USER_STREAM security type)."""
    return {"X-MBX-APIKEY": credentials.api_key}
