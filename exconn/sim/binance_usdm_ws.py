"""USD-M WebSocket routes: `/public`, `/market` and `/private`, raw and combined.

A stream requested on the wrong route is accepted and never sends anything, as on Binance
since the routed URLs (binance.md §8.1); unrouted `/ws` and `/stream` count as `/public`.
"""

from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from loguru import logger

from exconn.sim.binance_usdm_conn import OutClose, OutText, UsdmConnection
from exconn.sim.binance_usdm_core import MAX_STREAMS, UsdmCore
from exconn.sim.binance_usdm_rest import CORE
from exconn.sim.limits import USDM_WS_MESSAGES_PER_S, WsConnectionLimits

_encode = msgspec.json.Encoder().encode
_METHODS = {"SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY"}


def _split(raw: str) -> list[str]:
    return [s for s in raw.split("/") if s]


async def _serve(
    request: web.Request,
    route: str,
    combined: bool,
    streams: list[str],
    listen_key: str | None = None,
    events: frozenset[str] | None = None,
) -> web.WebSocketResponse:
    core = request.app[CORE]
    if len(streams) > MAX_STREAMS:
        raise web.HTTPBadRequest(text="too many streams")
    # autoping off: pings and pongs count toward the incoming-message limit.
    ws = web.WebSocketResponse(autoping=False, max_msg_size=1 << 20)
    await ws.prepare(request)
    limits = WsConnectionLimits(
        core.clock(),
        max_per_second=USDM_WS_MESSAGES_PER_S,
        max_lifetime_ms=core.max_connection_ms,
    )
    conn = UsdmConnection(
        core.next_connection_id(),
        ws,
        request,
        route,
        combined,
        streams,
        limits,
        core.stats,
        listen_key,
        events,
    )
    core.add_connection(conn)
    logger.debug("sim-usdm: ws {} route={} streams={}", conn.id, route, streams)
    try:
        async for msg in ws:  # ends when the client or the server closes the socket
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PING, WSMsgType.PONG):
                continue
            if not limits.incoming(core.clock()):
                core.stats["ws_rate_limited"] += 1
                conn.send(OutClose(1008, b"Too many requests"))
                continue
            if msg.type is WSMsgType.PING:
                # A stalled path answers nothing, pings included.
                if not core.stalled(conn):
                    await ws.pong(msg.data)
                    core.stats["pongs_sent"] += 1
            elif msg.type is WSMsgType.PONG:
                core.stats["pongs_received"] += 1
            else:
                text = (
                    msg.data if msg.type is WSMsgType.TEXT else msg.data.decode("utf-8", "replace")
                )
                reply = control(core, conn, text)
                conn.send(OutText(_encode(reply).decode()))
    finally:
        await core.remove_connection(conn)
    return ws


def control(core: UsdmCore, conn: UsdmConnection, text: str) -> dict[str, Any]:
    core.stats["control_messages"] += 1
    try:
        msg = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        return {"error": {"code": 3, "msg": f"Invalid JSON: {exc}"}}
    if not isinstance(msg, dict):
        return {"error": {"code": 3, "msg": "Invalid JSON: expected an object"}}
    request_id = msg.get("id")
    method, params = msg.get("method"), msg.get("params", [])
    if method not in _METHODS or not isinstance(params, list):
        return {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": request_id}
    if method in ("SUBSCRIBE", "UNSUBSCRIBE") and not all(isinstance(p, str) for p in params):
        return {
            "error": {"code": 2, "msg": "Invalid request: params must be strings"},
            "id": request_id,
        }
    if method == "SUBSCRIBE":
        if len(set(conn.streams).union(params)) > MAX_STREAMS:
            return {
                "error": {"code": 2, "msg": "Invalid request: too many streams"},
                "id": request_id,
            }
        conn.streams.update(dict.fromkeys(params))
        return {"result": None, "id": request_id}
    if method == "UNSUBSCRIBE":
        for stream in params:
            conn.streams.pop(stream, None)
        return {"result": None, "id": request_id}
    if method == "LIST_SUBSCRIPTIONS":
        return {"result": list(conn.streams), "id": request_id}
    if not params or params[0] != "combined":
        return {"error": {"code": 0, "msg": "Unknown property"}, "id": request_id}
    if method == "GET_PROPERTY":
        return {"result": conn.combined, "id": request_id}
    if len(params) != 2 or not isinstance(params[1], bool):
        return {
            "error": {"code": 1, "msg": "Invalid value type: expected Boolean"},
            "id": request_id,
        }
    conn.combined = params[1]
    return {"result": None, "id": request_id}


def _market_handlers(route: str) -> list[Any]:
    prefix = "" if route == "unrouted" else f"/{route}"
    served = "public" if route == "unrouted" else route

    async def raw(request: web.Request) -> web.WebSocketResponse:
        return await _serve(request, served, False, _split(request.match_info.get("streams", "")))

    async def combined(request: web.Request) -> web.WebSocketResponse:
        return await _serve(request, served, True, _split(request.query.get("streams", "")))

    return [
        web.get(f"{prefix}/ws", raw),
        web.get(f"{prefix}/ws/{{streams:.+}}", raw),
        web.get(f"{prefix}/stream", combined),
    ]


def _private(combined: bool) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        key = request.query.get("listenKey") or request.match_info.get("key", "")
        if key not in core.trading.listen_keys:
            return web.Response(
                status=400,
                content_type="application/json",
                body=b'{"code":-1125,"msg":"This listenKey does not exist."}',
            )
        raw_events = request.query.get("events")
        events = (
            frozenset(e for e in raw_events.replace(",", "/").split("/") if e)
            if raw_events
            else None
        )
        return await _serve(request, "private", combined, [], key, events)

    return handler


def add_ws_routes(app: web.Application) -> None:
    routes: list[Any] = []
    for route in ("public", "market", "unrouted"):
        routes += _market_handlers(route)
    routes += [
        web.get("/private/ws", _private(False)),
        web.get("/private/ws/{key}", _private(False)),
        web.get("/private/stream", _private(True)),
    ]
    app.add_routes(routes)
