"""Binance order entry: exconn's order commands -> Binance requests (REST for spot and USD-M,
WebSocket API ``order.place`` / ``order.cancel`` for spot), and Binance's answers -> exconn's
replies. binance.md §4 (spot), §4.1 (new order parameters), §8.2 (USD-M), §2.3 (WS API
signing), §11 (codes).

``endpoints.py`` has the endpoint table but no order builders: they are here. Every builder
returns an ``OrderRequest`` that ``RestClient.call`` sends signed, as order entry (never
retried; a doubtful answer becomes ``OutcomeUnknown`` with the client order id).

Mapping rules:
- post-only: spot ``type=LIMIT_MAKER`` (no timeInForce), USD-M ``timeInForce=GTX``;
- IOC/FOK: ``timeInForce``; market orders send none;
- reduce-only (USD-M): ``reduceOnly=true``, only sent when set (not allowed in hedge mode);
- position side (USD-M): ``positionSide`` BOTH/LONG/SHORT, only sent when the engine names one;
- ``newOrderRespType=RESULT``: the answer then carries the order status (an IOC that expired
  is visible at once) without the fills list of FULL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from exconn.errors import ConfigError, ExconnError, InvalidOrder
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
from exconn.model.decimal import format_decimal, utc_from_ms
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.orders.command import (
    Outcome,
    ReplyContext,
    check_client_order_id,
    classify_code,
    is_post_only,
)
from exconn.transport.rest import AnswerFeedback
from exconn.venues.binance.endpoints import LINEAR, SPOT, USAGE_HEADERS
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.signing import ws_api_signed
from exconn.venues.keys import Credentials

EXCHANGE = "binance"
BATCH_PLACE_MAX = 5  # USD-M POST /fapi/v1/batchOrders
BATCH_CANCEL_MAX = 10  # USD-M DELETE /fapi/v1/batchOrders
RESP_TYPE = "RESULT"
RECV_WINDOW_MS = 5000

_SIDE = {OrderSide.BUY: "BUY", OrderSide.SELL: "SELL"}
_TIF = {TimeInForce.GTC: "GTC", TimeInForce.IOC: "IOC", TimeInForce.FOK: "FOK"}
_POSITION_SIDE = {PositionSide.BOTH: "BOTH", PositionSide.LONG: "LONG", PositionSide.SHORT: "SHORT"}
_STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.PENDING_NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One signed order-entry REST call (``exconn.transport.rest.PreparedRequest``).
    ``params`` keep their order: Binance signs the query exactly as sent."""

    method: str
    path: str
    params: dict[str, Any]
    signed: bool = True
    is_order: bool = True


def _fail(text: str, market: Market | str | None = None) -> InvalidOrder:
    return InvalidOrder(
        f"Binance: {text}", exchange=EXCHANGE, market=None if market is None else str(market)
    )


def _table(market: Market) -> dict[str, Any]:
    return SPOT if Market(market) is Market.SPOT else LINEAR


def _request(market: Market, name: str, params: Mapping[str, Any]) -> OrderRequest:
    endpoint = _table(market)[name]
    clean = {k: v for k, v in params.items() if v is not None}
    return OrderRequest(endpoint.method, endpoint.path, clean)


def _check_instrument(market: Market, symbol: str, instrument: Instrument) -> None:
    if (
        instrument.exchange != EXCHANGE
        or instrument.market is not Market(market)
        or (instrument.symbol != symbol)
    ):
        raise _fail(
            f"{symbol}: the instrument given is {instrument.exchange} "
            f"{instrument.market} {instrument.symbol}",
            market,
        )


def order_params(order: PlaceOrder, instrument: Instrument) -> dict[str, str]:
    """The new-order parameters (REST and WS API share them), in a fixed order."""
    _check_instrument(order.market, order.symbol, instrument)
    if order.client_order_id is None:
        raise _fail("an order needs its client order id before it is built", order.market)
    check_client_order_id(EXCHANGE, order.client_order_id)
    spot = Market(order.market) is Market.SPOT
    post_only = is_post_only(order)
    params: dict[str, str | None] = {
        "symbol": instrument.venue_symbol,
        "side": _SIDE[OrderSide(order.side)],
    }
    if OrderType(order.type) is OrderType.MARKET:
        params["type"] = "MARKET"
    elif post_only and spot:
        params["type"] = "LIMIT_MAKER"
    else:
        params["type"] = "LIMIT"
        params["timeInForce"] = "GTX" if post_only else _TIF[TimeInForce(order.time_in_force)]
    params["quantity"] = format_decimal(order.qty)
    if order.type is OrderType.LIMIT:
        if order.price is None:
            raise _fail("a limit order needs a price", order.market)
        params["price"] = format_decimal(order.price)
    params["newClientOrderId"] = order.client_order_id
    if not spot:
        if order.position_side is not None:
            params["positionSide"] = _POSITION_SIDE[PositionSide(order.position_side)]
        if order.reduce_only:
            params["reduceOnly"] = "true"
    elif order.reduce_only or order.position_side is not None:
        raise _fail("reduce-only and position side exist only on USD-M", order.market)
    params["newOrderRespType"] = RESP_TYPE
    return {k: v for k, v in params.items() if v is not None}


