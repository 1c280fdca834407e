"""Binance user-data streams (binance.md §9): the requests to make and the events frames carry.

Pure: no socket, no clock, no actor. One ``UserStreamHandler`` per market, driven by the
connection actor the same way as Bybit's (``venues/bybit/user_stream.py``):

Spot, over the WebSocket API (``wss://ws-api.binance.com:443/ws-api/v3``); the REST listenKey
was switched off on 2026-02-20:

1. connect; send ``open_frames(credentials, server_now_ms)``: one signed
   ``userDataStream.subscribe.signature`` request (HMAC, RSA and Ed25519 keys alike, no logon);
2. feed every frame to ``on_frame(raw)``: the reply sets ``subscription_id`` (or
   ``auth_error``), events arrive as ``{"subscriptionId": n, "event": {...}}``;
3. ``eventStreamTerminated`` ends the subscription (``subscribed`` turns False): send
   ``open_frames`` again. ``{"id": null, "status": 401, "error": {"code": -2015}}`` means the
   key was revoked mid-session (``auth_error``);
4. on a disconnect (the WS API has a 24 h limit) call ``on_disconnect()``, reconnect, go to 1,
   and reconcile over REST (open orders, account) for the gap.

USD-M, over a listenKey:

1. ``POST /fapi/v1/listenKey`` (``create_listen_key(credentials)``; keyed, unsigned), hand the
   body to ``on_listen_key(body)``;
2. connect to ``stream_url(ws_base)``; ``open_frames`` sends nothing (the key in the URL is the
   subscription); feed frames to ``on_frame``;
3. ``PUT`` (``keepalive_listen_key``) every ``LISTEN_KEY_KEEPALIVE_S``: a key lives
   ``LISTEN_KEY_VALIDITY_S`` from its last create/keepalive. A keepalive answered ``-1125``
   (key unknown) -> ``listen_key_lost()``;
4. ``listenKeyExpired`` (or ``listen_key_lost``) sets ``needs_listen_key``: create a key,
   reconnect with it, reconcile over REST.

Both markets map to exconn's events (``exconn.messages``): ``executionReport`` and
``ORDER_TRADE_UPDATE`` -> ``OrderUpdate``, plus a ``Fill`` when they report a trade (execution
type TRADE, or CALCULATED: a liquidation's fill, with a trade id and a quantity);
``outboundAccountPosition``, ``balanceUpdate`` and ``ACCOUNT_UPDATE``'s balances ->
``BalanceUpdate``; ``ACCOUNT_UPDATE``'s positions -> ``PositionUpdate``. Recognised events
exconn does not model (``listStatus``: its orders come as executionReports; ``ALGO_UPDATE``;
``TRADE_LITE``, which has no fee: a fee-less fill arriving first would win the de-dup by trade
id over ORDER_TRADE_UPDATE's complete one; ``MARGIN_CALL`` and the like) are counted in
``ignored``. ``on_frame`` never raises.

Choices where Binance's words do not fit exconn's enums (``venue_status``/``venue_type`` keep
the originals): PENDING_NEW (a pending order-list leg, accepted by the exchange) is NEW;
EXPIRED_IN_MATCH (self-trade prevention) is EXPIRED; USD-M's NEW_INSURANCE/NEW_ADL and any
status newer than this module are read from the quantities. Stop orders that become limit
orders (spot STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT; USD-M STOP, TAKE_PROFIT) are LIMIT, the others
MARKET, with ``trigger_price`` set; LIMIT_MAKER and USD-M's GTX are post-only. A trade with no
price (``L`` 0) is not turned into a fill with an invented price: it is counted as malformed
and the order update still goes out (REST reconciliation recovers the fill).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal
from typing import ClassVar

import msgspec
from loguru import logger

from exconn import errors
from exconn.messages import (
    BalanceUpdate,
    Fill,
    OrderUpdate,
    PositionSide,
    PositionUpdate,
    UserEvent,
)
from exconn.model.decimal import utc_from_ms
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.model.symbols import SymbolMap
from exconn.venues.binance.endpoints import LINEAR, api_key_headers
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.signing import ws_api_signed
from exconn.venues.binance.wire import (
    AccountUpdate,
    ErrorBody,
    EventStreamTerminated,
    ExecutionReport,
    ListenKey,
    ListenKeyExpired,
    OrderTradeUpdate,
    OrderTradeUpdateDetail,
    OutboundAccountPosition,
    SubscriptionResult,
    WsRequest,
    spot_user_event_decoder,
    usdm_user_event_decoder,
)
from exconn.venues.binance.wire import BalanceUpdate as WireBalanceUpdate
from exconn.venues.keys import Credentials
from exconn.venues.malformed import LOG_EVERY, MalformedFrames

__all__ = [
    "LISTEN_KEY_KEEPALIVE_S",
    "LISTEN_KEY_VALIDITY_S",
    "LOG_EVERY",
    "PING_INTERVAL_S",
    "SUBSCRIBE_METHOD",
    "ListenKeyRequest",
    "UserStreamHandler",
    "close_listen_key",
    "create_listen_key",
    "keepalive_listen_key",
    "parse_account_position",
    "parse_account_update",
    "parse_balance_update",
    "parse_execution_fill",
    "parse_execution_report",
    "parse_order_trade_fill",
    "parse_order_trade_update",
    "subscribe_request",
    "unsubscribe_request",
]

EXCHANGE = Exchange.BINANCE.value
SUBSCRIBE_METHOD = "userDataStream.subscribe.signature"
UNSUBSCRIBE_METHOD = "userDataStream.unsubscribe"
# The server pings (spot every 20 s, USD-M every 3 min) and the WebSocket library answers:
# nothing for the client to send on a timer.
PING_INTERVAL_S: float | None = None
# USD-M listenKey (binance.md §9.3): valid 60 min from its last create or keepalive; the SDK
# says keep it alive "about every 60 minutes", binance.md "well before expiry, every 30-50 min".
LISTEN_KEY_VALIDITY_S = 60 * 60
LISTEN_KEY_KEEPALIVE_S = 30 * 60
LISTEN_KEY_UNKNOWN = -1125  # keepalive of a key the server no longer knows: create a new one
SUBSCRIPTION_ACTIVE = -2035  # "User Data Stream subscription already active"

_SIDE = {"BUY": OrderSide.BUY, "SELL": OrderSide.SELL}
# Venue order type -> what it trades as once triggered (binance.md §10).
_ORDER_TYPE = {
    "LIMIT": OrderType.LIMIT,
    "LIMIT_MAKER": OrderType.LIMIT,
    "STOP_LOSS_LIMIT": OrderType.LIMIT,
    "TAKE_PROFIT_LIMIT": OrderType.LIMIT,
    "STOP": OrderType.LIMIT,  # USD-M stop-limit
    "TAKE_PROFIT": OrderType.LIMIT,  # USD-M take-profit-limit (spot's TAKE_PROFIT: below)
    "MARKET": OrderType.MARKET,
    "STOP_LOSS": OrderType.MARKET,
    "STOP_MARKET": OrderType.MARKET,
    "TAKE_PROFIT_MARKET": OrderType.MARKET,
    "TRAILING_STOP_MARKET": OrderType.MARKET,
    "LIQUIDATION": OrderType.MARKET,
}
# Spot's TAKE_PROFIT executes as a MARKET order (USD-M's is a limit order).
_SPOT_ORDER_TYPE = {**_ORDER_TYPE, "TAKE_PROFIT": OrderType.MARKET}
_TIME_IN_FORCE = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "GTX": TimeInForce.POST_ONLY,  # USD-M: good till crossing = post-only
}
_STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "PENDING_CANCEL": OrderStatus.PENDING_CANCEL,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_POSITION_SIDE = {"BOTH": PositionSide.BOTH, "LONG": PositionSide.LONG, "SHORT": PositionSide.SHORT}
_FILL_EXECUTIONS = frozenset({"TRADE", "CALCULATED"})
# Enough digits for any Z / z quotient Binance can produce; the average is a quotient, so the
# last digit may be rounded (every other figure here is exact).
_AVG = Context(prec=34)

# Event types each market decodes; every other ``e`` is recognised and counted as ignored.
_SPOT_EVENTS = frozenset(
    {
        "executionReport",
        "outboundAccountPosition",
        "balanceUpdate",
        "eventStreamTerminated",
        "listenKeyExpired",
    }
)
_USDM_EVENTS = frozenset({"ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE", "listenKeyExpired"})


# ============================================================================================
# Requests (binance.md §9). A subscribe request carries the API key and a signature, a listenKey
# request the key in a header: never log them.


def subscribe_request(
    credentials: Credentials,
    timestamp_ms: int,
    request_id: str,
    recv_window_ms: int | None = None,
) -> bytes:
    """``{"id":..,"method":"userDataStream.subscribe.signature","params":{"apiKey":..,
    "timestamp":..,"signature":..}}``: works with every key type on a session without logon.
    ``timestamp_ms`` is the server's time (local time plus the clock offset)."""
    params = {"timestamp": str(timestamp_ms)}
    if recv_window_ms is not None:
        params["recvWindow"] = str(recv_window_ms)
    signed: dict[str, object] = dict(ws_api_signed(params, credentials))
    # Numbers as the docs' example sends them; the signed text of an int is the same.
    signed["timestamp"] = timestamp_ms
    if recv_window_ms is not None:
        signed["recvWindow"] = recv_window_ms
    return msgspec.json.encode(WsRequest(method=SUBSCRIBE_METHOD, id=request_id, params=signed))


