"""Bybit order entry: exconn's order commands -> Bybit V5 requests (REST, and the
``/v5/trade`` WebSocket), and Bybit's answers -> exconn's replies. bybit.md §4, §5, §9, §11.

The single-order REST builders are ``endpoints.create_order / amend_order / cancel_order /
cancel_all`` (with their orderLinkId checks); this module maps exconn's messages onto them and
adds the batch builders (``/v5/order/create-batch``, ``cancel-batch``), which endpoints.py
does not have.

Mapping rules:
- ``category`` is the market (``spot`` / ``linear``); ``symbol`` the venue symbol;
- post-only: ``timeInForce=PostOnly``; IOC/FOK: ``timeInForce``; market orders send none
  (Bybit makes every market order IOC);
- spot market orders always send ``marketUnit=baseCoin``: exconn quantities are in the base
  asset, and a spot market buy without it would spend ``qty`` of the quote coin (bybit.md §5);
- reduce-only (linear): ``reduceOnly=true``, only sent when set;
- hedge mode (linear): ``positionIdx`` 1 for the LONG position, 2 for SHORT, 0 for BOTH;
  omitted when the engine names no position side (the venue's one-way default).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from exconn.errors import ConfigError, InvalidOrder
from exconn.messages import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReply,
    PlaceOrder,
    PositionSide,
)
from exconn.model.decimal import format_decimal
from exconn.model.enums import Market, OrderSide, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.orders.command import (
    Outcome,
    ReplyContext,
    check_client_order_id,
    classify_code,
    is_post_only,
)
from exconn.transport.rest import AnswerFeedback
from exconn.venues.bybit import endpoints
from exconn.venues.bybit.errors import error_for
from exconn.venues.bybit.signing import RECV_WINDOW_DEFAULT_MS, ws_auth_args
from exconn.venues.keys import Credentials

EXCHANGE = "bybit"
BATCH_MAX = {"spot": 10, "linear": 20}  # orders per batch request (bybit.md §3)

_SIDE = {OrderSide.BUY: "Buy", OrderSide.SELL: "Sell"}
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_POSITION_IDX = {PositionSide.BOTH: 0, PositionSide.LONG: 1, PositionSide.SHORT: 2}
_WS_OPS = {"place": "order.create", "amend": "order.amend", "cancel": "order.cancel"}
# /v5/trade codes that mean "back off" (bybit.md §3: the WS order-entry IP limit, system
# protection, too frequent in this session): the venue's HTTP 429, system protection.
WS_BACK_OFF_CODES = frozenset({10403, 10429, 20003})
_encode = msgspec.json.Encoder().encode


def _fail(text: str, market: Market | str | None = None) -> InvalidOrder:
    return InvalidOrder(
        f"Bybit: {text}", exchange=EXCHANGE, market=None if market is None else str(market)
    )


def _category(market: Market | str) -> str:
    return "spot" if Market(market) is Market.SPOT else "linear"


def _check_instrument(market: Market, symbol: str, instrument: Instrument) -> None:
    if (
        instrument.exchange != EXCHANGE
        or instrument.market is not Market(market)
        or instrument.symbol != symbol
    ):
        raise _fail(
            f"{symbol}: the instrument given is {instrument.exchange} {instrument.market} "
            f"{instrument.symbol}",
            market,
        )


def place_request(order: PlaceOrder, instrument: Instrument) -> endpoints.Request:
    """``POST /v5/order/create`` through ``endpoints.create_order``."""
    _check_instrument(order.market, order.symbol, instrument)
    if order.client_order_id is None:
        raise _fail("an order needs its client order id before it is built", order.market)
    check_client_order_id(EXCHANGE, order.client_order_id)
    spot = Market(order.market) is Market.SPOT
    market_order = OrderType(order.type) is OrderType.MARKET
    if spot and (order.reduce_only or order.position_side is not None):
        raise _fail("reduce-only and position side exist only on linear", order.market)
    tif: str | None
    if market_order:
        tif = None
    elif is_post_only(order):
        tif = "PostOnly"
    else:
        tif = _TIF[TimeInForce(order.time_in_force)]
    return endpoints.create_order(
        _category(order.market),
        instrument.venue_symbol,
        _SIDE[OrderSide(order.side)],
        "Market" if market_order else "Limit",
        format_decimal(order.qty),
        order_link_id=order.client_order_id,
        price=None if order.price is None else format_decimal(order.price),
        time_in_force=tif,
        reduce_only=True if order.reduce_only else None,
        market_unit="baseCoin" if spot and market_order else None,
        position_idx=None
        if order.position_side is None
        else _POSITION_IDX[PositionSide(order.position_side)],
    )


def _ref(cmd: AmendOrder | CancelOrder) -> dict[str, str | None]:
    if cmd.client_order_id is not None:
        check_client_order_id(EXCHANGE, cmd.client_order_id)
    if cmd.client_order_id is None and cmd.exchange_order_id is None:
        raise _fail("name the order by client_order_id or exchange_order_id", cmd.market)
    return {"order_id": cmd.exchange_order_id, "order_link_id": cmd.client_order_id}


def amend_request(cmd: AmendOrder, instrument: Instrument) -> endpoints.Request:
    """``POST /v5/order/amend``: qty and/or price of an open order."""
    _check_instrument(cmd.market, cmd.symbol, instrument)
    if cmd.qty is None and cmd.price is None:
        raise _fail("an amend changes qty, price or both", cmd.market)
    if (cmd.qty is not None and cmd.qty <= 0) or (cmd.price is not None and cmd.price <= 0):
        raise _fail("amended qty and price must be > 0", cmd.market)
    return endpoints.amend_order(
        _category(cmd.market),
        instrument.venue_symbol,
        qty=None if cmd.qty is None else format_decimal(cmd.qty),
        price=None if cmd.price is None else format_decimal(cmd.price),
        **_ref(cmd),
    )


def cancel_request(cmd: CancelOrder, instrument: Instrument) -> endpoints.Request:
    _check_instrument(cmd.market, cmd.symbol, instrument)
    return endpoints.cancel_order(_category(cmd.market), instrument.venue_symbol, **_ref(cmd))


def cancel_all_request(cmd: CancelAll, instrument: Instrument | None) -> endpoints.Request:
    """Linear needs a symbol (exconn does not cancel a whole settle coin by accident)."""
    if cmd.symbol is not None:
        if instrument is None:
            raise _fail("cancel all of a symbol needs its instrument", cmd.market)
        _check_instrument(cmd.market, cmd.symbol, instrument)
    return endpoints.cancel_all(
        _category(cmd.market), symbol=None if instrument is None else instrument.venue_symbol
    )


def batch_limit(market: Market | str, action: str) -> int | None:
    """Commands per batch request (``place``: create-batch, ``cancel``: cancel-batch); None:
    no batch for ``action``. At most the venue's item limit (10 spot, 20 linear) and at most
    the per-UID budget of the batch endpoint (10/s linear by default): a batch counts one
    unit per order and the orders past the budget fail (bybit.md §3), so a larger batch
    could never succeed whole; the REST limiter paces the batches that follow."""
    if action not in ("place", "cancel"):
        return None
    category = _category(market)
    path = endpoints.ENDPOINTS["create_batch" if action == "place" else "cancel_batch"].path
    budget = endpoints.UID_LIMITS.get((path, category), BATCH_MAX[category])
    return min(BATCH_MAX[category], budget)


def _batch(name: str, market: Market, items: list[dict[str, Any]]) -> endpoints.Request:
    category = _category(market)
    if not items or len(items) > BATCH_MAX[category]:
        raise _fail(f"a {category} batch holds 1-{BATCH_MAX[category]} orders", market)
    endpoint = endpoints.ENDPOINTS[name]
    return endpoints.Request(
        endpoint.method,
        endpoint.path,
        {"category": category, "request": items},
        endpoint.signed,
        endpoint.order,
    )


def _item(request: endpoints.Request) -> dict[str, Any]:
    # The batch items are the single-order parameters without the category.
    return {k: v for k, v in request.params.items() if k != "category"}


def place_batch_request(
    orders: Sequence[PlaceOrder], instruments: Sequence[Instrument]
) -> endpoints.Request:
    """``POST /v5/order/create-batch``: 10 spot / 20 linear orders of one category."""
    if not orders or len(orders) != len(instruments):
        raise _fail("a batch needs one instrument per order, and at least one order")
    market = orders[0].market
    if any(o.market != market for o in orders):
        raise _fail("a batch holds orders of one category", market)
    items = [_item(place_request(o, i)) for o, i in zip(orders, instruments, strict=True)]
    return _batch("create_batch", market, items)


def cancel_batch_request(
    cmds: Sequence[CancelOrder], instruments: Sequence[Instrument]
) -> endpoints.Request:
    """``POST /v5/order/cancel-batch``."""
    if not cmds or len(cmds) != len(instruments):
        raise _fail("a batch needs one instrument per order, and at least one order")
    market = cmds[0].market
    if any(c.market != market for c in cmds):
        raise _fail("a batch holds orders of one category", market)
    items = [_item(cancel_request(c, i)) for c, i in zip(cmds, instruments, strict=True)]
    return _batch("cancel_batch", market, items)


# ------------------------------------------------------------------------------------------
# /v5/trade WebSocket: {"reqId", "header": {...}, "op", "args": [params]} (bybit.md §9).
# The connection authenticates once (op auth); requests carry no signature.


def _ws(req_id: str, op: str, params: Mapping[str, Any], timestamp_ms: int, recv: int) -> dict:
    if not 0 < len(req_id) <= 36:
        raise _fail(f"reqId must be 1-36 characters, not {req_id!r}")
    return {
        "reqId": req_id,
        "header": {"X-BAPI-TIMESTAMP": str(int(timestamp_ms)), "X-BAPI-RECV-WINDOW": str(recv)},
        "op": op,
        "args": [dict(params)],
    }


def ws_place_request(
    order: PlaceOrder,
    instrument: Instrument,
    *,
    req_id: str,
    timestamp_ms: int,
    credentials: Credentials | None = None,
    recv_window_ms: int = RECV_WINDOW_DEFAULT_MS,
) -> dict[str, Any]:
    """``order.create`` on ``/v5/trade`` (``credentials`` unused: the socket is
    authenticated once; same signature as Binance's)."""
    params = place_request(order, instrument).params
    return _ws(req_id, _WS_OPS["place"], params, timestamp_ms, recv_window_ms)


def ws_cancel_request(
    cmd: CancelOrder,
    instrument: Instrument,
    *,
    req_id: str,
    timestamp_ms: int,
    credentials: Credentials | None = None,
    recv_window_ms: int = RECV_WINDOW_DEFAULT_MS,
) -> dict[str, Any]:
    params = cancel_request(cmd, instrument).params
    return _ws(req_id, _WS_OPS["cancel"], params, timestamp_ms, recv_window_ms)


def ws_amend_request(
    cmd: AmendOrder,
    instrument: Instrument,
    *,
    req_id: str,
    timestamp_ms: int,
    credentials: Credentials | None = None,
    recv_window_ms: int = RECV_WINDOW_DEFAULT_MS,
) -> dict[str, Any]:
    params = amend_request(cmd, instrument).params
    return _ws(req_id, _WS_OPS["amend"], params, timestamp_ms, recv_window_ms)


class WsEntry:
    """Order entry on ``/v5/trade`` for ``exconn.transport.ws_request``: the socket is
    authenticated once (``op: auth``, bybit.md §9), then ``order.create`` / ``order.amend``
    / ``order.cancel`` carry no signature. Cancel-all has no WebSocket op: REST."""

    # Bybit cuts a socket after ~10 min without data or pings (bybit.md §6).
    max_idle_s = 300.0
    AUTH_KEY = "op:auth"
    AUTH_EXPIRY_MS = 5_000

    def __init__(
        self, credentials: Credentials | None, recv_window_ms: int = RECV_WINDOW_DEFAULT_MS
    ) -> None:
        self._credentials = credentials
        self._recv_window_ms = recv_window_ms

    def __repr__(self) -> str:
        return "bybit.WsEntry()"

    @staticmethod
    def supports(market: Market | str, action: str) -> bool:
        return action in _WS_OPS

    def open_frames(self, now_ms: int) -> list[tuple[str, bytes]]:
        if self._credentials is None:
            raise ConfigError("/v5/trade needs API credentials", exchange=EXCHANGE)
        key, expires, signature = ws_auth_args(self._credentials, now_ms + self.AUTH_EXPIRY_MS)
        frame = {"op": "auth", "args": [key, int(expires), signature]}
        return [(self.AUTH_KEY, _encode(frame))]

    def open_error(self, answer: Any) -> str | None:
        if not isinstance(answer, Mapping):
            return "unreadable auth answer"
        if answer.get("retCode") == 0 or answer.get("success") is True:
            return None
        code = answer.get("retCode")
        return f"auth refused (code {code}: {answer.get('retMsg') or answer.get('ret_msg')!r})"

    def answer_key(self, message: Any) -> str | None:
        if not isinstance(message, Mapping):
            return None
        req_id = message.get("reqId")
        if isinstance(req_id, str) and req_id:
            return req_id
        op = message.get("op")
        return f"op:{op}" if isinstance(op, str) else None

    def build(
        self,
        action: str,
        cmd: PlaceOrder | AmendOrder | CancelOrder | Any,
        instrument: Instrument,
        *,
        req_id: str,
        timestamp_ms: int,
    ) -> bytes:
        kw: dict[str, Any] = {
            "req_id": req_id,
            "timestamp_ms": timestamp_ms,
            "recv_window_ms": self._recv_window_ms,
        }
        if action == "place" and isinstance(cmd, PlaceOrder):
            return _encode(ws_place_request(cmd, instrument, **kw))
        if action == "amend" and isinstance(cmd, AmendOrder):
            return _encode(ws_amend_request(cmd, instrument, **kw))
        if action == "cancel" and isinstance(cmd, CancelOrder):
            return _encode(ws_cancel_request(cmd, instrument, **kw))
        raise ConfigError(f"Bybit {action} has no /v5/trade form", exchange=EXCHANGE)

    @staticmethod
    def result_of(answer: Any) -> Any:
        return answer

    @staticmethod
    def feedback(answer: Any, now_ms: float) -> AnswerFeedback:
        """What a ``/v5/trade`` answer says about the request budget, as an HTTP answer would
        say it: its ``header`` object carries the REST usage headers (``X-Bapi-Limit``,
        ``-Status``, ``-Reset-Timestamp``: bybit.md §3, §9; the per-UID endpoint budgets
        are shared with HTTP), ``retCode`` 10006 stops that endpoint's budget until the
        reset, and the back-off codes stand for HTTP 429. ``now_ms`` is unused: the reset
        timestamp is read against the REST client's clock. Total: malformed says nothing."""
        if not isinstance(answer, Mapping):
            return AnswerFeedback()
        header = answer.get("header")
        headers: dict[str, str] = {}
        if isinstance(header, Mapping):
            headers = {str(k): str(v) for k, v in header.items() if isinstance(v, str | int)}
        code = _int_or_none(answer.get("retCode"))
        status = 429 if code in WS_BACK_OFF_CODES else 200
        return AnswerFeedback(status=status, code=code, headers=headers)


# ------------------------------------------------------------------------------------------
# Replies


def _unreadable(ctx: ReplyContext, what: str) -> OrderOutcomeUnknown:
    return OrderOutcomeUnknown(
        exchange=ctx.exchange,
        market=ctx.market,
        symbol=ctx.symbol,
        action=ctx.action,
        client_order_id=ctx.client_order_id,
        known=f"sent; the answer could not be read ({what})",
    )


def _refused(status: int | None, code: Any, message: Any, ctx: ReplyContext) -> OrderReply:
    code = _int_or_none(code)
    text = None if message is None else str(message)
    common = {
        "exchange": ctx.exchange,
        "market": ctx.market,
        "symbol": ctx.symbol,
        "action": ctx.action,
        "client_order_id": ctx.client_order_id,
        "code": code,
    }
    if classify_code(EXCHANGE, status, code) is Outcome.UNKNOWN:
        return OrderOutcomeUnknown(
            known=f"sent; answer code {code} {text!r}: the order may exist", **common
        )
    err = error_for(status or 200, code, text, endpoint=ctx.action)
    return OrderRejected(message=str(err), reason=type(err).__name__, **common)


def _accepted(data: Mapping[str, Any], ctx: ReplyContext) -> OrderAccepted:
    order_id = data.get("orderId") or None
    cid = data.get("orderLinkId") or ctx.client_order_id
    return OrderAccepted(
        exchange=ctx.exchange,
        market=ctx.market,
        symbol=ctx.symbol,
        action=ctx.action,
        client_order_id=cid if ctx.action != "cancel_all" else ctx.client_order_id,
        exchange_order_id=None if order_id is None else str(order_id),
    )


def parse_reply(body: Any, ctx: ReplyContext, status: int | None = None) -> OrderReply:
    """A Bybit answer to one order command: the REST envelope (``result``) or a ``/v5/trade``
    response (``data``). ``retCode`` 0 is an acknowledgement (the order's fate arrives on the
    private stream); 10000/10014/10016 and WS 10019/20006 are UNKNOWN; other codes REJECTED."""
    if not isinstance(body, Mapping) or not isinstance(body.get("retCode"), int):
        if status is not None and status >= 400:
            return _refused(status, None, None, ctx)
        return _unreadable(ctx, "no retCode")
    code = body["retCode"]
    if code != 0:
        return _refused(status, code, body.get("retMsg"), ctx)
    data = body.get("result", body.get("data"))
    return _accepted(data if isinstance(data, Mapping) else {}, ctx)


def parse_batch_reply(body: Any, ctxs: Sequence[ReplyContext]) -> tuple[OrderReply, ...]:
    """A batch answer: items in ``result.list`` / ``data.list`` with their own codes in
    ``retExtInfo.list`` (same order). A whole-request failure applies to every order."""
    if not isinstance(body, Mapping) or not isinstance(body.get("retCode"), int):
        return tuple(_unreadable(c, "no retCode") for c in ctxs)
    if body["retCode"] != 0:
        return tuple(_refused(None, body["retCode"], body.get("retMsg"), c) for c in ctxs)
    data = body.get("result", body.get("data")) or {}
    items = data.get("list") if isinstance(data, Mapping) else None
    codes = (body.get("retExtInfo") or {}).get("list")
    if (
        not isinstance(items, list)
        or not isinstance(codes, list)
        or not (len(items) == len(codes) == len(ctxs))
    ):
        return tuple(_unreadable(c, "batch answer of unexpected shape") for c in ctxs)
    out: list[OrderReply] = []
    for item, result, ctx in zip(items, codes, ctxs, strict=True):
        item_code = result.get("code") if isinstance(result, Mapping) else None
        if item_code == 0:
            out.append(_accepted(item if isinstance(item, Mapping) else {}, ctx))
        elif isinstance(item_code, int):
            out.append(_refused(None, item_code, result.get("msg"), ctx))
        else:
            out.append(_unreadable(ctx, "batch item without a code"))
    return tuple(out)


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