def place_request(order: PlaceOrder, instrument: Instrument) -> OrderRequest:
    """``POST /api/v3/order`` (spot) or ``POST /fapi/v1/order`` (USD-M)."""
    return _request(order.market, "new_order", order_params(order, instrument))


def _order_ref(cmd: AmendOrder | CancelOrder, id_name: str = "origClientOrderId") -> dict[str, str]:
    if cmd.exchange_order_id is None and cmd.client_order_id is None:
        raise _fail("name the order by client_order_id or exchange_order_id", cmd.market)
    # orderId wins on the venue when both are sent; send both only if both are known.
    out: dict[str, str] = {}
    if cmd.exchange_order_id is not None:
        out["orderId"] = str(cmd.exchange_order_id)
    if cmd.client_order_id is not None:
        out[id_name] = check_client_order_id(EXCHANGE, cmd.client_order_id)
    return out


def amend_request(cmd: AmendOrder, instrument: Instrument) -> OrderRequest:
    """Spot: ``PUT /api/v3/order/amend/keepPriority`` (quantity down only, no price change).
    USD-M: ``PUT /fapi/v1/order`` (side, quantity and price all required; priority lost)."""
    _check_instrument(cmd.market, cmd.symbol, instrument)
    ref = _order_ref(cmd)
    if Market(cmd.market) is Market.SPOT:
        if cmd.price is not None:
            raise _fail(
                "spot amend keeps priority and changes only the quantity (down); "
                "to move the price, cancel and place a new order",
                cmd.market,
            )
        if cmd.qty is None or cmd.qty <= 0:
            raise _fail("spot amend needs a new quantity > 0 (below the current one)", cmd.market)
        params = {"symbol": instrument.venue_symbol, **ref, "newQty": format_decimal(cmd.qty)}
        return _request(cmd.market, "amend_keep_priority", params)
    if cmd.side is None or cmd.qty is None or cmd.price is None:
        raise _fail("USD-M modify needs side, qty and price together", cmd.market)
    params = {
        "symbol": instrument.venue_symbol,
        **ref,
        "side": _SIDE[OrderSide(cmd.side)],
        "quantity": format_decimal(cmd.qty),
        "price": format_decimal(cmd.price),
    }
    return _request(cmd.market, "modify_order", params)


def cancel_request(cmd: CancelOrder, instrument: Instrument) -> OrderRequest:
    _check_instrument(cmd.market, cmd.symbol, instrument)
    params = {"symbol": instrument.venue_symbol, **_order_ref(cmd)}
    return _request(cmd.market, "cancel_order", params)


def cancel_all_request(cmd: CancelAll, instrument: Instrument | None) -> OrderRequest:
    """Spot ``DELETE /api/v3/openOrders``, USD-M ``DELETE /fapi/v1/allOpenOrders``: Binance
    needs the symbol."""
    if cmd.symbol is None or instrument is None:
        raise _fail("cancel all needs a symbol", cmd.market)
    _check_instrument(cmd.market, cmd.symbol, instrument)
    name = "cancel_open_orders" if Market(cmd.market) is Market.SPOT else "cancel_all"
    return _request(cmd.market, name, {"symbol": instrument.venue_symbol})


def batch_limit(market: Market | str, action: str) -> int | None:
    """None: exconn sends these commands one by one. Spot has no batch place (nor batch
    cancel by id). USD-M has ``/fapi/v1/batchOrders`` (the builders below) but the simulator
    does not serve it, so exconn does not use it untested: USD-M orders go one by one too."""
    return None