def unsubscribe_request(request_id: str, subscription_id: int | None = None) -> bytes:
    """``userDataStream.unsubscribe``; without a subscription id it ends them all."""
    params = None if subscription_id is None else {"subscriptionId": subscription_id}
    return msgspec.json.encode(WsRequest(method=UNSUBSCRIBE_METHOD, id=request_id, params=params))


@dataclass(frozen=True, slots=True)
class ListenKeyRequest:
    """A USD-M listenKey call (security type USER_STREAM: the API key header, no signature),
    made as ``rest.request(r.method, r.path, r.params, decoder, api_key_headers=r.headers)``.
    Its repr leaves the key out."""

    method: str
    path: str
    headers: Mapping[str, str] = field(repr=False)
    params: Mapping[str, str] = field(default_factory=dict)


def _listen_key_request(name: str, credentials: Credentials) -> ListenKeyRequest:
    endpoint = LINEAR[name]
    return ListenKeyRequest(endpoint.method, endpoint.path, api_key_headers(credentials))


def create_listen_key(credentials: Credentials) -> ListenKeyRequest:
    """``POST /fapi/v1/listenKey`` -> ``{"listenKey": ...}``: a new key, or the account's
    active one, extended."""
    return _listen_key_request("listen_key", credentials)


def keepalive_listen_key(credentials: Credentials) -> ListenKeyRequest:
    """``PUT /fapi/v1/listenKey``: another ``LISTEN_KEY_VALIDITY_S`` for the account's key."""
    return _listen_key_request("listen_key_keepalive", credentials)


