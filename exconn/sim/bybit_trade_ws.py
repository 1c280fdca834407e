"""Bybit V5 order-entry WebSocket `/v5/trade` (bybit.md §9, payloads bybit_wstrade_*).

`{"op":"auth","args":[key, expires, sig]}` authenticates the socket (same signature as the
private stream); then `{"reqId","header":{"X-BAPI-TIMESTAMP","X-BAPI-RECV-WINDOW"},"op":
"order.create"|"order.amend"|"order.cancel"|"order.create-batch"|"order.cancel-batch",
"args":[{...REST params...}]}` acts as the REST endpoint would, sharing its rate budget, and
is answered `{"reqId","retCode","retMsg","op","data","retExtInfo","header","connId"}`.

Faults, named by the op as endpoint (e.g. `endpoint="order.create"`): `error_after_accept`
(executed, answered 10016), `timeout_after_accept` (executed, answered after `delay_s`),
`drop` (executed, then the socket is closed abruptly without an answer).
Chosen where the docs are silent: an order op before auth is answered 10003 "Request not
authorized"; a reqId reused on the same socket 20006; a missing or over-long reqId 10001; an
unknown op 10404; a header timestamp outside the receive window 10002, as on REST.
"""

import asyncio
from typing import Any

import msgspec
from aiohttp import WSMsgType, web
from loguru import logger

from exconn.sim import bybit_batch as B
from exconn.sim import bybit_trading as T
from exconn.sim import errors as E
from exconn.sim.auth import DEFAULT_RECV_WINDOW_MS, timestamp_error, verify_bybit_ws_auth
from exconn.sim.bybit_conn import BybitConnection
from exconn.sim.bybit_core import VENUE, BybitCore, wall_ms
from exconn.sim.bybit_rest import CORE_KEY, TIMEOUT_DELAY_S
from exconn.sim.fault_registry import FaultKind

CHANNEL = "trade"
_encode = msgspec.json.Encoder().encode
# op -> the REST path whose operation and rate budget it shares
PATHS = {
    "order.create": "/v5/order/create",
    "order.amend": "/v5/order/amend",
    "order.cancel": "/v5/order/cancel",
    "order.create-batch": B.CREATE,
    "order.cancel-batch": B.CANCEL,
}
SINGLE = {
    "order.create": T.create_order,
    "order.amend": T.amend_order,
    "order.cancel": T.cancel_order,
}
MAX_REQ_ID = 36


class TradeSession:
    """What a `/v5/trade` socket holds beyond the connection: the reqIds it has seen."""

    def __init__(self) -> None:
        self.req_ids: set[str] = set()


def _reply(conn: BybitConnection, op: str, code: int, msg: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"retCode": code, "retMsg": msg, "op": op}
    out.update(extra)
    out["connId"] = conn.conn_id
    return out


