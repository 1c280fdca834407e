"""Balances, fees, positions and reduce-only, moved by the matching engine's events."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exconn.sim.accounts import FeeRates, Instrument, Ledger, LedgerError
from exconn.sim.fixed import SCALE
from exconn.sim.market import MarketSpec, SymbolMarket
from exconn.sim.matching import (
    Batch,
    ExecType,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    PositionSide,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
T0 = 1_000
U = SCALE  # one whole unit of an asset
FEES = FeeRates(maker=Decimal("0.001"), taker=Decimal("0.002"))
# Tick 1 and step 1: one tick-step of notional is exactly one quote unit, easy to read.
SPOT = Instrument("XUSDT", "X", "USDT", tick_units=SCALE, step_units=SCALE)
PERP = Instrument("XUSDT", "X", "USDT", tick_units=SCALE, step_units=SCALE, linear=True)


def ledger_for(inst: Instrument) -> tuple[Ledger, OrderBook]:
    book = OrderBook(inst.symbol, first_update_id=10)
    return Ledger({inst.symbol: book}, [inst]), book


def spot(*accounts: str, usdt: int = 1_000, x: int = 10) -> tuple[Ledger, OrderBook]:
    ledger, book = ledger_for(SPOT)
    for name in accounts:
        ledger.open_account(name, {"USDT": Decimal(usdt), "X": Decimal(x)}, fees=FEES)
    return ledger, book


def perp(*accounts: str, wallet: int = 10_000, hedge: bool = False) -> tuple[Ledger, OrderBook]:
    ledger, book = ledger_for(PERP)
    for name in accounts:
        ledger.open_account(name, wallets={"USDT": Decimal(wallet)}, fees=FEES, hedge_mode=hedge)
        ledger.set_leverage(name, "XUSDT", 10)
    return ledger, book


def limit(
    account: str,
    side: Side,
    qty: int,
    price: int,
    tif: TimeInForce = TimeInForce.GTC,
    **kw: object,
) -> OrderRequest:
    return OrderRequest(account, side, qty, price, tif=tif, **kw)  # type: ignore[arg-type]


def market(account: str, side: Side, qty: int = 0, **kw: object) -> OrderRequest:
    return OrderRequest(account, side, qty, type=OrderType.MARKET, **kw)  # type: ignore[arg-type]


def bal(ledger: Ledger, account: str, asset: str) -> tuple[int, int]:
    b = ledger.account(account).balance(asset)
    return b.free, b.locked


# ----------------------------------------------------------------------- spot
def test_limit_buy_locks_quote_and_cancel_releases_it() -> None:
    ledger, _ = spot("a")
    batch = ledger.submit("XUSDT", limit("a", BUY, 5, 100), T0)
    assert batch.order.status is OrderStatus.NEW
    assert bal(ledger, "a", "USDT") == (500 * U, 500 * U)
    ledger.cancel("XUSDT", "a", batch.order.order_id, T0)
    assert bal(ledger, "a", "USDT") == (1_000 * U, 0)


def test_fills_move_balances_and_charge_fees_in_the_received_asset() -> None:
    ledger, _ = spot("a", "b")
    ledger.submit("XUSDT", limit("a", BUY, 5, 100), T0)  # maker
    batch = ledger.submit("XUSDT", limit("b", SELL, 3, 99), T0)  # taker, fills at 100
    maker_fill = next(e.fill for e in batch.order_events if e.fill and e.fill.is_maker)
    taker_fill = next(e.fill for e in batch.order_events if e.fill and not e.fill.is_maker)
    assert (maker_fill.fee, maker_fill.fee_asset) == (U * 3 // 1000, "X")
    assert (taker_fill.fee, taker_fill.fee_asset) == (U * 300 * 2 // 1000, "USDT")
    assert bal(ledger, "a", "USDT") == (500 * U, 200 * U)
    assert bal(ledger, "a", "X") == (10 * U + 3 * U - maker_fill.fee, 0)
    assert bal(ledger, "b", "X") == (7 * U, 0)
    assert bal(ledger, "b", "USDT") == (1_300 * U - taker_fill.fee, 0)
    assert ledger.fees_collected == {"X": maker_fill.fee, "USDT": taker_fill.fee}
    assert batch.order.fee == taker_fill.fee and batch.order.fee_asset == "USDT"


def test_fee_rounds_up_to_the_next_unit() -> None:
    ledger, _ = ledger_for(Instrument("YUSDT", "Y", "USDT", 1_000_000, 100))  # 0.01 x 1e-6
    ledger.open_account("a", {"USDT": Decimal(1)}, fees=FEES)
    ledger.open_account("b", {"Y": Decimal(1)}, fees=FEES)
    ledger.submit("YUSDT", limit("a", BUY, 7, 3), T0)
    batch = ledger.submit("YUSDT", limit("b", SELL, 7, 3), T0)
    fees = sorted(e.fill.fee for e in batch.order_events if e.fill)
    assert fees == [1, 1]  # 700e-8 Y x 0.001 = 0.7e-8 -> 1; 21e-8 USDT x 0.002 -> 1


def test_insufficient_balance_is_rejected_without_touching_the_book() -> None:
    ledger, book = spot("a", usdt=100, x=0)
    before = book.update_id
    batch = ledger.submit("XUSDT", limit("a", BUY, 2, 100), T0)
    assert batch.order.status is OrderStatus.REJECTED
    assert batch.order_events[0].reason is Reason.INSUFFICIENT_BALANCE
    assert book.update_id == before and bal(ledger, "a", "USDT") == (100 * U, 0)
    sell = ledger.submit("XUSDT", limit("a", SELL, 1, 100), T0)
    assert sell.order_events[0].reason is Reason.INSUFFICIENT_BALANCE


def test_price_improvement_surplus_stays_locked_until_the_order_ends() -> None:
    ledger, _ = spot("a", "mm")
    ledger.submit("XUSDT", limit("mm", SELL, 2, 100), T0)
    batch = ledger.submit("XUSDT", limit("a", BUY, 5, 105), T0)
    assert batch.order.filled == 2 and batch.order.status is OrderStatus.PARTIALLY_FILLED
    assert bal(ledger, "a", "USDT") == (475 * U, 325 * U)  # 3 x 105 resting + 10 surplus
    ledger.cancel("XUSDT", "a", batch.order.order_id, T0)
    assert bal(ledger, "a", "USDT") == (800 * U, 0)


def test_market_buy_locks_its_sweep_and_quote_orders_spend_quote() -> None:
    ledger, _ = spot("a", "mm", usdt=1_000, x=10)
    ledger.submit("XUSDT", limit("mm", SELL, 2, 100), T0)
    ledger.submit("XUSDT", limit("mm", SELL, 5, 110), T0)
    batch = ledger.submit("XUSDT", market("a", BUY, 4), T0)
    assert batch.order.status is OrderStatus.FILLED
    assert bal(ledger, "a", "USDT") == (1_000 * U - 420 * U, 0)
    by_quote = ledger.submit("XUSDT", market("a", BUY, quote_qty=250), T0)
    assert by_quote.order.filled == 2 and by_quote.order.status is OrderStatus.FILLED
    assert bal(ledger, "a", "USDT") == (1_000 * U - 640 * U, 0)
    too_big = ledger.submit("XUSDT", market("a", BUY, 2), T0)
    assert too_big.order.status is OrderStatus.EXPIRED and too_big.order.filled == 1
    assert bal(ledger, "a", "USDT") == (1_000 * U - 750 * U, 0)
    broke = ledger.submit("XUSDT", market("a", BUY, quote_qty=10_000), T0)
    assert broke.order_events[0].reason is Reason.INSUFFICIENT_BALANCE


def test_amend_relocks_and_unknown_orders_are_not_found() -> None:
    ledger, _ = spot("a", usdt=1_000)
    order_id = ledger.submit("XUSDT", limit("a", BUY, 5, 100), T0).order.order_id
    ledger.amend("XUSDT", "a", order_id, T0, qty=8)
    assert bal(ledger, "a", "USDT") == (200 * U, 800 * U)
    ledger.amend("XUSDT", "a", order_id, T0, price=50)
    assert bal(ledger, "a", "USDT") == (600 * U, 400 * U)
    with pytest.raises(Exception, match="insufficient"):
        ledger.amend("XUSDT", "a", order_id, T0, qty=30)
    assert bal(ledger, "a", "USDT") == (600 * U, 400 * U)
    with pytest.raises(LookupError):
        ledger.cancel("XUSDT", "someone-else", order_id, T0)


# ----------------------------------------------------------------------- linear
def position(ledger: Ledger, account: str, side: PositionSide = PositionSide.BOTH) -> int:
    return ledger.account(account).position("XUSDT", side).size


def test_linear_fill_opens_positions_and_reduction_realises_pnl() -> None:
    ledger, _ = perp("a", "b", "c")
    ledger.submit("XUSDT", limit("b", SELL, 10, 100), T0)
    ledger.submit("XUSDT", market("a", BUY, 10), T0)
    pos_a = ledger.account("a").position("XUSDT")
    assert (pos_a.size, pos_a.entry_price()) == (10, Fraction(100))
    assert position(ledger, "b") == -10
    taker_fee = 1_000 * U * 2 // 1000
    assert ledger.account("a").wallets["USDT"] == 10_000 * U - taker_fee
    assert ledger.available("a", "USDT") == 10_000 * U - taker_fee - 100 * U  # 1000 / 10x
    ledger.submit("XUSDT", limit("c", BUY, 4, 110), T0)
    batch = ledger.submit("XUSDT", market("a", SELL, 4), T0)
    fee = next(e.fill.fee for e in batch.order_events if e.fill and e.order.account == "a")
    assert pos_a.size == 6 and pos_a.entry_price() == 100
    assert pos_a.realised == 40 * U
    assert ledger.account("a").wallets["USDT"] == 10_000 * U - taker_fee + 40 * U - fee


def test_one_way_flip_reduces_then_opens_the_other_side() -> None:
    ledger, _ = perp("a", "b")
    ledger.submit("XUSDT", limit("b", SELL, 5, 100), T0)
    ledger.submit("XUSDT", market("a", BUY, 5), T0)
    ledger.submit("XUSDT", limit("b", BUY, 8, 90), T0)
    ledger.submit("XUSDT", market("a", SELL, 8), T0)
    pos = ledger.account("a").position("XUSDT")
    assert (pos.size, pos.entry_price(), pos.realised) == (-3, 90, -50 * U)


def test_reduce_only_that_would_increase_is_rejected() -> None:
    ledger, _ = perp("a", "b")
    flat = ledger.submit("XUSDT", limit("a", SELL, 1, 100, reduce_only=True), T0)
    assert flat.order.status is OrderStatus.REJECTED
    assert flat.order_events[0].reason is Reason.REDUCE_ONLY
    ledger.submit("XUSDT", limit("b", SELL, 5, 100), T0)
    ledger.submit("XUSDT", market("a", BUY, 5), T0)
    more = ledger.submit("XUSDT", limit("a", BUY, 1, 90, reduce_only=True), T0)
    assert more.order_events[0].reason is Reason.REDUCE_ONLY


def test_reduce_only_fills_at_most_the_position() -> None:
    ledger, _ = perp("a", "b")
    ledger.submit("XUSDT", limit("b", SELL, 6, 100), T0)
    ledger.submit("XUSDT", market("a", BUY, 6), T0)
    ledger.submit("XUSDT", limit("b", BUY, 30, 99), T0)
    batch = ledger.submit("XUSDT", market("a", SELL, 20, reduce_only=True), T0)
    assert batch.order.filled == 6 and batch.order.status is OrderStatus.EXPIRED
    assert batch.order_events[-1].reason is Reason.REDUCE_ONLY
    assert position(ledger, "a") == 0


def test_resting_reduce_only_expires_when_the_position_closes() -> None:
    ledger, book = perp("a", "b")
    events: list[Batch] = []
    book.subscribe(events.append)
    ledger.submit("XUSDT", limit("b", SELL, 10, 100), T0)
    ledger.submit("XUSDT", market("a", BUY, 10), T0)
    ro = ledger.submit("XUSDT", limit("a", SELL, 10, 120, reduce_only=True), T0)
    ledger.submit("XUSDT", limit("b", BUY, 10, 99), T0)
    ledger.submit("XUSDT", market("a", SELL, 10), T0)
    assert position(ledger, "a") == 0 and book.get(ro.order.order_id) is None
    last = events[-1].order_events[-1]
    assert (last.order.order_id, last.exec_type, last.reason) == (
        ro.order.order_id,
        ExecType.EXPIRED,
        Reason.REDUCE_ONLY,
    )


def test_reduce_only_maker_is_capped_at_the_position() -> None:
    ledger, _ = perp("a", "b", "c")
    ledger.submit("XUSDT", limit("b", SELL, 3, 100), T0)
    ledger.submit("XUSDT", market("a", BUY, 3), T0)
    first = ledger.submit("XUSDT", limit("a", SELL, 3, 101, reduce_only=True), T0).order
    second = ledger.submit("XUSDT", limit("a", SELL, 3, 101, reduce_only=True), T0).order
    batch = ledger.submit("XUSDT", limit("c", BUY, 6, 101), T0)
    assert batch.order.filled == 3 and position(ledger, "a") == 0
    final = {e.order.order_id: e.order.status for e in batch.order_events}
    assert final[first.order_id] is OrderStatus.FILLED
    assert final[second.order_id] is OrderStatus.EXPIRED


def test_hedge_mode_positions_and_implicit_reduce_only() -> None:
    ledger, _ = perp("a", "b", hedge=True)
    assert ledger.submit("XUSDT", limit("a", BUY, 1, 100), T0).order_events[0].reason is (
        Reason.POSITION_SIDE
    )
    explicit = limit("a", BUY, 1, 100, position_side=LONG, reduce_only=True)
    assert ledger.submit("XUSDT", explicit, T0).order_events[0].reason is Reason.INVALID
    ledger.submit("XUSDT", limit("b", SELL, 5, 100, position_side=SHORT), T0)
    ledger.submit("XUSDT", market("a", BUY, 5, position_side=LONG), T0)
    ledger.submit("XUSDT", limit("b", BUY, 3, 100, position_side=LONG), T0)
    ledger.submit("XUSDT", market("a", SELL, 3, position_side=SHORT), T0)
    assert position(ledger, "a", LONG) == 5 and position(ledger, "a", SHORT) == -3
    assert position(ledger, "b", LONG) == 3 and position(ledger, "b", SHORT) == -5
    ledger.submit("XUSDT", limit("b", BUY, 20, 100, position_side=LONG), T0)
    close = ledger.submit("XUSDT", market("a", SELL, 20, position_side=LONG), T0)
    assert close.order.filled == 5 and close.order_events[-1].reason is Reason.REDUCE_ONLY
    assert position(ledger, "a", LONG) == 0 and position(ledger, "a", SHORT) == -3
    with pytest.raises(LedgerError):
        ledger.set_hedge_mode("a", False)


def test_insufficient_margin_is_rejected_and_leverage_helps() -> None:
    ledger, _ = perp("a", "b", wallet=100)
    ledger.set_leverage("a", "XUSDT", 1)
    batch = ledger.submit("XUSDT", limit("a", BUY, 2, 100), T0)
    assert batch.order_events[0].reason is Reason.INSUFFICIENT_MARGIN
    ledger.set_leverage("a", "XUSDT", 5)
    ok = ledger.submit("XUSDT", limit("a", BUY, 2, 100), T0)
    assert ok.order.status is OrderStatus.NEW
    assert ledger.available("a", "USDT") == 60 * U
    with pytest.raises(LedgerError):
        ledger.set_leverage("a", "XUSDT", 0)


# ----------------------------------------------------------------- properties
NAMES = ["a", "b", "c"]


def random_request(rng: random.Random, linear: bool) -> OrderRequest:
    account, side = rng.choice(NAMES), rng.choice([BUY, SELL])
    qty, price = rng.randint(1, 8), rng.randint(97, 103)
    stp = rng.choice(list(StpMode))
    reduce_only = linear and rng.random() < 0.25
    kind = rng.choice(["GTC", "GTC", "IOC", "FOK", "POST_ONLY", "MARKET", "QUOTE"])
    if kind == "MARKET":
        return market(account, side, qty, stp=stp, reduce_only=reduce_only)
    if kind == "QUOTE" and not linear:
        return market(account, side, quote_qty=qty * 100, stp=stp)
    tif = TimeInForce.GTC if kind == "QUOTE" else TimeInForce(kind)
    return limit(account, side, qty, price, tif, stp=stp, reduce_only=reduce_only)


def random_operation(ledger: Ledger, book: OrderBook, rng: random.Random, linear: bool) -> None:
    open_orders = book.open_orders()
    roll = rng.random()
    if roll < 0.7 or not open_orders:
        ledger.submit("XUSDT", random_request(rng, linear), T0)
        return
    order = rng.choice(open_orders)
    if roll < 0.85:
        ledger.cancel("XUSDT", order.account, order.order_id, T0)
    elif roll < 0.97:
        qty, price = (
            rng.choice([None, rng.randint(1, 10)]),
            rng.choice([None, rng.randint(96, 104)]),
        )
        try:
            ledger.amend("XUSDT", order.account, order.order_id, T0, qty=qty, price=price)
        except Exception as exc:  # an amend the balance cannot cover is refused, nothing moves
            assert "insufficient" in str(exc)
    else:
        ledger.cancel_all("XUSDT", order.account, T0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), n_ops=st.integers(1, 120))
def test_spot_balances_are_conserved(seed: int, n_ops: int) -> None:
    rng = random.Random(seed)
    ledger, book = spot(*NAMES, usdt=1_000, x=10)
    initial = {"USDT": 3 * 1_000 * U, "X": 3 * 10 * U}
    for _ in range(n_ops):
        random_operation(ledger, book, rng, linear=False)
        assert not book.is_crossed()
        for asset, total in initial.items():
            held = sum(a.balance(asset).total for a in ledger.accounts.values())
            assert held + ledger.fees_collected.get(asset, 0) == total, asset
        for account in ledger.accounts.values():
            for asset, balance in account.balances.items():
                assert balance.free >= 0 and balance.locked >= 0
                reserved = sum(
                    ledger.record("XUSDT", o.order_id).lock  # type: ignore[union-attr]
                    for o in book.open_orders(account.account_id)
                    if ledger.record("XUSDT", o.order_id).lock_asset == asset  # type: ignore[union-attr]
                )
                assert balance.locked == reserved, "locked must equal what open orders reserve"


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), n_ops=st.integers(1, 120))
def test_linear_value_is_conserved_and_reduce_only_never_increases(seed: int, n_ops: int) -> None:
    rng = random.Random(seed)
    book = OrderBook("XUSDT", first_update_id=10)
    reduce_only_fills: list[tuple[int, int]] = []  # (position before, signed fill)
    positions: dict[str, int] = {}

    def watch(batch: Batch) -> None:  # subscribed before the ledger: sees positions before
        for event in batch.order_events:
            if event.fill is None:
                continue
            name = event.order.account
            before = positions.get(name, ledger.account(name).position("XUSDT").size)
            signed = event.fill.qty if event.order.side is BUY else -event.fill.qty
            if event.order.reduce_only:
                reduce_only_fills.append((before, signed))
            positions[name] = before + signed
        positions.clear()

    book.subscribe(watch)
    ledger = Ledger({"XUSDT": book}, [PERP])
    for name in NAMES:
        ledger.open_account(name, wallets={"USDT": Decimal(200)}, fees=FEES)
    for _ in range(n_ops):
        random_operation(ledger, book, rng, linear=True)
        accounts = ledger.accounts.values()
        value = sum(a.wallets["USDT"] for a in accounts) + ledger.fees_collected.get("USDT", 0)
        for account in accounts:
            pos = account.position("XUSDT")
            value -= pos.cost * U if pos.size > 0 else -pos.cost * U
            assert (pos.size == 0) == (pos.cost == 0)
        assert value == 3 * 200 * U, "wallets + fees + entry notionals must balance"
        assert sum(a.position("XUSDT").size for a in accounts) == 0
    for before, signed in reduce_only_fills:
        assert before * signed < 0 and abs(signed) <= abs(before), "reduce-only increased"


# ------------------------------------------------------------ with the agents
def test_market_agents_fill_a_users_resting_order_and_diffs_stay_contiguous() -> None:
    market_ = SymbolMarket(MarketSpec("XUSDT", 1_000, 1, 20), 10, random.Random(4), 500, 1)
    ledger = Ledger({"XUSDT": market_.engine}, [SPOT])
    ledger.open_account("u", {"USDT": Decimal(100_000)}, fees=FEES)
    last_id = market_.book.update_id
    best_bid = market_.engine.best_bid()
    assert best_bid is not None
    placed = ledger.submit("XUSDT", limit("u", BUY, 3, best_bid, TimeInForce.POST_ONLY), T0)
    assert placed.order.status is OrderStatus.NEW
    filled = 0
    for step in range(2_000):
        interval = market_.step(T0 + step)
        if interval.diff.last_id >= interval.diff.first_id:
            assert interval.diff.first_id == last_id + 1
            last_id = interval.diff.last_id
        assert market_.book.bids == market_.engine.bids
        state = market_.engine.get(placed.order.order_id)
        filled = 3 if state is None else state.filled
        if filled == 3:
            break
    assert filled == 3
    assert ledger.account("u").balance("X").free == 3 * U - 3 * U // 1000  # maker fee in X
    assert bal(ledger, "u", "USDT")[1] == 0