def _usdm_only(market: Market, what: str) -> None:
    if Market(market) is Market.SPOT:
        raise _fail(f"spot has no {what} batch endpoint; send the orders one by one", market)


def place_batch_request(
    orders: Sequence[PlaceOrder], instruments: Sequence[Instrument]
) -> OrderRequest:
    """USD-M ``POST /fapi/v1/batchOrders`` (at most 5; ``batchOrders`` is a JSON list)."""
    if not orders or len(orders) != len(instruments):
        raise _fail("a batch needs one instrument per order, and at least one order")
    market = orders[0].market
    _usdm_only(market, "order")
    if len(orders) > BATCH_PLACE_MAX or any(o.market != market for o in orders):
        raise _fail(f"a batch holds 1-{BATCH_PLACE_MAX} orders of one market", market)
    items = [order_params(o, i) for o, i in zip(orders, instruments, strict=True)]
    return OrderRequest("POST", "/fapi/v1/batchOrders", {"batchOrders": _encode(items).decode()})


def cancel_batch_request(
    cmds: Sequence[CancelOrder], instruments: Sequence[Instrument]
) -> OrderRequest:
    """USD-M ``DELETE /fapi/v1/batchOrders``: one symbol, up to 10 orders, by client ids
    (``origClientOrderIdList``) or order ids (``orderIdList``), not mixed."""
    if not cmds or len(cmds) != len(instruments):
        raise _fail("a batch needs one instrument per order, and at least one order")
    market = cmds[0].market
    _usdm_only(market, "cancel")
    for c, i in zip(cmds, instruments, strict=True):
        _check_instrument(c.market, c.symbol, i)
    if len({c.symbol for c in cmds}) != 1 or len(cmds) > BATCH_CANCEL_MAX:
        raise _fail(f"a cancel batch holds 1-{BATCH_CANCEL_MAX} orders of one symbol", market)
    params: dict[str, str] = {"symbol": instruments[0].venue_symbol}
    if all(c.client_order_id is not None for c in cmds):
        ids = [check_client_order_id(EXCHANGE, str(c.client_order_id)) for c in cmds]
        params["origClientOrderIdList"] = _encode(ids).decode()
    elif all(c.exchange_order_id is not None for c in cmds):
        params["orderIdList"] = _encode([int(str(c.exchange_order_id)) for c in cmds]).decode()
    else:
        raise _fail("a cancel batch names every order by client id, or every one by order id")
    return OrderRequest("DELETE", "/fapi/v1/batchOrders", params)


# ------------------------------------------------------------------------------------------
# WebSocket API (spot): {"id", "method", "params"} with apiKey, timestamp, signature in params.


def ws_place_request(
    order: PlaceOrder,
    instrument: Instrument,
    *,
    req_id: str,
    timestamp_ms: int,
    credentials: Credentials | None = None,
    recv_window_ms: int = RECV_WINDOW_MS,
) -> dict[str, Any]:
    """``order.place`` on ``ws-api/v3`` (spot only), signed as binance.md §2.3: every param
    but ``signature``, sorted, ``k=v`` joined by ``&``, raw values."""
    if Market(order.market) is not Market.SPOT:
        raise _fail("the WebSocket API order.place here is for spot; USD-M uses REST", order.market)
    params: dict[str, Any] = dict(order_params(order, instrument))
    return _ws_request(req_id, "order.place", params, timestamp_ms, credentials, recv_window_ms)


def ws_cancel_request(
    cmd: CancelOrder,
    instrument: Instrument,
    *,
    req_id: str,
    timestamp_ms: int,
    credentials: Credentials | None = None,
    recv_window_ms: int = RECV_WINDOW_MS,
) -> dict[str, Any]:
    if Market(cmd.market) is not Market.SPOT:
        raise _fail("the WebSocket API order.cancel here is for spot", cmd.market)
    _check_instrument(cmd.market, cmd.symbol, instrument)
    params: dict[str, Any] = {"symbol": instrument.venue_symbol, **_order_ref(cmd)}
    return _ws_request(req_id, "order.cancel", params, timestamp_ms, credentials, recv_window_ms)


def _ws_request(
    req_id: str,
    method: str,
    params: dict[str, Any],
    timestamp_ms: int,
    credentials: Credentials | None,
    recv_window_ms: int,
) -> dict[str, Any]:
    if credentials is None:
        raise ConfigError(f"{method} needs API credentials", exchange=EXCHANGE)
    if not 0 < recv_window_ms <= 60_000:
        raise ConfigError(f"recvWindow must be in 1..60000 ms, not {recv_window_ms}")
    params["recvWindow"] = recv_window_ms
    params["timestamp"] = int(timestamp_ms)
    return {"id": req_id, "method": method, "params": ws_api_signed(params, credentials)}


