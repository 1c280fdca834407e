"""aiohttp application speaking Binance spot: REST, market streams and the WebSocket API."""

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from aiohttp import WSMsgType, web
from loguru import logger

from exconn.sim.binance_spot_gate import request_fault, weight
from exconn.sim.binance_spot_rest import (
    CORE,
    json_response,
    public_routes,
    rejection_response,
    signed_routes,
)
from exconn.sim.binance_spot_wsapi import serve_wsapi
from exconn.sim.control_http import add_control_routes
from exconn.sim.core import SpotCore, wall_ms
from exconn.sim.exchange_info import exchange_info
from exconn.sim.weights import parse_depth_limit
from exconn.sim.wire import encode

CORE_KEY = CORE
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(
        body=encode(body), status=status, content_type="application/json", charset="UTF-8"
    )


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return _json({"code": code, "msg": msg}, status)


def _mandatory(name: str) -> web.Response:
    return _error(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


# Frames that count against the 5-messages-per-second limit (binance.md §6).
COUNTED_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG)
SIGNED_ENDPOINTS = {f"{r.method} {r.path}" for r in signed_routes()}


@web.middleware
async def rest_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request faults first (nothing executes), then public weight; signed endpoints
    charge their own weight once they know the account."""
    if not request.path.startswith("/api/"):
        response = await handler(request)
        if request.path == "/sim/faults" and request.method == "POST":
            request.app[CORE_KEY].sweep_faults()  # socket faults act at once
        return response
    core = request.app[CORE_KEY]
    core.stats["rest_requests"] += 1
    endpoint = f"{request.method} {request.path}"
    params = dict(request.query)
    if request.can_read_body:
        body = await request.read()
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        params = form | params  # the query string wins, as on Binance
    refusal = request_fault(core, endpoint, params.get("symbol"))
    ip = request.remote or ""
    if refusal is not None:
        headers = core.limiter.headers(ip, None, core.clock()) | refusal.headers
        return json_response(refusal.body, refusal.status, headers)
    if endpoint in SIGNED_ENDPOINTS:
        return await handler(request)
    headers, rejection = core.limiter.charge(
        ip, None, weight(endpoint, params), False, core.clock()
    )
    if rejection is not None:
        return rejection_response(rejection, headers)
    response = await handler(request)
    response.headers.update(headers)
    return response


async def ping(request: web.Request) -> web.Response:
    return _json({})


async def server_time(request: web.Request) -> web.Response:
    return _json({"serverTime": request.app[CORE_KEY].clock()})


def _symbol_list(raw: str) -> list[str] | None:
    """Parse `symbols=["A","B"]`; None when it is not a JSON list of strings."""
    try:
        names = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    return names


async def exchange_info_handler(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    symbol = request.query.get("symbol")
    raw_symbols = request.query.get("symbols")
    if symbol is not None and raw_symbols is not None:
        return _error(-1128, "Combination of optional parameters invalid.")
    if symbol is not None:
        names = [symbol]
    elif raw_symbols is not None:
        parsed = _symbol_list(raw_symbols)
        if parsed is None:
            return _error(-1100, "Illegal characters found in parameter 'symbols'.")
        names = parsed
    else:
        names = list(core.symbols)
    if any(n not in core.symbols for n in names):
        return _error(-1121, "Invalid symbol.")
    return _json(exchange_info([core.symbols[n] for n in names], wall_ms()))


async def depth(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    symbol = request.query.get("symbol")
    if not symbol:
        return _mandatory("symbol")
    limit = parse_depth_limit(request.query.get("limit"))
    if limit is None:
        return _error(-1100, "Illegal characters found in parameter 'limit'.")
    if symbol not in core.symbols:
        return _error(-1121, "Invalid symbol.")
    snap = core.market.get(symbol).book.snapshot(limit)
    return web.Response(
        body=core.wires[symbol].depth_snapshot(snap),
        content_type="application/json",
        charset="UTF-8",
    )


def _split_streams(raw: str) -> list[str]:
    return [s for s in raw.split("/") if s]


async def ws_raw(request: web.Request) -> web.WebSocketResponse:
    return await _serve_ws(request, False, _split_streams(request.match_info.get("streams", "")))


async def ws_combined(request: web.Request) -> web.WebSocketResponse:
    return await _serve_ws(request, True, _split_streams(request.query.get("streams", "")))


async def _serve_ws(
    request: web.Request, is_combined: bool, streams: list[str]
) -> web.WebSocketResponse:
    core = request.app[CORE_KEY]
    # autoping off so client pongs reach us and can be counted; pings are answered below.
    ws = web.WebSocketResponse(autoping=False, compress=False, timeout=1.0)
    await ws.prepare(request)
    conn = core.open_connection(ws, request, is_combined, streams)
    logger.debug("sim: ws {} open combined={} streams={}", conn.id, is_combined, streams)
    try:
        async for msg in ws:  # ends when the client or drop_connections closes the socket
            if msg.type in COUNTED_FRAMES and not core.incoming(conn):
                break
            if msg.type is WSMsgType.TEXT:
                core.handle_control(conn, msg.data)
            elif msg.type is WSMsgType.PING:
                if conn.flowing.is_set():  # a stalled path answers nothing, pings included
                    await ws.pong(msg.data)
                    core.stats["pongs_sent"] += 1
            elif msg.type is WSMsgType.PONG:
                core.on_pong(conn)
            elif msg.type is WSMsgType.BINARY:
                core.handle_control(conn, msg.data.decode("utf-8", "replace"))
    finally:
        await core.close_connection(conn)
        logger.debug("sim: ws {} closed", conn.id)
    return ws


def build_app(core: SpotCore) -> web.Application:
    app = web.Application(middlewares=[rest_gate])
    app[CORE_KEY] = core
    add_control_routes(app, core.faults, wall_ms)
    routes: list[Any] = [
        web.get("/api/v3/ping", ping),
        web.get("/api/v3/time", server_time),
        web.get("/api/v3/exchangeInfo", exchange_info_handler),
        web.get("/api/v3/depth", depth),
        web.get("/ws", ws_raw),
        web.get("/ws/{streams:.+}", ws_raw),
        web.get("/stream", ws_combined),
        web.get("/ws-api/v3", serve_wsapi),
        *signed_routes(),
        *public_routes(),
    ]
    app.add_routes(routes)
    return app
