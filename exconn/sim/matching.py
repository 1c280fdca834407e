"""Price-time-priority matching engine for one symbol: pure, deterministic, integer grid.

Prices are integer ticks and quantities integer steps; a notional is `ticks * steps`
("tick-steps"), so every sum is exact and venue layers scale to wire strings at the edge.
The engine knows nothing about balances: an optional `Policy` (the account ledger) caps how
much an order may fill (reduce-only) and prices the fee of each fill. Every mutation returns
one `Batch` of events in the order they happened, and the same batch goes to every
subscriber, so the public book, the public trades and the private fills are one history.

Each change of a price level's total consumes one update id. Changes are aggregated per
mutation (a taker that eats three orders at one price changes that level once), which
matches how an exchange's diff stream reports a level's final quantity.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

UNLIMITED = 1 << 62  # a cap larger than any grid quantity


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "POST_ONLY"  # Binance spot LIMIT_MAKER, USD-M GTX, Bybit PostOnly


class StpMode(StrEnum):
    """Self-trade prevention; the taker's mode decides (Binance and Bybit alike)."""

    NONE = "NONE"
    EXPIRE_TAKER = "EXPIRE_TAKER"
    EXPIRE_MAKER = "EXPIRE_MAKER"
    EXPIRE_BOTH = "EXPIRE_BOTH"


class PositionSide(StrEnum):
    BOTH = "BOTH"  # one-way mode
    LONG = "LONG"
    SHORT = "SHORT"


class OrderStatus(StrEnum):
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"  # ended by self-trade prevention
    REJECTED = "REJECTED"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


class ExecType(StrEnum):
    NEW = "NEW"
    TRADE = "TRADE"
    AMENDED = "AMENDED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"


class Reason(StrEnum):
    """Why an order was rejected, expired or cancelled; venue layers map these to codes."""

    NONE = "NONE"
    INVALID = "INVALID"  # qty/price missing or not positive
    WOULD_TAKE = "WOULD_TAKE"  # post-only that would match
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    INSUFFICIENT_MARGIN = "INSUFFICIENT_MARGIN"
    REDUCE_ONLY = "REDUCE_ONLY"  # would increase the position, or the position is gone
    POSITION_SIDE = "POSITION_SIDE"  # position side does not fit the account's mode
    IOC_REMAINDER = "IOC_REMAINDER"
    FOK_UNFILLED = "FOK_UNFILLED"
    NO_LIQUIDITY = "NO_LIQUIDITY"  # market order met an empty side
    SELF_TRADE = "SELF_TRADE"
    USER = "USER"
    AMEND_TO_FILLED = "AMEND_TO_FILLED"  # amended to a quantity <= what already filled
    BOOK_RESET = "BOOK_RESET"


