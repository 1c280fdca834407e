"""Reconciliation after a reconnect or restart (DESIGN §5), pure: the REST picture is merged into
the read model and the difference comes back as the events the stream would have carried, so
a subscriber never misses a fill that happened while the stream was down.

The actor drives it in two steps, because what to ask depends on the first answers:

1. ``fill_queries(model)``: per instrument, where "fills since" starts (Binance ``fromId``,
   Bybit ``startTime``). Fetch open orders, balances, positions and those fills.
2. ``orders_to_query(model, open_orders, scope)``: orders the model holds open that the venue
   no longer lists (they filled or were cancelled while the stream was down) and every order
   whose outcome is UNKNOWN. Query each (Binance ``GET order`` by ``origClientOrderId``, Bybit
   ``order/history`` by ``orderLinkId``); "does not exist" goes into ``not_found``.
3. ``reconcile(model, RestPicture(...))`` -> (events to publish, ``ReconcileReport``).

Rules where the docs are silent:
- REST answers go through the same merge as stream events (``ReadModel``): a REST row older
  than what the stream already said is ignored, so a reconcile racing the resumed stream
  cannot move anything backwards.
- A scope the picture declares complete (``open_orders_scope``, ``balance_markets``,
  ``position_scope``) is the truth for what is absent from it: a balance absent from a complete
  list is zero, a position absent from a complete list is flat (both published, dated
  ``as_of``). An order the model holds open but absent from a complete open-orders list is
  *not* guessed closed: it is listed in ``ReconcileReport.unresolved`` until a query answers
  (Nautilus' rule: an unknown outcome has its own path, never a guess).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

import msgspec

from exconn.messages import BalanceUpdate, Fill, OrderUpdate, PositionUpdate, UserEvent
from exconn.model.decimal import require_utc
from exconn.model.enums import OrderStatus
from exconn.orders.read_model import ReadModel

__all__ = [
    "FillQuery",
    "OrderRef",
    "ReconcileReport",
    "RestPicture",
    "Scope",
    "fill_queries",
    "in_scope",
    "orders_to_query",
    "reconcile",
]

ZERO = Decimal(0)

#: (market, symbol): what a REST list covers; symbol None is every symbol of the market.
Scope = tuple[str, str | None]


class OrderRef(msgspec.Struct, frozen=True):
    """An order to query: by client id where it has one (the only id an UNKNOWN order has),
    else by exchange id."""

    market: str
    symbol: str
    client_order_id: str | None
    exchange_order_id: str
    status: OrderStatus  # what the read model believes


class FillQuery(msgspec.Struct, frozen=True):
    """Ask the venue for the fills of one instrument from here on. ``from_id``: Binance
    ``myTrades``/``userTrades`` ``fromId`` (the trade after the last seen); ``start_time``: the
    last seen fill's time (Bybit ``execution/list`` ``startTime``; inclusive, the overlap is
    de-duplicated). Both None: nothing seen yet, ask for the most recent fills."""

    market: str
    symbol: str
    from_id: int | None
    start_time: datetime | None


class RestPicture(msgspec.Struct, frozen=True, kw_only=True):
    """What REST said, as model events (``venues/<venue>/orders_parse.py``).

    ``as_of``: the venue's time of the answers (an envelope's ``time``, or local time corrected
    by the clock offset); it dates balances zeroed and positions flattened by a complete list.
    ``orders``: single-order query answers (any status). ``not_found``: (market, client id)
    whose query answered "order does not exist". The ``*_scope`` / ``balance_markets`` fields
    say which lists are complete; a list with no scope only adds information.
    """

    as_of: datetime
    open_orders: tuple[OrderUpdate, ...] = ()
    open_orders_scope: tuple[Scope, ...] = ()
    orders: tuple[OrderUpdate, ...] = ()
    not_found: tuple[tuple[str, str], ...] = ()
    fills: tuple[Fill, ...] = ()
    balances: tuple[BalanceUpdate, ...] = ()
    balance_markets: tuple[str, ...] = ()
    positions: tuple[PositionUpdate, ...] = ()
    position_scope: tuple[Scope, ...] = ()


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a reconcile checked and changed. ``*_checked``: rows in the picture; ``orders_changed``
    ... ``positions_changed``: events published for each kind; ``missed_fills``: fills the model
    had not seen (what the outage hid); ``ignored``: rows older than the model or refused by
    the state machine; ``resolved``: client ids of UNKNOWN orders the picture settled;
    ``unresolved``: orders still to query; ``zeroed`` (market, asset) and ``flattened``
    (market, symbol, position side) by a complete list."""

    exchange: str
    as_of: datetime
    open_orders_checked: int
    orders_checked: int
    fills_checked: int
    balances_checked: int
    positions_checked: int
    orders_changed: int
    missed_fills: int
    balances_changed: int
    positions_changed: int
    ignored: int
    resolved: tuple[str, ...]
    unresolved: tuple[OrderRef, ...]
    zeroed: tuple[tuple[str, str], ...]
    flattened: tuple[tuple[str, str, str], ...]

    @property
    def changed(self) -> bool:
        counts = (self.orders_changed, self.missed_fills, self.balances_changed)
        return any(counts) or bool(self.positions_changed)