def close_listen_key(credentials: Credentials) -> ListenKeyRequest:
    """``DELETE /fapi/v1/listenKey``: end the stream."""
    return _listen_key_request("listen_key_close", credentials)


listen_key_decoder = msgspec.json.Decoder(ListenKey)


# ============================================================================================
# Parsers: one Binance event -> model events. ``symbol`` is exconn's name, mapped by the caller.


def _opt(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _nonzero(text: str | None) -> Decimal | None:
    # Binance writes 0 for "none": a market order's price, no stop price, no average yet.
    value = _opt(text)
    return value if value else None


def _side(text: str) -> OrderSide:
    try:
        return _SIDE[text]
    except KeyError:
        raise ValueError(f"binance: side {text!r} is neither BUY nor SELL") from None


def _order_type(text: str, table: Mapping[str, OrderType]) -> OrderType:
    found = table.get(text)
    if found is not None:
        return found
    # A type newer than this table: its name says how it executes (venue_type keeps it).
    return OrderType.LIMIT if "LIMIT" in text else OrderType.MARKET


def _status(text: str, qty: Decimal, filled: Decimal) -> OrderStatus:
    status = _STATUS.get(text)
    if status is not None:
        return status
    # NEW_INSURANCE / NEW_ADL (a liquidation filled against the insurance fund or by ADL) and
    # statuses newer than this table: what the quantities say, rather than losing the update
    # (the read model reconciles by query if that was wrong).
    if qty and filled >= qty:
        return OrderStatus.FILLED
    return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW


def _ms(ms: int) -> datetime:
    return utc_from_ms(ms)


def _is_fill(execution: str, last_qty: Decimal, trade_id: int, last_price: Decimal) -> bool | None:
    """True: the report carries a fill; False: it does not; None: it does, without a price."""
    if execution not in _FILL_EXECUTIONS or not last_qty or trade_id <= 0:
        return False
    return True if last_price else None


# {"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW",
#  "S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000",
#  "C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000",
#  "L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"I":8641984,"m":false,
#  "Z":"0.00000000","Q":"0.00000000",...}
def parse_execution_report(wire: ExecutionReport, symbol: str) -> OrderUpdate:
    """``C`` (the original client id) is set on cancels, when ``c`` is the cancel's own id."""
    qty = Decimal(wire.q)
    filled = Decimal(wire.z)
    quote = Decimal(wire.Q)
    tif = _TIME_IN_FORCE.get(wire.f)
    post_only = wire.o == "LIMIT_MAKER" or tif is TimeInForce.POST_ONLY
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.SPOT.value,
        symbol=symbol,
        client_order_id=wire.C or wire.c or None,
        exchange_order_id=str(wire.i),
        side=_side(wire.S),
        order_type=_order_type(wire.o, _SPOT_ORDER_TYPE),
        time_in_force=TimeInForce.POST_ONLY if post_only else tif,
        status=_status(wire.X, qty, filled),
        price=_nonzero(wire.p),
        qty=qty,
        filled_qty=filled,
        avg_price=_AVG.divide(Decimal(wire.Z), filled) if filled else None,
        ts=_ms(wire.T),
        post_only=post_only,
        trigger_price=_nonzero(wire.P),
        quote_qty=quote if quote else None,
        reject_reason=None if wire.r == "NONE" else wire.r,
        venue_status=wire.X,
        venue_type=wire.o,
        seq=wire.I,
    )