class MatchingError(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class OrderNotFound(MatchingError, LookupError):
    def __init__(self, order_id: int) -> None:
        super().__init__(Reason.INVALID, f"order {order_id} is not open")
        self.order_id = order_id


class AmendRejected(MatchingError):
    pass


# ------------------------------------------------------------------------ orders
@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order in grid units. MARKET orders give `qty` or `quote_qty` (tick-steps)."""

    account: str
    side: Side
    qty: int = 0
    price: int | None = None
    type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.GTC
    quote_qty: int | None = None
    client_id: str = ""
    stp: StpMode = StpMode.EXPIRE_TAKER
    reduce_only: bool = False
    position_side: PositionSide = PositionSide.BOTH


@dataclass(frozen=True, slots=True)
class OrderState:
    """Immutable snapshot of an order, carried by every order event."""

    order_id: int
    account: str
    client_id: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: int | None
    qty: int
    quote_qty: int | None
    stp: StpMode
    reduce_only: bool
    position_side: PositionSide
    status: OrderStatus
    filled: int
    filled_notional: int  # tick-steps; average price = filled_notional / filled
    fee: int
    fee_asset: str
    trade_ids: tuple[int, ...]
    created_ms: int
    updated_ms: int

    @property
    def leaves(self) -> int:
        return max(self.qty - self.filled, 0)


@dataclass(slots=True)
class Order:
    """A live order inside the engine; only the engine mutates it."""

    order_id: int
    account: str
    client_id: str
    side: Side
    type: OrderType
    tif: TimeInForce
    price: int | None
    qty: int
    quote_qty: int | None
    stp: StpMode
    reduce_only: bool
    position_side: PositionSide
    created_ms: int
    updated_ms: int
    status: OrderStatus = OrderStatus.NEW
    filled: int = 0
    filled_notional: int = 0
    fee: int = 0
    fee_asset: str = ""
    trade_ids: list[int] = field(default_factory=list)

    @property
    def leaves(self) -> int:
        return max(self.qty - self.filled, 0)

    @property
    def by_quote(self) -> bool:
        return self.quote_qty is not None

    def view(self) -> OrderState:
        return OrderState(
            self.order_id,
            self.account,
            self.client_id,
            self.side,
            self.type,
            self.tif,
            self.price,
            self.qty,
            self.quote_qty,
            self.stp,
            self.reduce_only,
            self.position_side,
            self.status,
            self.filled,
            self.filled_notional,
            self.fee,
            self.fee_asset,
            tuple(self.trade_ids),
            self.created_ms,
            self.updated_ms,
        )


# ------------------------------------------------------------------------ events
@dataclass(frozen=True, slots=True)
class LevelChange:
    """A level's new total; qty 0 means the level is gone. One update id each."""

    update_id: int
    side: Side
    price: int
    qty: int


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One public print: a taker matched one maker order."""

    trade_id: int
    price: int
    qty: int
    time_ms: int
    taker_side: Side
    maker_order_id: int
    taker_order_id: int
    maker_account: str
    taker_account: str

    @property
    def buyer_is_maker(self) -> bool:
        return self.taker_side is Side.SELL


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: int
    price: int
    qty: int
    notional: int  # tick-steps
    fee: int  # in the fee asset's 1e-8 units, as priced by the policy
    fee_asset: str
    is_maker: bool


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """A private event: the order's state after this change, plus the fill if a trade."""

    exec_type: ExecType
    order: OrderState
    time_ms: int
    reason: Reason = Reason.NONE
    fill: Fill | None = None


Event = LevelChange | TradeEvent | OrderEvent


@dataclass(frozen=True, slots=True)
class Batch:
    """Everything one mutation did, in order; level changes close the batch."""

    symbol: str
    time_ms: int
    events: tuple[Event, ...]
    order: OrderState | None = None  # the order the call was about (None for bulk calls)

    @property
    def level_changes(self) -> list[LevelChange]:
        return [e for e in self.events if isinstance(e, LevelChange)]

    @property
    def trades(self) -> list[TradeEvent]:
        return [e for e in self.events if isinstance(e, TradeEvent)]

    @property
    def order_events(self) -> list[OrderEvent]:
        return [e for e in self.events if isinstance(e, OrderEvent)]


@dataclass(frozen=True, slots=True)
class Preview:
    """What a taker would do now, without doing it."""

    qty: int
    notional: int
    worst_price: int | None
    stop: Reason


# ------------------------------------------------------------------------ policy
class Session(Protocol):
    """Scratch state for one matching pass; dry runs and real runs use the same logic."""

    def cap(self, order: Order) -> int:
        """How many more steps `order` may fill now (UNLIMITED when unconstrained)."""
        ...

    def record(self, order: Order, qty: int) -> None: ...


class Policy(Protocol):
    def session(self) -> Session: ...

    def fee(self, order: Order, price: int, qty: int, is_maker: bool) -> tuple[int, str]: ...


class _FreeSession:
    def cap(self, order: Order) -> int:
        return UNLIMITED

    def record(self, order: Order, qty: int) -> None:
        pass


class FreePolicy:
    """No caps and no fees: the book on its own, as the market agents see it."""

    def session(self) -> Session:
        return _FreeSession()

    def fee(self, order: Order, price: int, qty: int, is_maker: bool) -> tuple[int, str]:
        return 0, ""


# -------------------------------------------------------------------- the engine
@dataclass(slots=True)
class _Match:
    maker: Order
    price: int
    qty: int


@dataclass(slots=True)
class _Expire:
    maker: Order
    reason: Reason


@dataclass(slots=True)
class _Plan:
    actions: list[_Match | _Expire]
    qty: int
    notional: int
    worst_price: int | None
    stop: Reason  # why matching stopped before the taker was done (NONE: price/quote/book)
    quote_done: bool = False  # a quote-sized taker spent all it could


def crosses(side: Side, price: int, opposite_price: int) -> bool:
    return price >= opposite_price if side is Side.BUY else price <= opposite_price


class OrderBook:
    """All resting orders of one symbol and the rules that match them."""

    def __init__(
        self,
        symbol: str,
        first_update_id: int = 0,
        first_order_id: int = 1,
        first_trade_id: int = 1,
        policy: Policy | None = None,
    ) -> None:
        self.symbol = symbol
        self.update_id = first_update_id
        self.next_order_id = first_order_id
        self.next_trade_id = first_trade_id
        self.policy: Policy = policy or FreePolicy()
        # Level totals are what the public book shows; kept alongside the FIFO queues so a
        # snapshot never walks orders.
        self.totals: dict[Side, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}
        self._queues: dict[Side, dict[int, dict[int, Order]]] = {Side.BUY: {}, Side.SELL: {}}
        self._prices: dict[Side, list[int]] = {Side.BUY: [], Side.SELL: []}  # ascending
        self._orders: dict[int, Order] = {}
        self._listeners: list[Callable[[Batch], None]] = []
        self._pending: deque[Batch] = deque()
        self._dispatching = False
        self._mutating = False
        self._events: list[Event] = []
        self._touched: dict[tuple[Side, int], int] = {}
        self._time_ms = 0

    # ------------------------------------------------------------------ queries
    @property
    def bids(self) -> dict[int, int]:
        return self.totals[Side.BUY]

    @property
    def asks(self) -> dict[int, int]:
        return self.totals[Side.SELL]

    def best(self, side: Side) -> int | None:
        prices = self._prices[side]
        if not prices:
            return None
        return prices[-1] if side is Side.BUY else prices[0]

    def best_bid(self) -> int | None:
        return self.best(Side.BUY)

    def best_ask(self) -> int | None:
        return self.best(Side.SELL)

    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def prices(self, side: Side) -> list[int]:
        """Prices of one side, best first."""
        prices = self._prices[side]
        return prices[::-1] if side is Side.BUY else list(prices)

    def orders_at(self, side: Side, price: int) -> list[OrderState]:
        """Resting orders of one level in priority order."""
        return [o.view() for o in self._queues[side].get(price, {}).values()]

    def get(self, order_id: int) -> OrderState | None:
        order = self._orders.get(order_id)
        return None if order is None else order.view()

    def open_orders(self, account: str | None = None) -> list[OrderState]:
        return [o.view() for o in self._orders.values() if account is None or o.account == account]

    def subscribe(self, listener: Callable[[Batch], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Batch], None]) -> None:
        self._listeners.remove(listener)

    def preview(self, request: OrderRequest) -> Preview:
        """Dry-run `request` as a taker against the current book (no ids, no events)."""
        order = self._make_order(request, -1, 0)
        if self._invalid(order) is not None:
            return Preview(0, 0, None, Reason.INVALID)
        plan = self._plan(order)
        return Preview(plan.qty, plan.notional, plan.worst_price, plan.stop)

    # ---------------------------------------------------------------- mutations
    def submit(self, request: OrderRequest, time_ms: int) -> Batch:
        self._begin(time_ms)
        order = self._make_order(request, self.next_order_id, time_ms)
        self.next_order_id += 1
        invalid = self._invalid(order)
        if invalid is not None:
            return self._finish(self._reject(order, invalid))
        if order.tif is TimeInForce.POST_ONLY and self._would_take(order):
            return self._finish(self._reject(order, Reason.WOULD_TAKE))
        self._emit_order(ExecType.NEW, order)
        plan = self._plan(order)
        if order.tif is TimeInForce.FOK and plan.qty < order.qty:
            # All or nothing: nothing executes, not even a self-trade-prevention expiry.
            return self._finish(self._end(order, OrderStatus.EXPIRED, Reason.FOK_UNFILLED))
        self._execute(order, plan)
        return self._finish(self._dispose_taker(order, plan))

    def reject(self, request: OrderRequest, reason: Reason, time_ms: int) -> Batch:
        """Record an order refused before matching (by the ledger): an id, no book change."""
        self._begin(time_ms)
        order = self._make_order(request, self.next_order_id, time_ms)
        self.next_order_id += 1
        return self._finish(self._reject(order, reason))

    def cancel(self, order_id: int, time_ms: int, reason: Reason = Reason.USER) -> Batch:
        order = self._resting(order_id)
        self._begin(time_ms)
        self._unrest(order)
        return self._finish(self._end(order, OrderStatus.CANCELED, reason))

    def expire(self, order_id: int, time_ms: int, reason: Reason) -> Batch:
        order = self._resting(order_id)
        self._begin(time_ms)
        self._unrest(order)
        return self._finish(self._end(order, OrderStatus.EXPIRED, reason))

    def cancel_all(self, time_ms: int, account: str | None = None) -> Batch:
        self._begin(time_ms)
        for order in [o for o in self._orders.values() if account in (None, o.account)]:
            self._unrest(order)
            self._end(order, OrderStatus.CANCELED, Reason.USER)
        return self._finish(None)

    def amend(
        self, order_id: int, time_ms: int, qty: int | None = None, price: int | None = None
    ) -> Batch:
        """Change a resting order's total quantity and/or price.

        A pure quantity decrease keeps time priority; a price change or a quantity increase
        re-queues the order at the back of its (new) level, and a re-priced order that now
        crosses matches as a taker (post-only ones are cancelled instead, as USD-M does).
        """
        order = self._resting(order_id)
        new_qty = order.qty if qty is None else qty
        new_price = order.price if price is None else price
        if new_qty <= 0 or new_price is None or new_price <= 0:
            raise AmendRejected(Reason.INVALID, "amended quantity and price must be positive")
        self._begin(time_ms)
        if new_qty <= order.filled:
            self._unrest(order)
            return self._finish(self._end(order, OrderStatus.CANCELED, Reason.AMEND_TO_FILLED))
        if new_price == order.price and new_qty <= order.qty:
            self._change_level(order.side, new_price, new_qty - order.qty)
            order.qty = new_qty
            self._emit_order(ExecType.AMENDED, order)
            return self._finish(order)
        self._unrest(order)
        order.qty, order.price = new_qty, new_price
        if self._would_take(order):
            if order.tif is TimeInForce.POST_ONLY:
                return self._finish(self._end(order, OrderStatus.CANCELED, Reason.WOULD_TAKE))
            self._emit_order(ExecType.AMENDED, order)
            plan = self._plan(order)
            self._execute(order, plan)
            return self._finish(self._dispose_taker(order, plan))
        self._emit_order(ExecType.AMENDED, order)
        self._rest(order)
        return self._finish(order)

    def reset(
        self,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
        update_id: int,
        account: str,
        time_ms: int,
    ) -> Batch:
        """Replace the whole book by one `account` order per level, spending no update ids.

        For books made elsewhere (start-up, flood benchmark). Orders that were resting are
        reported CANCELED (BOOK_RESET); the new orders are silent, and subscribers must
        re-read the book because no level changes describe the jump.
        """
        self._begin(time_ms)
        for order in list(self._orders.values()):
            self._unrest(order)
            self._end(order, OrderStatus.CANCELED, Reason.BOOK_RESET)
        for side, levels in ((Side.BUY, bids), (Side.SELL, asks)):
            for price, qty in levels:
                order = self._make_order(
                    OrderRequest(account, side, qty, price), self.next_order_id, time_ms
                )
                self.next_order_id += 1
                self._rest(order)
        if self.is_crossed():
            raise ValueError("reset would leave a crossed book")
        self._touched.clear()
        self.update_id = update_id
        return self._finish(None)

    # ------------------------------------------------------------------ matching
    def _plan(self, taker: Order) -> _Plan:
        """Walk the opposite side in priority order without touching it."""
        session = self.policy.session()
        maker_side = taker.side.opposite
        remaining = UNLIMITED if taker.by_quote else taker.leaves
        quote_left = (taker.quote_qty or 0) - taker.filled_notional
        actions: list[_Match | _Expire] = []
        qty_sum = notional = 0
        worst: int | None = None
        limit = taker.price if taker.type is OrderType.LIMIT else None
        for price in self._iter_prices(maker_side):
            if limit is not None and not crosses(taker.side, limit, price):
                break
            for maker in self._queues[maker_side][price].values():
                if maker.account == taker.account and taker.stp is not StpMode.NONE:
                    if taker.stp is not StpMode.EXPIRE_TAKER:
                        actions.append(_Expire(maker, Reason.SELF_TRADE))
                    if taker.stp is StpMode.EXPIRE_MAKER:
                        continue
                    return _Plan(actions, qty_sum, notional, worst, Reason.SELF_TRADE)
                cap_taker = session.cap(taker)
                if cap_taker <= 0:
                    return _Plan(actions, qty_sum, notional, worst, Reason.REDUCE_ONLY)
                cap_maker = session.cap(maker)
                if cap_maker <= 0:
                    actions.append(_Expire(maker, Reason.REDUCE_ONLY))
                    continue
                qty = min(remaining, maker.leaves, cap_taker, cap_maker)
                if taker.by_quote:
                    qty = min(qty, quote_left // price)
                    if qty <= 0:
                        return _Plan(actions, qty_sum, notional, worst, Reason.NONE, True)
                    quote_left -= qty * price
                actions.append(_Match(maker, price, qty))
                session.record(taker, qty)
                session.record(maker, qty)
                remaining -= qty
                qty_sum += qty
                notional += qty * price
                worst = price
                if qty < maker.leaves and session.cap(maker) <= 0:
                    # A reduce-only maker whose position is now closed cannot rest on.
                    actions.append(_Expire(maker, Reason.REDUCE_ONLY))
                if remaining == 0:
                    return _Plan(actions, qty_sum, notional, worst, Reason.NONE)
                if session.cap(taker) <= 0:
                    return _Plan(actions, qty_sum, notional, worst, Reason.REDUCE_ONLY)
                # A buy's next prices are no better, so the quote left cannot buy more.
                if taker.by_quote and (
                    quote_left == 0 or (taker.side is Side.BUY and quote_left < price)
                ):
                    return _Plan(actions, qty_sum, notional, worst, Reason.NONE, True)
        return _Plan(actions, qty_sum, notional, worst, Reason.NONE)

    def _execute(self, taker: Order, plan: _Plan) -> None:
        matches = [i for i, a in enumerate(plan.actions) if isinstance(a, _Match)]
        last_match = matches[-1] if matches else -1
        for index, action in enumerate(plan.actions):
            maker = action.maker
            if isinstance(action, _Expire):
                self._unrest(maker)
                status = (
                    OrderStatus.EXPIRED_IN_MATCH
                    if action.reason is Reason.SELF_TRADE
                    else OrderStatus.EXPIRED
                )
                self._end(maker, status, action.reason)
                continue
            price, qty = action.price, action.qty
            trade_id = self.next_trade_id
            self.next_trade_id += 1
            self._events.append(
                TradeEvent(
                    trade_id,
                    price,
                    qty,
                    self._time_ms,
                    taker.side,
                    maker.order_id,
                    taker.order_id,
                    maker.account,
                    taker.account,
                )
            )
            self._change_level(maker.side, price, -qty)
            self._fill(maker, trade_id, price, qty, True)
            if maker.leaves == 0:
                self._unrest(maker, level_done=True)
            complete = plan.quote_done and index == last_match
            self._fill(taker, trade_id, price, qty, False, complete)

    def _fill(
        self,
        order: Order,
        trade_id: int,
        price: int,
        qty: int,
        is_maker: bool,
        quote_complete: bool = False,
    ) -> None:
        fee, fee_asset = self.policy.fee(order, price, qty, is_maker)
        order.filled += qty
        order.filled_notional += price * qty
        order.fee += fee
        order.fee_asset = fee_asset or order.fee_asset
        order.trade_ids.append(trade_id)
        order.updated_ms = self._time_ms
        if order.by_quote:
            order.qty = order.filled  # a quote-sized order's quantity is what it bought
            order.status = OrderStatus.FILLED if quote_complete else OrderStatus.PARTIALLY_FILLED
        else:
            order.status = OrderStatus.FILLED if order.leaves == 0 else OrderStatus.PARTIALLY_FILLED
        fill = Fill(trade_id, price, qty, price * qty, fee, fee_asset, is_maker)
        self._emit_order(ExecType.TRADE, order, fill=fill)

    def _dispose_taker(self, order: Order, plan: _Plan) -> Order:
        """After matching: rest the remainder, or end the order and say why."""
        if order.by_quote:
            if order.status is OrderStatus.FILLED:
                return order  # spent its quote; otherwise the book ran out or it was stopped
        elif order.leaves == 0:
            return order
        if plan.stop is Reason.SELF_TRADE:
            return self._end(order, OrderStatus.EXPIRED_IN_MATCH, Reason.SELF_TRADE)
        if plan.stop is Reason.REDUCE_ONLY:
            return self._end(order, OrderStatus.EXPIRED, Reason.REDUCE_ONLY)
        if order.type is OrderType.MARKET:
            reason = Reason.IOC_REMAINDER if order.filled else Reason.NO_LIQUIDITY
            return self._end(order, OrderStatus.EXPIRED, reason)
        if order.tif in (TimeInForce.IOC, TimeInForce.FOK):
            return self._end(order, OrderStatus.EXPIRED, Reason.IOC_REMAINDER)
        self._rest(order)
        return order

    # ----------------------------------------------------------------- plumbing
    def _make_order(self, request: OrderRequest, order_id: int, time_ms: int) -> Order:
        return Order(
            order_id=order_id,
            account=request.account,
            client_id=request.client_id,
            side=request.side,
            type=request.type,
            tif=TimeInForce.IOC if request.type is OrderType.MARKET else request.tif,
            price=request.price if request.type is OrderType.LIMIT else None,
            qty=0 if request.quote_qty is not None else request.qty,
            quote_qty=request.quote_qty,
            stp=request.stp,
            reduce_only=request.reduce_only,
            position_side=request.position_side,
            created_ms=time_ms,
            updated_ms=time_ms,
        )

    @staticmethod
    def _invalid(order: Order) -> Reason | None:
        if order.type is OrderType.LIMIT:
            bad = order.price is None or order.price <= 0 or order.qty <= 0
            return Reason.INVALID if bad or order.quote_qty is not None else None
        if order.quote_qty is not None:
            return None if order.quote_qty > 0 else Reason.INVALID
        return None if order.qty > 0 else Reason.INVALID

    def _would_take(self, order: Order) -> bool:
        best = self.best(order.side.opposite)
        return (
            best is not None and order.price is not None and crosses(order.side, order.price, best)
        )

    def _iter_prices(self, side: Side) -> Iterator[int]:
        # Iterate a copy: the plan never mutates, but a snapshot keeps that obviously true.
        prices = list(self._prices[side])
        return reversed(prices) if side is Side.BUY else iter(prices)

    def _resting(self, order_id: int) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    def _rest(self, order: Order) -> None:
        assert order.price is not None
        queue = self._queues[order.side].get(order.price)
        if queue is None:
            queue = self._queues[order.side][order.price] = {}
            bisect.insort(self._prices[order.side], order.price)
        queue[order.order_id] = order
        self._orders[order.order_id] = order
        self._change_level(order.side, order.price, order.leaves)

    def _unrest(self, order: Order, level_done: bool = False) -> None:
        """Take a resting order off the book; `level_done`: its quantity already left."""
        assert order.price is not None
        if not level_done:
            self._change_level(order.side, order.price, -order.leaves)
        queue = self._queues[order.side][order.price]
        del queue[order.order_id]
        del self._orders[order.order_id]
        if not queue:
            del self._queues[order.side][order.price]
            prices = self._prices[order.side]
            del prices[bisect.bisect_left(prices, order.price)]

    def _change_level(self, side: Side, price: int, delta: int) -> None:
        totals = self.totals[side]
        before = totals.get(price, 0)
        self._touched.setdefault((side, price), before)
        after = before + delta
        if after < 0:
            raise AssertionError(f"level {side} {price} would go negative")
        if after:
            totals[price] = after
        else:
            totals.pop(price, None)

    def _reject(self, order: Order, reason: Reason) -> Order:
        order.status = OrderStatus.REJECTED
        self._emit_order(ExecType.REJECTED, order, reason)
        return order

    def _end(self, order: Order, status: OrderStatus, reason: Reason) -> Order:
        order.status = status
        order.updated_ms = self._time_ms
        exec_type = ExecType.CANCELED if status is OrderStatus.CANCELED else ExecType.EXPIRED
        self._emit_order(exec_type, order, reason)
        return order

    def _emit_order(
        self,
        exec_type: ExecType,
        order: Order,
        reason: Reason = Reason.NONE,
        fill: Fill | None = None,
    ) -> None:
        if exec_type is not ExecType.TRADE:
            order.updated_ms = self._time_ms
        self._events.append(OrderEvent(exec_type, order.view(), self._time_ms, reason, fill))

    def _begin(self, time_ms: int) -> None:
        if self._mutating:
            raise RuntimeError("the order book was mutated from inside a policy callback")
        self._mutating = True
        self._time_ms = time_ms
        self._events = []
        self._touched = {}

    def _finish(self, order: Order | None) -> Batch:
        for (side, price), before in self._touched.items():
            after = self.totals[side].get(price, 0)
            if after != before:
                self.update_id += 1
                self._events.append(LevelChange(self.update_id, side, price, after))
        batch = Batch(
            self.symbol,
            self._time_ms,
            tuple(self._events),
            None if order is None else order.view(),
        )
        self._events, self._touched = [], {}
        self._mutating = False
        self._dispatch(batch)
        return batch

    def _dispatch(self, batch: Batch) -> None:
        # A listener may mutate the book (the ledger expiring reduce-only orders); that
        # batch is delivered after this one reaches everyone, so all listeners see the
        # batches in update-id order.
        self._pending.append(batch)
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._pending:
                current = self._pending.popleft()
                for listener in list(self._listeners):
                    listener(current)
        finally:
            self._dispatching = False
