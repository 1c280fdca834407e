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
from typing import Any

import msgspec

from exconn.model.decimal import require_decimal
from exconn.model.enums import Market, OrderSide, OrderType, TimeInForce

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


MarketEvent = BookSnapshot | BookDelta | BookReset | Trade


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


Encodable = MarketEvent | BookDeltaText | TradeText

_batch_encoder = msgspec.msgpack.Encoder()
# strict=False lets the encoded forms' strings and float seconds decode as Decimal and datetime.
_batch_decoder = msgspec.msgpack.Decoder(list[MarketEvent], strict=False)


class EventBatch(msgspec.Struct, frozen=True, dict=True):
    """Events read in one I/O cycle, in arrival order, as one actor message.

    The events travel msgpack-encoded: one bytes object pickles far faster than thousands of
    Structs holding Decimals. ``events`` decodes them (once) into typed model events.
    """

    payload: bytes

    @classmethod
    def of(cls, events: Sequence[Encodable]) -> EventBatch:
        return cls(payload=_batch_encoder.encode(events))

    @functools.cached_property
    def events(self) -> tuple[MarketEvent, ...]:
        return tuple(_batch_decoder.decode(self.payload))

    def __repr__(self) -> str:
        # Thespian formats every message it sends and receives for its debug log, even when
        # that log is off: a repr of the whole payload cost more than the events themselves.
        return f"EventBatch({len(self.payload)} bytes)"

    __str__ = __repr__


# --------------------------------------------------------------------------------------------
# Engine -> exconn: order commands (the order path lands in a later issue; the types are here so
# the public API validates its inputs from day one)
class PlaceOrder(msgspec.Struct, frozen=True):
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

    def __post_init__(self) -> None:
        # A float price is a bug in the caller, not something to round silently.
        require_decimal(self.qty, "qty")
        if self.price is not None:
            require_decimal(self.price, "price")


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


class SetRoute(msgspec.Struct, frozen=True):
    """Supervisor -> connection: deliver ``topic`` to ``subscribers`` (empty: close the stream)."""

    topic: str
    subscribers: tuple[ActorRef, ...]


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