# {"e":"executionReport",...,"x":"TRADE","X":"FILLED","i":12345678,"l":"1.00000000",
#  "L":"2500.00000000","n":"0.00100000","N":"ETH","T":1709654401000,"t":98765432,"m":true,...}
def parse_execution_fill(wire: ExecutionReport, symbol: str) -> Fill:
    """The fill an ``x=TRADE`` report carries (``_is_fill`` says whether it carries one)."""
    return Fill(
        exchange=EXCHANGE,
        market=Market.SPOT.value,
        symbol=symbol,
        trade_id=str(wire.t),
        exchange_order_id=str(wire.i),
        client_order_id=wire.C or wire.c or None,
        side=_side(wire.S),
        price=Decimal(wire.L),
        qty=Decimal(wire.l),
        fee=Decimal(wire.n),
        fee_asset=wire.N or None,
        is_maker=wire.m,
        ts=_ms(wire.T),
        seq=wire.I,
    )


# {"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465651,"o":{"s":"BTCUSDT",
#  "c":"TEST","S":"BUY","o":"LIMIT","f":"GTC","q":"0.001","p":"7100.50","ap":"7100.50",
#  "sp":"0","x":"TRADE","X":"PARTIALLY_FILLED","i":8886774,"l":"0.001","z":"0.001",
#  "L":"7100.50","N":"USDT","n":"0.01000000","T":1568879465651,"t":12345678,"m":true,
#  "R":false,"ps":"LONG","rp":"12.34",...}}
def parse_order_trade_update(wire: OrderTradeUpdateDetail, symbol: str) -> OrderUpdate:
    qty = Decimal(wire.q)
    filled = Decimal(wire.z)
    tif = _TIME_IN_FORCE.get(wire.f)
    return OrderUpdate(
        exchange=EXCHANGE,
        market=Market.LINEAR.value,
        symbol=symbol,
        client_order_id=wire.c or None,
        exchange_order_id=str(wire.i),
        side=_side(wire.S),
        order_type=_order_type(wire.o, _ORDER_TYPE),
        time_in_force=tif,
        status=_status(wire.X, qty, filled),
        price=_nonzero(wire.p),
        qty=qty,
        filled_qty=filled,
        avg_price=_nonzero(wire.ap) if filled else None,
        ts=_ms(wire.T),
        reduce_only=wire.R,
        post_only=tif is TimeInForce.POST_ONLY,
        position_side=_POSITION_SIDE.get(wire.ps),
        trigger_price=_nonzero(wire.sp),
        venue_status=wire.X,
        venue_type=wire.o,
    )


# {"e":"ORDER_TRADE_UPDATE",...,"o":{...,"x":"TRADE","i":8886774,"l":"0.001","L":"7100.50",
#  "N":"USDT","n":"0.01000000","T":1568879465651,"t":12345678,"m":true,...}}
def parse_order_trade_fill(wire: OrderTradeUpdateDetail, symbol: str) -> Fill:
    """The fill an ``x=TRADE`` (or liquidation ``x=CALCULATED``) update carries."""
    return Fill(
        exchange=EXCHANGE,
        market=Market.LINEAR.value,
        symbol=symbol,
        trade_id=str(wire.t),
        exchange_order_id=str(wire.i),
        client_order_id=wire.c or None,
        side=_side(wire.S),
        price=Decimal(wire.L),
        qty=Decimal(wire.l),
        fee=Decimal(wire.n) if wire.n else Decimal(0),
        fee_asset=wire.N or None,
        is_maker=wire.m,
        ts=_ms(wire.T),
    )


