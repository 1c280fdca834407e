from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn.book.fixed import decimals_of, parse_scaled, scaled_to_decimal
from exconn.book.orderbook import OrderBook


def test_parse_scaled_is_exact() -> None:
    assert parse_scaled("61837.63000000", 8) == 6183763000000
    assert parse_scaled("0.1", 8) == 10_000_000
    assert parse_scaled("5", 2) == 500
    assert parse_scaled("1.2300", 2) == 123
    with pytest.raises(ValueError):
        parse_scaled("1.2345", 2)  # would lose digits
    with pytest.raises(ValueError):
        parse_scaled("abc", 8)


@given(st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False))
def test_scaled_round_trip(value: Decimal) -> None:
    text = f"{value:.8f}"
    assert scaled_to_decimal(parse_scaled(text, 8), 8) == value


def test_decimals_of() -> None:
    assert decimals_of(Decimal("0.01")) == 2
    assert decimals_of(Decimal("0.00000100")) == 6
    assert decimals_of(Decimal("1")) == 0
    assert decimals_of(Decimal("0.5")) == 1


def test_apply_sets_removes_and_orders_levels() -> None:
    book = OrderBook()
    book.load(10, [("100.0", "1"), ("99.5", "2")], [("101", "3"), ("102", "4")])
    assert book.best_bid() == (Decimal("100"), Decimal("1"))
    assert book.best_ask() == (Decimal("101"), Decimal("3"))
    book.apply([("100.0", "0"), ("99.9", "5")], [("100.5", "1"), ("105", "0")])  # 105 absent
    assert book.bids() == [(Decimal("99.9"), Decimal("5")), (Decimal("99.5"), Decimal("2"))]
    assert book.asks(2) == [(Decimal("100.5"), Decimal("1")), (Decimal("101"), Decimal("3"))]
    assert book.update_id == 10 and len(book) == 5
    assert not book.is_crossed()


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 50), st.integers(0, 3)), max_size=200))
def test_book_matches_a_plain_dict_model(ops: list[tuple[bool, int, int]]) -> None:
    book = OrderBook(2, 0)
    model: dict[bool, dict[int, int]] = {True: {}, False: {}}
    for is_bid, price, qty in ops:
        levels = [(f"{price}.00", str(qty))]
        book.apply(levels if is_bid else [], [] if is_bid else levels)
        if qty:
            model[is_bid][price] = qty
        else:
            model[is_bid].pop(price, None)
    assert book.bids() == [
        (Decimal(p), Decimal(q)) for p, q in sorted(model[True].items(), reverse=True)
    ]
    assert book.asks() == [(Decimal(p), Decimal(q)) for p, q in sorted(model[False].items())]