def _answer(
    conn: BybitConnection,
    req_id: str,
    op: str,
    code: int,
    msg: str,
    data: Any = None,
    ext: Any = None,
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    header = dict(limits or {})
    header["Traceid"] = f"sim{wall_ms():x}"
    header["Timenow"] = str(wall_ms())
    return {
        "reqId": req_id,
        "retCode": code,
        "retMsg": msg,
        "op": op,
        "data": {} if data is None else data,
        "retExtInfo": {} if ext is None else ext,
        "header": header,
        "connId": conn.conn_id,
    }


def _auth(core: BybitCore, conn: BybitConnection, msg: dict[str, Any], ip: str) -> dict[str, Any]:
    if conn.authed_account is not None:
        return _reply(conn, "auth", 20001, "Repeat auth")
    if core.faults.take(FaultKind.REJECT_AUTH, wall_ms(), venue=VENUE, connection=conn.id):
        return _reply(conn, "auth", 10003, E.BYBIT_WS_INVALID_KEY)
    result = verify_bybit_ws_auth(core.keys, msg.get("args"), core.now(), ip=ip)
    if not result.ok:
        return _reply(conn, "auth", result.code, result.msg)
    conn.authed_account = result.key.account
    return _reply(conn, "auth", 0, "OK")


def _timing(core: BybitCore, header: Any) -> str | None:
    if not isinstance(header, dict):
        return E.BYBIT_PARAM_ERROR
    raw_ts = str(header.get("X-BAPI-TIMESTAMP", ""))
    raw_rw = str(header.get("X-BAPI-RECV-WINDOW", DEFAULT_RECV_WINDOW_MS))
    if not raw_ts.isdigit() or not raw_rw.isdigit():
        return E.BYBIT_PARAM_ERROR
    now = core.now()
    if timestamp_error(int(raw_ts) * 1000, now, int(raw_rw) * 1000) is not None:
        return E.BYBIT_TIMESTAMP % (raw_ts, now, raw_rw)
    return None


def _rate_limit_fault(
    core: BybitCore, conn: BybitConnection, req_id: str, op: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    """HTTP_429 fault: the per-UID endpoint limit answer (10006, as REST's), its reset
    ``retry_after`` s (default 1) ahead; nothing is executed."""
    symbol = str(params.get("symbol")) if params.get("symbol") else None
    fault = core.faults.take(FaultKind.HTTP_429, wall_ms(), venue=VENUE, endpoint=op, symbol=symbol)
    if fault is None:
        return None
    reset = core.now() + int(float(fault.params.get("retry_after", 1)) * 1000)
    limits = {
        "X-Bapi-Limit": "10",
        "X-Bapi-Limit-Status": "0",
        "X-Bapi-Limit-Reset-Timestamp": str(reset),
    }
    return _answer(conn, req_id, op, 10006, E.BYBIT_TOO_MANY_VISITS, limits=limits)


async def handle(
    core: BybitCore, conn: BybitConnection, session: TradeSession, text: str, ip: str
) -> dict[str, Any] | None:
    """The answer to one frame; None when there is none (the socket was dropped)."""
    core.stats["control_messages"] += 1
    try:
        msg = msgspec.json.decode(text)
    except msgspec.DecodeError:
        msg = None
    if not isinstance(msg, dict):
        return _reply(conn, "", 10001, E.BYBIT_WS_PARAMS_ERROR)
    op = msg.get("op")
    if op == "ping":
        core.stats["pongs_sent"] += 1
        return _reply(conn, "pong", 0, "OK", data=[str(wall_ms())])
    if op == "auth":
        return _auth(core, conn, msg, ip)
    req_id = msg.get("reqId")
    op_text = str(op)
    if not isinstance(req_id, str) or not 0 < len(req_id) <= MAX_REQ_ID:
        return _answer(conn, "", op_text, 10001, "params error: reqId invalid")
    if op not in PATHS:
        return _answer(conn, req_id, op_text, 10404, f"unknown op {op_text}")
    if req_id in session.req_ids:
        return _answer(conn, req_id, op_text, 20006, "duplicate reqId")
    session.req_ids.add(req_id)
    account = conn.authed_account
    if account is None:
        return _answer(conn, req_id, op_text, 10003, "Request not authorized")
    late = _timing(core, msg.get("header"))
    if late is not None:
        code = 10001 if late == E.BYBIT_PARAM_ERROR else 10002
        return _answer(conn, req_id, op_text, code, late)
    args = msg.get("args")
    if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
        return _answer(conn, req_id, op_text, 10001, E.BYBIT_PARAM_ERROR)
    params: dict[str, Any] = args[0]
    path = PATHS[op_text]
    category = str(params.get("category")) if params.get("category") else None
    batch = path in B.OPS
    units = max(1, len(B.items_of(params) or ())) if batch else 1
    limited = _rate_limit_fault(core, conn, req_id, op_text, params)
    if limited is not None:
        return limited
    charge = core.limiter.charge(ip, account, path, wall_ms(), category=category, units=units)
    if charge.rejection is not None:
        return _answer(conn, req_id, op_text, 10006, E.BYBIT_TOO_MANY_VISITS, limits=charge.headers)
    ext: Any = None
    if batch:
        answer = B.run(core, account, path, params, charge.admitted)
        code, text_msg, data = answer.code, answer.msg, answer.result
        ext = {"list": answer.ext} if answer.ext else None
    else:
        code, text_msg, data = SINGLE[op_text](core, account, params)
    where = {"venue": VENUE, "endpoint": op_text}
    symbol = str(params.get("symbol")) if params.get("symbol") else None
    if core.faults.take(FaultKind.DROP, wall_ms(), connection=conn.id, symbol=symbol, **where):
        core.stats["connections_dropped"] += 1
        conn.abort()
        return None
    if core.faults.take(FaultKind.ERROR_AFTER_ACCEPT, wall_ms(), symbol=symbol, **where):
        return _answer(conn, req_id, op_text, 10016, "Server error.", limits=charge.headers)
    fault = core.faults.take(FaultKind.TIMEOUT_AFTER_ACCEPT, wall_ms(), symbol=symbol, **where)
    if fault is not None:
        await asyncio.sleep(float(fault.params.get("delay_s", TIMEOUT_DELAY_S)))
    return _answer(conn, req_id, op_text, code, text_msg, data, ext, charge.headers)


async def serve_trade(request: web.Request) -> web.WebSocketResponse:
    core = request.app[CORE_KEY]
    ws = web.WebSocketResponse(autoping=True, compress=False, timeout=1.0)
    await ws.prepare(request)
    conn = BybitConnection(core.next_conn_id(), CHANNEL, ws, request, core.stats, core.stalled)
    core.open_connection(conn)
    session = TradeSession()
    ip = request.remote or "127.0.0.1"
    logger.debug("sim bybit: ws {} open on /v5/trade", conn.id)
    try:
        async for msg in ws:  # ends when the client, a fault or stop() closes the socket
            if msg.type is WSMsgType.TEXT:
                reply = await handle(core, conn, session, msg.data, ip)
                if reply is not None:
                    core.send_reply(conn, reply)
    finally:
        await core.close_connection(conn)
    return ws


def build_trade_routes() -> list[web.RouteDef]:
    return [web.get("/v5/trade", serve_trade)]