class WsEntry:
    """Order entry on the spot WebSocket API for ``exconn.transport.ws_request`` (place and
    cancel; amend and cancel-all stay on REST: the simulator serves neither
    ``order.amend.keepPriority`` nor ``openOrders.cancelAll``). Every request is signed on
    its own (binance.md §2.3): it works with HMAC, RSA and Ed25519 keys alike, where
    ``session.logon`` needs an Ed25519 key. USD-M has no WebSocket order entry here: REST."""

    # The venue pings every 20 s and drops a socket unanswered for a minute (binance.md §6);
    # an idle session socket answers no pings, so it is replaced well before.
    max_idle_s = 40.0

    def __init__(self, credentials: Credentials | None, recv_window_ms: int = RECV_WINDOW_MS):
        self._credentials = credentials
        self._recv_window_ms = recv_window_ms

    def __repr__(self) -> str:
        return "binance.WsEntry()"

    @staticmethod
    def supports(market: Market | str, action: str) -> bool:
        return Market(market) is Market.SPOT and action in ("place", "cancel")

    def open_frames(self, now_ms: int) -> list[tuple[str, bytes]]:
        return []

    def open_error(self, answer: Any) -> str | None:
        return None

    def answer_key(self, message: Any) -> str | None:
        if isinstance(message, Mapping) and message.get("id") is not None:
            return str(message["id"])
        return None

    def build(
        self,
        action: str,
        cmd: PlaceOrder | CancelOrder | Any,
        instrument: Instrument,
        *,
        req_id: str,
        timestamp_ms: int,
    ) -> bytes:
        """The request frame; ConfigError for what has no WebSocket form (``supports``)."""
        kw: dict[str, Any] = {
            "req_id": req_id,
            "timestamp_ms": timestamp_ms,
            "credentials": self._credentials,
            "recv_window_ms": self._recv_window_ms,
        }
        if action == "place" and isinstance(cmd, PlaceOrder):
            return _encode(ws_place_request(cmd, instrument, **kw))
        if action == "cancel" and isinstance(cmd, CancelOrder):
            return _encode(ws_cancel_request(cmd, instrument, **kw))
        raise ConfigError(f"Binance {action} has no WebSocket API form here", exchange=EXCHANGE)

    @staticmethod
    def result_of(answer: Any) -> Any:
        """The order inside a WS API answer (what a REST answer's body is)."""
        return answer.get("result") if isinstance(answer, Mapping) else None

    @staticmethod
    def feedback(answer: Any, now_ms: float) -> AnswerFeedback:
        """What a WS API answer says about the request budget, as an HTTP answer would say
        it (binance.md §3): its ``status`` (429/418 stop the host: the WS API spends the
        REST weight of the IP), ``error.code`` (-1015: the account's order count), the
        ``rateLimits`` counts as the usage headers they stand for, and ``error.data.retryAfter``
        (epoch ms, not seconds) as seconds from the answer's ``serverTime``, else from
        ``now_ms`` (the venue's time). Total: a malformed answer says nothing."""
        if not isinstance(answer, Mapping):
            return AnswerFeedback()
        status = _int_or_none(answer.get("status"))
        error = answer.get("error")
        error = error if isinstance(error, Mapping) else {}
        data = error.get("data")
        data = data if isinstance(data, Mapping) else {}
        retry_at = _int_or_none(data.get("retryAfter"))
        retry_after: float | None = None
        if retry_at is not None:
            server_ms = _int_or_none(data.get("serverTime"))
            since = now_ms if server_ms is None else server_ms
            retry_after = max(0.0, (retry_at - since) / 1000)
        return AnswerFeedback(
            status=200 if status is None else status,
            code=_int_or_none(error.get("code")),
            headers=usage_headers(answer.get("rateLimits")),
            retry_after=retry_after,
        )


_USAGE_PREFIX = {kind: prefix for prefix, kind in USAGE_HEADERS.items()}


