"""Binance spot REST: signed trading/account endpoints and the public market endpoints
beyond depth/exchangeInfo. Every keyed request goes through `auth.verify_binance_rest`
and the `BinanceLimiter`; request faults are applied by the app's middleware."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from exconn.sim import binance_spot_reply as R
from exconn.sim import errors as E
from exconn.sim.auth import AuthError, Permission, verify_binance_rest
from exconn.sim.binance_spot_format import query_order
from exconn.sim.binance_spot_gate import (
    FREE_ON_SUCCESS,
    PLACES_ORDER,
    after_accept_fault,
    auth_rejected,
    weight,
)
from exconn.sim.binance_spot_marketdata import INTERVALS
from exconn.sim.binance_spot_orders import int_param
from exconn.sim.binance_spot_reply import ApiError, Reply, bad_request, mandatory
from exconn.sim.core import VENUE, SpotCore, wall_ms
from exconn.sim.limits import Rejection
from exconn.sim.order_faults import after_execution, drop_answer
from exconn.sim.wire import encode

CORE: web.AppKey[SpotCore] = web.AppKey("spot_core", SpotCore)
Op = Callable[[SpotCore, str, Mapping[str, str]], Reply]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=encode(body),
        status=status,
        content_type="application/json",
        charset="UTF-8",
        headers=dict(headers or {}),
    )


def rejection_response(rejection: Rejection, headers: Mapping[str, str]) -> web.Response:
    return web.Response(
        body=rejection.body,
        status=rejection.http_status,
        content_type="application/json",
        charset="UTF-8",
        headers=dict(headers),
    )


def signed(endpoint: str, trade: bool, op: Op) -> Handler:
    """A TRADE (SPOT_TRADE permission) or USER_DATA (READ) endpoint."""
    required = Permission.SPOT_TRADE if trade else Permission.READ

    async def handler(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        ip = request.remote or ""
        body = await request.read()
        auth = verify_binance_rest(
            core.trading.keys,
            request.method,
            request.rel_url.raw_query_string.encode(),
            body,
            request.headers,
            core.clock(),
            ip=ip,
            required=required,
        )
        if auth.ok and auth_rejected(core, endpoint):
            auth = AuthError("binance", -2015, E.BINANCE_REJECTED_MBX_KEY, 401)
        params: Mapping[str, str] = auth.params if auth.ok else {}
        cost = weight(endpoint, params)
        free = endpoint in FREE_ON_SUCCESS
        account = auth.key.account if auth.ok else None
        is_order = auth.ok and endpoint in PLACES_ORDER
        headers, rejection = core.limiter.charge(
            ip, account, 0 if free and auth.ok else cost, is_order, core.clock()
        )
        if rejection is not None:
            return rejection_response(rejection, headers)
        if isinstance(auth, AuthError):
            return json_response({"code": auth.code, "msg": auth.msg}, auth.http_status, headers)
        assert account is not None
        try:
            reply = op(core, account, params)
        except ApiError as err:
            if free:
                core.limiter.add_weight(ip, cost, core.clock())
            headers = core.limiter.headers(ip, None, core.clock())
            return json_response(err.body(), err.status, headers)
        headers = core.limiter.headers(ip, account if reply.placed else None, core.clock())
        if trade:
            where = {"venue": VENUE, "endpoint": endpoint, "symbol": params.get("symbol")}
            conns = core.connections.values()
            if await after_execution(core.faults, wall_ms(), where, conns, core.stats):
                return drop_answer(request)
            fault = after_accept_fault(core, endpoint, params.get("symbol"))
            if fault is not None:
                kind, delay_s = fault
                if kind == "timeout":
                    await asyncio.sleep(delay_s)  # the engine's 10 s timeout, then -1007
                    return json_response({"code": -1007, "msg": R.TIMEOUT}, 408, headers)
                return json_response({"code": -1006, "msg": R.UNEXPECTED_RESPONSE}, 500, headers)
        return json_response(reply.body, reply.status, headers)

    return handler


# ------------------------------------------------------------------ operations
def _open_orders(core: SpotCore, account: str, params: Mapping[str, str]) -> Reply:
    symbol = params.get("symbol") or None
    if symbol is not None and symbol not in core.symbols:
        raise bad_request(-1121, R.INVALID_SYMBOL)
    return Reply([query_order(r) for r in core.trading.open_orders(account, symbol)])


def _account(core: SpotCore, account: str, params: Mapping[str, str]) -> Reply:
    return Reply(core.trading.account_info(account, params.get("omitZeroBalances") == "true"))


def _rate_limit_order(core: SpotCore, account: str, params: Mapping[str, str]) -> Reply:
    limits = core.limiter.rate_limits("", account, core.clock())
    return Reply([lim for lim in limits if lim["rateLimitType"] == "ORDERS"])


def signed_routes() -> list[web.RouteDef]:
    t = core_ops()
    spec: list[tuple[str, str, bool, Op]] = [
        ("POST", "/api/v3/order", True, t["place"]),
        ("POST", "/api/v3/order/test", True, t["test"]),
        ("DELETE", "/api/v3/order", True, t["cancel"]),
        ("GET", "/api/v3/order", False, t["query"]),
        ("POST", "/api/v3/order/cancelReplace", True, t["cancel_replace"]),
        ("PUT", "/api/v3/order/amend/keepPriority", True, t["amend"]),
        ("GET", "/api/v3/openOrders", False, _open_orders),
        ("DELETE", "/api/v3/openOrders", True, t["cancel_all"]),
        ("GET", "/api/v3/account", False, _account),
        ("GET", "/api/v3/allOrders", False, t["all_orders"]),
        ("GET", "/api/v3/myTrades", False, t["my_trades"]),
        ("GET", "/api/v3/rateLimit/order", False, _rate_limit_order),
    ]
    return [
        web.route(method, path, signed(f"{method} {path}", trade, op))
        for method, path, trade, op in spec
    ]


def core_ops() -> dict[str, Op]:
    def bind(name: str) -> Op:
        return lambda core, account, params: getattr(core.trading, name)(account, params)

    return {
        n: bind(m)
        for n, m in {
            "place": "place",
            "test": "test_order",
            "cancel": "cancel",
            "query": "query",
            "cancel_replace": "cancel_replace",
            "amend": "amend_keep_priority",
            "cancel_all": "cancel_all",
            "all_orders": "all_orders",
            "my_trades": "my_trades",
        }.items()
    }


# --------------------------------------------------------------- public market
def _public(fn: Callable[[SpotCore, Mapping[str, str]], Any]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return json_response(fn(request.app[CORE], request.query))
        except ApiError as err:
            return json_response(err.body(), err.status)

    return handler


def _one_symbol(core: SpotCore, params: Mapping[str, str]) -> str:
    symbol = params.get("symbol") or ""
    if not symbol:
        raise mandatory("symbol")
    if symbol not in core.symbols:
        raise bad_request(-1121, R.INVALID_SYMBOL)
    return symbol


def _limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    value = int_param(params, "limit")
    return default if value is None else max(1, min(value, maximum))


def _trades(core: SpotCore, params: Mapping[str, str]) -> Any:
    return core.data[_one_symbol(core, params)].trades(_limit(params, 500, 1000))


def _agg_trades(core: SpotCore, params: Mapping[str, str]) -> Any:
    data = core.data[_one_symbol(core, params)]
    return data.agg_trades(
        int_param(params, "fromId"),
        int_param(params, "startTime"),
        int_param(params, "endTime"),
        _limit(params, 500, 1000),
    )


def _klines(core: SpotCore, params: Mapping[str, str]) -> Any:
    symbol = _one_symbol(core, params)
    interval = params.get("interval") or ""
    if not interval:
        raise mandatory("interval")
    if interval not in INTERVALS:
        raise bad_request(-1120, "Invalid interval.")
    return core.data[symbol].kline_rows(
        interval,
        int_param(params, "startTime"),
        int_param(params, "endTime"),
        _limit(params, 500, 1000),
    )


def _symbols(core: SpotCore, params: Mapping[str, str]) -> list[str] | None:
    """One symbol (None for 'a single object'), a list, or every symbol."""
    if params.get("symbol"):
        _one_symbol(core, params)
        return None
    raw = params.get("symbols")
    if raw is None:
        return list(core.symbols)
    names = [n.strip().strip('"') for n in raw.strip("[]").split(",") if n.strip()]
    if not names or any(n not in core.symbols for n in names):
        raise bad_request(-1121, R.INVALID_SYMBOL)
    return names


def _ticker_24hr(core: SpotCore, params: Mapping[str, str]) -> Any:
    kind = params.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        raise bad_request(-1100, R.ILLEGAL_NUMBER % ("type", "^(FULL|MINI)$"))
    names = _symbols(core, params)
    now = core.clock()
    if names is None:
        return core.data[params["symbol"]].ticker_rest(now, kind == "MINI")
    return [core.data[n].ticker_rest(now, kind == "MINI") for n in names]


def _price_ticker(core: SpotCore, params: Mapping[str, str]) -> Any:
    """`{"symbol", "price"}`: the last trade price (binance.md §4 "Price ticker")."""
    names = _symbols(core, params)
    if names is None:
        return core.data[params["symbol"]].price_ticker()
    return [core.data[n].price_ticker() for n in names]


def _book_ticker(core: SpotCore, params: Mapping[str, str]) -> Any:
    names = _symbols(core, params)
    if names is None:
        return core.data[params["symbol"]].book_ticker()
    return [core.data[n].book_ticker() for n in names]


async def _removed(request: web.Request) -> web.StreamResponse:
    """POST/PUT/DELETE /api/v3/userDataStream were retired on 2026-02-20 (binance.md §9.1).
    Chosen answer: what any unknown path gets, HTTP 404 with an empty body (the docs do not
    say what a retired endpoint answers)."""
    return web.Response(status=404)


def public_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v3/trades", _public(_trades)),
        web.get("/api/v3/historicalTrades", _public(_trades)),
        web.get("/api/v3/aggTrades", _public(_agg_trades)),
        web.get("/api/v3/klines", _public(_klines)),
        web.get("/api/v3/uiKlines", _public(_klines)),
        web.get("/api/v3/ticker/24hr", _public(_ticker_24hr)),
        web.get("/api/v3/ticker/price", _public(_price_ticker)),
        web.get("/api/v3/ticker/bookTicker", _public(_book_ticker)),
        *(web.route(m, "/api/v3/userDataStream", _removed) for m in ("POST", "PUT", "DELETE")),
    ]