def in_scope(market: str, symbol: str, scope: Iterable[Scope]) -> bool:
    return any(m == market and (s is None or s == symbol) for m, s in scope)


def _ref(order: OrderUpdate) -> OrderRef:
    return OrderRef(
        order.market, order.symbol, order.client_order_id, order.exchange_order_id, order.status
    )


def _listed(order: OrderUpdate, listed: Sequence[OrderUpdate]) -> bool:
    for row in listed:
        if row.market != order.market or row.symbol != order.symbol:
            continue
        if order.exchange_order_id and row.exchange_order_id == order.exchange_order_id:
            return True
        if order.client_order_id and row.client_order_id == order.client_order_id:
            return True
    return False


def orders_to_query(
    model: ReadModel, open_orders: Sequence[OrderUpdate], scope: Iterable[Scope]
) -> list[OrderRef]:
    """Orders to query one by one: those the model holds open (NEW, PARTIALLY_FILLED,
    PENDING_CANCEL, PENDING_NEW) within ``scope`` that ``open_orders`` does not list, and every
    UNKNOWN order wherever it is (its outcome can only be learnt by a query)."""
    scope = tuple(scope)
    out: list[OrderRef] = []
    for order in model.open_orders():
        if order.status is OrderStatus.UNKNOWN:
            if not _listed(order, open_orders):
                out.append(_ref(order))
        elif in_scope(order.market, order.symbol, scope) and not _listed(order, open_orders):
            out.append(_ref(order))
    return out


def fill_queries(model: ReadModel, symbols: Iterable[tuple[str, str]] = ()) -> list[FillQuery]:
    """Where "fills since" starts for every instrument the model has fills for, plus
    ``symbols`` and the instruments of open orders (fills may have come before the first one
    was seen)."""
    wanted: dict[tuple[str, str], None] = {}
    for cursor in model.fill_cursors():
        wanted[(cursor.market, cursor.symbol)] = None
    for key in symbols:
        wanted[key] = None
    for order in model.open_orders():
        wanted[(order.market, order.symbol)] = None
    out = []
    for market, symbol in wanted:
        cursor = model.fill_cursor(market, symbol)
        if cursor is None:
            out.append(FillQuery(market, symbol, None, None))
            continue
        from_id = int(cursor.trade_id) + 1 if cursor.trade_id.isdigit() else None
        out.append(FillQuery(market, symbol, from_id, cursor.ts))
    return out


