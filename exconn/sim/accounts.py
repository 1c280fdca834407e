"""Accounts, balances and positions, moved by the matching engine's own events.

`Ledger` sits in front of one `OrderBook` per symbol: it admits or rejects an order
(balance, margin, reduce-only, position mode), reserves funds, and then applies every fill,
cancel and expiry it sees in the books' batches, whoever caused them (a market agent's
taker order filling a user's resting order moves the user's balances too). Accounts the
ledger does not know (the market agents) are unconstrained and pay no fees.

Amounts are integer units of 1e-8 of an asset (`exconn.sim.fixed`), so balances are exact.

Rules where the exchange documentation is silent or venues differ (chosen, documented):
* Spot fees are charged in the asset received (base for a buy, quote for a sell), as
  Binance does without BNB; a fee is rounded up to the next 1e-8 unit.
* Spot orders lock what they may spend: a limit buy `price * qty` of quote, a market buy
  the exact cost of its sweep (known because nothing moves between check and match), a
  sell its base quantity. Fills at better prices leave the surplus locked until the order
  ends, then it is released.
* Linear (USD-M, Bybit linear): the wallet is in the settle asset; an opening order
  reserves `notional / leverage` of it (only the part that opens, in one-way mode), and
  positions hold `entry notional / leverage`. Fees are not part of the margin check.
  No mark price, no unrealised PnL in the available balance, no liquidation: a wallet can
  go negative. Entry cost is kept as an exact integer notional; a partial reduction
  removes the proportional cost rounded down, a full close removes all of it.
* Reduce-only follows Binance: an order that would increase the position (or finds none)
  is REJECTED; a reduce-only order fills at most the position (the rest EXPIRES), and a
  resting one whose position closes or flips EXPIRES. `reduce_only=True` is refused in
  hedge mode (Binance); there the closing side (SELL on LONG, BUY on SHORT) is implicitly
  reduce-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from exconn.sim.fixed import SCALE, to_units
from exconn.sim.matching import (
    UNLIMITED,
    AmendRejected,
    Batch,
    Order,
    OrderBook,
    OrderEvent,
    OrderNotFound,
    OrderRequest,
    OrderType,
    PositionSide,
    Reason,
    Side,
)
from exconn.sim.symbols import SimSymbol

DEFAULT_LEVERAGE = 20  # Binance USD-M's default for the majors
MAX_LEVERAGE = 125


class LedgerError(Exception):
    pass


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Instrument:
    """What the ledger needs to know about one symbol."""

    symbol: str
    base: str
    quote: str  # the settle asset of a linear contract
    tick_units: int  # tick size in 1e-8 units
    step_units: int
    linear: bool = False

    def __post_init__(self) -> None:
        if (self.tick_units * self.step_units) % SCALE:
            raise ValueError(
                f"{self.symbol}: tick x step is finer than 1e-8, notionals would not be exact"
            )

    @classmethod
    def from_symbol(cls, sym: SimSymbol, linear: bool = False) -> Instrument:
        return cls(sym.symbol, sym.base, sym.quote, sym.tick_units, sym.step_units, linear)

    def qty_units(self, steps: int) -> int:
        return steps * self.step_units

    def notional_units(self, notional: int) -> int:
        """Tick-steps (price ticks x qty steps) as 1e-8 units of the quote asset."""
        return notional * (self.tick_units * self.step_units // SCALE)


@dataclass(frozen=True, slots=True)
class FeeRates:
    maker: Decimal = Decimal("0.001")
    taker: Decimal = Decimal("0.001")

    def rate_units(self, is_maker: bool) -> int:
        return to_units(self.maker if is_maker else self.taker)


def fee_units(amount: int, rate_units: int) -> int:
    return ceil_div(amount * rate_units, SCALE)


@dataclass(slots=True)
class Balance:
    free: int = 0
    locked: int = 0

    @property
    def total(self) -> int:
        return self.free + self.locked


@dataclass(slots=True)
class Position:
    """Signed size in steps (LONG >= 0, SHORT <= 0 in hedge mode) and its entry notional."""

    size: int = 0
    cost: int = 0  # tick-steps paid for the open size, always >= 0
    realised: int = 0  # cumulative realised PnL in settle units

    def entry_price(self) -> Fraction | None:
        """Average entry in ticks (exact); None when flat."""
        return Fraction(self.cost, abs(self.size)) if self.size else None

    def trade(self, side: Side, qty: int, price: int) -> int:
        """Apply a fill; return the realised PnL in tick-steps (non-zero only on reduction)."""
        signed = qty if side is Side.BUY else -qty
        if self.size == 0 or (self.size > 0) == (signed > 0):
            self.size += signed
            self.cost += price * qty
            return 0
        held = abs(self.size)
        reduced = min(qty, held)
        removed = self.cost if reduced == held else self.cost * reduced // held
        realised = price * reduced - removed if self.size > 0 else removed - price * reduced
        self.size += reduced if self.size < 0 else -reduced
        self.cost -= removed
        rest = qty - reduced
        if rest:  # one-way flip: the remainder opens the other side at this price
            self.size = rest if side is Side.BUY else -rest
            self.cost = price * rest
        return realised


@dataclass(slots=True)
class Account:
    account_id: str
    fees: FeeRates = field(default_factory=FeeRates)
    hedge_mode: bool = False
    balances: dict[str, Balance] = field(default_factory=dict)  # spot
    wallets: dict[str, int] = field(default_factory=dict)  # linear, per settle asset
    leverage: dict[str, int] = field(default_factory=dict)
    positions: dict[tuple[str, PositionSide], Position] = field(default_factory=dict)

    def balance(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def position(self, symbol: str, side: PositionSide = PositionSide.BOTH) -> Position:
        return self.positions.setdefault((symbol, side), Position())


@dataclass(slots=True)
class _Record:
    """The ledger's side of an order it admitted and that is not finished yet."""

    account: Account
    instrument: Instrument
    side: Side
    position_side: PositionSide
    reduce_only: bool  # explicit, or implied by closing in hedge mode
    lock: int  # spot: locked units of lock_asset; linear: reserved margin
    lock_asset: str
    base_lock: int = 0  # linear: margin at base_leaves, scaled down as the order fills
    base_leaves: int = 0


