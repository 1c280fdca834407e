"""Bybit V5 private WebSocket (bybit.md §8): the frames to send and the events frames carry.

Pure: no socket, no clock, no actor. The connection actor drives a ``UserStreamHandler``:

1. connect to ``wss://stream.bybit.com/v5/private`` (``/v5/private`` on any environment);
2. send ``open_frames(credentials, server_now_ms)``: ``auth`` then ``subscribe``. Bybit reads
   a connection's frames in order, so the subscribe is handled after the auth; if the auth
   fails, the subscribe fails with it and ``auth_error`` says why;
3. feed every frame to ``on_frame(raw)``, which returns the model events it carries; send
   ``ping_frame()`` every ``PING_INTERVAL_S`` (the server cuts a silent connection);
4. on a disconnect call ``on_disconnect()``, reconnect, go to 2, then reconcile over REST
   (orders, executions, positions, wallet): the private stream has no replay.

Every private topic maps to the events Binance produces too (``exconn.messages``): ``order`` ->
``OrderUpdate``, ``execution`` -> ``Fill``, ``position`` -> ``PositionUpdate``, ``wallet`` ->
``BalanceUpdate``. Categories exconn does not trade (inverse, option) and symbols outside the
instruments given are skipped and counted (``ignored``, ``unmapped``); a frame or item that does
not decode is counted in ``malformed`` and logged once in ``LOG_EVERY``. ``on_frame`` never raises.

Choices where Bybit's words do not fit exconn's enums (``venue_status``/``venue_type`` keep the
originals):
- ``Untriggered`` and ``Triggered`` are NEW (accepted and open; ``trigger_price`` is set);
  ``Deactivated`` (a conditional order cancelled before it triggered) and spot's
  ``PartiallyFilledCanceled`` are CANCELED; ``Rejected`` after a partial fill is CANCELED,
  because exconn's REJECTED means "never accepted" and cannot follow fills.
- A stop order's ``venue_type`` is its ``stopOrderType`` (``StopLoss``, ``TakeProfit``, ...).
- Spot market buys are sized in the quote coin unless ``marketUnit`` is ``baseCoin``
  (bybit.md §5): their ``qty`` is 0 and ``quote_qty`` holds the amount.
- ``execution`` items of type ``Funding`` carry no trade and are skipped; every other type with
  a quantity (Trade, AdlTrade, BustTrade, Delivery, ...) is a ``Fill``. ``execution.fast`` is
  not subscribed: it has no fee, and a fee-less fill arriving first would win the de-dup by
  ``execId`` over the complete one.
- ``wallet`` balances are the Unified Trading Account's (market ``unified``): ``total`` is
  ``walletBalance`` and ``locked`` is ``locked``; Bybit sends no "free" figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, TypeVar

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
from exconn.venues.bybit.errors import error_for
from exconn.venues.bybit.parse import opt_decimal
from exconn.venues.bybit.signing import ws_auth_args
from exconn.venues.bybit.wire import (
    CommandData,
    Execution,
    ExecutionMessage,
    OpReply,
    Order,
    OrderMessage,
    Position,
    PositionMessage,
    WalletAccount,
    WalletMessage,
    WsRequest,
    execution_message_decoder,
    op_reply_decoder,
    order_message_decoder,
    peek_decoder,
    position_message_decoder,
    wallet_message_decoder,
    ws_request_encoder,
)
from exconn.venues.keys import Credentials
from exconn.venues.malformed import LOG_EVERY, MalformedFrames

__all__ = [
    "AUTH_EXPIRY_MS",
    "LOG_EVERY",
    "PING_INTERVAL_S",
    "PRIVATE_TOPICS",
    "UNIFIED_ACCOUNT",
    "UserStreamHandler",
    "auth_frame",
    "parse_execution",
    "parse_order",
    "parse_position",
    "parse_wallet",
    "ping_frame",
    "subscribe_frame",
    "unsubscribe_frame",
]

EXCHANGE = Exchange.BYBIT.value
PRIVATE_PATH = "/v5/private"
# All-in-one topics (every category on one subscription). Categorised variants
# (``order.linear``) cannot be mixed with these in one request (bybit.md §8).
PRIVATE_TOPICS: tuple[str, ...] = ("order", "execution", "position", "wallet")
PING_INTERVAL_S = 20.0  # bybit.md §6: client-driven heartbeat every 20 s
# The auth signature's expiry, ahead of the server's clock: long enough for the frame to arrive,
# short enough that a captured frame is soon worthless (pybit uses 1 s; bybit.md §12 "a few").
AUTH_EXPIRY_MS = 5_000
UNIFIED_ACCOUNT = "unified"

_CATEGORY_MARKET = {"spot": Market.SPOT, "linear": Market.LINEAR}
_SIDE = {"Buy": OrderSide.BUY, "Sell": OrderSide.SELL}
_ORDER_TYPE = {"Limit": OrderType.LIMIT, "Market": OrderType.MARKET}
_TIME_IN_FORCE = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PostOnly": TimeInForce.POST_ONLY,
}
_STATUS = {
    "New": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}
_POSITION_IDX = {0: PositionSide.BOTH, 1: PositionSide.LONG, 2: PositionSide.SHORT}
# rejectReason values that say "nothing was rejected".
_NO_REJECT = frozenset({"", "EC_NoError", "UNKNOWN"})
# stopOrderType values of a plain (non-conditional) order.
_NO_STOP = frozenset({"", "UNKNOWN"})
_NO_FILL_EXEC = frozenset({"Funding"})  # execution types that move no quantity

Item = TypeVar("Item", Order, Execution, Position)
# What a value that decoded but makes no sense raises while parsing (bad number, side, time).
_PARSE_ERRORS = (ValueError, ArithmeticError, TypeError)


# ============================================================================================
# Frames to send (bybit.md §8). They carry the API key and a signature: never log them.


def _encode(op: str, args: Sequence[object], req_id: str | None) -> bytes:
    return ws_request_encoder.encode(WsRequest(op=op, args=list(args), req_id=req_id))


def auth_frame(credentials: Credentials, expires_ms: int, req_id: str | None = "auth") -> bytes:
    """``{"req_id":"auth","op":"auth","args":[api_key, expires_ms, signature]}``.

    ``expires_ms`` must lie in the server's future: the server's now plus ``AUTH_EXPIRY_MS``.
    """
    api_key, expires, signature = ws_auth_args(credentials, expires_ms)
    # The docs and pybit send the expiry as a number; ws_auth_args gives the signed text.
    return _encode("auth", [api_key, int(expires), signature], req_id)


def subscribe_frame(
    topics: Sequence[str] = PRIVATE_TOPICS, req_id: str | None = "subscribe"
) -> bytes:
    """``{"req_id":"subscribe","op":"subscribe","args":["order","execution",...]}``"""
    return _encode("subscribe", topics, req_id)


def unsubscribe_frame(
    topics: Sequence[str] = PRIVATE_TOPICS, req_id: str | None = "unsubscribe"
) -> bytes:
    return _encode("unsubscribe", topics, req_id)


def ping_frame(req_id: str | None = "ping") -> bytes:
    """``{"req_id":"ping","op":"ping"}``; the private pong is ``{"op":"pong","args":[ms]}``."""
    return _encode("ping", (), req_id)


# ============================================================================================
# Parsers: one Bybit item -> one model event. ``symbol`` is exconn's name, mapped by the caller.


def _nonzero(text: str | None) -> Decimal | None:
    # Prices where 0 means "none" (market order price, flat position entry, no trigger).
    value = opt_decimal(text)
    return value if value else None


def _side(text: str) -> OrderSide:
    try:
        return _SIDE[text]
    except KeyError:
        raise ValueError(f"bybit: side {text!r} is neither Buy nor Sell") from None


def _order_type(text: str) -> OrderType:
    try:
        return _ORDER_TYPE[text]
    except KeyError:
        raise ValueError(f"bybit: order type {text!r} is neither Limit nor Market") from None


def _status(text: str, qty: Decimal, filled: Decimal) -> OrderStatus:
    status = _STATUS.get(text)
    if status is None:
        # A status newer than this table: what the quantities say, rather than losing the
        # update (the read model reconciles by query if that was wrong).
        if qty and filled >= qty:
            return OrderStatus.FILLED
        return OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.NEW
    if status is OrderStatus.REJECTED and filled:
        return OrderStatus.CANCELED  # "Rejected" after fills: the rest was refused
    return status


def _ms(text: str | int) -> datetime:
    return utc_from_ms(int(text))


# {"category":"linear","symbol":"BTCUSDT","orderId":"5cf98598-39a7-459e-97bf-76ca765ee020",
#  "orderLinkId":"test-client-order-001","side":"Buy","orderType":"Limit","price":"30000.50",
#  "qty":"0.100","timeInForce":"GTC","orderStatus":"Filled","cumExecQty":"0.100",
#  "avgPrice":"30000.50","reduceOnly":false,"positionIdx":0,"triggerPrice":"29500.00",
#  "stopOrderType":"Stop","rejectReason":"","marketUnit":"","createdTime":"1672364262444",
#  "updatedTime":"1672364262457",...}
def parse_order(item: Order, market: Market, symbol: str) -> OrderUpdate:
    qty = Decimal(item.qty) if item.qty else Decimal(0)
    quote_qty: Decimal | None = None
    if (
        market is Market.SPOT
        and item.orderType == "Market"
        and item.side == "Buy"
        and item.marketUnit != "baseCoin"
    ):
        quote_qty, qty = qty, Decimal(0)  # sized in the quote coin (bybit.md §5)
    filled = Decimal(item.cumExecQty) if item.cumExecQty else Decimal(0)
    tif = _TIME_IN_FORCE.get(item.timeInForce)
    stop = item.stopOrderType
    return OrderUpdate(
        exchange=EXCHANGE,
        market=market.value,
        symbol=symbol,
        client_order_id=item.orderLinkId or None,
        exchange_order_id=item.orderId,
        side=_side(item.side),
        order_type=_order_type(item.orderType),
        time_in_force=tif,
        status=_status(item.orderStatus, qty, filled),
        price=_nonzero(item.price),
        qty=qty,
        filled_qty=filled,
        avg_price=_nonzero(item.avgPrice) if filled else None,
        ts=_ms(item.updatedTime or item.createdTime),
        reduce_only=item.reduceOnly,
        post_only=tif is TimeInForce.POST_ONLY,
        position_side=_POSITION_IDX.get(item.positionIdx) if market is Market.LINEAR else None,
        trigger_price=_nonzero(item.triggerPrice),
        quote_qty=quote_qty,
        reject_reason=None if item.rejectReason in _NO_REJECT else item.rejectReason,
        venue_status=item.orderStatus,
        venue_type=item.orderType if stop in _NO_STOP else stop,
    )


# {"category":"linear","symbol":"BTCUSDT","execId":"0ab1bdf7-4219-438b-b30a-32ec863018f7",
#  "orderId":"9aac161b-8ed6-450d-9cab-c5cc67c21784","orderLinkId":"","side":"Sell",
#  "execPrice":"95900.1","execQty":"0.5","execType":"Trade","execFee":"26.3725275",
#  "feeCurrency":"USDT","isMaker":false,"execTime":"1746270400353","seq":140612148849382,...}
def parse_execution(
    item: Execution, market: Market, symbol: str, settle: str | None = None
) -> Fill | None:
    """The fill of one execution; None for one that moves no quantity (funding).

    ``settle`` names the fee asset when the item does not (older payloads carry no
    ``feeCurrency``; a linear contract's fees are in its settle coin)."""
    qty = Decimal(item.execQty) if item.execQty else Decimal(0)
    if item.execType in _NO_FILL_EXEC or not qty:
        return None
    fee_asset = item.feeCurrency or (settle if market is Market.LINEAR else None)
    return Fill(
        exchange=EXCHANGE,
        market=market.value,
        symbol=symbol,
        trade_id=item.execId,
        exchange_order_id=item.orderId,
        client_order_id=item.orderLinkId or None,
        side=_side(item.side),
        price=Decimal(item.execPrice),
        qty=qty,
        fee=Decimal(item.execFee) if item.execFee else Decimal(0),
        fee_asset=fee_asset or None,
        is_maker=item.isMaker,
        ts=_ms(item.execTime),
        seq=item.seq,
    )


# {"category":"linear","symbol":"ETHUSDT","side":"Sell","size":"0.01","positionIdx":0,
#  "entryPrice":"3641.075","leverage":"30","markPrice":"3641.33","unrealisedPnl":"-0.00255",
#  "cumRealisedPnl":"-25.06579337","liqPrice":"51764.83003276","updatedTime":"1762199125472",
#  "seq":325852190774,...}
def parse_position(item: Position, market: Market, symbol: str, fallback_ms: int) -> PositionUpdate:
    """``qty`` signed by ``side`` (Sell is short; "" is flat). ``fallback_ms`` (the message's
    ``creationTime``) dates an item without ``updatedTime``."""
    size = Decimal(item.size) if item.size else Decimal(0)
    if item.side == "Sell":
        size = -size
    elif item.side not in ("Buy", ""):
        raise ValueError(f"bybit: position side {item.side!r} is not Buy, Sell or empty")
    side = _POSITION_IDX.get(item.positionIdx)
    if side is None:
        raise ValueError(f"bybit: positionIdx {item.positionIdx!r} is not 0, 1 or 2")
    entry = item.entryPrice if item.entryPrice is not None else item.avgPrice
    return PositionUpdate(
        exchange=EXCHANGE,
        market=market.value,
        symbol=symbol,
        position_side=side,
        qty=size,
        ts=_ms(item.updatedTime) if item.updatedTime else utc_from_ms(fallback_ms),
        entry_price=_nonzero(entry) if size else None,
        unrealized_pnl=opt_decimal(item.unrealisedPnl),
        realized_pnl=opt_decimal(item.cumRealisedPnl),
        leverage=_nonzero(item.leverage),
        mark_price=_nonzero(item.markPrice),
        liquidation_price=_nonzero(item.liqPrice),
        seq=item.seq,
    )


# {"accountType":"UNIFIED","totalEquity":"10262.91335023",...,"coin":[{"coin":"BTC",
#  "equity":"0.00102964","walletBalance":"0.00102964","locked":"0","borrowAmount":"0",...}]}
def parse_wallet(account: WalletAccount, creation_ms: int) -> list[BalanceUpdate]:
    """One ``BalanceUpdate`` per coin, dated by the message's ``creationTime``."""
    market = account.accountType.lower() or UNIFIED_ACCOUNT
    ts = utc_from_ms(creation_ms)
    return [
        BalanceUpdate(
            exchange=EXCHANGE,
            market=market,
            asset=coin.coin,
            ts=ts,
            total=opt_decimal(coin.walletBalance),
            locked=opt_decimal(coin.locked),
        )
        for coin in account.coin
    ]


# ============================================================================================
# The handler


class UserStreamHandler:
    """One private connection's state and its frames -> events (pure).

    ``instruments`` (spot and linear, any mix) name the symbols; the handler serves every
    category exconn trades on the one connection Bybit gives them all.

    State: ``authenticated`` (the auth reply said yes), ``subscribed`` (the subscribe reply
    said yes), ``auth_error`` (an ``AuthError`` with Bybit's code and message when the
    credentials were refused; fix the key, retrying will not help) and ``error`` (the last
    failure of the handshake of any kind, e.g. ``ClockSkew`` when the expiry was already past:
    resync the clock and reconnect). Counters: ``malformed``, ``ignored`` (well-formed frames
    or items with nothing for exconn: other categories, funding, fast executions), ``unmapped``
    (items for a symbol not among the instruments: reload them, then reconcile over REST).
    """

    exchange: ClassVar[str] = EXCHANGE

    def __init__(
        self, instruments: Iterable[Instrument], topics: Sequence[str] = PRIVATE_TOPICS
    ) -> None:
        self.topics = tuple(topics)
        self._symbols: dict[Market, SymbolMap] = {m: SymbolMap(Exchange.BYBIT, m) for m in Market}
        self._settle: dict[tuple[Market, str], str | None] = {}
        for inst in instruments:
            if inst.exchange is not Exchange.BYBIT:
                raise ValueError(f"instrument {inst.symbol!r} is {inst.exchange}, not bybit")
            self._symbols[inst.market].add(inst.symbol, inst.venue_symbol)
            self._settle[(inst.market, inst.venue_symbol)] = inst.settle
        self.authenticated = False
        self.subscribed = False
        self.auth_error: errors.AuthError | None = None
        self.error: errors.ExconnError | None = None
        self.ignored = 0
        self.unmapped = 0
        self._log = logger.bind(exchange=EXCHANGE, stream="private")
        self._malformed = MalformedFrames(self._log)
        self._unmapped_seen: set[tuple[Market, str]] = set()

    # ------------------------------------------------------------------ what the actor drives
    @property
    def malformed(self) -> int:
        return self._malformed.count

    def open_frames(self, credentials: Credentials, now_ms: int) -> list[bytes]:
        """Frames that (re)establish the subscription on an open socket: auth and subscribe,
        or only subscribe when this connection is already authenticated. ``now_ms`` is the
        server's time (local time plus the clock offset)."""
        self.subscribed = False
        if self.authenticated:
            return [subscribe_frame(self.topics)]
        self.auth_error = None
        self.error = None
        return [auth_frame(credentials, now_ms + AUTH_EXPIRY_MS), subscribe_frame(self.topics)]

    def ping_frame(self) -> bytes | None:
        """The heartbeat to send every ``PING_INTERVAL_S``."""
        return ping_frame()

    def close_frames(self) -> list[bytes]:
        """Frames to send before closing the socket on purpose."""
        return [unsubscribe_frame(self.topics)] if self.subscribed else []

    def on_disconnect(self) -> None:
        """The socket is gone: a new one must authenticate and subscribe again."""
        self.authenticated = False
        self.subscribed = False

    def on_frame(self, raw: bytes) -> list[UserEvent]:
        """The events ``raw`` carries (often none). Never raises: a frame that does not decode
        is counted and skipped, so one bad frame cannot stop the stream."""
        try:
            peek = peek_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._malformed.add(raw)
            return []
        topic = peek.topic
        if topic is None:
            if peek.op is None and peek.type != "COMMAND_RESP":
                self._malformed.add(raw)
                return []
            try:
                reply = op_reply_decoder.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._malformed.add(raw)
                return []
            self._on_reply(reply)
            return []
        family, _, rest = topic.partition(".")
        if family == "execution" and rest.startswith("fast"):
            self.ignored += 1
            return []
        handler = self._TOPICS.get(family)
        if handler is None:
            self.ignored += 1
            return []
        try:
            return handler(self, raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self._malformed.add(raw)
            return []

    # ------------------------------------------------------------------ control replies
    # {"success":true,"ret_msg":"","op":"auth","conn_id":"cejreaspqfh3sjdnldmg-p"}
    # {"op":"auth","success":false,"retCode":10003,"retMsg":"Invalid apikey","connId":"..."}
    # {"success":true,"ret_msg":"","op":"subscribe","conn_id":"cejreassvfrsfvb9v1a0-2m"}
    # {"req_id":"ping","op":"pong","args":["1675418560633"],"conn_id":"cfcb4ocsvfriu23r3er0-1b"}
    def _on_reply(self, reply: OpReply) -> None:
        op = reply.op
        if op == "auth":
            if reply.ok:
                self.authenticated = True
                self.auth_error = None
                self.error = None
            else:
                self._auth_failed(reply)
        elif op == "subscribe" or reply.type == "COMMAND_RESP":
            failed = isinstance(reply.data, CommandData) and bool(reply.data.failTopics)
            if reply.ok and not failed:
                self.subscribed = True
            elif self.auth_error is None:
                # After a refused auth the subscribe fails too; the auth error says why.
                self.subscribed = False
                self.error = errors.ExchangeError(
                    "private stream subscription refused; check the topic names",
                    exchange=EXCHANGE,
                    code=reply.retCode,
                    venue_message=reply.message or None,
                    endpoint="WS subscribe",
                )
        elif op == "unsubscribe" and reply.ok:
            self.subscribed = False
        # pongs and anything else: nothing to do

    def _auth_failed(self, reply: OpReply) -> None:
        self.authenticated = False
        self.subscribed = False
        code = reply.retCode
        message = reply.message or None
        err: errors.ExconnError
        if code is None or code == 0:
            # The older reply shape carries no code, only ret_msg.
            err = errors.AuthError(
                "private stream authentication refused; check the API key and its environment",
                exchange=EXCHANGE,
                code=code or None,
                venue_message=message,
                endpoint="WS auth",
            )
        else:
            err = error_for(200, code, message, endpoint="WS auth")
            if type(err) is errors.ExchangeError:  # a code not classified: still an auth refusal
                err = errors.AuthError(
                    exchange=EXCHANGE, code=code, venue_message=message, endpoint="WS auth"
                )
        self.error = err
        self.auth_error = err if isinstance(err, errors.AuthError) else None
        self._log.warning("private stream auth refused: {}", err)

    # ------------------------------------------------------------------ topics
    def _market_symbol(
        self, category: str, topic: str, venue_symbol: str
    ) -> tuple[Market, str] | None:
        """(market, exconn symbol) of an item, or None (counted) when exconn does not trade
        it: a category other than spot/linear, or a symbol not among the instruments."""
        if not category:
            category = topic.partition(".")[2]  # categorised topics: "order.linear"
        market = _CATEGORY_MARKET.get(category)
        if market is None:
            self.ignored += 1
            return None
        try:
            return market, self._symbols[market].from_venue(venue_symbol)
        except errors.UnknownSymbol:
            self.unmapped += 1
            if (market, venue_symbol) not in self._unmapped_seen:
                self._unmapped_seen.add((market, venue_symbol))
                self._log.warning(
                    "private {} event for {} {!r}, which is not among the instruments: "
                    "skipped (reload instruments, then reconcile over REST)",
                    topic,
                    market.value,
                    venue_symbol,
                )
            return None

    def _items(
        self,
        raw: bytes,
        topic: str,
        items: Sequence[Item],
        parse: Callable[[Item, Market, str], UserEvent | None],
    ) -> list[UserEvent]:
        """Each item parsed on its own: a bad one is counted and skipped, the others (fills
        among them) still come through."""
        out: list[UserEvent] = []
        for item in items:
            where = self._market_symbol(item.category, topic, item.symbol)
            if where is None:
                continue
            market, symbol = where
            try:
                event = parse(item, market, symbol)
            except _PARSE_ERRORS:
                self._malformed.add(raw)
                continue
            if event is None:
                self.ignored += 1
            else:
                out.append(event)
        return out

    # {"id":"5923240c6880ab-c59f-420b-9adb-3639adc9dd90","topic":"order",
    #  "creationTime":1672364262474,"data":[{...order item...}]}
    def _orders(self, raw: bytes) -> list[UserEvent]:
        msg: OrderMessage = order_message_decoder.decode(raw)
        return self._items(raw, msg.topic, msg.data, parse_order)

    # {"topic":"execution","id":"386825804_BTCUSDT_140612148849382",
    #  "creationTime":1746270400355,"data":[{...execution item...}]}
    def _executions(self, raw: bytes) -> list[UserEvent]:
        msg: ExecutionMessage = execution_message_decoder.decode(raw)

        def parse(item: Execution, market: Market, symbol: str) -> Fill | None:
            return parse_execution(item, market, symbol, self._settle.get((market, item.symbol)))

        return self._items(raw, msg.topic, msg.data, parse)

    # {"id":"1003076014fb7eedb-c7e6-45d6-a8c1-270f0169171a","topic":"position",
    #  "creationTime":1697682317044,"data":[{...position item...}]}
    def _positions(self, raw: bytes) -> list[UserEvent]:
        msg: PositionMessage = position_message_decoder.decode(raw)

        def parse(item: Position, market: Market, symbol: str) -> PositionUpdate:
            return parse_position(item, market, symbol, msg.creationTime)

        return self._items(raw, msg.topic, msg.data, parse)

    # {"id":"592324d2bce751-ad38-48eb-8f42-4671d1fb4d4e","topic":"wallet",
    #  "creationTime":1700034722104,"data":[{"accountType":"UNIFIED","coin":[...],...}]}
    def _wallet(self, raw: bytes) -> list[UserEvent]:
        msg: WalletMessage = wallet_message_decoder.decode(raw)
        out: list[UserEvent] = []
        for account in msg.data:
            try:
                out.extend(parse_wallet(account, msg.creationTime))
            except _PARSE_ERRORS:
                self._malformed.add(raw)
        return out

    _TOPICS: ClassVar[dict[str, Callable[[UserStreamHandler, bytes], list[UserEvent]]]] = {
        "order": _orders,
        "execution": _executions,
        "position": _positions,
        "wallet": _wallet,
    }

    def __repr__(self) -> str:
        return (
            f"UserStreamHandler(bybit, authenticated={self.authenticated}, "
            f"subscribed={self.subscribed}, malformed={self.malformed})"
        )