# {"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,
#  "B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}
def parse_account_position(wire: OutboundAccountPosition) -> list[BalanceUpdate]:
    """The balances that may have changed, dated by ``u`` (the account's last update)."""
    ts = _ms(wire.u)
    out = []
    for b in wire.B:
        free, locked = Decimal(b.f), Decimal(b.l)
        out.append(
            BalanceUpdate(
                exchange=EXCHANGE,
                market=Market.SPOT.value,
                asset=b.a,
                ts=ts,
                free=free,
                locked=locked,
                total=free + locked,
            )
        )
    return out


# {"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"100.00000000","T":1573200697068}
def parse_balance_update(wire: WireBalanceUpdate) -> BalanceUpdate:
    """A deposit, withdrawal or transfer: the signed ``delta`` only (an
    ``outboundAccountPosition`` with the new balance follows)."""
    return BalanceUpdate(
        exchange=EXCHANGE,
        market=Market.SPOT.value,
        asset=wire.a,
        ts=_ms(wire.T),
        delta=Decimal(wire.d),
    )


# {"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798939,"a":{"m":"ORDER",
#  "B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],
#  "P":[{"s":"BTCUSDT","pa":"20","ep":"6563.6","bep":"6563.559","cr":"0","up":"2850.21200",
#  "mt":"isolated","iw":"13200.70726908","ps":"LONG"}]}}
def parse_account_update(
    wire: AccountUpdate, symbol_of: Callable[[str], str | None]
) -> list[UserEvent]:
    """Balances (``total`` = wallet balance, ``delta`` = change without PnL and fees) and the
    positions that changed. ``symbol_of`` maps a venue symbol to exconn's (None: skip it)."""
    ts = _ms(wire.T)
    reason = wire.a.m or None
    out: list[UserEvent] = [
        BalanceUpdate(
            exchange=EXCHANGE,
            market=Market.LINEAR.value,
            asset=b.a,
            ts=ts,
            total=Decimal(b.wb),
            delta=Decimal(b.bc),
            reason=reason,
        )
        for b in wire.a.B
    ]
    for p in wire.a.P:
        symbol = symbol_of(p.s)
        if symbol is None:
            continue
        side = _POSITION_SIDE.get(p.ps)
        if side is None:
            raise ValueError(f"binance: position side {p.ps!r} is not BOTH, LONG or SHORT")
        qty = Decimal(p.pa)
        out.append(
            PositionUpdate(
                exchange=EXCHANGE,
                market=Market.LINEAR.value,
                symbol=symbol,
                position_side=side,
                qty=qty,
                ts=ts,
                entry_price=_nonzero(p.ep) if qty else None,
                unrealized_pnl=Decimal(p.up),
                realized_pnl=Decimal(p.cr),
                margin_mode=p.mt or None,
            )
        )
    return out


# ============================================================================================
# Frames as they arrive. A frame is one of: a WS API reply {"id","status","result"|"error"},
# a spot event {"subscriptionId","event"}, a bare event {"e",...} (USD-M), or a combined one
# {"stream","data"} (USD-M /private/stream). Only the routing keys are decoded here; the event
# is decoded by the typed union of its market.


class _Frame(msgspec.Struct):
    e: str | None = None
    subscriptionId: int | None = None
    # Raw cannot sit in a union with None: absent is an empty Raw.
    event: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    id: int | str | None = None
    status: int | None = None
    result: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    error: ErrorBody | None = None
    stream: str | None = None
    data: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _Tag(msgspec.Struct):
    e: str


_frame_decoder = msgspec.json.Decoder(_Frame)
_tag_decoder = msgspec.json.Decoder(_Tag)
_subscription_decoder = msgspec.json.Decoder(SubscriptionResult)
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
# What a value that decoded but makes no sense raises while parsing (bad number, side, time).
_PARSE_ERRORS = (ValueError, ArithmeticError, TypeError)


