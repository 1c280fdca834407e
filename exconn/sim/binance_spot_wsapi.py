"""Binance spot WebSocket API (`/ws-api/v3`): sessions, orders and user-data subscriptions.

Requests `{"id", "method", "params"}` get `{"id", "status", "result" | "error",
"rateLimits"}` (rateLimits unless `returnRateLimits=false` in the URL or the request).
User-data events are pushed as `{"subscriptionId": n, "event": {...}}` (binance.md §9.1).

Choices where the docs are silent: an unknown method is answered 400 / -1102; `session.logon`
with an HMAC or RSA key, and `userDataStream.subscribe` without a logon, are answered
401 / -2015 (the key is not good for that action); a second subscription for an account
already subscribed on the connection is -2035.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

from exconn.sim import binance_spot_reply as R
from exconn.sim import errors as E
from exconn.sim.auth import (
    DEFAULT_RECV_WINDOW_MS,
    ApiKey,
    AuthError,
    AuthOk,
    KeyKind,
    Permission,
    timestamp_error,
    verify_binance_ws,
    ws_param_value,
)
from exconn.sim.binance_spot_format import query_order
from exconn.sim.binance_spot_gate import (
    FREE_ON_SUCCESS,
    PLACES_ORDER,
    after_accept_fault,
    auth_rejected,
    request_fault,
    weight,
)
from exconn.sim.binance_spot_reply import ApiError, Reply
from exconn.sim.binance_spot_rest import CORE
from exconn.sim.connection import Connection, OutText
from exconn.sim.core import SpotCore
from exconn.sim.wire import encode

SIGNED = {
    "order.place": True,
    "order.test": True,
    "order.cancel": True,
    "order.status": False,
    "openOrders.status": False,
    "account.status": False,
    "userDataStream.subscribe.signature": False,
}
MAX_SUBSCRIPTIONS = 1000
_decode = msgspec.json.Decoder().decode


def _err(
    request_id: Any, status: int, code: int, msg: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    return E.binance_ws_error(request_id, status, code, msg, data)


class WsApiSession:
    def __init__(self, conn: Connection, connected_ms: int, return_rate_limits: bool) -> None:
        self.conn = conn
        self.connected_ms = connected_ms
        self.return_rate_limits = return_rate_limits
        self.key: ApiKey | None = None
        self.authorized_since: int | None = None
        self.subscriptions: dict[int, str] = {}  # subscription id -> account
        self.logon_subscription: int | None = None
        self._next_sub = 0

    def subscriptions_of(self, account: str) -> list[int]:
        return [sid for sid, acc in self.subscriptions.items() if acc == account]

    def subscribe(self, account: str) -> int:
        if self.subscriptions_of(account):
            raise ApiError(400, -2035, "User Data Stream subscription already active.")
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS or self._next_sub > 65535:
            raise ApiError(400, -2042, "Maximum subscription ID reached for this connection.")
        sid = self._next_sub
        self._next_sub += 1
        self.subscriptions[sid] = account
        return sid

    def terminate(self, sid: int, now: int) -> bytes:
        self.subscriptions.pop(sid, None)
        if sid == self.logon_subscription:
            self.logon_subscription = None
        return encode({"subscriptionId": sid, "event": {"e": "eventStreamTerminated", "E": now}})

    def expire(self, now: int) -> list[bytes]:
        """EXPIRE_SESSION fault: every subscription ends, and a logged-on session learns its
        key is no longer valid (the unsolicited 401 frame of binance.md §9.1)."""
        frames = [self.terminate(sid, now) for sid in list(self.subscriptions)]
        if self.key is not None:
            self.key, self.authorized_since = None, None
            frames.append(encode(_err(None, 401, -2015, E.BINANCE_REJECTED_MBX_KEY)))
        return frames

    def status(self, now: int) -> dict[str, Any]:
        return {
            "apiKey": self.key.api_key if self.key else None,
            "authorizedSince": self.authorized_since,
            "connectedSince": self.connected_ms,
            "returnRateLimits": self.return_rate_limits,
            "serverTime": now,
            "userDataStream": self.logon_subscription is not None if self.key else None,
        }


async def serve_wsapi(request: web.Request) -> web.WebSocketResponse:
    core = request.app[CORE]
    ws = web.WebSocketResponse(autoping=False, compress=False, timeout=1.0)
    await ws.prepare(request)
    conn = core.open_connection(ws, request, False, [])
    return_limits = request.query.get("returnRateLimits", "true") != "false"
    conn.wsapi = WsApiSession(conn, core.clock(), return_limits)
    # Opening a WS API connection costs 2 weight.
    core.limiter.add_weight(conn.ip, 2, core.clock())
    try:
        async for msg in ws:
            # No 5-messages-per-second rule here: the WS API is limited by request weight
            # and order counts (binance.md §3), charged per request below.
            if msg.type is WSMsgType.TEXT:
                response = await handle(core, conn.wsapi, msg.data)
                if response is not None and not conn.send(OutText(encode(response), "")):
                    conn.abort()
            elif msg.type is WSMsgType.PING:
                if conn.flowing.is_set():  # a stalled path answers nothing, pings included
                    await ws.pong(msg.data)
                    core.stats["pongs_sent"] += 1
            elif msg.type is WSMsgType.PONG:
                core.on_pong(conn)
    finally:
        await core.close_connection(conn)
    return ws


async def handle(core: SpotCore, session: WsApiSession, text: str) -> dict[str, Any] | None:
    try:
        msg = _decode(text)
    except msgspec.DecodeError:
        return _err(None, 400, -1100, "Illegal characters found in a parameter.")
    if not isinstance(msg, dict):
        return _err(None, 400, -1100, "Illegal characters found in a parameter.")
    request_id = msg.get("id")
    method = msg.get("method")
    params = msg.get("params") or {}
    if not isinstance(method, str) or not isinstance(params, dict):
        return _err(request_id, 400, -1102, R.MANDATORY % "method")
    if method not in METHODS and method not in SIGNED:
        return _err(request_id, 400, -1102, "Unknown method.")
    with_limits = session.return_rate_limits and params.get("returnRateLimits") is not False
    response = await _dispatch(core, session, request_id, method, params)
    if with_limits and "rateLimits" not in response:
        account = session.key.account if session.key else None
        account = response.pop("_account", account)
        response["rateLimits"] = _limits(core, session, account)
    response.pop("_account", None)
    return response


def _limits(core: SpotCore, session: WsApiSession, account: str | None) -> list[dict[str, Any]]:
    limits = core.limiter.rate_limits(session.conn.ip, account, core.clock())
    # Orders first, then weight, as in the recorded responses.
    return sorted(limits, key=lambda lim: lim["rateLimitType"] != "ORDERS")


async def _dispatch(
    core: SpotCore, session: WsApiSession, request_id: Any, method: str, params: dict[str, Any]
) -> dict[str, Any]:
    now = core.clock()
    ip = session.conn.ip
    text = {k: ws_param_value(v) for k, v in params.items()}
    refusal = request_fault(core, method, text.get("symbol"))
    if refusal is not None:
        data = None
        if refusal.retry_after_ms is not None:
            data = {"serverTime": now, "retryAfter": refusal.retry_after_ms}
        body = refusal.body
        return _err(request_id, refusal.status, body["code"], body["msg"], data)
    auth = _authenticate(core, session, method, params, text, now)
    account = auth.key.account if isinstance(auth, AuthOk) else None
    cost = weight(method, text)
    free = method in FREE_ON_SUCCESS
    is_order = account is not None and method in PLACES_ORDER
    _, rejection = core.limiter.charge(ip, account, 0 if free and account else cost, is_order, now)
    if rejection is not None:
        out = rejection.ws_response(request_id, now)
        out["rateLimits"] = _limits(core, session, None)
        return out
    if isinstance(auth, AuthError):
        return _err(request_id, auth.http_status, auth.code, auth.msg)
    try:
        reply = _execute(core, session, method, auth, text, now)
    except ApiError as err:
        if free:
            core.limiter.add_weight(ip, cost, now)
        return _err(request_id, err.status, err.code, err.msg, err.data) | {"_account": None}
    if SIGNED.get(method):
        fault = after_accept_fault(core, method, text.get("symbol"))
        if fault is not None:
            kind, delay_s = fault
            if kind == "timeout":
                await asyncio.sleep(delay_s)
                return _err(request_id, 408, -1007, R.TIMEOUT)
            return _err(request_id, 500, -1006, R.UNEXPECTED_RESPONSE)
    out: dict[str, Any] = {"id": request_id, "status": reply.status, "result": reply.body}
    if reply.placed and auth is not None:
        out["_account"] = auth.key.account
    return out


def _authenticate(
    core: SpotCore,
    session: WsApiSession,
    method: str,
    params: Mapping[str, Any],
    text: dict[str, str],
    now: int,
) -> AuthOk | AuthError | None:
    """None for methods that need no key."""
    if method == "session.logon" or (method in SIGNED and "signature" in params):
        required = Permission.SPOT_TRADE if SIGNED.get(method) else None
        result = verify_binance_ws(
            core.trading.keys, params, now, ip=session.conn.ip, required=required
        )
    elif method in SIGNED and method != "userDataStream.subscribe.signature" and session.key:
        result = _session_timing(session.key, text, now)
    elif method in SIGNED or method == "userDataStream.subscribe":
        if method == "userDataStream.subscribe" and session.key is not None:
            return AuthOk(session.key)
        if method == "userDataStream.subscribe":
            return AuthError("binance", -2015, E.BINANCE_REJECTED_MBX_KEY, 401)
        result = verify_binance_ws(core.trading.keys, params, now, ip=session.conn.ip)
    else:
        return None
    if isinstance(result, AuthOk):
        if auth_rejected(core, method):
            return AuthError("binance", -2015, E.BINANCE_REJECTED_MBX_KEY, 401)
        if method == "session.logon" and result.key.kind is not KeyKind.ED25519:
            return AuthError("binance", -2015, E.BINANCE_REJECTED_MBX_KEY, 401)
    return result


def _session_timing(key: ApiKey, text: Mapping[str, str], now: int) -> AuthOk | AuthError:
    raw = text.get("timestamp", "")
    if not raw.isdigit():
        return AuthError("binance", -1102, E.BINANCE_MANDATORY_PARAM % "timestamp", 400)
    window = float(text.get("recvWindow") or DEFAULT_RECV_WINDOW_MS)
    side = timestamp_error(int(raw) * 1000, now, int(window * 1000))
    if side is not None:
        msg = E.BINANCE_TIMESTAMP_AHEAD if side == "ahead" else E.BINANCE_TIMESTAMP_OUTSIDE
        return AuthError("binance", -1021, msg, 400)
    return AuthOk(key, int(raw), window, dict(text))


def _execute(
    core: SpotCore,
    session: WsApiSession,
    method: str,
    auth: AuthOk | None,
    params: dict[str, str],
    now: int,
) -> Reply:
    trading = core.trading
    account = auth.key.account if auth else ""
    p = {k: v for k, v in params.items() if k not in ("apiKey", "signature")}
    if method == "ping":
        return Reply({})
    if method == "time":
        return Reply({"serverTime": now})
    if method == "session.status":
        return Reply(session.status(now))
    if method == "session.logon":
        assert auth is not None
        session.key, session.authorized_since = auth.key, now
        return Reply(session.status(now))
    if method == "session.logout":
        if session.logon_subscription is not None:
            session.conn.send(OutText(session.terminate(session.logon_subscription, now)))
        session.key = session.authorized_since = None
        return Reply(session.status(now))
    if method in ("userDataStream.subscribe", "userDataStream.subscribe.signature"):
        sid = session.subscribe(account)
        if method == "userDataStream.subscribe":
            session.logon_subscription = sid
        return Reply({"subscriptionId": sid})
    if method == "userDataStream.unsubscribe":
        raw = params.get("subscriptionId")
        ids = list(session.subscriptions) if raw is None else [int(raw)]
        if raw is not None and int(raw) not in session.subscriptions:
            raise ApiError(400, -2036, "User Data Stream subscription not active.")
        for sid in ids:
            session.conn.send(OutText(session.terminate(sid, now)))
        return Reply({})
    if method == "session.subscriptions":
        return Reply([{"subscriptionId": sid} for sid in session.subscriptions])
    if method == "order.place":
        return trading.place(account, p)
    if method == "order.test":
        return trading.test_order(account, p)
    if method == "order.cancel":
        return trading.cancel(account, p)
    if method == "order.status":
        return trading.query(account, p)
    if method == "openOrders.status":
        symbol = p.get("symbol") or None
        return Reply([query_order(r) for r in trading.open_orders(account, symbol)])
    if method == "account.status":
        return Reply(trading.account_info(account, p.get("omitZeroBalances") == "true"))
    raise ApiError(400, -1102, "Unknown method.")


METHODS = {
    "ping",
    "time",
    "session.logon",
    "session.status",
    "session.logout",
    "userDataStream.subscribe",
    "userDataStream.unsubscribe",
    "session.subscriptions",
}
