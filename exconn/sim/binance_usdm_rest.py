"""aiohttp handlers for USD-M REST: public market data, signed trading, listenKey.

A middleware does what every `/fapi/` request shares: counting, REST faults, IP weight
(429 then 418) and the X-MBX-* headers. Handlers authenticate with exconn.sim.auth.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from exconn.sim import errors as E
from exconn.sim.auth import (
    AuthError,
    KeyRegistry,
    Permission,
    verify_binance_api_key,
    verify_binance_rest,
)
from exconn.sim.binance_usdm_core import VENUE, UsdmCore
from exconn.sim.binance_usdm_klines import INTERVALS_MS
from exconn.sim.binance_usdm_orders import INVALID_SYMBOL, ApiError, mandatory
from exconn.sim.binance_usdm_user import order_body
from exconn.sim.binance_usdm_wire import (
    depth_snapshot,
    exchange_info,
    premium_index,
    rest_agg_trade,
    rest_book_ticker,
    rest_trade,
)
from exconn.sim.fault_registry import FaultKind
from exconn.sim.limits import BinanceLimiter
from exconn.sim.order_faults import after_execution, drop_answer

CORE: web.AppKey[UsdmCore] = web.AppKey("usdm_core", UsdmCore)
KEYS: web.AppKey[KeyRegistry] = web.AppKey("usdm_keys", KeyRegistry)
LIMITER: web.AppKey[BinanceLimiter] = web.AppKey("usdm_limiter", BinanceLimiter)
PARAMS: web.RequestKey[dict[str, str]] = web.RequestKey("usdm_params", dict)
ORDER_HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("usdm_headers", dict)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEPTH_LIMITS = {5: 2, 10: 2, 20: 2, 50: 2, 100: 5, 500: 10, 1000: 20}
ORDER_ENDPOINTS = {"POST /fapi/v1/order", "PUT /fapi/v1/order"}
TIMEOUT_HOLD_S = 15.0  # longer than any client's sane order timeout
_encode = msgspec.json.Encoder().encode


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


def error_response(err: ApiError | AuthError) -> web.Response:
    status = err.status if isinstance(err, ApiError) else err.http_status
    return web.Response(
        body=E.binance_body(err.code, err.msg), status=status, content_type="application/json"
    )


def _limit_weight(raw: str | None, table: list[tuple[int, int]], default: int) -> int:
    try:
        limit = int(raw) if raw else default
    except ValueError:
        limit = default
    return next((w for top, w in table if limit < top), table[-1][1])


def weight(method: str, path: str, q: Any) -> int:
    """Request weight per binance.md §8.2 (order placement and amendment cost 0)."""
    if path == "/fapi/v1/depth":
        try:
            return DEPTH_LIMITS.get(int(q.get("limit", "500")), 20)
        except ValueError:
            return 20
    if path == "/fapi/v1/klines":
        return _limit_weight(q.get("limit"), [(100, 1), (500, 2), (1001, 5), (1 << 62, 10)], 500)
    table = {
        "/fapi/v1/trades": 5,
        "/fapi/v1/aggTrades": 20,
        "/fapi/v1/ticker/24hr": 1 if q.get("symbol") else 40,
        "/fapi/v1/premiumIndex": 1 if q.get("symbol") else 10,
        "/fapi/v1/ticker/bookTicker": 2 if q.get("symbol") else 5,
        "/fapi/v1/openOrders": 1 if q.get("symbol") else 40,
        "/fapi/v1/userTrades": 5,
        "/fapi/v2/positionRisk": 5,
        "/fapi/v3/positionRisk": 5,
        "/fapi/v2/balance": 5,
        "/fapi/v1/positionSide/dual": 30 if method == "GET" else 1,
    }
    if f"{method} {path}" in ORDER_ENDPOINTS:
        return 0
    return table.get(path, 1)


async def params_of(request: web.Request) -> dict[str, str]:
    """Query and form body merged (the query string wins, as documented)."""
    body = await request.read() if request.method != "GET" else b""
    merged = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    merged.update(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
    return merged


@web.middleware
async def usdm_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not request.path.startswith("/fapi/"):
        return await handler(request)
    core, limiter = request.app[CORE], request.app[LIMITER]
    core.stats["rest_requests"] += 1
    now = core.now_ms()
    endpoint = f"{request.method} {request.path}"
    params = await params_of(request)
    symbol = params.get("symbol")
    ip = request.remote or "127.0.0.1"
    for kind, status in ((FaultKind.HTTP_429, 429), (FaultKind.HTTP_418, 418)):
        fault = core.faults.take(kind, core.clock(), venue=VENUE, endpoint=endpoint, symbol=symbol)
        if fault is not None:
            retry = int(fault.params.get("retry_after", 1))
            msg = (
                E.BINANCE_TOO_MANY_REQUESTS_WEIGHT % (2400, "1 MINUTE")
                if status == 429
                else E.BINANCE_IP_BANNED % (now + retry * 1000)
            )
            response = error_response(ApiError(-1003, msg, status))
            response.headers["Retry-After"] = str(retry)
            return response
    fault = core.faults.take(
        FaultKind.HTTP_5XX, core.clock(), venue=VENUE, endpoint=endpoint, symbol=symbol
    )
    if fault is not None:
        return error_response(
            ApiError(
                -1001,
                "Internal error; unable to process your request. Please try again.",
                int(fault.params.get("status", 503)),
            )
        )
    headers, rejected = limiter.charge(
        ip, None, weight(request.method, request.path, params), False, now
    )
    if rejected is not None:
        core.stats["rate_limited"] += 1
        return web.Response(
            body=rejected.body,
            status=rejected.http_status,
            headers=headers,
            content_type="application/json",
        )
    request[PARAMS] = params
    response = await handler(request)
    extra = request.get(ORDER_HEADERS) or limiter.headers(ip, None, now)
    response.headers.update(extra)
    return response


# ------------------------------------------------------------------ public
async def ping(request: web.Request) -> web.Response:
    return json_response({})


async def server_time(request: web.Request) -> web.Response:
    return json_response({"serverTime": request.app[CORE].now_ms()})


async def exchange_info_handler(request: web.Request) -> web.Response:
    core = request.app[CORE]
    limits = request.app[LIMITER].limits
    return json_response(exchange_info(list(core.symbols.values()), limits, core.now_ms()))


def _symbol(request: web.Request, required: bool = True) -> str | ApiError | None:
    symbol = request[PARAMS].get("symbol")
    if not symbol:
        return mandatory("symbol") if required else None
    return symbol if symbol in request.app[CORE].symbols else INVALID_SYMBOL


async def depth(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request)
    if isinstance(symbol, ApiError) or symbol is None:
        return error_response(symbol or mandatory("symbol"))
    raw = request[PARAMS].get("limit", "500")
    try:
        limit = int(raw)
    except ValueError:
        return error_response(ApiError(-1100, "Illegal characters found in parameter 'limit'."))
    if limit not in DEPTH_LIMITS:
        return error_response(ApiError(-1130, "Invalid data sent for a parameter."))
    snap = core.market.get(symbol).book.snapshot(limit)
    return json_response(depth_snapshot(core.fmts[symbol], snap, core.now_ms()))


def _int_param(request: web.Request, name: str, default: int, top: int) -> int | ApiError:
    raw = request[PARAMS].get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit():
        return ApiError(-1100, f"Illegal characters found in parameter '{name}'.")
    return min(int(raw), top)


async def trades(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request)
    limit = _int_param(request, "limit", 500, 1000)
    for err in (symbol, limit):
        if isinstance(err, ApiError):
            return error_response(err)
    assert isinstance(symbol, str) and isinstance(limit, int)
    fmt = core.fmts[symbol]
    return json_response([rest_trade(fmt, t) for t in core.history[symbol].recent(limit)])


def _opt_int(request: web.Request, name: str) -> int | ApiError | None:
    raw = request[PARAMS].get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        return ApiError(-1100, f"Illegal characters found in parameter '{name}'.")
    return int(raw)


async def agg_trades(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request)
    limit = _int_param(request, "limit", 500, 1000)
    from_id, start, end = (_opt_int(request, n) for n in ("fromId", "startTime", "endTime"))
    for err in (symbol, limit, from_id, start, end):
        if isinstance(err, ApiError):
            return error_response(err)
    assert isinstance(symbol, str) and isinstance(limit, int)
    assert not isinstance(from_id, ApiError) and not isinstance(start, ApiError)
    assert not isinstance(end, ApiError)
    if start is not None and end is not None and end - start > 3_600_000:
        # binance.md §8.2: startTime-endTime at most 1 h.
        return error_response(ApiError(-1127, "More than 1 hours between startTime and endTime."))
    fmt = core.fmts[symbol]
    rows = core.history[symbol].agg_trades(from_id, start, end, max(limit, 1))
    return json_response([rest_agg_trade(fmt, t) for t in rows])


async def ticker_24hr_handler(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request, required=False)
    if isinstance(symbol, ApiError):
        return error_response(symbol)
    now = core.now_ms()
    names = [symbol] if symbol else list(core.symbols)
    bodies = [{"symbol": s} | core.history[s].stats_24h(now) for s in names]
    return json_response(bodies[0] if symbol else bodies)


async def klines(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request)
    limit = _int_param(request, "limit", 500, 1500)
    for err in (symbol, limit):
        if isinstance(err, ApiError):
            return error_response(err)
    assert isinstance(symbol, str) and isinstance(limit, int)
    interval = request[PARAMS].get("interval", "")
    if not interval:
        return error_response(mandatory("interval"))
    if interval not in INTERVALS_MS:
        return error_response(ApiError(-1120, "Invalid interval."))
    times = [request[PARAMS].get(n) for n in ("startTime", "endTime")]
    if any(t is not None and not t.isdigit() for t in times):
        return error_response(ApiError(-1100, "Illegal characters found in a parameter."))
    start, end = (int(t) if t else None for t in times)
    rows = core.history[symbol].rest_klines(
        INTERVALS_MS[interval], max(limit, 1), start, end, core.now_ms()
    )
    return json_response(rows)


async def premium(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request, required=False)
    if isinstance(symbol, ApiError):
        return error_response(symbol)
    now = core.now_ms()
    bodies = [
        premium_index(core.fmts[s], core.fmts[s].price(core.mark_ticks(s)), now)
        for s in ([symbol] if symbol else core.symbols)
    ]
    return json_response(bodies[0] if symbol else bodies)


async def book_ticker_handler(request: web.Request) -> web.Response:
    core = request.app[CORE]
    symbol = _symbol(request, required=False)
    if isinstance(symbol, ApiError):
        return error_response(symbol)
    now = core.now_ms()
    bodies = []
    for s in [symbol] if symbol else core.symbols:
        book = core.market.get(s).book
        bid, ask = book.best_bid(), book.best_ask()
        bodies.append(
            rest_book_ticker(
                core.fmts[s], book.update_id, (bid, book.bids[bid]), (ask, book.asks[ask]), now
            )
        )
    return json_response(bodies[0] if symbol else bodies)


# ------------------------------------------------------------------ signed
def _reject_auth(request: web.Request) -> AuthError | None:
    core = request.app[CORE]
    endpoint = f"{request.method} {request.path}"
    if core.faults.take(FaultKind.REJECT_AUTH, core.clock(), venue=VENUE, endpoint=endpoint):
        return AuthError("binance", -2015, E.BINANCE_REJECTED_MBX_KEY, 401)
    return None


async def signed(request: web.Request, permission: str) -> tuple[str, dict[str, str]] | AuthError:
    """(account, params) of a SIGNED request, or the auth error to answer with."""
    forced = _reject_auth(request)
    if forced is not None:
        return forced
    core = request.app[CORE]
    body = await request.read() if request.method != "GET" else b""
    result = verify_binance_rest(
        request.app[KEYS],
        request.method,
        request.rel_url.raw_query_string.encode(),
        body,
        request.headers,
        core.now_ms(),
        ip=request.remote,
        required=permission,
    )
    if isinstance(result, AuthError):
        core.stats["auth_rejected"] += 1
        return result
    return result.key.account, dict(result.params)


def _answer(result: dict[str, Any] | list[Any] | ApiError | AuthError) -> web.Response:
    if isinstance(result, ApiError | AuthError):
        return error_response(result)
    return json_response(result)


async def _trade_call(
    request: web.Request,
    permission: str,
    action: Callable[[UsdmCore, str, dict[str, str]], dict[str, Any] | list[Any] | ApiError],
    needs_symbol: bool = True,
) -> web.Response:
    auth = await signed(request, permission)
    if isinstance(auth, AuthError):
        return error_response(auth)
    account, params = auth
    core = request.app[CORE]
    if needs_symbol:
        symbol = params.get("symbol")
        if not symbol:
            return error_response(mandatory("symbol"))
        if symbol not in core.symbols:
            return error_response(INVALID_SYMBOL)
    return _answer(action(core, account, params))


async def new_order(request: web.Request) -> web.Response:
    return await _order_call(request, lambda c, a, p: c.trading.place(a, p["symbol"], p))


async def amend_order(request: web.Request) -> web.Response:
    return await _order_call(request, lambda c, a, p: c.trading.amend(a, p["symbol"], p))


async def _order_call(
    request: web.Request,
    action: Callable[[UsdmCore, str, dict[str, str]], dict[str, Any] | ApiError],
) -> web.Response:
    """Order placement/amendment: counts on the account's ORDERS limits, faults after accept."""
    auth = await signed(request, Permission.FUTURES_TRADE)
    if isinstance(auth, AuthError):
        return error_response(auth)
    account, params = auth
    core, limiter = request.app[CORE], request.app[LIMITER]
    symbol = params.get("symbol")
    if not symbol:
        return error_response(mandatory("symbol"))
    if symbol not in core.symbols:
        return error_response(INVALID_SYMBOL)
    ip = request.remote or "127.0.0.1"
    headers, rejected = limiter.charge(ip, account, 0, True, core.now_ms())
    if rejected is not None:
        return web.Response(
            body=rejected.body,
            status=rejected.http_status,
            headers=headers,
            content_type="application/json",
        )
    result = action(core, account, params)
    if not isinstance(result, ApiError):
        request[ORDER_HEADERS] = headers
        endpoint = f"{request.method} {request.path}"
        clock = core.clock()
        where = {"venue": VENUE, "endpoint": endpoint}
        if await after_execution(core.faults, clock, where, core.connections.values(), core.stats):
            return drop_answer(request)
        if core.faults.take(FaultKind.ERROR_AFTER_ACCEPT, clock, venue=VENUE, endpoint=endpoint):
            core.stats["errors_after_accept"] += 1
            return error_response(
                ApiError(
                    -1006,
                    "An unexpected response was received from the message bus. "
                    "Execution status unknown.",
                    503,
                )
            )
        fault = core.faults.take(
            FaultKind.TIMEOUT_AFTER_ACCEPT, clock, venue=VENUE, endpoint=endpoint
        )
        if fault is not None:
            core.stats["timeouts_after_accept"] += 1
            await asyncio.sleep(float(fault.params.get("hold_s", TIMEOUT_HOLD_S)))
            return error_response(
                ApiError(
                    -1007,
                    "Timeout waiting for response from backend server. Send status unknown; "
                    "execution status unknown.",
                    503,
                )
            )
    return _answer(result)


