"""The order read model (DESIGN §5, query side), pure: orders, fills, balances and positions of
one exchange, built from private-stream events and REST answers in whatever order they arrive.

Every ``apply_*`` returns the events subscribers must see: new information only. A duplicate
fill, a repeated or stale update, a regression: nothing. The actor shell publishes what it gets.

Rules (where DESIGN and the issue are silent, the choice is written here):

Orders
- An order is found by its exchange id (``market, symbol, exchange_order_id``: Binance ids count
  per symbol) or, when that is not known yet, by its client id (``market, client_order_id``;
  exconn's ids are unique per account). A client id already bound to another exchange id names
  a different order (Binance lets a client id be reused once the first order is closed).
- Staleness first, as ``exconn.model.orders.apply_update`` decides it: a lower cumulative
  ``filled_qty`` is stale; an equal one is stale when it is older (``seq`` when both updates
  carry one, the venue numbers them; else the exchange time ``ts``). A higher cumulative fill is
  never stale, whatever its time. Then the state machine (``ALLOWED``): a status move it does
  not allow is a regression. Stale updates and regressions are ignored and counted
  (``counters``), never applied.
- Whatever an ignored update knows that the record does not (the exchange id after a
  client-id-only record, the client id a REST row lacks, a trigger price) still enriches the
  record: an identifier is a fact, not a state.
- ``filled_qty`` and the exchange time only grow. The view a subscriber sees is the merged
  record (an ``OrderUpdate``), not the raw input.
- exconn's own decisions (``record_submitted``: PENDING_NEW; ``mark``: UNKNOWN, PENDING_CANCEL,
  back to open after a refused cancel) change the record but publish nothing: the command side
  answers the engine for those. They never touch the exchange time (see
  ``exconn.model.orders``), so the first exchange report is never judged against local time.
  Until the exchange names the order its ``exchange_order_id`` is "" (the message field is a
  str); an UNKNOWN order whose query answers "not found" resolves to REJECTED that way.

Fills
- De-duplicated by ``Fill.key`` (the trade id within the instrument). A fill is published as
  soon as it is known, even when its order is not: it is kept and attached to the order when
  the order arrives. Fills do not move the order's status or quantity (the venue reports those
  itself; a REST reconcile queries orders whose fills outran them).
- Per instrument the model keeps a ``FillCursor`` (the last trade id and the latest fill time)
  so the actor can ask REST for "fills since".

Balances and positions
- Keyed by (market, asset) and (market, symbol, position side). An older report (``ts``, or
  ``seq`` for positions when both carry one) is ignored; a report that changes nothing but the
  time is absorbed silently. A balance event with only a ``delta`` (Binance spot deposits and
  transfers) is published but not stored: the snapshot that follows carries the balance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import msgspec

from exconn.messages import (
    BalanceUpdate,
    Fill,
    OrderUpdate,
    PlaceOrder,
    PositionSide,
    PositionUpdate,
    UserEvent,
)
from exconn.model.decimal import require_utc
from exconn.model.enums import OrderStatus, OrderType
from exconn.model.orders import ALLOWED, OPEN, TERMINAL

__all__ = [
    "NOT_FOUND_REASON",
    "FillCursor",
    "FillKey",
    "ReadModel",
    "ReadModelCounters",
]

S = OrderStatus
FillKey = tuple[str, str, str, str]  # Fill.key: exchange, market, symbol, trade_id
_EidKey = tuple[str, str, str]  # market, symbol, exchange_order_id
_CidKey = tuple[str, str]  # market, client_order_id
NOT_FOUND_REASON = "not found"

# Fields an update may lack (None / "") that another report of the same order can supply.
_ENRICH = (
    "client_order_id",
    "time_in_force",
    "price",
    "avg_price",
    "position_side",
    "trigger_price",
    "quote_qty",
    "reject_reason",
)


class FillCursor(msgspec.Struct, frozen=True):
    """Where "fills since" starts for one instrument. ``trade_id`` is the highest numeric trade
    id seen (Binance: ask ``fromId = int(trade_id) + 1``) or, for venues whose ids are not
    ordered (Bybit UUIDs), the id of the latest fill; ``ts`` is the latest fill's time (Bybit:
    ask ``startTime`` from it; the overlap is de-duplicated)."""

    market: str
    symbol: str
    trade_id: str
    ts: datetime


@dataclass(slots=True)
class ReadModelCounters:
    """What was ignored, for health and logs. ``stale``: older than what is known;
    ``illegal``: a status move the state machine refuses (both are regressions);
    ``conflicts``: an update that cannot be true of the record it names (fills above the
    order's qty, a different exchange id); ``duplicate_fills``; ``orphan_fills``: fills that
    arrived before their order (attached later); ``stale_balances``, ``stale_positions``."""

    stale: int = 0
    illegal: int = 0
    conflicts: int = 0
    duplicate_fills: int = 0
    orphan_fills: int = 0
    stale_balances: int = 0
    stale_positions: int = 0

    @property
    def regressions(self) -> int:
        return self.stale + self.illegal


@dataclass(slots=True)
class _Record:
    view: OrderUpdate
    # The time of the last exchange-reported update; None while only exconn's own decisions
    # are known (their local time must not be compared with the exchange's).
    exchange_ts: datetime | None
    fills: list[FillKey] = field(default_factory=list)


def _is_empty(value: object) -> bool:
    return value is None or value == ""


def _enrich(base: OrderUpdate, other: OrderUpdate) -> OrderUpdate:
    """``base`` with the identifiers and optional fields it lacks taken from ``other``."""
    changes: dict[str, object] = {}
    if not base.exchange_order_id and other.exchange_order_id:
        changes["exchange_order_id"] = other.exchange_order_id
    for name in _ENRICH:
        if _is_empty(getattr(base, name)) and not _is_empty(getattr(other, name)):
            # avg_price only belongs to the same cumulative fill.
            if name == "avg_price" and base.filled_qty != other.filled_qty:
                continue
            changes[name] = getattr(other, name)
    if not base.venue_type and other.venue_type:
        changes["venue_type"] = other.venue_type
    if base.qty == 0 and other.qty:
        changes["qty"] = other.qty
    return msgspec.structs.replace(base, **changes) if changes else base


def _older(update: OrderUpdate, record: _Record) -> bool:
    """``update`` says nothing newer than ``record`` at the same cumulative fill."""
    if record.exchange_ts is None:
        return False
    if update.seq is not None and record.view.seq is not None:
        return update.seq < record.view.seq
    return update.ts < record.exchange_ts


class ReadModel:
    """One exchange's orders, fills, balances and positions. Not thread-safe; one per
    ``OrderQuery`` actor."""

    def __init__(self, exchange: str) -> None:
        self.exchange = str(exchange)
        self.counters = ReadModelCounters()
        self._records: dict[int, _Record] = {}
        self._next = 0
        self._by_eid: dict[_EidKey, int] = {}
        self._by_cid: dict[_CidKey, int] = {}
        self._fills: dict[FillKey, Fill] = {}
        # Fills whose order is not known yet, by the ids they name.
        self._orphans_by_eid: dict[_EidKey, list[FillKey]] = {}
        self._cursors: dict[tuple[str, str], FillCursor] = {}
        self._balances: dict[tuple[str, str], BalanceUpdate] = {}
        self._positions: dict[tuple[str, str, PositionSide], PositionUpdate] = {}

    # ================================================================== orders: exchange facts
    def apply_order_update(self, update: OrderUpdate) -> list[UserEvent]:
        """Merge an exchange-reported order state (stream event, REST ack with a status, REST
        query row). Returns ``[merged view]`` when it added information, else ``[]``."""
        self._check_exchange(update.exchange)
        require_utc(update.ts, "ts")
        rid = self._find(update)
        if rid is None:
            return self._create(update)
        record = self._records[rid]
        before = record.view
        if not self._consistent(record, update):
            self.counters.conflicts += 1
            return []
        if update.filled_qty < before.filled_qty or (
            update.filled_qty == before.filled_qty and _older(update, record)
        ):
            self.counters.stale += 1
            merged = _enrich(before, update)
        elif update.status not in ALLOWED[before.status]:
            self.counters.illegal += 1
            merged = _enrich(before, update)
        else:
            ts = update.ts if record.exchange_ts is None else max(update.ts, record.exchange_ts)
            merged = _enrich(msgspec.structs.replace(update, ts=ts), before)
            if merged.seq is None and before.seq is not None:
                merged = msgspec.structs.replace(merged, seq=before.seq)
            record.exchange_ts = ts
        return self._store(rid, before, merged)

    def apply_ack(
        self,
        market: str,
        symbol: str,
        client_order_id: str,
        exchange_order_id: str,
        ts: datetime | None = None,
        status: OrderStatus | None = None,
    ) -> list[UserEvent]:
        """A placement acknowledged with ids only (Binance ``newOrderRespType=ACK``: ``status``
        NEW and ``transactTime``; Bybit create: no status, its processing is asynchronous).
        Binds the exchange id to the submitted record; with a status and time it is merged as
        an exchange report with nothing filled. Returns the merged view if it changed."""
        rid = self._by_cid.get((market, client_order_id))
        if rid is None:
            return []  # nothing submitted under this id here: the stream or a query will tell
        record = self._records[rid]
        if record.view.exchange_order_id and record.view.exchange_order_id != exchange_order_id:
            self.counters.conflicts += 1
            return []
        if status is not None and ts is not None:
            report = msgspec.structs.replace(
                record.view,
                exchange_order_id=exchange_order_id,
                status=status,
                filled_qty=Decimal(0),
                avg_price=None,
                ts=ts,
                seq=None,
            )
            return self.apply_order_update(report)
        before = record.view
        merged = msgspec.structs.replace(before, exchange_order_id=exchange_order_id)
        return self._store(rid, before, merged)

    def resolve_not_found(self, market: str, client_order_id: str) -> list[UserEvent]:
        """A query by client id answered "order does not exist": an order still PENDING_NEW or
        UNKNOWN was never accepted and becomes REJECTED (``reject_reason`` "not found"). An
        order the exchange had already named is left alone and counted as a conflict: the
        answer contradicts what the exchange said before, so it is not trusted."""
        rid = self._by_cid.get((market, client_order_id))
        if rid is None:
            return []
        record = self._records[rid]
        before = record.view
        if before.status not in (S.PENDING_NEW, S.UNKNOWN):
            if before.status not in TERMINAL:
                self.counters.conflicts += 1
            return []
        merged = msgspec.structs.replace(
            before, status=S.REJECTED, reject_reason=before.reject_reason or NOT_FOUND_REASON
        )
        return self._store(rid, before, merged)

    # ================================================================== orders: own decisions
    def record_submitted(
        self, order: PlaceOrder, client_order_id: str, ts: datetime
    ) -> list[UserEvent]:
        """The command side is about to send ``order`` under ``client_order_id`` (PENDING_NEW).
        ``ts`` is local time, kept only for display. Publishes nothing. A record that already
        exists (a stream event came first, or a retry) is left as it is."""
        require_utc(ts, "ts")
        key = (str(order.market), client_order_id)
        if key in self._by_cid:
            return []
        view = OrderUpdate(
            exchange=self.exchange,
            market=str(order.market),
            symbol=order.symbol,
            client_order_id=client_order_id,
            exchange_order_id="",
            side=order.side,
            order_type=OrderType(order.type),
            time_in_force=order.time_in_force,
            status=S.PENDING_NEW,
            price=order.price,
            qty=order.qty,
            filled_qty=Decimal(0),
            avg_price=None,
            ts=ts,
            reduce_only=order.reduce_only,
        )
        rid = self._new_record(view, None)
        self._adopt_orphans(rid)
        return []

    def mark(self, market: str, client_order_id: str, status: OrderStatus) -> list[UserEvent]:
        """exconn's own decision about an order: UNKNOWN (a submission's outcome was lost),
        PENDING_CANCEL (a cancel was sent), NEW / PARTIALLY_FILLED (the cancel was refused).
        An illegal move (e.g. the stream already said FILLED) is ignored and counted: what the
        exchange said wins. Publishes nothing; returns ``[]``."""
        rid = self._by_cid.get((market, client_order_id))
        if rid is None:
            return []
        record = self._records[rid]
        before = record.view
        if status not in ALLOWED[before.status]:
            self.counters.illegal += 1
            return []
        record.view = msgspec.structs.replace(before, status=status)
        return []

    # ================================================================== fills
    def apply_fill(self, fill: Fill) -> list[UserEvent]:
        """A fill from the stream or REST. ``[fill]`` the first time its key is seen, plus the
        order's view when the fill named an exchange id its record lacked; ``[]`` after."""
        self._check_exchange(fill.exchange)
        key = fill.key
        if key in self._fills:
            self.counters.duplicate_fills += 1
            return []
        self._fills[key] = fill
        self._advance_cursor(fill)
        out: list[UserEvent] = [fill]
        eid_key = (fill.market, fill.symbol, fill.exchange_order_id)
        rid = self._by_eid.get(eid_key)
        if rid is None and fill.client_order_id:
            cand = self._by_cid.get((fill.market, fill.client_order_id))
            if cand is not None and not self._records[cand].view.exchange_order_id:
                rid = cand
                before = self._records[cand].view
                out += self._store(
                    cand, before, msgspec.structs.replace(before, exchange_order_id=eid_key[2])
                )
        if rid is None:
            self.counters.orphan_fills += 1
            self._orphans_by_eid.setdefault(eid_key, []).append(key)
        else:
            self._records[rid].fills.append(key)
        return out

    # ================================================================== balances, positions
    def apply_balance(self, balance: BalanceUpdate) -> list[UserEvent]:
        self._check_exchange(balance.exchange)
        if balance.free is None and balance.locked is None and balance.total is None:
            return [balance]  # a delta: news, but the snapshot that follows is the balance
        key = (balance.market, balance.asset)
        known = self._balances.get(key)
        if known is not None:
            if balance.ts < known.ts:
                self.counters.stale_balances += 1
                return []
            same = (known.free, known.locked, known.total) == (
                balance.free,
                balance.locked,
                balance.total,
            )
            if same:
                self._balances[key] = balance  # only the time moved
                return []
        self._balances[key] = balance
        return [balance]

    def apply_position(self, position: PositionUpdate) -> list[UserEvent]:
        self._check_exchange(position.exchange)
        key = (position.market, position.symbol, PositionSide(position.position_side))
        known = self._positions.get(key)
        if known is not None:
            if position.seq is not None and known.seq is not None:
                older = position.seq < known.seq
            else:
                older = position.ts < known.ts
            if older:
                self.counters.stale_positions += 1
                return []
            if msgspec.structs.replace(position, ts=known.ts, seq=known.seq) == known:
                self._positions[key] = position
                return []
        self._positions[key] = position
        return [position]

    def apply(self, event: UserEvent) -> list[UserEvent]:
        """Any user event, dispatched by type."""
        if isinstance(event, OrderUpdate):
            return self.apply_order_update(event)
        if isinstance(event, Fill):
            return self.apply_fill(event)
        if isinstance(event, BalanceUpdate):
            return self.apply_balance(event)
        return self.apply_position(event)

    def apply_all(self, events: Iterable[UserEvent]) -> list[UserEvent]:
        out: list[UserEvent] = []
        for event in events:
            out += self.apply(event)
        return out

    # ================================================================== queries
    def order(self, market: str, client_order_id: str) -> OrderUpdate | None:
        rid = self._by_cid.get((market, client_order_id))
        return None if rid is None else self._records[rid].view

    def order_by_exchange_id(
        self, market: str, symbol: str, exchange_order_id: str
    ) -> OrderUpdate | None:
        rid = self._by_eid.get((market, symbol, exchange_order_id))
        return None if rid is None else self._records[rid].view

    def orders(self, market: str | None = None, symbol: str | None = None) -> list[OrderUpdate]:
        return [
            r.view
            for r in self._records.values()
            if (market is None or r.view.market == market)
            and (symbol is None or r.view.symbol == symbol)
        ]

    def open_orders(
        self, market: str | None = None, symbol: str | None = None
    ) -> list[OrderUpdate]:
        """Orders not in a terminal status (PENDING_NEW, UNKNOWN and PENDING_CANCEL included:
        they may be working on the venue)."""
        return [o for o in self.orders(market, symbol) if o.status in OPEN]

    def unknown_orders(self) -> list[OrderUpdate]:
        """Orders whose submission outcome is not known (UNKNOWN): resolve each by querying
        its client id (``reconcile.orders_to_query`` lists them)."""
        return [r.view for r in self._records.values() if r.view.status is S.UNKNOWN]

    def fills_of(self, order: OrderUpdate) -> list[Fill]:
        """The fills attached to ``order`` (found by exchange id, else client id)."""
        rid = None
        if order.exchange_order_id:
            rid = self._by_eid.get((order.market, order.symbol, order.exchange_order_id))
        if rid is None and order.client_order_id:
            rid = self._by_cid.get((order.market, order.client_order_id))
        return [] if rid is None else [self._fills[k] for k in self._records[rid].fills]

    def fills(self, market: str | None = None, symbol: str | None = None) -> list[Fill]:
        return [
            f
            for f in self._fills.values()
            if (market is None or f.market == market) and (symbol is None or f.symbol == symbol)
        ]

    def has_fill(self, key: FillKey) -> bool:
        return key in self._fills

    def unattached_fills(self) -> list[Fill]:
        """Fills whose order is not known yet."""
        return [self._fills[k] for keys in self._orphans_by_eid.values() for k in keys]

    def fill_cursor(self, market: str, symbol: str) -> FillCursor | None:
        return self._cursors.get((market, symbol))

    def fill_cursors(self) -> list[FillCursor]:
        return list(self._cursors.values())

    def balance(self, market: str, asset: str) -> BalanceUpdate | None:
        return self._balances.get((market, asset))

    def balances(self, market: str | None = None) -> list[BalanceUpdate]:
        return [b for b in self._balances.values() if market is None or b.market == market]

    def position(
        self, market: str, symbol: str, position_side: PositionSide = PositionSide.BOTH
    ) -> PositionUpdate | None:
        return self._positions.get((market, symbol, PositionSide(position_side)))

    def positions(
        self, market: str | None = None, symbol: str | None = None
    ) -> list[PositionUpdate]:
        return [
            p
            for p in self._positions.values()
            if (market is None or p.market == market) and (symbol is None or p.symbol == symbol)
        ]

    # ================================================================== internals
    def _check_exchange(self, exchange: str) -> None:
        if exchange != self.exchange:
            raise ValueError(f"{exchange} event given to the {self.exchange} read model")

    def _find(self, update: OrderUpdate) -> int | None:
        if update.exchange_order_id:
            rid = self._by_eid.get((update.market, update.symbol, update.exchange_order_id))
            if rid is not None:
                return rid
        if update.client_order_id:
            rid = self._by_cid.get((update.market, update.client_order_id))
            if rid is not None:
                view = self._records[rid].view
                if view.symbol == update.symbol and (
                    not view.exchange_order_id or not update.exchange_order_id
                ):
                    return rid
        return None  # a new order (or a client id reused for another one)

    def _consistent(self, record: _Record, update: OrderUpdate) -> bool:
        view = record.view
        if view.side != update.side:
            return False
        qty = update.qty or view.qty
        return not (qty and update.filled_qty > qty)

    def _create(self, update: OrderUpdate) -> list[UserEvent]:
        qty = update.qty
        if qty and update.filled_qty > qty:
            self.counters.conflicts += 1
            return []
        rid = self._new_record(update, update.ts)
        self._adopt_orphans(rid)
        return [update]

    def _new_record(self, view: OrderUpdate, exchange_ts: datetime | None) -> int:
        rid = self._next
        self._next += 1
        self._records[rid] = _Record(view=view, exchange_ts=exchange_ts)
        self._index(rid, view)
        return rid

    def _index(self, rid: int, view: OrderUpdate) -> None:
        if view.exchange_order_id:
            self._by_eid[(view.market, view.symbol, view.exchange_order_id)] = rid
        if view.client_order_id:
            self._by_cid[(view.market, view.client_order_id)] = rid

    def _store(self, rid: int, before: OrderUpdate, merged: OrderUpdate) -> list[UserEvent]:
        record = self._records[rid]
        record.view = merged
        if merged == before:
            return []
        gained_eid = merged.exchange_order_id and not before.exchange_order_id
        self._index(rid, merged)
        if gained_eid:
            self._adopt_orphans(rid)
        return [merged]

    def _adopt_orphans(self, rid: int) -> None:
        view = self._records[rid].view
        if not view.exchange_order_id:
            return
        keys = self._orphans_by_eid.pop((view.market, view.symbol, view.exchange_order_id), [])
        self._records[rid].fills.extend(keys)

    def _advance_cursor(self, fill: Fill) -> None:
        key = (fill.market, fill.symbol)
        known = self._cursors.get(key)
        if known is None:
            self._cursors[key] = FillCursor(fill.market, fill.symbol, fill.trade_id, fill.ts)
            return
        if fill.trade_id.isdigit() and known.trade_id.isdigit():
            newer_id = int(fill.trade_id) > int(known.trade_id)
        else:
            newer_id = fill.ts > known.ts
        self._cursors[key] = FillCursor(
            fill.market,
            fill.symbol,
            fill.trade_id if newer_id else known.trade_id,
            max(fill.ts, known.ts),
        )