def reconcile(model: ReadModel, picture: RestPicture) -> tuple[list[UserEvent], ReconcileReport]:
    """Merge ``picture`` into ``model``; the events to publish (orders, then fills, balances,
    positions: the order the stream carries them in) and what was done."""
    as_of = require_utc(picture.as_of, "as_of")
    ignored_before = model.counters.regressions + model.counters.conflicts
    unknown_before = {
        (o.market, o.client_order_id) for o in model.unknown_orders() if o.client_order_id
    }

    order_events: list[UserEvent] = []
    for row in (*picture.open_orders, *picture.orders):
        order_events += model.apply_order_update(row)
    for market, client_order_id in picture.not_found:
        order_events += model.resolve_not_found(market, client_order_id)

    fill_events: list[UserEvent] = []
    for fill in picture.fills:
        fill_events += model.apply_fill(fill)
    missed = [e for e in fill_events if isinstance(e, Fill)]
    order_events += [e for e in fill_events if isinstance(e, OrderUpdate)]

    balance_events, zeroed = _balances(model, picture, as_of)
    position_events, flattened = _positions(model, picture, as_of)

    resolved = tuple(
        cid
        for market, cid in sorted(unknown_before)
        if (order := model.order(market, cid)) is not None
        and order.status is not OrderStatus.UNKNOWN
    )
    unresolved = [
        _ref(o)
        for o in model.open_orders()
        if o.status is OrderStatus.UNKNOWN
        or (
            in_scope(o.market, o.symbol, picture.open_orders_scope)
            and not _listed(o, picture.open_orders)
        )
    ]
    report = ReconcileReport(
        exchange=model.exchange,
        as_of=as_of,
        open_orders_checked=len(picture.open_orders),
        orders_checked=len(picture.orders) + len(picture.not_found),
        fills_checked=len(picture.fills),
        balances_checked=len(picture.balances),
        positions_checked=len(picture.positions),
        orders_changed=len(order_events),
        missed_fills=len(missed),
        balances_changed=len(balance_events),
        positions_changed=len(position_events),
        ignored=model.counters.regressions + model.counters.conflicts - ignored_before,
        resolved=resolved,
        unresolved=tuple(unresolved),
        zeroed=tuple(zeroed),
        flattened=tuple(flattened),
    )
    return [*order_events, *missed, *balance_events, *position_events], report


def _balances(
    model: ReadModel, picture: RestPicture, as_of: datetime
) -> tuple[list[UserEvent], list[tuple[str, str]]]:
    events: list[UserEvent] = []
    for balance in picture.balances:
        events += model.apply_balance(balance)
    listed = {(b.market, b.asset) for b in picture.balances}
    zeroed = []
    for known in model.balances():
        key = (known.market, known.asset)
        if known.market not in picture.balance_markets or key in listed:
            continue
        if not any((known.free, known.locked, known.total)):
            continue  # already zero
        zero = msgspec.structs.replace(
            known,
            ts=max(as_of, known.ts),
            free=None if known.free is None else ZERO,
            locked=None if known.locked is None else ZERO,
            total=None if known.total is None else ZERO,
            delta=None,
            reason="reconcile",
        )
        got = model.apply_balance(zero)
        if got:
            zeroed.append(key)
            events += got
    return events, zeroed


def _positions(
    model: ReadModel, picture: RestPicture, as_of: datetime
) -> tuple[list[UserEvent], list[tuple[str, str, str]]]:
    events: list[UserEvent] = []
    for position in picture.positions:
        events += model.apply_position(position)
    listed = {(p.market, p.symbol, p.position_side) for p in picture.positions}
    flattened = []
    for known in model.positions():
        key = (known.market, known.symbol, known.position_side)
        if not in_scope(known.market, known.symbol, picture.position_scope) or key in listed:
            continue
        if not known.qty:
            continue
        flat = msgspec.structs.replace(
            known,
            qty=ZERO,
            ts=max(as_of, known.ts),
            entry_price=None,
            unrealized_pnl=None,
            liquidation_price=None,
            seq=None,
        )
        got = model.apply_position(flat)
        if got:
            flattened.append((known.market, known.symbol, str(known.position_side)))
            events += got
    return events, flattened