class _Session:
    """Position deltas of one matching pass, so reduce-only caps see earlier fills."""

    def __init__(self, ledger: Ledger, symbol: str) -> None:
        self._ledger = ledger
        self._symbol = symbol
        self._deltas: dict[tuple[str, PositionSide], int] = {}

    def cap(self, order: Order) -> int:
        record = self._ledger.record(self._symbol, order.order_id)
        if record is None or not record.reduce_only:
            return UNLIMITED
        key = (record.account.account_id, record.position_side)
        size = record.account.position(self._symbol, record.position_side).size
        size += self._deltas.get(key, 0)
        return max(0, -size) if order.side is Side.BUY else max(0, size)

    def record(self, order: Order, qty: int) -> None:
        record = self._ledger.record(self._symbol, order.order_id)
        if record is None or not record.instrument.linear:
            return
        key = (record.account.account_id, record.position_side)
        self._deltas[key] = self._deltas.get(key, 0) + (qty if order.side is Side.BUY else -qty)


class _BookPolicy:
    """The ledger as one book's matching policy (order ids are per book)."""

    def __init__(self, ledger: Ledger, symbol: str) -> None:
        self._ledger = ledger
        self._symbol = symbol

    def session(self) -> _Session:
        return _Session(self._ledger, self._symbol)

    def fee(self, order: Order, price: int, qty: int, is_maker: bool) -> tuple[int, str]:
        record = self._ledger.record(self._symbol, order.order_id)
        if record is None:
            return 0, ""
        inst = record.instrument
        rate = record.account.fees.rate_units(is_maker)
        if not inst.linear and order.side is Side.BUY:
            return fee_units(inst.qty_units(qty), rate), inst.base
        return fee_units(inst.notional_units(price * qty), rate), inst.quote