async def cancel_order(request: web.Request) -> web.Response:
    return await _trade_call(
        request, Permission.FUTURES_TRADE, lambda c, a, p: c.trading.cancel(a, p["symbol"], p)
    )


async def cancel_all(request: web.Request) -> web.Response:
    def action(core: UsdmCore, account: str, params: dict[str, str]) -> dict[str, Any]:
        core.trading.cancel_all(account, params["symbol"])
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    return await _trade_call(request, Permission.FUTURES_TRADE, action)


async def query_order(request: web.Request) -> web.Response:
    def action(core: UsdmCore, account: str, params: dict[str, str]) -> dict[str, Any] | ApiError:
        found = core.trading.find(account, params["symbol"], params)
        return (
            found if isinstance(found, ApiError) else order_body(core.fmts[params["symbol"]], found)
        )

    return await _trade_call(request, Permission.READ, action)


async def user_trades(request: web.Request) -> web.Response:
    return await _trade_call(
        request, Permission.READ, lambda c, a, p: c.trading.user_trades(a, p["symbol"], p)
    )


async def open_orders(request: web.Request) -> web.Response:
    def action(core: UsdmCore, account: str, params: dict[str, str]) -> list[Any] | ApiError:
        symbol = params.get("symbol") or None
        if symbol is not None and symbol not in core.symbols:
            return INVALID_SYMBOL
        return core.trading.open_orders(account, symbol)

    return await _trade_call(request, Permission.READ, action, needs_symbol=False)


