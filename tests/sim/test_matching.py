"""The matching engine on its own: order types, priority, amend, STP, and properties."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exconn.sim.matching import (
    AmendRejected,
    Batch,
    ExecType,
    LevelChange,
    OrderBook,
    OrderEvent,
    OrderNotFound,
    OrderRequest,
    OrderStatus,
    OrderType,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)

BUY, SELL = Side.BUY, Side.SELL
T0 = 1_000


def limit(
    account: str,
    side: Side,
    qty: int,
    price: int,
    tif: TimeInForce = TimeInForce.GTC,
    stp: StpMode = StpMode.EXPIRE_TAKER,
) -> OrderRequest:
    return OrderRequest(account, side, qty, price, tif=tif, stp=stp)


def market(account: str, side: Side, qty: int = 0, quote: int | None = None) -> OrderRequest:
    return OrderRequest(account, side, qty, type=OrderType.MARKET, quote_qty=quote)


def fresh() -> OrderBook:
    return OrderBook("TESTUSDT", first_update_id=100)


def fills(batch: Batch, order_id: int) -> list[tuple[int, int, bool]]:
    return [
        (e.fill.price, e.fill.qty, e.fill.is_maker)
        for e in batch.order_events
        if e.fill is not None and e.order.order_id == order_id
    ]


def seed_asks(book: OrderBook, *levels: tuple[int, int]) -> list[int]:
    return [book.submit(limit("mm", SELL, q, p), T0).order.order_id for p, q in levels]


def test_limit_rests_and_reports_one_level_change() -> None:
    book = fresh()
    batch = book.submit(limit("a", BUY, 5, 100), T0)
    assert batch.order.status is OrderStatus.NEW and batch.order.leaves == 5
    assert [e.exec_type for e in batch.order_events] == [ExecType.NEW]
    assert batch.level_changes == [LevelChange(101, BUY, 100, 5)]
    assert book.bids == {100: 5} and book.update_id == 101
    book.submit(limit("b", BUY, 2, 100), T0)
    assert book.bids == {100: 7}
    assert [o.account for o in book.orders_at(BUY, 100)] == ["a", "b"]


def test_price_then_time_priority_and_maker_price() -> None:
    book = fresh()
    first, second, better = seed_asks(book, (101, 3), (101, 3), (100, 2))
    batch = book.submit(limit("t", BUY, 6, 101), T0)
    taker = batch.order.order_id
    assert fills(batch, taker) == [(100, 2, False), (101, 3, False), (101, 1, False)]
    assert [(t.maker_order_id, t.price, t.qty) for t in batch.trades] == [
        (better, 100, 2),
        (first, 101, 3),
        (second, 101, 1),
    ]
    assert all(t.taker_side is BUY and not t.buyer_is_maker for t in batch.trades)
    assert batch.order.status is OrderStatus.FILLED
    assert batch.order.filled_notional == 2 * 100 + 4 * 101
    assert book.asks == {101: 2} and book.get(second).status is OrderStatus.PARTIALLY_FILLED
    # One change per level per mutation, in ids order.
    assert [(c.price, c.qty) for c in batch.level_changes] == [(100, 0), (101, 2)]
    ids = [c.update_id for c in batch.level_changes]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def test_market_order_sweeps_levels() -> None:
    book = fresh()
    seed_asks(book, (100, 2), (101, 3), (102, 4))
    batch = book.submit(market("t", BUY, 6), T0)
    assert fills(batch, batch.order.order_id) == [(100, 2, False), (101, 3, False), (102, 1, False)]
    assert batch.order.status is OrderStatus.FILLED and batch.order.price is None
    assert book.asks == {102: 3}
    assert [e.exec_type for e in batch.order_events if e.order.account == "t"] == [
        ExecType.NEW,
        ExecType.TRADE,
        ExecType.TRADE,
        ExecType.TRADE,
    ]


def test_market_order_larger_than_book_expires_the_rest() -> None:
    book = fresh()
    seed_asks(book, (100, 2))
    batch = book.submit(market("t", BUY, 5), T0)
    assert batch.order.status is OrderStatus.EXPIRED and batch.order.filled == 2
    assert batch.order_events[-1].reason is Reason.IOC_REMAINDER
    empty = book.submit(market("t", BUY, 1), T0)
    assert empty.order.status is OrderStatus.EXPIRED
    assert empty.order_events[-1].reason is Reason.NO_LIQUIDITY
    assert not empty.level_changes


def test_market_order_by_quote_quantity() -> None:
    book = fresh()
    seed_asks(book, (100, 1), (101, 5))
    batch = book.submit(market("t", BUY, quote=350), T0)
    # 1 @ 100, then floor(250 / 101) = 2 @ 101; the 48 tick-steps left buy nothing.
    assert fills(batch, batch.order.order_id) == [(100, 1, False), (101, 2, False)]
    assert batch.order.status is OrderStatus.FILLED and batch.order.qty == 3
    assert batch.order.filled_notional == 302


def test_ioc_fills_what_it_can_then_expires() -> None:
    book = fresh()
    seed_asks(book, (100, 2), (102, 5))
    batch = book.submit(limit("t", BUY, 5, 101, TimeInForce.IOC), T0)
    assert batch.order.filled == 2 and batch.order.status is OrderStatus.EXPIRED
    assert batch.order_events[-1].reason is Reason.IOC_REMAINDER
    assert book.bids == {} and book.asks == {102: 5}


def test_fok_is_all_or_nothing() -> None:
    book = fresh()
    seed_asks(book, (100, 2), (101, 2))
    before = book.update_id
    failed = book.submit(limit("t", BUY, 5, 101, TimeInForce.FOK), T0)
    assert failed.order.status is OrderStatus.EXPIRED and failed.order.filled == 0
    assert failed.order_events[-1].reason is Reason.FOK_UNFILLED
    assert not failed.trades and not failed.level_changes and book.update_id == before
    done = book.submit(limit("t", BUY, 4, 101, TimeInForce.FOK), T0)
    assert done.order.status is OrderStatus.FILLED and book.asks == {}


def test_post_only_is_rejected_when_it_would_take() -> None:
    book = fresh()
    seed_asks(book, (100, 2))
    batch = book.submit(limit("a", BUY, 1, 100, TimeInForce.POST_ONLY), T0)
    assert batch.order.status is OrderStatus.REJECTED
    assert batch.order_events[0].reason is Reason.WOULD_TAKE
    assert not batch.trades and not batch.level_changes
    rests = book.submit(limit("a", BUY, 1, 99, TimeInForce.POST_ONLY), T0)
    assert rests.order.status is OrderStatus.NEW and book.bids == {99: 1}


def test_invalid_orders_are_rejected() -> None:
    book = fresh()
    for request in (limit("a", BUY, 0, 100), OrderRequest("a", BUY, 1), market("a", BUY)):
        batch = book.submit(request, T0)
        assert batch.order.status is OrderStatus.REJECTED
        assert batch.order_events[0].reason is Reason.INVALID


def test_amend_quantity_decrease_keeps_priority() -> None:
    book = fresh()
    first, second = seed_asks(book, (100, 5), (100, 5))
    batch = book.amend(first, T0, qty=2)
    assert [e.exec_type for e in batch.order_events] == [ExecType.AMENDED]
    assert batch.level_changes[0].qty == 7
    assert [o.order_id for o in book.orders_at(SELL, 100)] == [first, second]
    taken = book.submit(limit("t", BUY, 1, 100), T0)
    assert taken.trades[0].maker_order_id == first


@pytest.mark.parametrize(("qty", "price"), [(6, None), (None, 101)])
def test_amend_increase_or_reprice_loses_priority(qty: int | None, price: int | None) -> None:
    book = fresh()
    first, second = seed_asks(book, (101, 5), (101, 5))
    book.amend(first, T0, qty=qty, price=price)
    if price is None:
        assert [o.order_id for o in book.orders_at(SELL, 101)] == [second, first]
    book.amend(second, T0, price=101 if price else None, qty=4 if price is None else None)
    taken = book.submit(limit("t", BUY, 1, 101), T0)
    expected = second if price is None else first
    assert taken.trades[0].maker_order_id == expected


def test_amend_that_crosses_matches_and_post_only_is_cancelled() -> None:
    book = fresh()
    seed_asks(book, (105, 3))
    bid = book.submit(limit("a", BUY, 5, 100), T0).order.order_id
    batch = book.amend(bid, T0, price=105)
    assert [e.exec_type for e in batch.order_events if e.order.order_id == bid][:2] == [
        ExecType.AMENDED,
        ExecType.TRADE,
    ]
    assert book.bids == {105: 2} and book.asks == {}
    maker = book.submit(limit("a", SELL, 1, 110, TimeInForce.POST_ONLY), T0).order.order_id
    cancelled = book.amend(maker, T0, price=105)
    assert cancelled.order.status is OrderStatus.CANCELED
    assert cancelled.order_events[-1].reason is Reason.WOULD_TAKE and book.asks == {}


def test_amend_to_filled_quantity_cancels_and_bad_amends_raise() -> None:
    book = fresh()
    (ask,) = seed_asks(book, (100, 5))
    book.submit(limit("t", BUY, 3, 100), T0)
    batch = book.amend(ask, T0, qty=3)
    assert batch.order.status is OrderStatus.CANCELED and book.asks == {}
    with pytest.raises(OrderNotFound):
        book.amend(ask, T0, qty=2)
    (other,) = seed_asks(book, (100, 5))
    with pytest.raises(AmendRejected):
        book.amend(other, T0, qty=0)


def test_cancel_and_cancel_all() -> None:
    book = fresh()
    a1 = book.submit(limit("a", BUY, 1, 99), T0).order.order_id
    book.submit(limit("a", BUY, 1, 98), T0)
    book.submit(limit("b", BUY, 1, 98), T0)
    batch = book.cancel(a1, T0)
    assert batch.order.status is OrderStatus.CANCELED and 99 not in book.bids
    with pytest.raises(OrderNotFound):
        book.cancel(a1, T0)
    batch = book.cancel_all(T0, "a")
    assert [e.order.account for e in batch.order_events] == ["a"]
    assert book.bids == {98: 1} and [o.account for o in book.open_orders()] == ["b"]


def test_self_trade_expires_the_taker_by_default() -> None:
    book = fresh()
    (other,) = seed_asks(book, (100, 1))
    own = book.submit(limit("me", SELL, 5, 101), T0).order.order_id
    batch = book.submit(limit("me", BUY, 3, 101), T0)
    assert batch.order.status is OrderStatus.EXPIRED_IN_MATCH and batch.order.filled == 1
    assert batch.order_events[-1].reason is Reason.SELF_TRADE
    assert [t.maker_order_id for t in batch.trades] == [other]
    assert book.get(own).leaves == 5


@pytest.mark.parametrize(
    ("mode", "maker_status", "taker_status"),
    [
        (StpMode.EXPIRE_MAKER, OrderStatus.EXPIRED_IN_MATCH, OrderStatus.PARTIALLY_FILLED),
        (StpMode.EXPIRE_BOTH, OrderStatus.EXPIRED_IN_MATCH, OrderStatus.EXPIRED_IN_MATCH),
        (StpMode.NONE, OrderStatus.FILLED, OrderStatus.FILLED),
    ],
)
def test_self_trade_modes(
    mode: StpMode, maker_status: OrderStatus, taker_status: OrderStatus
) -> None:
    book = fresh()
    own = book.submit(limit("me", SELL, 2, 100), T0).order.order_id
    seed_asks(book, (100, 1))
    batch = book.submit(limit("me", BUY, 3, 100, stp=mode), T0)
    final = {e.order.order_id: e.order.status for e in batch.order_events}
    assert final[own] is maker_status
    assert batch.order.status is taker_status


def test_preview_changes_nothing() -> None:
    book = fresh()
    seed_asks(book, (100, 2), (101, 3))
    before = (dict(book.asks), book.update_id, book.next_order_id, book.next_trade_id)
    preview = book.preview(market("t", BUY, 4))
    assert (preview.qty, preview.notional, preview.worst_price) == (4, 200 + 202, 101)
    assert (dict(book.asks), book.update_id, book.next_order_id, book.next_trade_id) == before


def test_listeners_see_batches_in_order_even_when_one_mutates() -> None:
    book = fresh()
    seen: list[int] = []

    def canceller(batch: Batch) -> None:
        seen.append(batch.events[-1].update_id if batch.level_changes else -1)
        for event in batch.order_events:
            if event.exec_type is ExecType.NEW and event.order.account == "victim":
                book.cancel(event.order.order_id, T0)

    book.subscribe(canceller)
    later: list[int] = []
    book.subscribe(lambda b: later.append(b.level_changes[-1].update_id))
    book.submit(limit("victim", BUY, 1, 90), T0)
    assert seen == later == [101, 102] and book.bids == {}


def test_reset_replaces_the_book_without_ids() -> None:
    book = fresh()
    user = book.submit(limit("u", BUY, 1, 90), T0).order.order_id
    batch = book.reset([(95, 3), (94, 1)], [(96, 2)], 5_000, "mm", T0)
    assert not batch.level_changes and book.update_id == 5_000
    assert [(e.order.order_id, e.order.status) for e in batch.order_events] == [
        (user, OrderStatus.CANCELED)
    ]
    assert book.bids == {95: 3, 94: 1} and book.asks == {96: 2}


# ----------------------------------------------------------------- properties
ACCOUNTS = ["a", "b", "c"]
KINDS = ["GTC", "GTC", "IOC", "FOK", "POST_ONLY", "MARKET", "QUOTE"]


def random_request(rng: random.Random) -> OrderRequest:
    account, side = rng.choice(ACCOUNTS), rng.choice([BUY, SELL])
    kind, qty, stp = rng.choice(KINDS), rng.randint(1, 12), rng.choice(list(StpMode))
    if kind == "MARKET":
        return OrderRequest(account, side, qty, type=OrderType.MARKET, stp=stp)
    if kind == "QUOTE":
        return OrderRequest(account, side, type=OrderType.MARKET, quote_qty=qty * 100, stp=stp)
    price = rng.randint(96, 104)
    return OrderRequest(account, side, qty, price, tif=TimeInForce(kind), stp=stp)


def random_operation(book: OrderBook, rng: random.Random) -> None:
    open_ids = [o.order_id for o in book.open_orders()]
    roll = rng.random()
    if roll < 0.65 or not open_ids:
        book.submit(random_request(rng), T0)
    elif roll < 0.8:
        book.cancel(rng.choice(open_ids), T0)
    elif roll < 0.97:
        qty = rng.choice([None, rng.randint(1, 15)])
        price = rng.choice([None, rng.randint(95, 105)])
        book.amend(rng.choice(open_ids), T0, qty=qty, price=price)
    else:
        book.cancel_all(T0, rng.choice(ACCOUNTS))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), n_ops=st.integers(1, 150))
def test_random_sequences_keep_the_book_consistent(seed: int, n_ops: int) -> None:
    rng = random.Random(seed)
    book = fresh()
    batches: list[Batch] = []
    book.subscribe(batches.append)
    for _ in range(n_ops):
        random_operation(book, rng)
        assert not book.is_crossed(), "a crossed book at rest"
        for side in (BUY, SELL):
            for price, total in book.totals[side].items():
                resting = book.orders_at(side, price)
                assert resting and total == sum(o.leaves for o in resting)
                assert all(o.status.is_open and o.leaves > 0 for o in resting)

    replica: dict[Side, dict[int, int]] = {BUY: {}, SELL: {}}
    last_id = 100
    filled: dict[int, int] = defaultdict(int)
    final: dict[int, OrderEvent] = {}
    for batch in batches:
        by_trade: dict[int, list[OrderEvent]] = defaultdict(list)
        for event in batch.events:
            if isinstance(event, LevelChange):
                assert event.update_id == last_id + 1, "update ids must be contiguous"
                last_id = event.update_id
                if event.qty:
                    replica[event.side][event.price] = event.qty
                else:
                    replica[event.side].pop(event.price)
            elif isinstance(event, OrderEvent):
                final[event.order.order_id] = event
                if event.fill is not None:
                    filled[event.order.order_id] += event.fill.qty
                    by_trade[event.fill.trade_id].append(event)
        for trade in batch.trades:
            pair = by_trade[trade.trade_id]
            assert sorted(e.fill.is_maker for e in pair if e.fill) == [False, True]
            buys = sum(e.fill.qty for e in pair if e.fill and e.order.side is BUY)
            sells = sum(e.fill.qty for e in pair if e.fill and e.order.side is SELL)
            assert buys == sells == trade.qty
    assert replica == book.totals, "level changes must rebuild the book"
    assert last_id == book.update_id
    open_ids = {o.order_id for o in book.open_orders()}
    for order_id, event in final.items():
        order = event.order
        assert filled[order_id] == order.filled, "fills must add up to the filled qty"
        assert order.filled <= order.qty
        assert (order_id in open_ids) == order.status.is_open
        if order.status is OrderStatus.FILLED:
            assert order.leaves == 0


def test_same_operations_give_the_same_batches() -> None:
    def run() -> list[Batch]:
        book = fresh()
        out = []
        for i in range(40):
            side = BUY if i % 3 else SELL
            out.append(book.submit(limit(ACCOUNTS[i % 3], side, 1 + i % 5, 98 + i % 7), i))
        return out

    assert run() == run()