class Ledger:
    """Accounts of one simulated venue and the books whose fills move them."""

    def __init__(
        self,
        books: Mapping[str, OrderBook],
        instruments: Iterable[Instrument],
        default_leverage: int = DEFAULT_LEVERAGE,
    ) -> None:
        self.instruments = {inst.symbol: inst for inst in instruments}
        missing = set(books) - set(self.instruments)
        if missing:
            raise ValueError(f"no instrument for {sorted(missing)}")
        self.books = dict(books)
        self.default_leverage = default_leverage
        self.accounts: dict[str, Account] = {}
        self.fees_collected: dict[str, int] = {}
        self._records: dict[tuple[str, int], _Record] = {}
        for symbol, book in self.books.items():
            book.policy = _BookPolicy(self, symbol)
            book.subscribe(self._on_batch)

    # ---------------------------------------------------------------- accounts
    def open_account(
        self,
        account_id: str,
        balances: Mapping[str, Decimal] | None = None,
        wallets: Mapping[str, Decimal] | None = None,
        fees: FeeRates | None = None,
        hedge_mode: bool = False,
    ) -> Account:
        if account_id in self.accounts:
            raise LedgerError(f"account {account_id!r} already exists")
        account = Account(account_id, fees or FeeRates(), hedge_mode)
        self.accounts[account_id] = account
        for asset, amount in (balances or {}).items():
            self.deposit(account_id, asset, amount)
        for asset, amount in (wallets or {}).items():
            self.deposit(account_id, asset, amount, linear=True)
        return account

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise LedgerError(f"unknown account {account_id!r}")
        return account

    def deposit(self, account_id: str, asset: str, amount: Decimal, linear: bool = False) -> None:
        """Credit (or, negative, debit) free spot balance or a linear wallet."""
        account = self.account(account_id)
        units = to_units(amount)
        if linear:
            account.wallets[asset] = account.wallets.get(asset, 0) + units
            return
        balance = account.balance(asset)
        if balance.free + units < 0:
            raise LedgerError(f"{account_id}: free {asset} would go negative")
        balance.free += units

    def set_leverage(self, account_id: str, symbol: str, leverage: int) -> None:
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise LedgerError(f"leverage must be 1..{MAX_LEVERAGE}, got {leverage}")
        self._instrument(symbol)
        self.account(account_id).leverage[symbol] = leverage

    def leverage(self, account: Account, symbol: str) -> int:
        return account.leverage.get(symbol, self.default_leverage)

    def set_hedge_mode(self, account_id: str, hedge: bool) -> None:
        """Switch position mode; refused with open positions or orders (Binance -4067/-4068)."""
        account = self.account(account_id)
        if any(p.size for p in account.positions.values()):
            raise LedgerError("cannot change position mode with open positions")
        if any(r.account is account for r in self._records.values()):
            raise LedgerError("cannot change position mode with open orders")
        account.hedge_mode = hedge

    def record(self, symbol: str, order_id: int) -> _Record | None:
        return self._records.get((symbol, order_id))

    def position_margin(self, account: Account, asset: str) -> int:
        total = 0
        for (symbol, _), position in account.positions.items():
            inst = self.instruments[symbol]
            if inst.quote == asset and position.cost:
                total += ceil_div(
                    inst.notional_units(position.cost), self.leverage(account, symbol)
                )
        return total

    def order_margin(self, account: Account, asset: str) -> int:
        return sum(
            r.lock
            for r in self._records.values()
            if r.account is account and r.instrument.linear and r.lock_asset == asset
        )

    def available(self, account_id: str, asset: str) -> int:
        """Linear wallet minus position and order margin, in units."""
        account = self.account(account_id)
        return (
            account.wallets.get(asset, 0)
            - self.position_margin(account, asset)
            - self.order_margin(account, asset)
        )

    # ------------------------------------------------------------------ orders
    def submit(self, symbol: str, request: OrderRequest, time_ms: int) -> Batch:
        inst, book = self._instrument(symbol), self.books[symbol]
        account = self.account(request.account)
        admitted = (
            self._admit_linear(account, inst, book, request)
            if inst.linear
            else self._admit_spot(account, inst, book, request)
        )
        if isinstance(admitted, Reason):
            return book.reject(request, admitted, time_ms)
        self._records[(symbol, book.next_order_id)] = admitted
        if not inst.linear:
            balance = account.balance(admitted.lock_asset)
            balance.free -= admitted.lock
            balance.locked += admitted.lock
        return book.submit(request, time_ms)

    def cancel(self, symbol: str, account_id: str, order_id: int, time_ms: int) -> Batch:
        self._owned(symbol, account_id, order_id)
        return self.books[symbol].cancel(order_id, time_ms)

    def cancel_all(self, symbol: str, account_id: str, time_ms: int) -> Batch:
        self.account(account_id)
        return self.books[symbol].cancel_all(time_ms, account_id)

    def amend(
        self,
        symbol: str,
        account_id: str,
        order_id: int,
        time_ms: int,
        qty: int | None = None,
        price: int | None = None,
    ) -> Batch:
        record = self._owned(symbol, account_id, order_id)
        book = self.books[symbol]
        state = book.get(order_id)
        assert state is not None and state.price is not None
        new_qty = state.qty if qty is None else qty
        new_price = state.price if price is None else price
        if new_qty <= 0 or new_price <= 0:
            raise AmendRejected(Reason.INVALID, "amended quantity and price must be positive")
        leaves = max(new_qty - state.filled, 0)
        inst, account = record.instrument, record.account
        if inst.linear:
            if not record.reduce_only:
                margin = self._opening_margin(account, inst, record, state.side, new_price, leaves)
                spare = self.available(account_id, inst.quote) + record.lock
                if margin > spare:
                    raise AmendRejected(Reason.INSUFFICIENT_MARGIN, "margin is insufficient")
                record.lock = record.base_lock = margin
                record.base_leaves = max(leaves, 1)
        else:
            need = (
                inst.notional_units(new_price * leaves)
                if state.side is Side.BUY
                else inst.qty_units(leaves)
            )
            balance = account.balance(record.lock_asset)
            extra = need - record.lock
            if extra > balance.free:
                raise AmendRejected(Reason.INSUFFICIENT_BALANCE, "balance is insufficient")
            balance.free -= extra
            balance.locked += extra
            record.lock = need
        return book.amend(order_id, time_ms, qty=qty, price=price)

    # -------------------------------------------------------------- admission
    def _admit_spot(
        self, account: Account, inst: Instrument, book: OrderBook, request: OrderRequest
    ) -> _Record | Reason:
        if request.reduce_only or request.position_side is not PositionSide.BOTH:
            return Reason.INVALID  # spot has no positions
        market = request.type is OrderType.MARKET
        if request.side is Side.BUY:
            asset = inst.quote
            if not market:
                need = inst.notional_units((request.price or 0) * request.qty)
            elif request.quote_qty is not None:
                need = inst.notional_units(request.quote_qty)
            else:
                need = inst.notional_units(book.preview(request).notional)
        else:
            asset = inst.base
            if market and request.quote_qty is not None:
                need = inst.qty_units(book.preview(request).qty)
            else:
                need = inst.qty_units(request.qty)
        need = max(need, 0)  # malformed requests are the engine's to reject
        if need > account.balance(asset).free:
            return Reason.INSUFFICIENT_BALANCE
        return _Record(account, inst, request.side, PositionSide.BOTH, False, need, asset)

    def _admit_linear(
        self, account: Account, inst: Instrument, book: OrderBook, request: OrderRequest
    ) -> _Record | Reason:
        side, pos_side = request.side, request.position_side
        if account.hedge_mode:
            if pos_side is PositionSide.BOTH:
                return Reason.POSITION_SIDE
            if request.reduce_only:
                return Reason.INVALID  # Binance: reduceOnly is not accepted in hedge mode
            reduce_only = (pos_side is PositionSide.LONG) == (side is Side.SELL)
        else:
            if pos_side is not PositionSide.BOTH:
                return Reason.POSITION_SIDE
            reduce_only = request.reduce_only
        record = _Record(account, inst, side, pos_side, reduce_only, 0, inst.quote)
        size = account.position(inst.symbol, pos_side).size
        if reduce_only:
            reducible = -size if side is Side.BUY else size
            return record if reducible > 0 else Reason.REDUCE_ONLY
        if request.type is OrderType.LIMIT:
            price, qty = request.price or 0, request.qty
        elif request.quote_qty is not None:
            price, qty = 1, request.quote_qty  # notional given directly
        else:
            preview = book.preview(request)
            price, qty = preview.worst_price or 0, request.qty
        margin = self._opening_margin(account, inst, record, side, price, max(qty, 0))
        if margin > self.available(account.account_id, inst.quote):
            return Reason.INSUFFICIENT_MARGIN
        record.lock = record.base_lock = margin
        record.base_leaves = max(qty, 1)
        return record

    def _opening_margin(
        self,
        account: Account,
        inst: Instrument,
        record: _Record,
        side: Side,
        price: int,
        qty: int,
    ) -> int:
        size = account.position(inst.symbol, record.position_side).size
        # In one-way mode the part of an order that closes the position needs no margin.
        reducible = 0 if account.hedge_mode else max(0, -size if side is Side.BUY else size)
        opening = max(0, qty - reducible)
        notional = inst.notional_units(max(price, 0) * opening)
        return ceil_div(notional, self.leverage(account, inst.symbol))

    # ------------------------------------------------------------- settlement
    def _on_batch(self, batch: Batch) -> None:
        touched: dict[tuple[str, PositionSide], Account] = {}
        for event in batch.order_events:
            record = self._records.get((batch.symbol, event.order.order_id))
            if record is None:
                continue
            if event.fill is not None:
                self._settle_fill(record, event)
                if record.instrument.linear:
                    key = (record.account.account_id, record.position_side)
                    touched[key] = record.account
            if not event.order.status.is_open:
                self._release(record)
                del self._records[(batch.symbol, event.order.order_id)]
            elif record.base_leaves and event.fill is not None:
                record.lock = ceil_div(record.base_lock * event.order.leaves, record.base_leaves)
        for (_, pos_side), account in touched.items():
            self._expire_dead_reduce_only(batch, account, pos_side)

    def _settle_fill(self, record: _Record, event: OrderEvent) -> None:
        fill = event.fill
        assert fill is not None
        inst, account = record.instrument, record.account
        if fill.fee:
            self.fees_collected[fill.fee_asset] = (
                self.fees_collected.get(fill.fee_asset, 0) + fill.fee
            )
        notional = inst.notional_units(fill.notional)
        if inst.linear:
            position = account.position(inst.symbol, record.position_side)
            realised = inst.notional_units(position.trade(record.side, fill.qty, fill.price))
            position.realised += realised
            account.wallets[inst.quote] = account.wallets.get(inst.quote, 0) + realised - fill.fee
            return
        qty = inst.qty_units(fill.qty)
        if record.side is Side.BUY:
            spent, got, got_asset = notional, qty, inst.base
        else:
            spent, got, got_asset = qty, notional, inst.quote
        record.lock -= spent
        account.balance(record.lock_asset).locked -= spent
        account.balance(got_asset).free += got - fill.fee
        if record.lock < 0:
            raise AssertionError(f"order {event.order.order_id} spent more than it locked")

    def _release(self, record: _Record) -> None:
        if not record.instrument.linear and record.lock:
            balance = record.account.balance(record.lock_asset)
            balance.locked -= record.lock
            balance.free += record.lock
        record.lock = 0

    def _expire_dead_reduce_only(
        self, batch: Batch, account: Account, pos_side: PositionSide
    ) -> None:
        """Expire resting reduce-only orders that can no longer reduce anything."""
        size = account.position(batch.symbol, pos_side).size
        book = self.books[batch.symbol]
        dead = [
            order_id
            for (symbol, order_id), r in self._records.items()
            if symbol == batch.symbol
            and r.account is account
            and r.reduce_only
            and r.position_side is pos_side
            and (size >= 0 if r.side is Side.BUY else size <= 0)
            and book.get(order_id) is not None
        ]
        for order_id in dead:
            # Delivered after the current batch (the book queues nested batches).
            book.expire(order_id, batch.time_ms, Reason.REDUCE_ONLY)

    def _owned(self, symbol: str, account_id: str, order_id: int) -> _Record:
        self._instrument(symbol)
        record = self._records.get((symbol, order_id))
        if record is None or record.account.account_id != account_id:
            raise OrderNotFound(order_id)
        if self.books[symbol].get(order_id) is None:
            raise OrderNotFound(order_id)
        return record

    def _instrument(self, symbol: str) -> Instrument:
        inst = self.instruments.get(symbol)
        if inst is None or symbol not in self.books:
            raise LedgerError(f"unknown symbol {symbol!r}")
        return inst
