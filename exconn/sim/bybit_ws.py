"""Bybit V5 WebSocket endpoints: public `/v5/public/{spot|linear}` and private `/v5/private`.

Acks and pongs use each channel's own shape (bybit.md §6, payloads bybit_ws_*). Chosen
where the docs are silent: a subscribe request with any invalid topic fails as a whole
(the recorded failure names one topic); subscribing to a topic already held fails with
"error:already subscribed,topic:…"; private subscribe before auth fails with
"Request not authorized"; a second auth fails with "Repeat auth".
"""

import re
from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from loguru import logger

from exconn.sim import errors as E
from exconn.sim.auth import verify_bybit_ws_auth
from exconn.sim.bybit_book import DEPTHS
from exconn.sim.bybit_conn import BybitConnection
from exconn.sim.bybit_core import VENUE, BybitCore, wall_ms
from exconn.sim.bybit_rest import CORE_KEY
from exconn.sim.bybit_tape import INTERVAL_MS
from exconn.sim.fault_registry import FaultKind

SPOT_MAX_ARGS = 10
MAX_ARGS_CHARS = 21_000
PRIVATE_TOPICS = ("order", "execution", "position", "wallet")
PRIVATE_CATEGORISED = {
    "order.spot",
    "order.linear",
    "execution.spot",
    "execution.linear",
    "position.linear",
}
_PUBLIC = re.compile(r"(?:orderbook\.(\d+)|publicTrade|tickers|kline\.([0-9A-Z]+))\.([A-Z0-9]+)")


def _ack(conn: BybitConnection, op: str, req_id: Any, ok: bool, msg: str) -> dict[str, Any]:
    if conn.channel == "private":
        out: dict[str, Any] = {"success": ok, "ret_msg": msg, "op": op, "conn_id": conn.conn_id}
        if req_id is not None:
            out["req_id"] = req_id
        return out
    ret_msg = msg or ("subscribe" if conn.channel == "spot" and ok else "")
    if conn.channel == "spot" and ok:
        ret_msg = op
    return {
        "success": ok,
        "ret_msg": ret_msg,
        "conn_id": conn.conn_id,
        "req_id": "" if req_id is None else req_id,
        "op": op,
    }


def _pong(conn: BybitConnection, req_id: Any) -> dict[str, Any]:
    if conn.channel == "private":
        return {
            "req_id": "" if req_id is None else req_id,
            "op": "pong",
            "args": [str(wall_ms())],
            "conn_id": conn.conn_id,
        }
    out: dict[str, Any] = {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id}
    if conn.channel == "linear":
        out["req_id"] = "" if req_id is None else req_id
    out["op"] = "ping"
    return out


def _valid_public(core: BybitCore, channel: str, topic: str) -> bool:
    m = _PUBLIC.fullmatch(topic)
    if m is None or m.group(3) not in core.symbols[channel]:
        return False
    if m.group(1) is not None and int(m.group(1)) not in DEPTHS:
        return False
    return m.group(2) is None or m.group(2) in INTERVAL_MS


def _subscribe(core: BybitCore, conn: BybitConnection, args: Any, req_id: Any) -> None:
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        core.send_reply(conn, _ack(conn, "subscribe", req_id, False, "Invalid topic: []"))
        return
    topics: list[str] = list(args)
    error = None
    if conn.channel == "private":
        if conn.authed_account is None:
            error = "Request not authorized"
        elif any(t in ("order", "execution", "position") for t in topics) and any(
            t in PRIVATE_CATEGORISED for t in topics
        ):  # `wallet` has no categorised form, so it mixes with either
            error = "all-in-one and categorised topics cannot be mixed"
        bad = [t for t in topics if t not in PRIVATE_TOPICS and t not in PRIVATE_CATEGORISED]
    else:
        if conn.channel == "spot" and len(topics) > SPOT_MAX_ARGS:
            error = f"args size >{SPOT_MAX_ARGS}"
        elif sum(len(t) for t in set(conn.topics).union(topics)) > MAX_ARGS_CHARS:
            error = f"args length >{MAX_ARGS_CHARS}"
        bad = [t for t in topics if not _valid_public(core, conn.channel, t)]
    if error is None and bad:
        error = f"Invalid topic: {bad[0]}"
    held = [t for t in topics if t in conn.topics]
    if error is None and held:
        error = f"error:already subscribed,topic:{held[0]}"
    if error is not None:
        core.send_reply(conn, _ack(conn, "subscribe", req_id, False, error))
        return
    conn.topics.update(dict.fromkeys(topics))
    core.send_reply(conn, _ack(conn, "subscribe", req_id, True, ""))
    if conn.channel != "private":
        for topic in topics:
            _initial(core, conn, topic)
        # After the ack and the snapshot are queued, so the flood continues that snapshot.
        core.maybe_start_flood(conn, topics)


