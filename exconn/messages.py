"""Every message that crosses an actor boundary in exconn.

All messages are msgspec Structs (frozen, so they pickle across Thespian's processes and cannot be
mutated after they are sent). The first section is the public surface an engine uses; the last
section holds exconn's internal wiring messages, which engines never need to send.

Topics are strings ``kind.exchange.market.symbol`` (see ``exconn.topics``); order topics are
``kind.exchange``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import msgspec

from exconn.model.decimal import require_decimal
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce

# Thespian ActorAddress objects are opaque and picklable; typed as Any so msgspec accepts them.
ActorRef = Any

Level = tuple[Decimal, Decimal]


# --------------------------------------------------------------------------------------------
# Engine -> exconn: subscriptions
class Subscribe(msgspec.Struct, frozen=True):
    """Deliver events of ``topics`` (wildcards allowed) to ``subscriber``.

    A concrete topic (no ``*``) opens the exchange stream on its first subscriber; a wildcard
    topic receives every matching stream that is open, without opening streams itself.
    """

    subscriber: ActorRef
    topics: tuple[str, ...]


class Unsubscribe(msgspec.Struct, frozen=True):
    """Stop delivering ``topics`` to ``subscriber``; the last subscriber of a stream closes it."""

    subscriber: ActorRef
    topics: tuple[str, ...]


class SubscriptionError(msgspec.Struct, frozen=True):
    """Sent to a subscriber whose topic cannot be served (unknown symbol, unsupported market)."""

    topic: str
    reason: str


class AccountStreamError(msgspec.Struct, frozen=True):
    """Sent (as a plain message, not inside an ``EventBatch``) to every subscriber of an
    exchange's account topics when its private stream fails in a way a reconnect does not
    cure: ``error`` is an ``exconn.errors.AuthError`` (the venue refused the key; its code and
    message attached, no secret). The stream's actor then exits and its supervisor starts a
    new one with backoff, so the subscription stays in place and resumes once the key works.
    ``market`` is the configured market whose stream failed (Bybit: ``spot,linear``)."""

    exchange: str
    market: str
    error: Any  # exconn.errors.ExconnError (pickles with its attributes, redacted)


# --------------------------------------------------------------------------------------------
# exconn -> engine: market data events
class BookSnapshot(msgspec.Struct, frozen=True, tag=True):
    """The whole local book of a symbol; replaces anything the subscriber held for it."""

    exchange: str
    market: str
    symbol: str
    update_id: int
    bids: tuple[Level, ...]  # best first
    asks: tuple[Level, ...]  # best first
    ts: datetime | None = None


class BookDelta(msgspec.Struct, frozen=True, tag=True):
    """Absolute level changes (qty 0 removes the level) moving the book from
    ``prev_update_id`` (the id of the book it applies to) to ``update_id``."""

    exchange: str
    market: str
    symbol: str
    prev_update_id: int
    update_id: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    ts: datetime | None = None


class BookReset(msgspec.Struct, frozen=True, tag=True):
    """The symbol's book cannot be trusted any more (gap, disconnect): drop it.

    A ``BookSnapshot`` follows once the book is synchronised again.
    """

    exchange: str
    market: str
    symbol: str
    reason: str


class BookStale(msgspec.Struct, frozen=True, tag=True):
    """The symbol's book stopped updating (its socket was lost) but is kept: the next
    ``BookDelta`` continues it (or a ``BookSnapshot`` replaces it, or a ``BookReset`` drops it
    if no socket takes over in time). Until then, do not act on it as if it were current."""

    exchange: str
    market: str
    symbol: str
    reason: str


class BookTop(msgspec.Struct, frozen=True, tag=True):
    """The best ``depth`` levels per side as the venue pushes them (topics ``depth5``,
    ``depth10``, ``depth20``; Binance ``<s>@depth<N>``): complete in itself, each one replaces
    the previous ``BookTop`` of the same symbol and depth.

    Not a ``BookSnapshot`` on purpose: a snapshot replaces the whole book a ``LocalBook`` keeps
    from the ``book`` topic, so a top-N view arriving as one would cut that book down to N
    levels and break the ``BookDelta`` chain after it. ``update_id`` is the venue's book
    update id (comparable with the ``book`` topic's on the same venue).
    """

    exchange: str
    market: str
    symbol: str
    depth: int
    update_id: int
    bids: tuple[Level, ...]  # best first, at most `depth`
    asks: tuple[Level, ...]  # best first, at most `depth`
    ts: datetime | None = None  # None when the venue sends no time (Binance spot)


class Trade(msgspec.Struct, frozen=True, tag=True):
    """One public trade. ``side`` is the taker's side."""

    exchange: str
    market: str
    symbol: str
    trade_id: str
    price: Decimal
    qty: Decimal
    side: OrderSide
    ts: datetime


class AggTrade(msgspec.Struct, frozen=True, tag=True):
    """An aggregated public trade: the fills of one taker order at one price (Binance
    ``aggTrade``). ``side`` is the taker's side.

    Kept apart from ``Trade`` on purpose: its id (``agg_id``) counts aggregates, not trades, so
    mixing the two on one stream would make ids incomparable; ``first_trade_id`` and
    ``last_trade_id`` let a consumer check continuity (next ``first_trade_id`` ==
    ``last_trade_id + 1``) or match it against raw ``Trade`` events.
    """

    exchange: str
    market: str
    symbol: str
    agg_id: str
    price: Decimal
    qty: Decimal
    side: OrderSide
    first_trade_id: int
    last_trade_id: int
    ts: datetime


class Bbo(msgspec.Struct, frozen=True, tag=True):
    """Best bid and ask with their quantities (Binance ``bookTicker``). ``update_id`` is the
    book update id the quote reflects, when the venue gives one; ``ts`` is None when the venue
    sends no time (Binance spot)."""

    exchange: str
    market: str
    symbol: str
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    update_id: int | None = None
    ts: datetime | None = None


class Kline(msgspec.Struct, frozen=True, tag=True):
    """One candlestick of ``interval`` (venue notation, e.g. ``1m``) covering
    [``open_time``, ``close_time``]. ``closed`` is False while the bar is still forming."""

    exchange: str
    market: str
    symbol: str
    interval: str
    open_time: datetime
    close_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal  # base asset
    quote_volume: Decimal
    trades: int
    closed: bool
    ts: datetime | None = None  # event time


class Ticker24h(msgspec.Struct, frozen=True, tag=True):
    """Rolling 24-hour statistics. Best bid/ask are None where the venue leaves them out
    (Binance USD-M)."""

    exchange: str
    market: str
    symbol: str
    last_price: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal  # base asset
    quote_volume: Decimal
    price_change: Decimal
    price_change_percent: Decimal
    weighted_avg_price: Decimal
    open_time: datetime
    close_time: datetime
    trades: int
    last_qty: Decimal | None = None
    bid_price: Decimal | None = None
    bid_qty: Decimal | None = None
    ask_price: Decimal | None = None
    ask_qty: Decimal | None = None
    ts: datetime | None = None


class MarkPrice(msgspec.Struct, frozen=True, tag=True):
    """Mark and index price of a perpetual with its current funding rate (a fraction per
    funding interval, e.g. ``0.0001`` = 0.01 %) and when that funding is next paid."""

    exchange: str
    market: str
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    funding_rate: Decimal
    next_funding_time: datetime
    estimated_settle_price: Decimal | None = None
    ts: datetime | None = None


MarketEvent = (
    BookSnapshot
    | BookDelta
    | BookReset
    | BookStale
    | BookTop
    | Trade
    | AggTrade
    | Bbo
    | Kline
    | Ticker24h
    | MarkPrice
)


# --------------------------------------------------------------------------------------------
# exconn -> engine: private (user-data) events, the same for every venue. Order and fill events
# are never conflated or dropped on their way (exconn.delivery leaves them alone).
class PositionSide(StrEnum):
    """Which position an order or position update belongs to."""

    BOTH = "both"  # one-way mode: one net position per symbol
    LONG = "long"  # hedge mode: the long position
    SHORT = "short"  # hedge mode: the short position


class OrderUpdate(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """The state of one order after an exchange-reported change (stream or REST).

    ``filled_qty`` is cumulative and ``avg_price`` the average fill price (None before a fill);
    ``ts`` is the exchange's time of the change. ``order_type`` is exconn's LIMIT/MARKET (a stop
    that becomes a limit order is LIMIT, one that becomes a market order is MARKET) with
    ``trigger_price`` set for conditional orders; ``venue_type`` and ``venue_status`` keep the
    exchange's own words (``STOP_LOSS_LIMIT``, ``Untriggered``) for what exconn's enums fold.
    ``qty`` is in base units; an order sized in the quote asset (Binance ``quoteOrderQty``,
    Bybit spot market buys) has ``qty`` 0 and ``quote_qty`` set. ``client_order_id`` is None
    for an order placed without one (e.g. by hand on the venue's site). ``seq`` orders the
    updates of one order where the venue numbers them (Binance spot execution id). Named
    ``order_type``, not ``type``: ``type`` is the batch's tag field.
    """

    exchange: str
    market: str
    symbol: str
    client_order_id: str | None
    exchange_order_id: str
    side: OrderSide
    order_type: OrderType
    time_in_force: TimeInForce | None
    status: OrderStatus
    price: Decimal | None
    qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    ts: datetime
    reduce_only: bool = False
    post_only: bool = False
    position_side: PositionSide | None = None
    trigger_price: Decimal | None = None
    quote_qty: Decimal | None = None
    reject_reason: str | None = None
    venue_status: str = ""
    venue_type: str = ""
    seq: int | None = None


class Fill(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """One execution of one of the account's orders.

    ``trade_id`` is the de-duplication key together with the instrument (Binance trade ids
    count per symbol; Bybit's are unique): use ``key``. ``fee`` is what this fill cost (negative:
    a rebate), in ``fee_asset`` (None where the venue does not say). ``is_maker``: the order
    was resting on the book.
    """

    exchange: str
    market: str
    symbol: str
    trade_id: str
    exchange_order_id: str
    client_order_id: str | None
    side: OrderSide
    price: Decimal
    qty: Decimal
    fee: Decimal
    fee_asset: str | None
    is_maker: bool
    ts: datetime
    seq: int | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies this fill across the stream, REST and replays."""
        return (self.exchange, self.market, self.symbol, self.trade_id)


class BalanceUpdate(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """One asset's balance as the venue reports it; a field the venue does not give is None.

    Binance spot ``outboundAccountPosition``: ``free``, ``locked`` and their sum ``total``;
    Binance spot ``balanceUpdate`` (deposit, withdrawal, transfer): ``delta`` only;
    Binance USD-M ``ACCOUNT_UPDATE``: ``total`` (wallet balance) and ``delta`` (change without
    PnL and fees), ``reason`` the venue's cause (ORDER, FUNDING_FEE, ...);
    Bybit ``wallet``: ``total`` (walletBalance) and ``locked``. ``market`` names the account:
    ``spot``, ``linear`` (Binance's USD-M wallet), or ``unified`` (Bybit's Unified Trading
    Account, shared by spot and linear).
    """

    exchange: str
    market: str
    asset: str
    ts: datetime
    free: Decimal | None = None
    locked: Decimal | None = None
    total: Decimal | None = None
    delta: Decimal | None = None
    reason: str | None = None


class PositionUpdate(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A derivatives position as the venue reports it.

    ``qty`` is signed: positive long, negative short, 0 flat. ``position_side`` says which
    position it is (BOTH in one-way mode). ``entry_price`` is None while flat; ``realized_pnl``
    is the venue's cumulative figure. Fields the venue does not send are None.
    """

    exchange: str
    market: str
    symbol: str
    position_side: PositionSide
    qty: Decimal
    ts: datetime
    entry_price: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    realized_pnl: Decimal | None = None
    leverage: Decimal | None = None
    mark_price: Decimal | None = None
    liquidation_price: Decimal | None = None
    margin_mode: str | None = None
    seq: int | None = None


UserEvent = OrderUpdate | Fill | BalanceUpdate | PositionUpdate
Event = MarketEvent | UserEvent


class BookDeltaText(msgspec.Struct, frozen=True, tag="BookDelta"):
    """``BookDelta`` as the connection actor encodes it: the exchange's own decimal strings and
    the event time in seconds, so no Decimal or datetime is built on the sending side. It
    decodes as a ``BookDelta`` on the receiving side."""

    exchange: str
    market: str
    symbol: str
    prev_update_id: int
    update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]
    ts: float | None = None


class TradeText(msgspec.Struct, frozen=True, tag="Trade"):
    """``Trade`` in encoded form (see ``BookDeltaText``)."""

    exchange: str
    market: str
    symbol: str
    trade_id: str
    price: str
    qty: str
    side: OrderSide
    ts: float


Encodable = MarketEvent | UserEvent | BookDeltaText | TradeText

_batch_encoder = msgspec.msgpack.Encoder()
# strict=False lets the encoded forms' strings and float seconds decode as Decimal and datetime.
_batch_decoder = msgspec.msgpack.Decoder(list[Event], strict=False)


class EventBatch(msgspec.Struct, frozen=True, dict=True):
    """Events read in one I/O cycle, in arrival order, as one actor message.

    The events travel msgpack-encoded: one bytes object pickles far faster than thousands of
    Structs holding Decimals. ``events`` decodes them (once) into typed model events.
    """

    payload: bytes
    # time.monotonic_ns() when the connection started reading these events off the socket.
    # CLOCK_MONOTONIC is shared by every process on a Linux host, so a subscriber on the same
    # host can measure delivery latency as monotonic_ns() - received_ns. 0: unknown.
    received_ns: int = 0

    @classmethod
    def of(cls, events: Sequence[Encodable], received_ns: int = 0) -> EventBatch:
        return cls(payload=_batch_encoder.encode(events), received_ns=received_ns)

    @functools.cached_property
    def events(self) -> tuple[Event, ...]:
        return tuple(_batch_decoder.decode(self.payload))

    def __repr__(self) -> str:
        # Thespian formats every message it sends and receives for its debug log, even when
        # that log is off: a repr of the whole payload cost more than the events themselves.
        return f"EventBatch({len(self.payload)} bytes)"

    __str__ = __repr__


# --------------------------------------------------------------------------------------------
# Engine -> exconn: order commands. Validation against the instrument's rules, client order ids
# and the intent journal are in ``exconn.orders.command``; the venue mapping in
# ``exconn.venues.<venue>.order_entry``. Prices and quantities are Decimal: a float is a
# TypeError at construction, never a silently rounded order.
class PlaceOrder(msgspec.Struct, frozen=True):
    """Place one order. ``client_order_id``: the engine's id (checked against the venue's
    rules) or None to let exconn assign one; the replies carry it. Re-sending the same
    ``PlaceOrder`` with the same ``client_order_id`` is a retry of the same intent, never a
    second order (see ``exconn.orders.command.IntentJournal``).

    ``post_only`` (or ``time_in_force=POST_ONLY``) makes a limit order maker-only.
    ``reduce_only`` and ``position_side`` are for linear markets; ``position_side`` LONG or
    SHORT names the position in hedge mode (None: one-way mode, the venue's default).
    """

    exchange: str
    market: Market
    symbol: str
    side: OrderSide
    type: OrderType
    qty: Decimal
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    client_order_id: str | None = None
    reduce_only: bool = False
    post_only: bool = False
    position_side: PositionSide | None = None

    def __post_init__(self) -> None:
        # A float price is a bug in the caller, not something to round silently.
        require_decimal(self.qty, "qty")
        if self.price is not None:
            require_decimal(self.price, "price")


class AmendOrder(msgspec.Struct, frozen=True, kw_only=True):
    """Change the quantity and/or price of an open order, named by ``client_order_id`` or
    ``exchange_order_id``. Venue limits: Binance spot only lowers the quantity (keeps
    priority); Binance USD-M needs ``side``, ``qty`` and ``price`` together (loses priority)."""

    exchange: str
    market: Market
    symbol: str
    client_order_id: str | None = None
    exchange_order_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None
    side: OrderSide | None = None

    def __post_init__(self) -> None:
        if self.qty is not None:
            require_decimal(self.qty, "qty")
        if self.price is not None:
            require_decimal(self.price, "price")


class CancelOrder(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel one order, named by ``client_order_id`` or ``exchange_order_id``."""

    exchange: str
    market: Market
    symbol: str
    client_order_id: str | None = None
    exchange_order_id: str | None = None


class CancelAll(msgspec.Struct, frozen=True, kw_only=True):
    """Cancel every open order of ``symbol`` (Binance needs one; Bybit spot may omit it)."""

    exchange: str
    market: Market
    symbol: str | None = None


class PlaceOrders(msgspec.Struct, frozen=True):
    """Place several orders in one venue request where the venue offers it (Bybit
    ``create-batch``: 10 spot / 20 linear; Binance USD-M ``batchOrders``: 5). Each order is
    its own intent and gets its own reply."""

    orders: tuple[PlaceOrder, ...]


class CancelOrders(msgspec.Struct, frozen=True):
    """Cancel several orders in one venue request where the venue offers it (Bybit
    ``cancel-batch``; Binance USD-M ``batchOrders`` DELETE: 10)."""

    orders: tuple[CancelOrder, ...]


OrderCommandMessage = PlaceOrder | AmendOrder | CancelOrder | CancelAll | PlaceOrders | CancelOrders


class GetOrderEntry(msgspec.Struct, frozen=True):
    """Ask the root where ``exchange``'s ``OrderCommand`` is, to send order commands straight
    to it: one process hop fewer than through the root (see the README's Performance
    section for what that hop costs). Answered with
    ``OrderEntry``. With ``watch`` (the default) the asker also gets a new ``OrderEntry``
    every time the address changes (the ``OrderCommand`` restarted: ``address`` is None
    while it is down), until it sends ``GetOrderEntry(exchange, watch=False)``.

    A command sent straight to an address whose ``OrderCommand`` has since died reaches
    nothing and nobody answers it: exconn tells the watchers of that exchange
    ``CommandNotDelivered`` instead (nothing of it left exconn; send it again to the new
    address or to the root). Through the root, commands are never lost that way."""

    exchange: str
    watch: bool = True


class OrderEntry(msgspec.Struct, frozen=True):
    """Where ``exchange``'s ``OrderCommand`` is; ``address`` None while it is not running
    (restarting, or ``reason``: the exchange is not configured or has no credentials).
    Commands sent to ``address`` are answered exactly as through the root."""

    exchange: str
    address: ActorRef | None
    reason: str = ""


class CommandNotDelivered(msgspec.Struct, frozen=True):
    """To the watchers of ``exchange``'s order entry (``GetOrderEntry``): ``command`` was sent
    straight to an ``OrderCommand`` that had died. It never reached exconn's order path and
    nothing of it was sent to the venue: it may be sent again, with the same client order
    id, to the new address or to the root."""

    exchange: str
    command: Any  # OrderCommandMessage


# exconn -> engine: order command replies. ``action`` is ``place``, ``amend``, ``cancel`` or
# ``cancel_all``.
class OrderAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """The venue acknowledged the command. For Bybit this is an acknowledgement only: the
    order's fate arrives on the ``orders.*`` topics. ``status`` is the order status when the
    venue's answer says it (Binance RESULT replies), else None."""

    exchange: str
    market: str
    symbol: str
    action: str
    client_order_id: str | None
    exchange_order_id: str | None = None
    status: OrderStatus | None = None
    venue_status: str = ""
    ts: datetime | None = None


class OrderRejected(msgspec.Struct, frozen=True, kw_only=True):
    """The command was refused: by exconn's validation (``code`` None), by a limit before
    sending, or by the venue (``code`` and ``message`` are its own). The order does not exist
    because of this command; ``reason`` names the exconn error class (``InvalidOrder``,
    ``InsufficientFunds``, ``RateLimited``, ...)."""

    exchange: str
    market: str
    symbol: str
    action: str
    client_order_id: str | None
    code: int | str | None
    message: str
    reason: str = ""


class OrderOutcomeUnknown(msgspec.Struct, frozen=True, kw_only=True):
    """The command may or may not have taken effect (timeout, 5xx, Binance -1006/-1007, Bybit
    10000/10016, socket lost after sending). ``known`` says what is known. Resolve it by
    querying ``client_order_id`` (or wait for its stream event); exconn refuses to send the
    same intent again until it is resolved, and never re-sends it under a new id."""

    exchange: str
    market: str
    symbol: str
    action: str
    client_order_id: str | None
    known: str
    code: int | str | None = None


OrderReply = OrderAccepted | OrderRejected | OrderOutcomeUnknown


# --------------------------------------------------------------------------------------------
# Engine -> exconn: order queries, answered from the exchange's read model (``OrderQuery``,
# DESIGN §5). Sent to the root (``ex.ask(GetOpenOrders(exchange="bybit"))``), they reach that
# exchange's ``OrderQuery``, which answers the asker; ``exchange`` is required there (an
# ``OrderQuery`` asked directly ignores it). An exchange that is not configured, has no
# credentials or whose read side is restarting answers ``QueryRejected``.
class GetOrder(msgspec.Struct, frozen=True, kw_only=True):
    """One order by client id (market optional) or by exchange id (market and symbol
    optional); answered with ``OrderView``."""

    client_order_id: str | None = None
    exchange_order_id: str | None = None
    market: str | None = None
    symbol: str | None = None
    exchange: str | None = None


class GetOpenOrders(msgspec.Struct, frozen=True):
    """The open orders (of ``symbol`` / ``market`` if given); answered with ``OrdersView``."""

    symbol: str | None = None
    market: str | None = None
    exchange: str | None = None


class GetFills(msgspec.Struct, frozen=True):
    """Every fill the read model holds (of ``symbol`` / ``market``); answered with
    ``FillsView``."""

    symbol: str | None = None
    market: str | None = None
    exchange: str | None = None


class GetBalances(msgspec.Struct, frozen=True):
    """Balances (of the account ``market``); answered with ``BalancesView``."""

    market: str | None = None
    exchange: str | None = None


class GetPositions(msgspec.Struct, frozen=True):
    """Positions (of ``symbol`` / ``market``); answered with ``PositionsView``."""

    symbol: str | None = None
    market: str | None = None
    exchange: str | None = None


OrderQueryMessage = GetOrder | GetOpenOrders | GetFills | GetBalances | GetPositions


class OrderView(msgspec.Struct, frozen=True):
    order: Any  # OrderUpdate or None


class OrdersView(msgspec.Struct, frozen=True):
    orders: tuple[Any, ...]  # OrderUpdate


class FillsView(msgspec.Struct, frozen=True):
    fills: tuple[Any, ...]  # Fill


class BalancesView(msgspec.Struct, frozen=True):
    balances: tuple[Any, ...]  # BalanceUpdate


class PositionsView(msgspec.Struct, frozen=True):
    positions: tuple[Any, ...]  # PositionUpdate


class QueryRejected(msgspec.Struct, frozen=True, kw_only=True):
    """An order query that could not be answered: ``reason`` names the exconn error class
    (``ConfigError``: exchange not configured or without credentials, or no ``exchange``
    given; ``ExchangeDown``: its read side is restarting, ask again), ``query`` is the
    query itself."""

    exchange: str
    query: Any  # OrderQueryMessage
    reason: str
    message: str


# --------------------------------------------------------------------------------------------
# Engine <-> exconn: status queries
class GetStatus(msgspec.Struct, frozen=True):
    """Ask the root for the state of the tree; answered with ``SystemStatus``."""


class ConnectionInfo(msgspec.Struct, frozen=True):
    exchange: str
    market: str
    name: str
    pid: int
    streams: tuple[str, ...]
    connected: bool
    malformed_frames: int
    resyncs: int
    frames: int = 0  # data frames received since start
    drains: int = 0  # socket reads that returned frames (frames / drains = batch size)
    # Events merged away or replaced for subscribers slower than the feed (exconn.delivery),
    # in total and per subscriber (str(address), count); False: sent without flow control.
    conflated_events: int = 0
    conflated_by_subscriber: tuple[tuple[str, int], ...] = ()
    flow_control: bool = True


class SystemStatus(msgspec.Struct, frozen=True):
    connections: tuple[ConnectionInfo, ...]
    restarts: int


# --------------------------------------------------------------------------------------------
# Internal wiring (exconn's own actors only)
class RootStart(msgspec.Struct, frozen=True):
    config: Any  # exconn.config.Config


class RootStarted(msgspec.Struct, frozen=True):
    pass


class RouterInit(msgspec.Struct, frozen=True):
    supervisors: dict[str, ActorRef]
    # exchange -> configured markets, for patterns that name venues by wildcard
    markets: dict[str, tuple[str, ...]] = {}
    # exchanges configured with credentials: the only ones serving account topics
    accounts: tuple[str, ...] = ()


class SupervisorInit(msgspec.Struct, frozen=True):
    exchange: str
    config: Any  # exconn.config.ExchangeConfig
    log_level: str


class StreamDemand(msgspec.Struct, frozen=True):
    """Router -> supervisor: the full subscriber list of a concrete topic (empty closes it)."""

    topic: str
    subscribers: tuple[ActorRef, ...]


class ConnectionInit(msgspec.Struct, frozen=True):
    exchange: str
    market: str
    name: str
    ws_url: str
    rest_url: str
    instruments: tuple[Any, ...]  # exconn.model.instruments.Instrument
    depth_limit: int
    log_level: str
    # exchangeInfo rateLimits as (type, interval, interval_num, limit): seeds the REST limiter
    rate_limits: tuple[tuple[str, str, int, int], ...] = ()
    # Where the system's processes share their REST budgets (ExchangeConfig.rest_budget_dir).
    rest_budget_dir: str | None = None


class SetRoute(msgspec.Struct, frozen=True):
    """Supervisor -> connection: deliver ``topic`` to ``subscribers`` (empty: close the stream)."""

    topic: str
    subscribers: tuple[ActorRef, ...]


class UserStreamInit(msgspec.Struct, frozen=True):
    """Supervisor -> UserStreamConnection. ``credentials`` is an
    ``exconn.config.SealedCredentials``: sealed with the system's own key, opened only inside
    the actor's process (the key never travels in a message)."""

    exchange: str
    markets: tuple[str, ...]  # what this stream carries (Bybit: every configured category)
    name: str
    private_url: str  # the private WebSocket (USD-M: the stream host; the listenKey is added)
    rest_url: str  # listenKey requests (USD-M); unused elsewhere
    instruments: tuple[Any, ...]  # exconn.model.instruments.Instrument of those markets
    credentials: Any
    log_level: str
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    ack_timeout_s: float = 10.0
    rest_budget_dir: str | None = None
    heartbeat_s: float = 20.0  # WsSettings.private_heartbeat_s
    silence_s: float = 30.0  # WsSettings.private_silence_s


class AccountRoute(msgspec.Struct, frozen=True):
    """Supervisor -> UserStreamConnection: who gets which account kind (``orders``,
    ``fills``, ``balances``, ``positions``); the whole table each time. ``seq`` grows with
    every change: the stream forwards the table to ``OrderQuery`` ahead of its events, and the
    query keeps the newest of what it gets from the supervisor and the streams."""

    routes: dict[str, tuple[ActorRef, ...]]
    seq: int = 0


class ConnectionStarted(msgspec.Struct, frozen=True):
    name: str
    pid: int


class GetConnectionInfo(msgspec.Struct, frozen=True):
    pass


class ShutdownTree(msgspec.Struct, frozen=True):
    """Root -> children: close sockets before the actor system exits."""


class Wakeup(msgspec.Struct, frozen=True):
    """Payload of a ``wakeupAfter`` timer; ``generation`` lets a stale timer be ignored."""

    purpose: str
    generation: int
