"""aiohttp handlers for Bybit V5 REST: public market data and signed private endpoints.

Every response is the V5 envelope. Order of checks on a private call (chosen): faults
that refuse before execution, IP limit, authentication (key, signature, timestamp,
permission), per-UID limit, then the operation; faults that act after acceptance wrap it.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import web

from exconn.sim import bybit_batch as B
from exconn.sim import bybit_trading as T
from exconn.sim import errors as E
from exconn.sim.auth import ApiKey, Permission, verify_bybit_rest
from exconn.sim.bybit_book import REST_DEPTH
from exconn.sim.bybit_core import VENUE, BybitCore, wall_ms
from exconn.sim.bybit_tape import INTERVAL_MS
from exconn.sim.bybit_wire import Wire
from exconn.sim.fault_registry import FaultKind
from exconn.sim.limits import Rejection
from exconn.sim.order_faults import after_execution, drop_answer

CORE_KEY: web.AppKey[BybitCore] = web.AppKey("bybit_core", BybitCore)
Op = Callable[[BybitCore, str, dict[str, Any]], T.Answer]
# An operation about the calling key itself (GET /v5/user/query-api) rather than its account.
KeyOp = Callable[[BybitCore, ApiKey, dict[str, Any]], T.Answer]
_encode = msgspec.json.Encoder().encode
TIMEOUT_DELAY_S = 30.0  # a "timeout after accept" answers this late: past any client timeout


def envelope(
    core: BybitCore,
    code: int,
    msg: str,
    result: Any = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = _encode(E.bybit_envelope(code, msg, core.now(), result))
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


def _ip(request: web.Request) -> str:
    return request.remote or "127.0.0.1"


def _endpoint(request: web.Request) -> str:
    return f"{request.method} {request.path}"


def _pre_faults(core: BybitCore, request: web.Request, symbol: str | None) -> web.Response | None:
    now, ep = wall_ms(), _endpoint(request)
    kw: dict[str, Any] = {"venue": VENUE, "endpoint": ep, "symbol": symbol}
    if core.faults.take(FaultKind.HTTP_418, now, **kw):
        return web.Response(body=E.BYBIT_IP_LIMITED_BODY, status=403, content_type="text/plain")
    if core.faults.take(FaultKind.HTTP_429, now, **kw):
        reset = core.now() + 1000
        headers = {
            "X-Bapi-Limit": "10",
            "X-Bapi-Limit-Status": "0",
            "X-Bapi-Limit-Reset-Timestamp": str(reset),
        }
        return envelope(core, 10006, E.BYBIT_TOO_MANY_VISITS, headers=headers)
    fault = core.faults.take(FaultKind.HTTP_5XX, now, **kw)
    if fault is not None:
        return envelope(core, 10016, "Server error.", status=int(fault.params.get("status", 503)))
    return None


# ------------------------------------------------------------------- public
async def _public(
    request: web.Request, build: Callable[[BybitCore, Any], T.Answer]
) -> web.Response:
    core = request.app[CORE_KEY]
    core.stats["rest_requests"] += 1
    refused = _pre_faults(core, request, request.query.get("symbol"))
    if refused is not None:
        return refused
    rejection = core.limiter.charge(_ip(request), None, request.path, wall_ms()).rejection
    if rejection is not None:
        return _limited(rejection)
    code, msg, result = build(core, request.query)
    return envelope(core, code, msg, result)


def _time(core: BybitCore, q: Any) -> T.Answer:
    ns = core.now() * 1_000_000 + time.time_ns() % 1_000_000
    return 0, "OK", {"timeSecond": str(ns // 1_000_000_000), "timeNano": str(ns)}


def _category(q: Any, default: str | None = None) -> str | None:
    cat = q.get("category", default)
    return cat if cat in ("spot", "linear") else None


def _instruments(core: BybitCore, q: Any) -> T.Answer:
    cat = _category(q)
    if cat is None:
        return 10001, "Illegal category", {}
    symbol, base = q.get("symbol"), q.get("baseCoin")
    # Every simulated instrument is "Trading"; the real venue filters on `status` (default
    # Trading only), so a query for PreLaunch/Delivering/Closed is answered with an empty
    # list (ccxt asks for PreLaunch linear markets on every load_markets).
    status = q.get("status") or "Trading"
    items = [
        {"symbolId": i + 1, **core.wires[(cat, s)].instrument()}
        for i, s in enumerate(core.symbols[cat])
        if (not symbol or s == symbol)
        and (not base or core.wires[(cat, s)].sym.base == base)
        and status == "Trading"
    ]
    result: dict[str, Any] = {"category": cat, "list": items}
    if cat == "linear":
        result["nextPageCursor"] = ""
    return 0, "OK", result


def _symbol(core: BybitCore, q: Any, default_cat: str | None = None) -> Wire | T.Answer:
    cat = _category(q, default_cat)
    if cat is None:
        return 10001, "Illegal category", {}
    wire = core.wires.get((cat, q.get("symbol", "")))
    if wire is None:
        return 10001, "Not supported symbols", {}  # chosen text
    return wire


def _limit(q: Any, default: int, cap: int) -> int | None:
    raw = q.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= cap:
        return None
    return int(raw)


def _orderbook(core: BybitCore, q: Any) -> T.Answer:
    found = _symbol(core, q)
    if not isinstance(found, Wire):
        return found
    cat, symbol = found.category, found.symbol
    limit = _limit(q, 1 if cat == "spot" else 25, 1000)
    if limit is None:
        return 10001, "params error: limit invalid", {}
    view = core.feeds[(cat, symbol)].views[REST_DEPTH]
    bids, asks = view.levels(limit)
    wire = core.wires[(cat, symbol)]
    now = wall_ms()
    return (
        0,
        "OK",
        {
            "s": symbol,
            "b": wire.levels(bids),
            "a": wire.levels(asks),
            "ts": now,
            "u": view.u,
            "seq": core.book(cat, symbol).update_id,
            "cts": now,
        },
    )


def _recent(core: BybitCore, q: Any) -> T.Answer:
    found = _symbol(core, q)
    if not isinstance(found, Wire):
        return found
    cat, symbol = found.category, found.symbol
    limit = _limit(q, 60 if cat == "spot" else 500, 60 if cat == "spot" else 1000)
    if limit is None:
        return 10001, "params error: limit invalid", {}
    wire, tape = core.wires[(cat, symbol)], core.tapes[(cat, symbol)]
    rows = [
        {
            "execId": core.trade_id(cat, symbol, t.trade_id),
            "symbol": symbol,
            "price": wire.price(t.price),
            "size": wire.qty(t.qty),
            "side": "Buy" if t.taker_buy else "Sell",
            "time": str(t.time_ms),
            "isBlockTrade": False,
            "isRPITrade": False,
            "seq": str(t.seq),
        }
        for t in list(tape.trades)[-limit:][::-1]
    ]
    return 0, "OK", {"category": cat, "list": rows}


def _kline(core: BybitCore, q: Any) -> T.Answer:
    found = _symbol(core, q, "linear")  # kline's category defaults to linear
    if not isinstance(found, Wire):
        return found
    cat, symbol = found.category, found.symbol
    interval = q.get("interval", "")
    if interval not in INTERVAL_MS:
        return 10001, "Invalid period!", {}  # chosen text
    limit = _limit(q, 200, 1000)
    if limit is None:
        return 10001, "params error: limit invalid", {}
    start = int(q["start"]) if q.get("start", "").isdigit() else None
    end = int(q["end"]) if q.get("end", "").isdigit() else None
    tape, wire = core.tapes[(cat, symbol)], core.wires[(cat, symbol)]
    candles = tape.candles(interval, start, end)[-limit:][::-1]  # newest first
    rows = [
        [
            str(c.start),
            wire.price(c.open),
            wire.price(c.high),
            wire.price(c.low),
            wire.price(c.close),
            wire.qty(c.volume),
            wire.value(c.notional),
        ]
        for c in candles
    ]
    return 0, "OK", {"symbol": symbol, "category": cat, "list": rows}


def _tickers(core: BybitCore, q: Any) -> T.Answer:
    cat = _category(q)
    if cat is None:
        return 10001, "Illegal category", {}
    symbol = q.get("symbol")
    if symbol and (cat, symbol) not in core.wires:
        return 10001, "Not supported symbols", {}
    rows = [core.ticker(cat, s) for s in core.symbols[cat] if not symbol or s == symbol]
    return 0, "OK", {"category": cat, "list": rows}


# ------------------------------------------------------------------ private
def _permission(path: str, params: dict[str, Any], method: str) -> str | None:
    if path == "/v5/user/query-api":
        return None  # "Any permission can access this endpoint" (apikey-info)
    if method == "GET":
        return Permission.READ
    return Permission.SPOT_TRADE if params.get("category") == "spot" else Permission.FUTURES_TRADE


async def _private(request: web.Request, op: KeyOp) -> web.Response:
    core = request.app[CORE_KEY]
    core.stats["rest_requests"] += 1
    raw_path = request.raw_path
    query = raw_path.split("?", 1)[1].encode() if "?" in raw_path else b""
    body = await request.read()
    if request.method == "GET":
        params: dict[str, Any] = dict(parse_qsl(query.decode(), keep_blank_values=True))
    else:
        try:
            decoded = msgspec.json.decode(body) if body else {}
        except msgspec.DecodeError:
            return envelope(core, 10001, E.BYBIT_PARAM_ERROR)
        if not isinstance(decoded, dict):
            return envelope(core, 10001, E.BYBIT_PARAM_ERROR)
        params = decoded
    symbol = str(params.get("symbol")) if params.get("symbol") else None
    refused = _pre_faults(core, request, symbol)
    if refused is not None:
        return refused
    ip, now = _ip(request), core.now()
    if core.faults.take(
        FaultKind.REJECT_AUTH, wall_ms(), venue=VENUE, endpoint=_endpoint(request), symbol=symbol
    ):
        return envelope(core, 10003, E.BYBIT_INVALID_KEY)
    auth = verify_bybit_rest(
        core.keys,
        request.method,
        query,
        body,
        request.headers,
        now,
        ip=ip,
        required=_permission(request.path, params, request.method),
    )
    if not auth.ok:
        # No UID to charge: only the IP budget counts a refused request.
        ip_rejection = core.limiter.charge_ip(ip, wall_ms())
        if ip_rejection is not None:
            return _limited(ip_rejection)
        return web.Response(
            body=auth.body(), status=auth.http_status, content_type="application/json"
        )
    category = str(params.get("category")) if params.get("category") else None
    batch = request.path in B.OPS
    # A batch costs one unit per order (bybit.md §3).
    units = max(1, len(B.items_of(params) or ())) if batch else 1
    charge = core.limiter.charge(
        ip, auth.key.account, request.path, wall_ms(), category=category, units=units
    )
    if charge.rejection is not None:
        return _limited(charge.rejection, charge.headers)
    headers = charge.headers
    if batch:
        answer = B.run(core, auth.key.account, request.path, params, charge.admitted)
        body = E.bybit_envelope(answer.code, answer.msg, core.now(), answer.result)
        body["retExtInfo"] = {"list": answer.ext} if answer.ext else {}
        response = web.Response(
            body=_encode(body), content_type="application/json", headers=headers
        )
    else:
        code, msg, result = op(core, auth.key, params)
        response = envelope(core, code, msg, result, headers=headers)
    ep = {"venue": VENUE, "endpoint": _endpoint(request), "symbol": symbol}
    if request.method == "POST" and await after_execution(
        core.faults, wall_ms(), ep, core.connections.values(), core.stats
    ):
        return drop_answer(request)
    fault = core.faults.take(FaultKind.ERROR_AFTER_ACCEPT, wall_ms(), **ep)
    if fault is not None:
        return envelope(core, 10016, "Server error.", status=int(fault.params.get("status", 500)))
    fault = core.faults.take(FaultKind.TIMEOUT_AFTER_ACCEPT, wall_ms(), **ep)
    if fault is not None:
        await asyncio.sleep(float(fault.params.get("delay_s", TIMEOUT_DELAY_S)))
    return response


def _limited(rejection: Rejection, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=rejection.body,
        status=rejection.http_status,
        content_type=rejection.content_type,
        headers=headers,
    )


def build_rest_routes() -> list[web.RouteDef]:
    def public(build: Callable[[BybitCore, Any], T.Answer]) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return await _public(request, build)

        return handler

    def private(op: Op) -> Any:
        def on_account(core: BybitCore, key: ApiKey, params: dict[str, Any]) -> T.Answer:
            return op(core, key.account, params)

        return about_key(on_account)

    def about_key(op: KeyOp) -> Any:
        async def handler(request: web.Request) -> web.Response:
            return await _private(request, op)

        return handler

    return [
        web.get("/v5/market/time", public(_time)),
        web.get("/v5/market/instruments-info", public(_instruments)),
        web.get("/v5/market/orderbook", public(_orderbook)),
        web.get("/v5/market/recent-trade", public(_recent)),
        web.get("/v5/market/kline", public(_kline)),
        web.get("/v5/market/tickers", public(_tickers)),
        web.get("/v5/account/wallet-balance", private(T.wallet_balance)),
        web.get("/v5/account/info", private(T.account_info)),
        web.get("/v5/user/query-api", about_key(T.query_api)),
        web.post("/v5/order/create", private(T.create_order)),
        web.post("/v5/order/amend", private(T.amend_order)),
        web.post("/v5/order/cancel", private(T.cancel_order)),
        web.post("/v5/order/cancel-all", private(T.cancel_all)),
        # Batches: bybit_batch answers them (per-item results in retExtInfo).
        web.post(B.CREATE, private(T.create_order)),
        web.post(B.CANCEL, private(T.cancel_order)),
        web.get(
            "/v5/order/realtime", private(lambda c, a, p: T.list_orders(c, a, p, history=False))
        ),
        web.get("/v5/order/history", private(lambda c, a, p: T.list_orders(c, a, p, history=True))),
        web.get("/v5/execution/list", private(T.executions)),
        web.get("/v5/position/list", private(T.positions)),
        web.post("/v5/position/set-leverage", private(T.set_leverage)),
    ]