def _initial(core: BybitCore, conn: BybitConnection, topic: str) -> None:
    """What a new subscription gets at once: a book snapshot, a ticker snapshot."""
    cat = conn.channel
    parts = topic.split(".")
    if parts[0] == "orderbook":
        depth, symbol = int(parts[1]), parts[2]
        view = core.feeds[(cat, symbol)].views[depth]
        bids, asks = view.levels()
        wire = core.wires[(cat, symbol)]
        now = wall_ms()
        core.send_reply(
            conn,
            {
                "topic": topic,
                "type": "snapshot",
                "ts": now,
                "data": {
                    "s": symbol,
                    "b": wire.levels(bids),
                    "a": wire.levels(asks),
                    "u": view.u,
                    "seq": core.book(cat, symbol).update_id,
                },
                "cts": now,
            },
        )
    elif parts[0] == "tickers":
        msg = core.ticker_message(cat, parts[1], conn)
        if msg is not None:
            core.send_reply(conn, msg)


def _auth(core: BybitCore, conn: BybitConnection, msg: dict[str, Any], ip: str) -> None:
    req_id = msg.get("req_id")
    if conn.channel != "private":
        core.send_reply(conn, _ack(conn, "auth", req_id, False, "auth is not supported here"))
        return
    if conn.authed_account is not None:
        core.send_reply(conn, _ack(conn, "auth", req_id, False, "Repeat auth"))
        return
    if core.faults.take(FaultKind.REJECT_AUTH, wall_ms(), venue=VENUE, connection=conn.id):
        core.send_reply(
            conn, E.bybit_ws_auth_reply(10003, E.BYBIT_WS_INVALID_KEY, conn.conn_id, req_id)
        )
        return
    result = verify_bybit_ws_auth(core.keys, msg.get("args"), core.now(), ip=ip)
    if not result.ok:
        core.send_reply(conn, E.bybit_ws_auth_reply(result.code, result.msg, conn.conn_id, req_id))
        return
    conn.authed_account = result.key.account
    core.send_reply(conn, _ack(conn, "auth", req_id, True, ""))


def handle_text(core: BybitCore, conn: BybitConnection, text: str, ip: str) -> None:
    core.stats["control_messages"] += 1
    try:
        msg = msgspec.json.decode(text)
    except msgspec.DecodeError:
        msg = None
    if not isinstance(msg, dict):
        core.send_reply(conn, _ack(conn, "", None, False, "error:request not json"))
        return
    op, req_id = msg.get("op"), msg.get("req_id")
    if op == "ping":
        core.stats["pongs_sent"] += 1
        core.send_reply(conn, _pong(conn, req_id))
    elif op == "subscribe":
        _subscribe(core, conn, msg.get("args"), req_id)
    elif op == "unsubscribe":
        args = msg.get("args") if isinstance(msg.get("args"), list) else []
        for topic in args:
            conn.topics.pop(topic, None)
        core.send_reply(conn, _ack(conn, "unsubscribe", req_id, True, ""))
    elif op == "auth":
        _auth(core, conn, msg, ip)
    else:
        core.send_reply(conn, _ack(conn, str(op), req_id, False, f"error:unknown op {op}"))


async def _serve(request: web.Request, channel: str) -> web.WebSocketResponse:
    core = request.app[CORE_KEY]
    # autoping off: a stalled connection must not answer pings either (see below).
    ws = web.WebSocketResponse(autoping=False, compress=False, timeout=1.0)
    await ws.prepare(request)
    conn = BybitConnection(core.next_conn_id(), channel, ws, request, core.stats, core.stalled)
    core.open_connection(conn)
    ip = request.remote or "127.0.0.1"
    logger.debug("sim bybit: ws {} open on {}", conn.id, channel)
    try:
        async for msg in ws:  # ends when the client, a fault or stop() closes the socket
            if msg.type is WSMsgType.TEXT:
                handle_text(core, conn, msg.data, ip)
            elif msg.type is WSMsgType.PING and not core.stalled(conn):
                await ws.pong(msg.data)  # a stalled path answers nothing, pings included
    finally:
        await core.close_connection(conn)
    return ws


async def public_spot(request: web.Request) -> web.WebSocketResponse:
    return await _serve(request, "spot")


async def public_linear(request: web.Request) -> web.WebSocketResponse:
    return await _serve(request, "linear")


async def private(request: web.Request) -> web.WebSocketResponse:
    return await _serve(request, "private")


def build_ws_routes() -> list[web.RouteDef]:
    return [
        web.get("/v5/public/spot", public_spot),
        web.get("/v5/public/linear", public_linear),
        web.get("/v5/private", private),
    ]