def _position_risk(only_open: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        def action(core: UsdmCore, account: str, params: dict[str, str]) -> list[Any] | ApiError:
            symbol = params.get("symbol") or None
            if symbol is not None and symbol not in core.symbols:
                return INVALID_SYMBOL
            return core.trading.positions(account, symbol, only_open)

        return await _trade_call(request, Permission.READ, action, needs_symbol=False)

    return handler


async def leverage(request: web.Request) -> web.Response:
    def action(core: UsdmCore, account: str, params: dict[str, str]) -> dict[str, Any] | ApiError:
        raw = params.get("leverage", "")
        if not raw:
            return mandatory("leverage")
        if not raw.isascii() or not raw.isdigit():
            return ApiError(-1100, "Illegal characters found in parameter 'leverage'.")
        return core.trading.set_leverage(account, params["symbol"], int(raw))

    return await _trade_call(request, Permission.FUTURES_TRADE, action)


async def dual_side(request: web.Request) -> web.Response:
    permission = Permission.READ if request.method == "GET" else Permission.FUTURES_TRADE

    def action(core: UsdmCore, account: str, params: dict[str, str]) -> dict[str, Any] | ApiError:
        if request.method == "GET":
            return {"dualSidePosition": core.trading.ledger.account(account).hedge_mode}
        raw = params.get("dualSidePosition", "")
        if not raw:
            return mandatory("dualSidePosition")
        if raw not in ("true", "false"):
            return ApiError(-1100, "Illegal characters found in parameter 'dualSidePosition'.")
        return core.trading.set_dual(account, raw == "true")

    return await _trade_call(request, permission, action, needs_symbol=False)


async def balance(request: web.Request) -> web.Response:
    return await _trade_call(
        request, Permission.READ, lambda c, a, p: c.trading.balance(a), needs_symbol=False
    )


# --------------------------------------------------------------- listenKey
async def listen_key(request: web.Request) -> web.Response:
    core = request.app[CORE]
    forced = _reject_auth(request)
    found = forced or verify_binance_api_key(request.app[KEYS], request.headers, ip=request.remote)
    if isinstance(found, AuthError):
        return error_response(found)
    account = found.key.account
    if request.method == "POST":
        return json_response({"listenKey": core.trading.create_listen_key(account)})
    if request.method == "PUT":
        key = core.trading.keepalive(account)
        if key is None:
            return error_response(ApiError(-1125, "This listenKey does not exist."))
        return json_response({"listenKey": key})
    core.trading.close_listen_key(account)
    return json_response({})


def add_rest_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/fapi/v1/ping", ping),
            web.get("/fapi/v1/time", server_time),
            web.get("/fapi/v1/exchangeInfo", exchange_info_handler),
            web.get("/fapi/v1/depth", depth),
            web.get("/fapi/v1/trades", trades),
            web.get("/fapi/v1/aggTrades", agg_trades),
            web.get("/fapi/v1/ticker/24hr", ticker_24hr_handler),
            web.get("/fapi/v1/klines", klines),
            web.get("/fapi/v1/premiumIndex", premium),
            web.get("/fapi/v1/ticker/bookTicker", book_ticker_handler),
            web.post("/fapi/v1/order", new_order),
            web.put("/fapi/v1/order", amend_order),
            web.delete("/fapi/v1/order", cancel_order),
            web.get("/fapi/v1/order", query_order),
            web.delete("/fapi/v1/allOpenOrders", cancel_all),
            web.get("/fapi/v1/openOrders", open_orders),
            web.get("/fapi/v1/userTrades", user_trades),
            web.get("/fapi/v2/positionRisk", _position_risk(only_open=False)),
            web.get("/fapi/v3/positionRisk", _position_risk(only_open=True)),
            web.post("/fapi/v1/leverage", leverage),
            web.get("/fapi/v1/positionSide/dual", dual_side),
            web.post("/fapi/v1/positionSide/dual", dual_side),
            web.get("/fapi/v2/balance", balance),
            web.get("/fapi/v3/balance", balance),
            web.post("/fapi/v1/listenKey", listen_key),
            web.put("/fapi/v1/listenKey", listen_key),
            web.delete("/fapi/v1/listenKey", listen_key),
        ]
    )
