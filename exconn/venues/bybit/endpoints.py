"""Bybit V5 REST endpoints as data (bybit.md §3, §4), request builders, and the venue's rules
the REST transport applies (costs, limits, usage headers, stops, codes, signing).

One host serves every category (``api.bybit.com``: spot, linear, inverse, option share it and
its 600-requests-per-5-s IP limit), so one ``RestVenue`` and one ``RestClient`` serve both
exconn markets. Private endpoints also have a per-UID budget per endpoint (and category),
rolling over one second; their ``X-Bapi-Limit`` headers correct and raise it.

Pure: the transport (``exconn.transport.rest``) takes ``REST`` and never needs to know Bybit by
name; the builders return ``Request`` values that ``RestClient.call`` sends.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from exconn import errors as exconn_errors
from exconn.errors import ConfigError, InvalidOrder
from exconn.transport.ratelimit import (
    RAW_REQUESTS,
    Cost,
    Limit,
    StopRule,
    Usage,
    retry_after_header,
)
from exconn.venues.bybit import errors as bybit_errors
from exconn.venues.bybit.signing import RECV_WINDOW_DEFAULT_MS, check_key, rest_headers
from exconn.venues.keys import Credentials

CATEGORIES = ("spot", "linear", "inverse", "option")


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    path: str
    signed: bool = False
    order: bool = False  # order entry: never retried; a doubtful answer is OutcomeUnknown


ENDPOINTS = {
    "time": Endpoint("GET", "/v5/market/time"),
    "instruments_info": Endpoint("GET", "/v5/market/instruments-info"),
    "orderbook": Endpoint("GET", "/v5/market/orderbook"),
    "recent_trade": Endpoint("GET", "/v5/market/recent-trade"),
    "kline": Endpoint("GET", "/v5/market/kline"),
    "tickers": Endpoint("GET", "/v5/market/tickers"),
    "wallet_balance": Endpoint("GET", "/v5/account/wallet-balance", signed=True),
    "fee_rate": Endpoint("GET", "/v5/account/fee-rate", signed=True),
    "create_order": Endpoint("POST", "/v5/order/create", signed=True, order=True),
    "amend_order": Endpoint("POST", "/v5/order/amend", signed=True, order=True),
    "cancel_order": Endpoint("POST", "/v5/order/cancel", signed=True, order=True),
    "cancel_all": Endpoint("POST", "/v5/order/cancel-all", signed=True, order=True),
    "create_batch": Endpoint("POST", "/v5/order/create-batch", signed=True, order=True),
    "amend_batch": Endpoint("POST", "/v5/order/amend-batch", signed=True, order=True),
    "cancel_batch": Endpoint("POST", "/v5/order/cancel-batch", signed=True, order=True),
    "open_orders": Endpoint("GET", "/v5/order/realtime", signed=True),
    "order_history": Endpoint("GET", "/v5/order/history", signed=True),
    "executions": Endpoint("GET", "/v5/execution/list", signed=True),
    "positions": Endpoint("GET", "/v5/position/list", signed=True),
    "set_leverage": Endpoint("POST", "/v5/position/set-leverage", signed=True),
    "switch_mode": Endpoint("POST", "/v5/position/switch-mode", signed=True),
}

# ------------------------------------------------------------------------------------------
# Limits (bybit.md §3).

IP_LIMIT = 600  # requests per IP per 5 s, every host and category together
IP_WINDOW_MS = 5000
UID_WINDOW_MS = 1000

# Default per-UID limits (requests per second) by (path, category); category None: the same
# for every category. UTA 2.0 Pro defaults; an account's own arrive in X-Bapi-Limit.
UID_LIMITS: dict[tuple[str, str | None], int] = {
    **{
        (path, category): n
        for path in ("/v5/order/create", "/v5/order/cancel")
        for category, n in (("linear", 10), ("inverse", 10), ("option", 10), ("spot", 20))
    },
    **{("/v5/order/amend", category): 10 for category in CATEGORIES},
    **{
        ("/v5/order/cancel-all", category): n
        for category, n in (("linear", 10), ("inverse", 10), ("option", 1), ("spot", 20))
    },
    **{
        (path, category): n
        for path in ("/v5/order/create-batch", "/v5/order/amend-batch", "/v5/order/cancel-batch")
        for category, n in (("linear", 10), ("inverse", 10), ("option", 10), ("spot", 20))
    },
    ("/v5/order/realtime", None): 50,
    ("/v5/order/history", None): 50,
    ("/v5/execution/list", None): 50,
    ("/v5/position/list", None): 50,
    ("/v5/position/set-leverage", None): 10,
    ("/v5/position/switch-mode", None): 10,
    ("/v5/account/wallet-balance", None): 50,
    ("/v5/account/fee-rate", None): 5,
}
# A private endpoint missing from the table: the docs give no number; 10/s is the lowest
# common trading limit, and X-Bapi-Limit corrects it after the first answer.
DEFAULT_UID_LIMIT = 10
BATCH_PATHS = frozenset(
    {"/v5/order/create-batch", "/v5/order/amend-batch", "/v5/order/cancel-batch"}
)
# HTTP 429 is "system-level protection, retry" (bybit.md §2): a short pause when it says
# nothing more.
DEFAULT_429_STOP_S = 1.0


def uid_limit(path: str, category: str | None) -> Limit:
    """The per-UID budget a private request to ``path`` draws on."""
    if category is not None and (path, category) in UID_LIMITS:
        kind, n = f"UID {path} {category}", UID_LIMITS[(path, category)]
    else:
        kind, n = f"UID {path}", UID_LIMITS.get((path, None), DEFAULT_UID_LIMIT)
    return Limit(kind, UID_WINDOW_MS, n, rolling=True, per_account=True)


IP_LIMITS = (Limit(RAW_REQUESTS, IP_WINDOW_MS, IP_LIMIT, rolling=True),)

# ------------------------------------------------------------------------------------------
# The V5 envelope, as far as the transport needs it.


class _Envelope(msgspec.Struct):
    retCode: int = 0
    retMsg: str = ""


class _TimeResult(msgspec.Struct):
    timeNano: str


class _TimeBody(msgspec.Struct):
    result: _TimeResult


_envelope = msgspec.json.Decoder(_Envelope)
_time_body = msgspec.json.Decoder(_TimeBody)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = _header(headers, name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class RestVenue:
    """Bybit's rules for its REST host (every category), as the transport consumes them
    (``exconn.transport.rest.RestVenue``)."""

    time_path: str = ENDPOINTS["time"].path
    unknown_outcome_codes: frozenset[int] = bybit_errors.UNKNOWN_OUTCOME
    clock_skew_codes: frozenset[int] = bybit_errors.CLOCK_SKEW
    rate_limit_codes: frozenset[int] = bybit_errors.RATE_LIMIT
    not_modified_codes: frozenset[int] = bybit_errors.NOT_MODIFIED
    # 403: the IP limit (stop everything for 10 minutes); 429: system protection.
    stop_statuses: frozenset[int] = frozenset({403, 429})
    # A 429 with this code (the /v5/trade session's "too frequent", bybit.md §3): orders
    # back off, reads need not.
    order_limit_codes: frozenset[int] = frozenset({20003})
    # POST parameters travel as a JSON body, signed byte for byte; GET ones in the query.
    json_body_methods: frozenset[str] = frozenset({"POST"})
    ip_limits: tuple[Limit, ...] = field(default=IP_LIMITS)

    def limits(self) -> tuple[Limit, ...]:
        # Per-UID budgets are added as requests name them (``cost``).
        return self.ip_limits

    @staticmethod
    def server_time(body: bytes) -> int:
        """``GET /v5/market/time``: ``result.timeNano`` (ns, a string) in ms."""
        return int(_time_body.decode(body).result.timeNano) // 1_000_000

    @staticmethod
    def cost(method: str, path: str, params: Mapping[str, Any]) -> Cost:
        """One request against the IP limit; a private one also against its per-UID budget,
        one unit per order of a batch (options count per request)."""
        if path.startswith("/v5/market/"):
            return Cost(weight=0, raw=1)
        category = params.get("category")
        category = category if isinstance(category, str) else None
        units = 1
        if path in BATCH_PATHS and category != "option":
            batch = params.get("request")
            units = max(1, len(batch)) if isinstance(batch, list | tuple) else 1
        limit = uid_limit(path, category)
        return Cost(weight=0, raw=1, extra=((limit, units),))

    @staticmethod
    def usage(headers: Mapping[str, str], cost: Cost) -> list[Usage]:
        """``X-Bapi-Limit`` (the endpoint's limit) and ``X-Bapi-Limit-Status`` (what is left)
        on private answers: the used count of that endpoint's per-UID budget."""
        kinds = cost.kinds
        limit = _int_header(headers, "X-Bapi-Limit")
        left = _int_header(headers, "X-Bapi-Limit-Status")
        if not kinds or limit is None or left is None or limit <= 0:
            return []
        return [Usage(kinds[0], max(0, limit - left), limit=limit)]

    def stop_after(
        self, status: int, code: int | None, retry_after: float | None
    ) -> StopRule | None:
        if status == 403:
            return StopRule(bybit_errors.IP_BAN_S if retry_after is None else retry_after, 403)
        if status == 429:
            seconds = DEFAULT_429_STOP_S if retry_after is None else retry_after
            return StopRule(seconds, 429, orders_only=code in self.order_limit_codes)
        return None

    @staticmethod
    def retry_after(headers: Mapping[str, str], server_now_ms: float) -> float | None:
        """``Retry-After`` if sent, else until ``X-Bapi-Limit-Reset-Timestamp`` (server ms)
        when that lies ahead."""
        seconds = retry_after_header(headers)
        if seconds is not None:
            return seconds
        reset = _int_header(headers, "X-Bapi-Limit-Reset-Timestamp")
        if reset is None or reset <= server_now_ms:
            return None
        return (reset - server_now_ms) / 1000

    @staticmethod
    def error_fields(content: bytes) -> tuple[int | None, str | None]:
        try:
            body = _envelope.decode(content)
        except msgspec.DecodeError:
            return None, None  # e.g. the 403's plain-text "access too frequent"
        return body.retCode, body.retMsg or None

    @staticmethod
    def body_error(content: bytes) -> tuple[int, str | None] | None:
        """A 200 with ``retCode != 0`` (test the code, never the text: bybit.md §2)."""
        try:
            body = _envelope.decode(content)
        except msgspec.DecodeError:
            return None  # the caller's decoder reports the malformed body
        return None if body.retCode == 0 else (body.retCode, body.retMsg or None)

    @staticmethod
    def error_for(
        status: int,
        code: int | None,
        message: str | None,
        *,
        endpoint: str,
        retry_after: float | None = None,
    ) -> exconn_errors.ExconnError:
        return bybit_errors.error_for(
            status, code, message, endpoint=endpoint, retry_after=retry_after
        )

    @staticmethod
    def client_order_id(params: Mapping[str, Any]) -> str | None:
        value = params.get("orderLinkId")
        return value if isinstance(value, str) and value else None

    @staticmethod
    def requires_client_order_id(method: str, path: str) -> bool:
        # Amend and cancel may name the order by orderId; only a new order needs our id.
        return path == ENDPOINTS["create_order"].path


REST = RestVenue()


def rest_venue() -> RestVenue:
    return REST


class RestSigner:
    """Signs a REST request as bybit.md §2: the query (GET) or the exact JSON body (POST)
    after ``timestamp + api_key + recv_window``, in ``X-BAPI-*`` headers; the query is sent
    unchanged. Its repr shows the key kind, never the secret."""

    __slots__ = ("credentials", "recv_window_ms")

    def __init__(
        self, credentials: Credentials, recv_window_ms: int = RECV_WINDOW_DEFAULT_MS
    ) -> None:
        check_key(credentials)
        if recv_window_ms <= 0:
            raise ConfigError(
                f"X-BAPI-RECV-WINDOW must be a positive number of ms, not {recv_window_ms}",
                exchange="bybit",
            )
        self.credentials = credentials
        self.recv_window_ms = recv_window_ms

    def sign(self, query: str, body: str, timestamp_ms: int) -> tuple[str, dict[str, str]]:
        """(query to send, headers to add); a GET has no body, a POST no query."""
        data = body if body else query
        return query, rest_headers(self.credentials, timestamp_ms, self.recv_window_ms, data)

    def __repr__(self) -> str:
        return f"RestSigner({self.credentials!r}, recv_window_ms={self.recv_window_ms})"


# ------------------------------------------------------------------------------------------
# Request builders (bybit.md §4, §5). Numbers travel as strings; Decimal, never float.


@dataclass(frozen=True, slots=True)
class Request:
    """One REST call, ready for ``RestClient.call``."""

    method: str
    path: str
    params: dict[str, Any]
    signed: bool = False
    is_order: bool = False


ORDER_LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
SIDES = ("Buy", "Sell")
ORDER_TYPES = ("Market", "Limit")
TIMES_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly", "RPI")


def _request(name: str, params: Mapping[str, Any]) -> Request:
    endpoint = ENDPOINTS[name]
    clean = {k: v for k, v in params.items() if v is not None}
    return Request(endpoint.method, endpoint.path, clean, endpoint.signed, endpoint.order)


def _category(category: str) -> str:
    if category not in CATEGORIES:
        raise ValueError(f"Bybit category must be one of {CATEGORIES}, not {category!r}")
    return category


def _number(name: str, value: Decimal | str | None) -> str | None:
    """A price or quantity as Bybit wants it: a plain decimal string."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be a Decimal or a str, not {type(value).__name__}")


def _int(value: int | None) -> str | None:
    return None if value is None else str(int(value))


def _one_of(label: str, *values: str | None, required: bool = True) -> None:
    if required and not any(values):
        raise InvalidOrder(f"Bybit: {label} is required", exchange="bybit")


def server_time() -> Request:
    return _request("time", {})


def instruments_info(
    category: str,
    *,
    symbol: str | None = None,
    status: str | None = None,
    base_coin: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Request:
    """Linear lists more than 500 symbols: follow ``result.nextPageCursor`` (spot has no
    pagination)."""
    return _request(
        "instruments_info",
        {
            "category": _category(category),
            "symbol": symbol,
            "status": status,
            "baseCoin": base_coin,
            "limit": _int(limit),
            "cursor": cursor,
        },
    )


def orderbook(category: str, symbol: str, limit: int | None = None) -> Request:
    """Depth up to ``limit`` per side (spot and linear 1-1000); its ``u`` matches the
    1000-level stream's."""
    return _request(
        "orderbook", {"category": _category(category), "symbol": symbol, "limit": _int(limit)}
    )


def recent_trade(category: str, symbol: str, limit: int | None = None) -> Request:
    return _request(
        "recent_trade",
        {"category": _category(category), "symbol": symbol, "limit": _int(limit)},
    )


def tickers(category: str, symbol: str | None = None) -> Request:
    return _request("tickers", {"category": _category(category), "symbol": symbol})


def wallet_balance(account_type: str = "UNIFIED", coin: str | None = None) -> Request:
    return _request("wallet_balance", {"accountType": account_type, "coin": coin})


def create_order(
    category: str,
    symbol: str,
    side: str,
    order_type: str,
    qty: Decimal | str,
    *,
    order_link_id: str,
    price: Decimal | str | None = None,
    time_in_force: str | None = None,
    reduce_only: bool | None = None,
    market_unit: str | None = None,
    position_idx: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Request:
    """``POST /v5/order/create``. ``order_link_id`` is required: an unknown outcome is then
    resolved by querying it. Spot Market buys quote ``qty`` in the quote coin unless
    ``market_unit="baseCoin"`` (bybit.md §5)."""
    if side not in SIDES:
        raise InvalidOrder(f"Bybit side must be Buy or Sell, not {side!r}", exchange="bybit")
    if order_type not in ORDER_TYPES:
        raise InvalidOrder(
            f"Bybit orderType must be Market or Limit, not {order_type!r}", exchange="bybit"
        )
    if time_in_force is not None and time_in_force not in TIMES_IN_FORCE:
        raise InvalidOrder(f"Bybit timeInForce must be one of {TIMES_IN_FORCE}", exchange="bybit")
    if order_type == "Limit" and price is None:
        raise InvalidOrder("Bybit: a Limit order needs a price", exchange="bybit")
    _check_link_id(order_link_id)
    params: dict[str, Any] = {
        "category": _category(category),
        "symbol": symbol,
        "side": side,
        "orderType": order_type,
        "qty": _number("qty", qty),
        "price": _number("price", price),
        "timeInForce": time_in_force,
        "orderLinkId": order_link_id,
        "reduceOnly": reduce_only,
        "marketUnit": market_unit,
        "positionIdx": position_idx,
    }
    params.update(extra or {})
    return _request("create_order", params)


def amend_order(
    category: str,
    symbol: str,
    *,
    order_id: str | None = None,
    order_link_id: str | None = None,
    qty: Decimal | str | None = None,
    price: Decimal | str | None = None,
) -> Request:
    _one_of("orderId or orderLinkId", order_id, order_link_id)
    return _request(
        "amend_order",
        {
            "category": _category(category),
            "symbol": symbol,
            "orderId": order_id,
            "orderLinkId": order_link_id,
            "qty": _number("qty", qty),
            "price": _number("price", price),
        },
    )


def cancel_order(
    category: str,
    symbol: str,
    *,
    order_id: str | None = None,
    order_link_id: str | None = None,
) -> Request:
    """orderId wins when both are given."""
    _one_of("orderId or orderLinkId", order_id, order_link_id)
    return _request(
        "cancel_order",
        {
            "category": _category(category),
            "symbol": symbol,
            "orderId": order_id,
            "orderLinkId": order_link_id,
        },
    )


def cancel_all(
    category: str,
    *,
    symbol: str | None = None,
    base_coin: str | None = None,
    settle_coin: str | None = None,
) -> Request:
    """Linear and inverse need one of symbol, baseCoin or settleCoin (bybit.md §4)."""
    _one_of(
        "symbol, baseCoin or settleCoin",
        symbol,
        base_coin,
        settle_coin,
        required=category in ("linear", "inverse"),
    )
    return _request(
        "cancel_all",
        {
            "category": _category(category),
            "symbol": symbol,
            "baseCoin": base_coin,
            "settleCoin": settle_coin,
        },
    )


def open_orders(
    category: str,
    *,
    symbol: str | None = None,
    base_coin: str | None = None,
    settle_coin: str | None = None,
    order_id: str | None = None,
    order_link_id: str | None = None,
    open_only: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Request:
    """``GET /v5/order/realtime`` (open orders, or with ``open_only=1`` recent closed ones);
    linear needs symbol, baseCoin or settleCoin."""
    if category == "linear" and not (symbol or base_coin or settle_coin):
        raise ValueError("Bybit linear open orders need symbol, baseCoin or settleCoin")
    return _request(
        "open_orders",
        {
            "category": _category(category),
            "symbol": symbol,
            "baseCoin": base_coin,
            "settleCoin": settle_coin,
            "orderId": order_id,
            "orderLinkId": order_link_id,
            "openOnly": _int(open_only),
            "limit": _int(limit),
            "cursor": cursor,
        },
    )


def order_history(
    category: str,
    *,
    symbol: str | None = None,
    order_id: str | None = None,
    order_link_id: str | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Request:
    """At most 7 days; may lag the order stream (asynchronous)."""
    return _request(
        "order_history",
        {
            "category": _category(category),
            "symbol": symbol,
            "orderId": order_id,
            "orderLinkId": order_link_id,
            "startTime": _int(start_time),
            "endTime": _int(end_time),
            "limit": _int(limit),
            "cursor": cursor,
        },
    )


def executions(
    category: str,
    *,
    symbol: str | None = None,
    order_id: str | None = None,
    order_link_id: str | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    exec_type: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Request:
    """Newest first, at most 7 days per query."""
    return _request(
        "executions",
        {
            "category": _category(category),
            "symbol": symbol,
            "orderId": order_id,
            "orderLinkId": order_link_id,
            "startTime": _int(start_time),
            "endTime": _int(end_time),
            "execType": exec_type,
            "limit": _int(limit),
            "cursor": cursor,
        },
    )


def positions(
    category: str,
    *,
    symbol: str | None = None,
    settle_coin: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Request:
    """Not for spot; linear needs symbol or settleCoin."""
    if category == "spot":
        raise ValueError("Bybit has no positions for spot")
    if category == "linear" and not (symbol or settle_coin):
        raise ValueError("Bybit linear positions need symbol or settleCoin")
    return _request(
        "positions",
        {
            "category": _category(category),
            "symbol": symbol,
            "settleCoin": settle_coin,
            "limit": _int(limit),
            "cursor": cursor,
        },
    )


def _check_link_id(order_link_id: str) -> None:
    if not ORDER_LINK_ID.fullmatch(order_link_id or ""):
        raise InvalidOrder(
            f"Bybit orderLinkId must be 1-36 characters of A-Z a-z 0-9 - _, not {order_link_id!r}",
            exchange="bybit",
        )