def usage_headers(rate_limits: Any) -> dict[str, str]:
    """A WS API ``rateLimits`` array as the REST usage headers carrying the same counts
    (``REQUEST_WEIGHT`` 1 ``MINUTE`` -> ``X-MBX-USED-WEIGHT-1M``; the suffix is the one
    ``limit_from_binance`` names the limit by); entries without such a header are left out."""
    out: dict[str, str] = {}
    if not isinstance(rate_limits, list):
        return out
    for entry in rate_limits:
        if not isinstance(entry, Mapping):
            continue
        prefix = _USAGE_PREFIX.get(entry.get("rateLimitType"))
        interval, num = entry.get("interval"), _int_or_none(entry.get("intervalNum"))
        count = _int_or_none(entry.get("count"))
        if prefix is None or not isinstance(interval, str) or not interval:
            continue
        if num is None or count is None:
            continue
        out[f"{prefix}{num}{interval[0].upper()}"] = str(count)
    return out


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ------------------------------------------------------------------------------------------
# Replies


def _accepted(result: Mapping[str, Any], ctx: ReplyContext) -> OrderAccepted:
    if "amendedOrder" in result:  # spot amend keepPriority wraps the order
        result = result["amendedOrder"]
    venue_status = str(result.get("status") or "")
    order_id = result.get("orderId")
    cid = result.get("origClientOrderId") if ctx.action == "cancel" else None
    cid = cid or result.get("clientOrderId") or ctx.client_order_id
    ts = result.get("transactTime") or result.get("updateTime")
    return OrderAccepted(
        exchange=ctx.exchange,
        market=ctx.market,
        symbol=ctx.symbol,
        action=ctx.action,
        client_order_id=cid if ctx.action != "cancel_all" else ctx.client_order_id,
        exchange_order_id=None if order_id is None else str(order_id),
        status=_STATUS.get(venue_status),
        venue_status=venue_status,
        ts=None if (ms := _int_or_none(ts)) is None else utc_from_ms(ms),
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
            known=f"sent; answer status {status} code {code}: {text!r}: execution status unknown",
            **common,
        )
    err: ExconnError = error_for(status or 400, code, text, endpoint=ctx.action, retry_after=None)
    return OrderRejected(message=str(err), reason=type(err).__name__, **common)


def parse_reply(body: Any, ctx: ReplyContext, status: int | None = None) -> OrderReply:
    """A Binance answer to one order command: a REST body (the order, or ``{code, msg}``
    with the HTTP ``status``) or a WS API response ``{id, status, result | error}``.
    Something that is neither is UNKNOWN: exconn cannot tell what happened."""
    if isinstance(body, Mapping) and ("result" in body or "error" in body):
        ws_status = body.get("status")
        ws_status = ws_status if isinstance(ws_status, int) else None
        if "error" in body and isinstance(body["error"], Mapping):
            err = body["error"]
            return _refused(ws_status or 400, err.get("code"), err.get("msg"), ctx)
        result = body.get("result")
        if ws_status == 200 and isinstance(result, Mapping):
            return _accepted(result, ctx)
        return _unreadable(ctx, f"WS API status {ws_status}")
    if isinstance(body, Mapping):
        if "code" in body and "orderId" not in body and "symbol" not in body:
            return _refused(status or 400, body.get("code"), body.get("msg"), ctx)
        if status is not None and status >= 400:
            return _refused(status, None, None, ctx)
        return _accepted(body, ctx)
    if isinstance(body, list) and ctx.action == "cancel_all":
        return OrderAccepted(
            exchange=ctx.exchange,
            market=ctx.market,
            symbol=ctx.symbol,
            action=ctx.action,
            client_order_id=None,
        )
    return _unreadable(ctx, f"unexpected body type {type(body).__name__}")


def _unreadable(ctx: ReplyContext, what: str) -> OrderOutcomeUnknown:
    return OrderOutcomeUnknown(
        exchange=ctx.exchange,
        market=ctx.market,
        symbol=ctx.symbol,
        action=ctx.action,
        client_order_id=ctx.client_order_id,
        known=f"sent; the answer could not be read ({what})",
    )


def parse_batch_reply(body: Any, ctxs: Sequence[ReplyContext]) -> tuple[OrderReply, ...]:
    """USD-M ``batchOrders``: a list in request order, each an order or ``{code, msg}``.
    A body of another shape leaves every order UNKNOWN."""
    if not isinstance(body, list) or len(body) != len(ctxs):
        return tuple(_unreadable(c, "batch answer of unexpected shape") for c in ctxs)
    return tuple(parse_reply(item, ctx) for item, ctx in zip(body, ctxs, strict=True))
