"""The order read model: state only forward, fills once, whatever the arrival order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exconn.messages import (
    BalanceUpdate,
    Fill,
    OrderUpdate,
    PlaceOrder,
    PositionSide,
    PositionUpdate,
)
from exconn.model.enums import Market, OrderSide, OrderStatus, OrderType, TimeInForce
from exconn.orders.read_model import NOT_FOUND_REASON, ReadModel

S = OrderStatus
D = Decimal
T0 = datetime(2024, 8, 8, 12, 0, tzinfo=UTC)
SYM = "BTC/USDT"


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def upd(status: OrderStatus, filled: str = "0", ms: int = 0, **kw: object) -> OrderUpdate:
    fields: dict[str, object] = {
        "exchange": "binance",
        "market": "spot",
        "symbol": SYM,
        "client_order_id": "c-1",
        "exchange_order_id": "101",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
        "time_in_force": TimeInForce.GTC,
        "status": status,
        "price": D("60000"),
        "qty": D("3"),
        "filled_qty": D(filled),
        "avg_price": D("60000") if D(filled) else None,
        "ts": at(ms),
        "venue_status": status.value.upper(),
        "venue_type": "LIMIT",
    }
    fields.update(kw)
    return OrderUpdate(**fields)  # type: ignore[arg-type]


def fill(trade_id: int, ms: int, qty: str = "1", **kw: object) -> Fill:
    fields: dict[str, object] = {
        "exchange": "binance",
        "market": "spot",
        "symbol": SYM,
        "trade_id": str(trade_id),
        "exchange_order_id": "101",
        "client_order_id": "c-1",
        "side": OrderSide.BUY,
        "price": D("60000"),
        "qty": D(qty),
        "fee": D("0.001"),
        "fee_asset": "BNB",
        "is_maker": True,
        "ts": at(ms),
    }
    fields.update(kw)
    return Fill(**fields)  # type: ignore[arg-type]


def place() -> PlaceOrder:
    return PlaceOrder(
        exchange="binance",
        market=Market.SPOT,
        symbol=SYM,
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=D("3"),
        price=D("60000"),
    )


# ------------------------------------------------------------------ lifecycles
def test_new_partial_filled_lifecycle_publishes_each_step_once() -> None:
    m = ReadModel("binance")
    steps = [
        upd(S.NEW, "0", 0),
        upd(S.PARTIALLY_FILLED, "1", 10),
        upd(S.PARTIALLY_FILLED, "2", 20),
        upd(S.FILLED, "3", 30),
    ]
    for step in steps:
        assert m.apply_order_update(step) == [step]
        assert m.apply_order_update(step) == []  # the same fact twice: nothing new
    for i, ms in enumerate((10, 20, 30)):
        assert m.apply_fill(fill(500 + i, ms)) == [fill(500 + i, ms)]
    final = m.order("spot", "c-1")
    assert final == steps[-1]
    assert m.open_orders() == []
    assert [f.trade_id for f in m.fills_of(final)] == ["500", "501", "502"]
    assert m.order_by_exchange_id("spot", SYM, "101") == final


@pytest.mark.parametrize("end", [S.CANCELED, S.EXPIRED])
def test_cancel_and_expire_after_a_partial_fill(end: OrderStatus) -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.NEW, "0", 0))
    m.apply_order_update(upd(S.PARTIALLY_FILLED, "1", 10))
    assert m.apply_order_update(upd(end, "1", 20)) == [upd(end, "1", 20)]
    assert m.order("spot", "c-1").status is end  # type: ignore[union-attr]
    # a late NEW or PARTIALLY_FILLED changes nothing and is counted
    assert m.apply_order_update(upd(S.PARTIALLY_FILLED, "1", 10)) == []
    assert m.apply_order_update(upd(S.NEW, "0", 0)) == []
    assert m.counters.regressions == 2
    assert m.order("spot", "c-1").status is end  # type: ignore[union-attr]


def test_reject_of_a_submitted_order() -> None:
    m = ReadModel("binance")
    assert m.record_submitted(place(), "c-1", at(0)) == []
    assert m.order("spot", "c-1").status is S.PENDING_NEW  # type: ignore[union-attr]
    rejected = upd(S.REJECTED, "0", 5, reject_reason="INSUFFICIENT_BALANCE")
    (out,) = m.apply_order_update(rejected)
    assert out.status is S.REJECTED and out.exchange_order_id == "101"
    assert out.reject_reason == "INSUFFICIENT_BALANCE"
    assert m.open_orders() == []


def test_regression_with_a_newer_time_is_ignored_and_counted() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.CANCELED, "0", 10))
    # NEW after CANCELED with a later time: the state machine refuses it
    assert m.apply_order_update(upd(S.NEW, "0", 20)) == []
    assert m.counters.illegal == 1
    view = m.order("spot", "c-1")
    assert view is not None and view.status is S.CANCELED and view.ts == at(10)


def test_new_never_follows_rejected_nor_filled_goes_back() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.FILLED, "3", 30))
    assert m.apply_order_update(upd(S.PARTIALLY_FILLED, "2", 40)) == []  # lower fill: stale
    assert m.counters.stale == 1
    assert m.order("spot", "c-1").filled_qty == D("3")  # type: ignore[union-attr]


# ------------------------------------------------------------------ arrival order
def test_stream_events_before_the_rest_ack_then_the_ack_enriches_nothing_back() -> None:
    m = ReadModel("binance")
    m.record_submitted(place(), "c-1", at(0))
    # the stream is faster than the REST reply
    assert m.apply_order_update(upd(S.PARTIALLY_FILLED, "1", 10)) != []
    assert m.apply_fill(fill(500, 10)) == [fill(500, 10)]
    # the ack (NEW, nothing filled, older time) arrives last: ignored, the fill stays
    assert m.apply_ack("spot", SYM, "c-1", "101", ts=at(1), status=S.NEW) == []
    view = m.order("spot", "c-1")
    assert view is not None and view.status is S.PARTIALLY_FILLED
    assert view.filled_qty == D("1")
    assert len(m.fills_of(view)) == 1


def test_a_late_intent_record_and_unknown_mark_leave_what_the_stream_said() -> None:
    """In the tree the stream reaches OrderQuery before OrderCommand's Submitted (sent before
    the HTTP call, delivered after it) and before the reply of an answer lost in transit."""
    m = ReadModel("bybit")
    order = msgspec.structs.replace(place(), exchange="bybit")
    filled = upd(S.FILLED, "3", 30, exchange="bybit", exchange_order_id="uuid-1")
    assert m.apply_order_update(filled) == [filled]
    trade = fill(500, 30, qty="3", exchange="bybit", exchange_order_id="uuid-1")
    assert m.apply_fill(trade) == [trade]
    assert m.record_submitted(order, "c-1", at(40)) == []
    assert m.mark("spot", "c-1", S.UNKNOWN) == []
    # the ack (ids only) and the resolving query's row: nothing new, nothing undone
    assert m.apply_ack("spot", SYM, "c-1", "uuid-1") == []
    assert m.apply_order_update(msgspec.structs.replace(filled, client_order_id=None)) == []
    assert m.apply_fill(trade) == []
    view = m.order("spot", "c-1")
    assert view is not None and view.status is S.FILLED and view.filled_qty == D("3")
    assert m.unknown_orders() == [] and m.fills_of(view) == [trade]


def test_client_id_only_record_is_enriched_by_a_later_ack() -> None:
    m = ReadModel("bybit")
    order = msgspec.structs.replace(place(), exchange="bybit")
    m.record_submitted(order, "c-9", at(0))
    assert m.order("spot", "c-9").exchange_order_id == ""  # type: ignore[union-attr]
    # Bybit's create reply: ids only, no status (processing is asynchronous)
    (out,) = m.apply_ack("spot", SYM, "c-9", "uuid-1")
    assert out.exchange_order_id == "uuid-1" and out.status is S.PENDING_NEW
    assert m.order_by_exchange_id("spot", SYM, "uuid-1") == out
    assert m.apply_ack("spot", SYM, "c-9", "uuid-1") == []  # nothing new


def test_rest_row_without_client_id_is_enriched_from_the_stream() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.NEW, "0", 0))
    rest = upd(S.PARTIALLY_FILLED, "1", 10, client_order_id=None, time_in_force=None)
    (out,) = m.apply_order_update(rest)
    assert out.client_order_id == "c-1" and out.time_in_force is TimeInForce.GTC
    assert out.status is S.PARTIALLY_FILLED


def test_fill_before_its_order_is_kept_and_attached() -> None:
    m = ReadModel("binance")
    early = fill(500, 10, client_order_id=None)
    assert m.apply_fill(early) == [early]
    assert m.unattached_fills() == [early]
    assert m.counters.orphan_fills == 1
    m.apply_order_update(upd(S.PARTIALLY_FILLED, "1", 10))
    assert m.unattached_fills() == []
    assert m.fills_of(m.order("spot", "c-1")) == [early]  # type: ignore[arg-type]


def test_fill_names_the_exchange_id_of_a_submitted_order() -> None:
    m = ReadModel("binance")
    m.record_submitted(place(), "c-1", at(0))
    out = m.apply_fill(fill(500, 10))
    assert out[0] == fill(500, 10)
    assert isinstance(out[1], OrderUpdate) and out[1].exchange_order_id == "101"
    assert m.fills_of(out[1]) == [fill(500, 10)]


def test_duplicate_fill_counted_once() -> None:
    m = ReadModel("binance")
    f = fill(500, 10)
    assert m.apply_fill(f) == [f]
    # the same trade from REST (no client id, another fee figure) is the same fill
    assert m.apply_fill(msgspec.structs.replace(f, client_order_id=None)) == []
    assert m.counters.duplicate_fills == 1
    assert m.fills() == [f]
    # the same trade id on another symbol is another fill (Binance counts ids per symbol)
    other = fill(500, 10, symbol="ETH/USDT")
    assert m.apply_fill(other) == [other]


def test_fill_cursor_tracks_the_highest_trade_id_and_latest_time() -> None:
    m = ReadModel("binance")
    m.apply_fill(fill(502, 30))
    m.apply_fill(fill(500, 10))
    cursor = m.fill_cursor("spot", SYM)
    assert cursor is not None and cursor.trade_id == "502" and cursor.ts == at(30)
    b = ReadModel("bybit")
    for tid, ms in (("uuid-b", 20), ("uuid-a", 10)):
        b.apply_fill(msgspec.structs.replace(fill(0, ms), exchange="bybit", trade_id=tid))
    cursor = b.fill_cursor("spot", SYM)
    assert cursor is not None and cursor.trade_id == "uuid-b" and cursor.ts == at(20)


# ------------------------------------------------------------------ UNKNOWN
def test_unknown_resolved_by_a_query_result() -> None:
    m = ReadModel("binance")
    m.record_submitted(place(), "c-1", at(0))
    assert m.mark("spot", "c-1", S.UNKNOWN) == []
    assert [o.client_order_id for o in m.unknown_orders()] == ["c-1"]
    assert m.open_orders()[0].status is S.UNKNOWN
    (out,) = m.apply_order_update(upd(S.NEW, "0", 100))
    assert out.status is S.NEW and out.exchange_order_id == "101"
    assert m.unknown_orders() == []


def test_unknown_not_found_becomes_rejected() -> None:
    m = ReadModel("binance")
    m.record_submitted(place(), "c-1", at(0))
    m.mark("spot", "c-1", S.UNKNOWN)
    (out,) = m.resolve_not_found("spot", "c-1")
    assert out.status is S.REJECTED and out.reject_reason == NOT_FOUND_REASON
    assert m.resolve_not_found("spot", "c-1") == []


def test_not_found_for_a_known_open_order_is_not_trusted() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.NEW, "0", 0))
    assert m.resolve_not_found("spot", "c-1") == []
    assert m.counters.conflicts == 1
    assert m.order("spot", "c-1").status is S.NEW  # type: ignore[union-attr]


def test_mark_after_the_exchange_said_filled_is_refused() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.FILLED, "3", 30))
    assert m.mark("spot", "c-1", S.PENDING_CANCEL) == []
    assert m.order("spot", "c-1").status is S.FILLED  # type: ignore[union-attr]
    assert m.counters.illegal == 1


def test_local_marks_do_not_date_the_order() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.NEW, "0", 0))
    m.mark("spot", "c-1", S.PENDING_CANCEL)
    # the cancel was refused and the order filled: PENDING_CANCEL -> PARTIALLY_FILLED
    (out,) = m.apply_order_update(upd(S.PARTIALLY_FILLED, "1", 5))
    assert out.status is S.PARTIALLY_FILLED


def test_conflicting_update_is_counted() -> None:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.NEW, "0", 0))
    assert m.apply_order_update(upd(S.PARTIALLY_FILLED, "5", 10)) == []  # above qty 3
    assert m.counters.conflicts == 1


def test_other_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="bybit event"):
        ReadModel("binance").apply_order_update(upd(S.NEW, exchange="bybit"))


# ------------------------------------------------------------------ balances, positions
def bal(total: str, ms: int, **kw: object) -> BalanceUpdate:
    fields: dict[str, object] = {
        "exchange": "binance",
        "market": "spot",
        "asset": "USDT",
        "ts": at(ms),
        "free": D(total),
        "locked": D(0),
        "total": D(total),
    }
    fields.update(kw)
    return BalanceUpdate(**fields)  # type: ignore[arg-type]


def test_balances_newer_only_and_unchanged_is_silent() -> None:
    m = ReadModel("binance")
    assert m.apply_balance(bal("100", 10)) == [bal("100", 10)]
    assert m.apply_balance(bal("100", 20)) == []  # only the time moved
    assert m.apply_balance(bal("90", 5)) == []  # older
    assert m.counters.stale_balances == 1
    assert m.apply_balance(bal("80", 30)) == [bal("80", 30)]
    delta = BalanceUpdate(exchange="binance", market="spot", asset="USDT", ts=at(40), delta=D(5))
    assert m.apply_balance(delta) == [delta]
    assert m.balance("spot", "USDT") == bal("80", 30)


def pos(qty: str, ms: int, seq: int | None = None, **kw: object) -> PositionUpdate:
    fields: dict[str, object] = {
        "exchange": "binance",
        "market": "linear",
        "symbol": "BTC/USDT",
        "position_side": PositionSide.BOTH,
        "qty": D(qty),
        "ts": at(ms),
        "seq": seq,
    }
    fields.update(kw)
    return PositionUpdate(**fields)  # type: ignore[arg-type]


def test_positions_newer_only() -> None:
    m = ReadModel("binance")
    assert m.apply_position(pos("1", 10)) == [pos("1", 10)]
    assert m.apply_position(pos("1", 20)) == []
    assert m.apply_position(pos("2", 5)) == []
    assert m.apply_position(pos("-1", 30)) == [pos("-1", 30)]
    assert m.position("linear", "BTC/USDT") == pos("-1", 30)
    # seq decides when both carry one, whatever the time
    assert m.apply_position(pos("3", 40, seq=7)) == [pos("3", 40, seq=7)]
    assert m.apply_position(pos("4", 50, seq=6)) == []
    assert m.counters.stale_positions == 2


# ------------------------------------------------------------------ any arrival order
_FILLED_RUN = [
    upd(S.NEW, "0", 0),
    upd(S.PARTIALLY_FILLED, "1", 10, seq=None),
    upd(S.PARTIALLY_FILLED, "1", 10, client_order_id=None, time_in_force=None),  # REST row
    upd(S.PARTIALLY_FILLED, "2", 20),
    upd(S.FILLED, "3", 30),
    fill(500, 10),
    fill(501, 20),
    fill(502, 30, client_order_id=None),  # from REST myTrades
]
_CANCELED_RUN = [
    upd(S.NEW, "0", 0),
    upd(S.PARTIALLY_FILLED, "1", 10),
    upd(S.CANCELED, "1", 20),
    upd(S.CANCELED, "1", 20, client_order_id=None),  # REST query
    fill(500, 10),
]


def _final(events: list[OrderUpdate | Fill]) -> tuple[OrderUpdate | None, frozenset[Fill], int]:
    m = ReadModel("binance")
    published: list[Fill] = []
    for event in events:
        published += [e for e in m.apply(event) if isinstance(e, Fill)]
    view = m.order_by_exchange_id("spot", SYM, "101")
    assert view is not None
    assert sorted(f.trade_id for f in m.fills_of(view)) == sorted(f.trade_id for f in m.fills())
    assert len(published) == len({f.key for f in published})  # each fill published once
    return view, frozenset(m.fills()), len(published)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_permutation_with_duplicates_reaches_the_same_state(data: st.DataObject) -> None:
    run = data.draw(st.sampled_from([_FILLED_RUN, _CANCELED_RUN]))
    extra = data.draw(st.lists(st.sampled_from(run), max_size=6))
    events = data.draw(st.permutations(run + extra))
    expected = _final(run)
    assert _final(events) == expected
    # with the local intent recorded first, the outcome is the same
    m = ReadModel("binance")
    m.record_submitted(place(), "c-1", at(-5))
    for event in events:
        m.apply(event)
    assert m.order("spot", "c-1") == expected[0]
