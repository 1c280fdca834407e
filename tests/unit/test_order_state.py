"""The order state machine and the read model: only forward, never a lost fill."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn.errors import InvalidTransition, MalformedMessage
from exconn.model.enums import Exchange, Market, OrderSide, OrderStatus, OrderType
from exconn.model.orders import (
    ALLOWED,
    TERMINAL,
    OrderState,
    apply_update,
    can_transition,
    mark,
    transition,
)

S = OrderStatus
D = Decimal
T0 = datetime(2024, 8, 8, 12, 0, tzinfo=UTC)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def order(status: OrderStatus = S.PENDING_NEW, **kw: object) -> OrderState:
    fields: dict[str, object] = {
        "exchange": Exchange.BINANCE,
        "market": Market.SPOT,
        "symbol": "BTC/USDT",
        "client_order_id": "x-1",
        "side": OrderSide.BUY,
        "order_type": OrderType.LIMIT,
        "qty": D("1"),
        "price": D("60000"),
        "status": status,
    }
    fields.update(kw)
    return OrderState(**fields)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Transition table

EXPECTED_MOVES = {
    S.PENDING_NEW: {
        S.NEW,
        S.PARTIALLY_FILLED,
        S.FILLED,
        S.CANCELED,
        S.REJECTED,
        S.EXPIRED,
        S.UNKNOWN,
    },
    S.UNKNOWN: set(S) - {S.PENDING_NEW},
    S.NEW: {S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED},
    S.PARTIALLY_FILLED: {S.FILLED, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED},
    S.PENDING_CANCEL: {S.CANCELED, S.FILLED, S.PARTIALLY_FILLED, S.EXPIRED, S.NEW},
    S.FILLED: set(),
    S.CANCELED: set(),
    S.REJECTED: set(),
    S.EXPIRED: set(),
}


def test_table_is_complete_and_as_documented() -> None:
    assert set(ALLOWED) == set(S)
    for status, moves in EXPECTED_MOVES.items():
        assert ALLOWED[status] == frozenset(moves | {status}), status
    assert frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}) == TERMINAL


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        ALLOWED[S.FILLED] = frozenset(S)  # type: ignore[index]


@pytest.mark.parametrize("current", list(S))
@pytest.mark.parametrize("new", list(S))
def test_transition_matches_table(current: OrderStatus, new: OrderStatus) -> None:
    legal = new == current or new in EXPECTED_MOVES[current]
    assert can_transition(current, new) is legal
    if legal:
        assert transition(current, new) is new
    else:
        with pytest.raises(InvalidTransition) as info:
            transition(current, new)
        assert f"{current} -> {new}" in str(info.value)


def test_key_rules() -> None:
    for terminal in TERMINAL:
        assert ALLOWED[terminal] == {terminal}  # nothing leaves a terminal state
    assert not can_transition(S.FILLED, S.NEW)
    assert not can_transition(S.NEW, S.REJECTED)
    assert not can_transition(S.UNKNOWN, S.PENDING_NEW)
    assert not can_transition(S.NEW, S.UNKNOWN)
    assert not can_transition(S.PARTIALLY_FILLED, S.NEW)
    assert can_transition(S.PENDING_CANCEL, S.NEW)  # refused cancel
    assert can_transition(S.UNKNOWN, S.REJECTED)  # resolved: it never existed


@given(st.lists(st.sampled_from(list(S)), max_size=30))
def test_no_path_leaves_a_terminal_state(path: list[OrderStatus]) -> None:
    status = S.PENDING_NEW
    for new in path:
        if can_transition(status, new):
            was_terminal = status in TERMINAL
            status = transition(status, new)
            if was_terminal:
                assert status == new and new in TERMINAL
            assert status != S.PENDING_NEW or new == S.PENDING_NEW


# ----------------------------------------------------------------------------------------------
# OrderState


def test_order_state_defaults_and_serialization() -> None:
    o = order()
    assert o.filled_qty == 0 and o.avg_price is None and o.updated_at is None
    assert o.exchange_order_id is None and o.remaining_qty == D("1") and not o.is_terminal
    assert pickle.loads(pickle.dumps(o)) == o
    assert msgspec.json.decode(msgspec.json.encode(o), type=OrderState) == o


@pytest.mark.parametrize(
    "kw",
    [
        {"qty": D("0")},
        {"qty": D("-1")},
        {"price": D("0")},
        {"filled_qty": D("1.1")},
        {"filled_qty": D("-0.1")},
        {"client_order_id": ""},
        {"updated_at": datetime(2024, 1, 1)},
    ],
)
def test_order_state_rejects_impossible_values(kw: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        order(**kw)


def test_order_state_rejects_floats() -> None:
    with pytest.raises(TypeError, match="float"):
        order(qty=1.0)


# ----------------------------------------------------------------------------------------------
# apply_update


def test_happy_path() -> None:
    o = order()
    o = apply_update(o, S.NEW, D("0"), at(1), exchange_order_id="123")
    assert (o.status, o.exchange_order_id, o.updated_at) == (S.NEW, "123", at(1))
    o = apply_update(o, S.PARTIALLY_FILLED, D("0.4"), at(2), avg_price=D("60000"))
    o = apply_update(o, S.PARTIALLY_FILLED, D("0.7"), at(3), avg_price=D("59999"))
    assert (o.filled_qty, o.avg_price) == (D("0.7"), D("59999"))
    o = apply_update(o, S.FILLED, D("1"), at(4), exchange_order_id="123")
    assert (o.status, o.filled_qty, o.updated_at, o.exchange_order_id) == (
        S.FILLED,
        D("1"),
        at(4),
        "123",
    )
    assert o.is_terminal and o.remaining_qty == 0


def test_older_update_is_ignored() -> None:
    o = apply_update(order(), S.CANCELED, D("0"), at(5))
    assert apply_update(o, S.NEW, D("0"), at(1)) is o


def test_lower_cumulative_fill_is_ignored_even_if_newer() -> None:
    o = apply_update(order(S.NEW), S.PARTIALLY_FILLED, D("0.5"), at(5))
    assert apply_update(o, S.PARTIALLY_FILLED, D("0.3"), at(9)) is o
    assert apply_update(o, S.NEW, D("0"), at(9)) is o


def test_higher_fill_is_never_lost_to_clock_order() -> None:
    # The REST reply stamped t=5 arrives before the stream's fill event stamped t=4.
    o = apply_update(order(), S.NEW, D("0"), at(5))
    o = apply_update(o, S.PARTIALLY_FILLED, D("0.2"), at(4))
    assert o.filled_qty == D("0.2") and o.status == S.PARTIALLY_FILLED
    assert o.updated_at == at(5)  # time stays monotonic


def test_duplicate_update_is_a_no_op() -> None:
    o = apply_update(order(), S.FILLED, D("1"), at(5), exchange_order_id="9", avg_price=D("1"))
    assert apply_update(o, S.FILLED, D("1"), at(5), exchange_order_id="9", avg_price=D("1")) is o
    assert apply_update(o, S.FILLED, D("1"), at(5)) is o


def test_illegal_newer_update_raises_and_names_the_order() -> None:
    o = apply_update(order(), S.FILLED, D("1"), at(5))
    with pytest.raises(InvalidTransition) as info:
        apply_update(o, S.NEW, D("1"), at(6))
    assert "filled -> new" in str(info.value) and "'x-1'" in str(info.value)
    assert info.value.client_order_id == "x-1"
    o2 = apply_update(order(), S.NEW, D("0"), at(1))
    with pytest.raises(InvalidTransition):
        apply_update(o2, S.REJECTED, D("0"), at(2))


def test_fill_above_qty_is_malformed() -> None:
    o = apply_update(order(), S.NEW, D("0"), at(1))
    with pytest.raises(MalformedMessage, match=r"filled_qty 1\.5 exceeds order qty 1"):
        apply_update(o, S.PARTIALLY_FILLED, D("1.5"), at(2))


def test_other_exchange_order_id_is_malformed() -> None:
    o = apply_update(order(), S.NEW, D("0"), at(1), exchange_order_id="111")
    with pytest.raises(MalformedMessage, match="'222'"):
        apply_update(o, S.PARTIALLY_FILLED, D("0.1"), at(2), exchange_order_id="222")


def test_negative_avg_price_is_malformed() -> None:
    with pytest.raises(MalformedMessage):
        apply_update(order(), S.PARTIALLY_FILLED, D("0.1"), at(2), avg_price=D("-1"))


def test_update_refuses_floats_and_naive_times() -> None:
    with pytest.raises(TypeError):
        apply_update(order(), S.NEW, 0.0, at(1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        apply_update(order(), S.NEW, D("0"), datetime(2024, 1, 1))


def test_unknown_is_resolved_by_query() -> None:
    o = mark(order(), S.UNKNOWN)
    assert o.status == S.UNKNOWN
    assert mark(o, S.UNKNOWN) is o
    resolved = apply_update(o, S.PARTIALLY_FILLED, D("0.5"), at(3), exchange_order_id="77")
    assert resolved.status == S.PARTIALLY_FILLED
    assert apply_update(o, S.REJECTED, D("0"), at(3)).status == S.REJECTED


def test_mark_keeps_exchange_time_so_later_reports_still_apply() -> None:
    o = apply_update(order(), S.NEW, D("0"), at(10))
    pending = mark(o, S.PENDING_CANCEL)
    assert pending.updated_at == at(10) and pending.status == S.PENDING_CANCEL
    # Exchange confirms the cancel at t=11: applies even if the local clock ran ahead.
    done = apply_update(pending, S.CANCELED, D("0"), at(11))
    assert done.status == S.CANCELED
    # A refused cancel returns the order to its open status.
    assert mark(pending, S.NEW).status == S.NEW
    with pytest.raises(InvalidTransition):
        mark(done, S.NEW)


def test_fill_racing_a_cancel() -> None:
    o = mark(apply_update(order(), S.NEW, D("0"), at(1)), S.PENDING_CANCEL)
    o = apply_update(o, S.FILLED, D("1"), at(2))
    assert o.status == S.FILLED
    assert apply_update(o, S.CANCELED, D("1"), at(1)) is o  # the late cancel echo is stale


events = st.lists(
    st.tuples(
        st.sampled_from(list(S)),
        st.integers(min_value=0, max_value=10).map(lambda n: D(n) / 10),
        st.integers(min_value=0, max_value=20),
    ),
    max_size=25,
)


@given(events)
def test_state_only_moves_forward(updates: list[tuple[OrderStatus, Decimal, int]]) -> None:
    o = order()
    for status, filled, ms in updates:
        before = o
        try:
            o = apply_update(o, status, filled, at(ms))
        except InvalidTransition:
            assert not can_transition(before.status, status)
            continue
        assert o.filled_qty >= before.filled_qty
        if before.updated_at is not None:
            assert o.updated_at is not None and o.updated_at >= before.updated_at
        if before.status in TERMINAL:
            assert o.status == before.status
        assert o.status in ALLOWED[before.status]


def test_same_millisecond_status_change_applies() -> None:
    # Exchanges stamp in milliseconds: an acknowledgement and its cancel can share one.
    o = apply_update(order(), S.NEW, D("0"), at(5))
    assert apply_update(o, S.CANCELED, D("0"), at(5)).status == S.CANCELED
