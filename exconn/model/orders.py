"""The order status state machine and the order read model.

Legal moves (``ALLOWED``); repeating the current status is always legal and changes nothing,
because the same fact arrives twice all the time (stream and REST, reconnect replays):

- PENDING_NEW (intent recorded, not acknowledged) -> NEW, PARTIALLY_FILLED, FILLED, CANCELED,
  REJECTED, EXPIRED, UNKNOWN. The first report may already be a fill or a cancel (IOC/FOK).
- UNKNOWN (submitted, outcome lost: timeout, 5xx, dropped socket) -> any status but PENDING_NEW:
  a query or the stream resolves it; "not found" resolves to REJECTED.
- NEW -> PARTIALLY_FILLED, FILLED, PENDING_CANCEL, CANCELED, EXPIRED. Never REJECTED: a
  rejection comes instead of the acknowledgement, not after it.
- PARTIALLY_FILLED -> PARTIALLY_FILLED (more fills), FILLED, PENDING_CANCEL, CANCELED, EXPIRED.
- PENDING_CANCEL (cancel sent) -> CANCELED, FILLED, PARTIALLY_FILLED, EXPIRED, and NEW: a
  refused cancel returns the order to its open status, and fills race the cancel.
- FILLED, CANCELED, REJECTED, EXPIRED are terminal: nothing leaves them.

Time: ``OrderState.updated_at`` is the exchange's time of the last exchange-reported update.
exconn's own decisions (PENDING_CANCEL when a cancel is sent, UNKNOWN when an outcome is lost,
back to open when a cancel is refused) go through ``mark`` and do not touch it: comparing the
local clock with the exchange's would make a genuine later update look stale and drop it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType

import msgspec

from exconn.errors import InvalidTransition, MalformedMessage
from exconn.model.decimal import require_decimal, require_utc
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType

__all__ = [
    "ALLOWED",
    "OPEN",
    "TERMINAL",
    "OrderState",
    "apply_update",
    "can_transition",
    "mark",
    "transition",
]

S = OrderStatus

TERMINAL: frozenset[OrderStatus] = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED})
#: Statuses in which the order may still trade (or may exist, for UNKNOWN).
OPEN: frozenset[OrderStatus] = frozenset(OrderStatus) - TERMINAL

_MOVES: dict[OrderStatus, set[OrderStatus]] = {
    S.PENDING_NEW: {
        S.NEW,
        S.PARTIALLY_FILLED,
        S.FILLED,
        S.CANCELED,
        S.REJECTED,
        S.EXPIRED,
        S.UNKNOWN,
    },
    S.UNKNOWN: set(OrderStatus) - {S.PENDING_NEW},
    S.NEW: {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED},
    S.PARTIALLY_FILLED: {S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED},
    S.PENDING_CANCEL: {S.CANCELED, S.FILLED, S.PARTIALLY_FILLED, S.EXPIRED, S.NEW},
    S.FILLED: set(),
    S.CANCELED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
}

#: Status -> statuses it may move to, including itself (a repeat is a no-op).
ALLOWED: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {status: frozenset(moves | {status}) for status, moves in _MOVES.items()}
)


def can_transition(current: OrderStatus, new: OrderStatus) -> bool:
    return new in ALLOWED[current]


def transition(current: OrderStatus, new: OrderStatus) -> OrderStatus:
    """``new`` if the move is legal, else InvalidTransition naming both statuses."""
    if new not in ALLOWED[current]:
        raise InvalidTransition(current=current, new=new)
    return OrderStatus(new)


class OrderState(msgspec.Struct, frozen=True, kw_only=True):
    """What is known about one order. Built and advanced only through ``apply_update`` and
    ``mark``, so it only moves forward.

    ``filled_qty`` is cumulative; ``avg_price`` is the average fill price (None before a fill);
    ``updated_at`` is the exchange's time of the last exchange-reported update (None until one).
    """

    exchange: Exchange
    market: Market
    symbol: str
    client_order_id: str
    exchange_order_id: str | None = None
    side: OrderSide
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.client_order_id:
            raise ValueError("client_order_id must not be empty")
        if require_decimal(self.qty, "qty") <= 0:
            raise ValueError(f"order {self.client_order_id!r}: qty must be > 0, not {self.qty}")
        if self.price is not None and require_decimal(self.price, "price") <= 0:
            raise ValueError(f"order {self.client_order_id!r}: price must be > 0, not {self.price}")
        filled = require_decimal(self.filled_qty, "filled_qty")
        if not 0 <= filled <= self.qty:
            raise ValueError(
                f"order {self.client_order_id!r}: filled_qty {filled} outside 0..{self.qty}"
            )
        if self.avg_price is not None and require_decimal(self.avg_price, "avg_price") < 0:
            raise ValueError(f"order {self.client_order_id!r}: avg_price must be >= 0")
        if self.updated_at is not None:
            require_utc(self.updated_at, "updated_at")

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def remaining_qty(self) -> Decimal:
        return self.qty - self.filled_qty


def _illegal(state: OrderState, new: OrderStatus) -> InvalidTransition:
    return InvalidTransition(
        exchange=state.exchange,
        market=state.market,
        current=state.status,
        new=new,
        client_order_id=state.client_order_id,
    )


def _malformed(state: OrderState, text: str) -> MalformedMessage:
    return MalformedMessage(
        f"order {state.client_order_id!r}: {text}", exchange=state.exchange, market=state.market
    )


def apply_update(
    state: OrderState,
    status: OrderStatus,
    filled_qty: Decimal,
    updated_at: datetime,
    exchange_order_id: str | None = None,
    avg_price: Decimal | None = None,
) -> OrderState:
    """``state`` advanced by an exchange-reported update (stream event or REST answer).

    Returns ``state`` itself (unchanged) when the update is stale: its cumulative ``filled_qty``
    is lower than known, or equal with an older ``updated_at``. A higher cumulative fill is never
    stale, whatever its time: fills only grow, and a fill must not be lost to a clock comparison.

    Raises InvalidTransition for an illegal status move (e.g. FILLED -> NEW with a newer time),
    and MalformedMessage for an update that cannot be true of this order: ``filled_qty`` above
    the order's qty or negative, a negative ``avg_price``, or a different exchange order id.
    Either way the state is not changed; reconcile by querying the order.
    """
    status = OrderStatus(status)
    filled_qty = require_decimal(filled_qty, "filled_qty")
    updated_at = require_utc(updated_at, "updated_at")
    if avg_price is not None:
        avg_price = require_decimal(avg_price, "avg_price")

    if filled_qty < state.filled_qty:
        return state
    if (
        filled_qty == state.filled_qty
        and state.updated_at is not None
        and updated_at < state.updated_at
    ):
        return state

    if filled_qty > state.qty:
        raise _malformed(state, f"filled_qty {filled_qty} exceeds order qty {state.qty}")
    if avg_price is not None and avg_price < 0:
        raise _malformed(state, f"negative avg_price {avg_price}")
    if (
        exchange_order_id is not None
        and state.exchange_order_id is not None
        and exchange_order_id != state.exchange_order_id
    ):
        raise _malformed(
            state,
            f"exchange order id {exchange_order_id!r} does not match {state.exchange_order_id!r}",
        )
    if status not in ALLOWED[state.status]:
        raise _illegal(state, status)

    new_time = updated_at if state.updated_at is None else max(state.updated_at, updated_at)
    new_id = state.exchange_order_id if exchange_order_id is None else exchange_order_id
    new_avg = state.avg_price if avg_price is None else avg_price
    if (
        status == state.status
        and filled_qty == state.filled_qty
        and new_time == state.updated_at
        and new_id == state.exchange_order_id
        and new_avg == state.avg_price
    ):
        return state
    return msgspec.structs.replace(
        state,
        status=status,
        filled_qty=filled_qty,
        updated_at=new_time,
        exchange_order_id=new_id,
        avg_price=new_avg,
    )


def mark(state: OrderState, status: OrderStatus) -> OrderState:
    """``state`` moved to ``status`` by exconn's own decision, not an exchange report:
    PENDING_CANCEL when a cancel is sent, UNKNOWN when a submission's outcome is lost, NEW or
    PARTIALLY_FILLED when the exchange refuses a cancel. Fills and ``updated_at`` are kept (see
    the module docstring).

    Raises InvalidTransition for an illegal move; a repeat returns ``state`` itself.
    """
    status = OrderStatus(status)
    if status not in ALLOWED[state.status]:
        raise _illegal(state, status)
    if status == state.status:
        return state
    return msgspec.structs.replace(state, status=status)