class UserStreamHandler:
    """One user-data stream's state and its frames -> events (pure), for ``market`` (spot:
    WS API subscription; linear: USD-M listenKey).

    State: ``authenticated`` (the venue accepted the key: a 200 to the subscribe request, or a
    listenKey to connect with), ``subscribed`` (events flow), ``auth_error`` (an ``AuthError``
    with Binance's code and message when the key was refused or revoked; fix the key, retrying
    will not help), ``error`` (the last failure of any kind, e.g. ``ClockSkew``: resync the
    clock, then send ``open_frames`` again), spot ``subscription_id``, USD-M
    ``needs_listen_key``. Counters: ``malformed``, ``ignored`` (well-formed events with
    nothing for exconn, and events of another subscription on the same connection),
    ``unmapped`` (events for a symbol not among the instruments: reload them, then reconcile
    over REST).
    """

    exchange: ClassVar[str] = EXCHANGE

    def __init__(self, market: Market, instruments: Iterable[Instrument]) -> None:
        self.market = Market(market)
        self._symbols = SymbolMap(Exchange.BINANCE, self.market)
        for inst in instruments:
            if inst.exchange is not Exchange.BINANCE or inst.market is not self.market:
                raise ValueError(
                    f"instrument {inst.symbol!r} is {inst.exchange} {inst.market}, not "
                    f"binance {self.market}"
                )
            self._symbols.add(inst.symbol, inst.venue_symbol)
        self._spot = self.market is Market.SPOT
        self._events = _SPOT_EVENTS if self._spot else _USDM_EVENTS
        self._decoder = spot_user_event_decoder if self._spot else usdm_user_event_decoder
        self.authenticated = False
        self.subscribed = False
        self.auth_error: errors.AuthError | None = None
        self.error: errors.ExconnError | None = None
        self.subscription_id: int | None = None
        self.needs_listen_key = not self._spot
        self.ignored = 0
        self.unmapped = 0
        self._listen_key: str | None = None
        self._requests = 0
        self._pending: dict[str, str] = {}  # request id -> method, of requests not answered
        self._log = logger.bind(exchange=EXCHANGE, market=self.market.value, stream="user")
        self._malformed = MalformedFrames(self._log)
        self._unmapped_seen: set[str] = set()
        self._ignored_seen: set[str] = set()

    # ------------------------------------------------------------------ what the actor drives
    @property
    def malformed(self) -> int:
        return self._malformed.count

    def open_frames(self, credentials: Credentials, now_ms: int) -> list[bytes]:
        """Frames that (re)establish the subscription on an open socket. Spot: the signed
        ``userDataStream.subscribe.signature`` request (``now_ms``: the server's time). USD-M:
        none; the listenKey in ``stream_url`` subscribed the socket when it opened."""
        self.auth_error = None
        self.error = None
        if not self._spot:
            live = self._listen_key is not None and not self.needs_listen_key
            self.authenticated = self.subscribed = live
            return []
        self.subscribed = False
        self.subscription_id = None
        request_id = self._next_id()
        self._pending[request_id] = SUBSCRIBE_METHOD
        return [subscribe_request(credentials, now_ms, request_id)]

    def ping_frame(self) -> bytes | None:
        """None: Binance's server pings and the WebSocket library pongs."""
        return None

    def close_frames(self) -> list[bytes]:
        """Frames to send before closing the socket on purpose (USD-M: none; close the key
        with ``close_listen_key``)."""
        if not self._spot or not self.subscribed:
            return []
        request_id = self._next_id()
        self._pending[request_id] = UNSUBSCRIBE_METHOD
        return [unsubscribe_request(request_id, self.subscription_id)]

    def on_disconnect(self) -> None:
        """The socket is gone: a new one must subscribe again (spot) or reconnect with the
        listenKey (USD-M, a new key if ``needs_listen_key``)."""
        self.subscribed = False
        self.subscription_id = None
        self._pending.clear()
        if self._spot:
            self.authenticated = False

    # ------------------------------------------------------------------ USD-M listenKey
    @property
    def listen_key(self) -> str | None:
        """The key to connect with. Anyone holding it can read the account's events: keep it
        out of logs (``stream_url`` holds it too)."""
        return self._listen_key

    def on_listen_key(self, body: bytes) -> None:
        """The body of ``create_listen_key``'s reply: ``{"listenKey": "..."}``. Raises
        MalformedMessage on anything else."""
        try:
            key = listen_key_decoder.decode(body).listenKey
        except _DECODE_ERRORS:
            raise errors.MalformedMessage(
                "listenKey reply without a listenKey",
                exchange=EXCHANGE,
                market=self.market.value,
                endpoint="POST /fapi/v1/listenKey",
                raw_excerpt=self._redacted(body),
            ) from None
        if not key:
            raise errors.MalformedMessage(
                "empty listenKey", exchange=EXCHANGE, market=self.market.value
            )
        self._listen_key = key
        self.needs_listen_key = False

    def listen_key_lost(self) -> None:
        """A keepalive was answered ``-1125`` (or the stream refused the key): the key is gone;
        create a new one and reconnect with it."""
        self.needs_listen_key = True
        self.authenticated = self.subscribed = False

    def stream_url(self, ws_base: str) -> str:
        """``<ws_base>/private/ws?listenKey=<key>`` (binance.md §9.3). ``ws_base`` is the
        stream host (``wss://fstream.binance.com``); a route the market-data URL carries
        (``/public``, ``/market``) is dropped. Every event type is delivered: the ``events``
        filter's multi-value syntax is unconfirmed, and unmodelled events are cheap to skip."""
        if self._spot:
            raise ValueError("binance spot user data comes over the WebSocket API, not a URL")
        if self._listen_key is None or self.needs_listen_key:
            raise ValueError("no valid listenKey: create one (create_listen_key) first")
        base = ws_base.rstrip("/")
        for route in ("/public", "/market", "/private"):
            if base.endswith(route):
                base = base[: -len(route)]
                break
        return f"{base}/private/ws?listenKey={self._listen_key}"

    # ------------------------------------------------------------------ frames
    def on_frame(self, raw: bytes) -> list[UserEvent]:
        """The events ``raw`` carries (often none). Never raises: a frame that does not decode
        is counted and skipped, so one bad frame cannot stop the stream."""
        try:
            frame = _frame_decoder.decode(raw)
        except _DECODE_ERRORS:
            self._malformed.add(self._redacted(raw))
            return []
        if frame.e is not None:
            return self._event(raw, frame.e, raw)
        if len(frame.event):
            if (
                frame.subscriptionId is not None
                and self.subscription_id is not None
                and frame.subscriptionId != self.subscription_id
            ):
                self.ignored += 1  # another account's subscription on this connection
                return []
            return self._event(raw, None, frame.event)
        if len(frame.data) and frame.stream is not None:
            return self._event(raw, None, frame.data)
        if frame.status is not None:
            self._on_reply(frame)
            return []
        self._malformed.add(self._redacted(raw))
        return []

    def _event(self, raw: bytes, tag: str | None, body: msgspec.Raw | bytes) -> list[UserEvent]:
        try:
            if tag is None:
                tag = _tag_decoder.decode(body).e
            if tag not in self._events:
                self._ignore(tag)
                return []
            wire = self._decoder.decode(body)
        except _DECODE_ERRORS:
            self._malformed.add(self._redacted(raw))
            return []
        try:
            return self._parse(raw, wire)
        except _PARSE_ERRORS:
            self._malformed.add(self._redacted(raw))
            return []

    def _parse(self, raw: bytes, wire: object) -> list[UserEvent]:
        if isinstance(wire, ExecutionReport):
            return self._order(raw, wire)
        if isinstance(wire, OrderTradeUpdate):
            return self._order(raw, wire.o)
        if isinstance(wire, OutboundAccountPosition):
            return list(parse_account_position(wire))
        if isinstance(wire, WireBalanceUpdate):
            return [parse_balance_update(wire)]
        if isinstance(wire, AccountUpdate):
            return parse_account_update(wire, lambda s: self._symbol(s, "ACCOUNT_UPDATE"))
        if isinstance(wire, EventStreamTerminated):
            # {"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1728973001334}}
            self.subscribed = False
            self.subscription_id = None
            self._log.info("user data subscription terminated by the server; resubscribe")
            return []
        if isinstance(wire, ListenKeyExpired):
            # {"e":"listenKeyExpired","E":1699596037418,"listenKey":"OfYGbUzi3Pra..."}
            if self._spot:  # the legacy spot stream: its subscription is over
                self.subscribed = False
                self.subscription_id = None
            else:
                self.listen_key_lost()
            self._log.warning("listenKey expired: create a new one and reconnect")
            return []
        self._ignore(type(wire).__name__)
        return []

    def _order(self, raw: bytes, wire: ExecutionReport | OrderTradeUpdateDetail) -> list[UserEvent]:
        """The order update, and the fill when the report carries one. Both wire types name
        their fields alike (s, x, l, t, L)."""
        spot = isinstance(wire, ExecutionReport)
        symbol = self._symbol(wire.s, "executionReport" if spot else "ORDER_TRADE_UPDATE")
        if symbol is None:
            return []
        out: list[UserEvent] = [
            parse_execution_report(wire, symbol)
            if isinstance(wire, ExecutionReport)
            else parse_order_trade_update(wire, symbol)
        ]
        is_fill = _is_fill(wire.x, Decimal(wire.l), wire.t, Decimal(wire.L))
        if is_fill is None:
            self._malformed.add(self._redacted(raw))  # a fill without a price: never invent one
        elif is_fill:
            out.append(
                parse_execution_fill(wire, symbol)
                if isinstance(wire, ExecutionReport)
                else parse_order_trade_fill(wire, symbol)
            )
        return out

    # ------------------------------------------------------------------ WS API replies
    # {"id":"d3df8a21-98ea-4fe0-8f4e-0fcea5d418b7","status":200,"result":{"subscriptionId":0}}
    # {"id":"..","status":400,"error":{"code":-1022,"msg":"Signature for this request is not
    #  valid."}}
    # {"id":null,"status":401,"error":{"code":-2015,"msg":"Invalid API-key, IP, or
    #  permissions for action."}}   (the key was revoked mid-session)
    def _on_reply(self, frame: _Frame) -> None:
        request_id = None if frame.id is None else str(frame.id)
        method = self._pending.pop(request_id, None) if request_id is not None else None
        ok = frame.status == 200 and frame.error is None
        if method == SUBSCRIBE_METHOD:
            if ok:
                self._subscribed(frame)
            else:
                self._failed(frame, SUBSCRIBE_METHOD)
        elif method == UNSUBSCRIBE_METHOD:
            if ok:
                self.subscribed = False
                self.subscription_id = None
        elif request_id is None and not ok:
            self._failed(frame, "API session")
        # replies to requests this handler did not send: not its business

    def _subscribed(self, frame: _Frame) -> None:
        try:
            self.subscription_id = _subscription_decoder.decode(frame.result).subscriptionId
        except _DECODE_ERRORS:
            self.subscription_id = None  # subscribed all the same; accept any subscription
        self.authenticated = self.subscribed = True
        self.auth_error = self.error = None

    def _failed(self, frame: _Frame, what: str) -> None:
        code = frame.error.code if frame.error is not None else None
        message = frame.error.msg if frame.error is not None else None
        if code == SUBSCRIPTION_ACTIVE:
            # An earlier request (whose reply was lost) did subscribe this account on this
            # connection: events flow; accept them whatever their subscription id.
            self.authenticated = self.subscribed = True
            self.subscription_id = None
            return
        err = error_for(frame.status or 0, code, message, endpoint=f"WS {what}")
        self.error = err
        if isinstance(err, errors.AuthError):
            self.auth_error = err
            self.authenticated = False
            self.subscribed = False
            self.subscription_id = None
        self._log.warning("user data stream: {}", err)

    # ------------------------------------------------------------------ helpers
    def _symbol(self, venue_symbol: str, what: str) -> str | None:
        try:
            return self._symbols.from_venue(venue_symbol)
        except errors.UnknownSymbol:
            self.unmapped += 1
            if venue_symbol not in self._unmapped_seen:
                self._unmapped_seen.add(venue_symbol)
                self._log.warning(
                    "user data {} for {!r}, which is not among the instruments: skipped "
                    "(reload instruments, then reconcile over REST)",
                    what,
                    venue_symbol,
                )
            return None

    def _ignore(self, what: str) -> None:
        self.ignored += 1
        if what not in self._ignored_seen:
            self._ignored_seen.add(what)
            self._log.info("user data event {!r} is not modelled: skipped", what)

    def _next_id(self) -> str:
        self._requests += 1
        return f"exconn-uds-{self._requests}"

    def _redacted(self, raw: bytes | str) -> bytes:
        # The listenKey gives read access to the account's events: keep it out of the log.
        data = raw.encode() if isinstance(raw, str) else bytes(raw)
        key = self._listen_key
        if key and key.encode() in data:
            return data.replace(key.encode(), b"<listenKey>")
        return data

    def __repr__(self) -> str:
        return (
            f"UserStreamHandler(binance {self.market.value}, authenticated={self.authenticated}, "
            f"subscribed={self.subscribed}, malformed={self.malformed})"
        )
