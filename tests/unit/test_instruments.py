"""Instrument rules: exact rounding to the grids, integer ticks, order validation."""

from __future__ import annotations

import pickle
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn.errors import InvalidOrder
from exconn.model.enums import Exchange, Market, OrderSide, OrderType
from exconn.model.instruments import (
    Instrument,
    price_to_ticks,
    round_price,
    round_qty,
    ticks_to_price,
    validate_order,
)

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET


def make(
    tick: str = "0.01",
    step: str = "0.00001",
    min_qty: str = "0.00001",
    **kw: object,
) -> Instrument:
    fields: dict[str, object] = {
        "exchange": Exchange.BINANCE,
        "market": Market.SPOT,
        "symbol": "BTC/USDT",
        "venue_symbol": "BTCUSDT",
        "base": "BTC",
        "quote": "USDT",
        "settle": None,
        "tick_size": D(tick),
        "step_size": D(step),
        "min_qty": D(min_qty),
    }
    fields.update(kw)
    return Instrument(**fields)  # type: ignore[arg-type]


BTC = make(max_qty=D("9000"), min_notional=D("5"), max_notional=D("9000000"))

TICKS = [D(t) for t in ("0.5", "0.01", "0.00000100", "1", "5", "0.1", "0.0001", "25", "1E-8")]
prices = st.decimals(min_value=0, max_value=10_000_000, places=10, allow_nan=False)


def oracle(price: Decimal, tick: Decimal, rounding: str) -> Decimal:
    # Independent check: a wide context and Decimal's own rounding modes.
    with localcontext() as ctx:
        ctx.prec = 200
        return (price / tick).to_integral_value(rounding=rounding) * tick


# ----------------------------------------------------------------------------------------------
# Instrument


def test_instrument_round_trips_msgspec_and_pickle() -> None:
    assert msgspec.json.decode(msgspec.json.encode(BTC), type=Instrument) == BTC
    assert pickle.loads(pickle.dumps(BTC)) == BTC
    assert msgspec.json.encode(BTC).count(b'"0.01"') == 1  # Decimals travel as exact strings


def test_instrument_symbol_must_match_assets() -> None:
    with pytest.raises(ValueError, match="does not match"):
        make(symbol="ETH/USDT")
    with pytest.raises(ValueError, match="does not match"):
        make(symbol="BTC/USDT:USDT")  # settle None: spot


def test_instrument_rejects_negative_rules_and_floats() -> None:
    with pytest.raises(ValueError, match="tick_size"):
        make(tick="-0.01")
    with pytest.raises(TypeError):
        make(min_notional=5.0)


# ----------------------------------------------------------------------------------------------
# Rounding


def test_round_price_examples() -> None:
    i = make(tick="0.5")
    assert round_price(i, D("100.3"), BUY) == D("100.0")
    assert round_price(i, D("100.3"), SELL) == D("100.5")
    assert round_price(i, D("100.3")) == D("100.5")
    assert round_price(i, D("100.2")) == D("100.0")
    assert round_price(i, D("100.25")) == D("100.0")  # tie -> even tick count (200)
    assert round_price(i, D("100.75")) == D("101.0")  # tie -> even tick count (202)
    t = make(tick="0.00000100")
    assert round_price(t, D("0.0001234567"), BUY) == D("0.000123")
    assert round_price(t, D("0.0001234567"), SELL) == D("0.000124")


def test_round_price_on_grid_is_unchanged() -> None:
    assert round_price(BTC, D("60000"), BUY) == D("60000")
    assert round_price(BTC, D("60000.01"), SELL) == D("60000.01")


def test_round_price_zero_tick_means_no_grid() -> None:
    assert round_price(make(tick="0"), D("1.23456789"), BUY) == D("1.23456789")


def test_round_price_refuses_float() -> None:
    with pytest.raises(TypeError, match="float"):
        round_price(BTC, 60000.1, BUY)  # type: ignore[arg-type]


@given(prices, st.sampled_from(TICKS))
def test_round_price_never_worse_than_asked(price: Decimal, tick: Decimal) -> None:
    i = make(tick=str(tick))
    down = round_price(i, price, BUY)
    up = round_price(i, price, SELL)
    near = round_price(i, price)
    for r in (down, up, near):
        price_to_ticks(r, tick)  # on the grid, or this raises
    assert down <= price < down + tick
    assert up - tick < price <= up
    assert abs(near - price) * 2 <= tick
    assert down == oracle(price, tick, ROUND_FLOOR)
    assert up == oracle(price, tick, ROUND_CEILING)
    assert near == oracle(price, tick, ROUND_HALF_EVEN)
    assert round_price(i, down, BUY) == down and round_price(i, up, SELL) == up


@given(prices, st.sampled_from(TICKS))
def test_round_qty_rounds_down_to_step(qty: Decimal, step: Decimal) -> None:
    i = make(step=str(step))
    r = round_qty(i, qty)
    assert r <= qty < r + step
    assert r == oracle(qty, step, ROUND_DOWN)
    assert round_qty(i, r) == r


def test_round_qty_examples() -> None:
    assert round_qty(BTC, D("0.123456789")) == D("0.12345")
    assert round_qty(make(step="0"), D("0.123456789")) == D("0.123456789")
    assert round_qty(make(step="10"), D("99")) == D("90")


# ----------------------------------------------------------------------------------------------
# Integer ticks


def test_price_to_ticks_and_back() -> None:
    assert price_to_ticks(D("60000.01"), D("0.01")) == 6000001
    assert ticks_to_price(6000001, D("0.01")) == D("60000.01")
    assert str(ticks_to_price(6000001, D("0.01"))) == "60000.01"
    assert price_to_ticks(D("100.5"), D("0.5")) == 201
    assert price_to_ticks(D("0.00012300"), D("0.00000100")) == 123
    assert price_to_ticks(D("0"), D("0.01")) == 0


@pytest.mark.parametrize(("price", "tick"), [("60000.005", "0.01"), ("100.3", "0.5"), ("1", "0.3")])
def test_price_to_ticks_refuses_off_grid(price: str, tick: str) -> None:
    with pytest.raises(ValueError, match="not a whole number of ticks"):
        price_to_ticks(D(price), D(tick))


def test_price_to_ticks_refuses_bad_tick() -> None:
    with pytest.raises(ValueError):
        price_to_ticks(D("1"), D("0"))
    with pytest.raises(TypeError):
        ticks_to_price(1.0, D("0.01"))  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=10**15), st.sampled_from(TICKS))
def test_ticks_round_trip_exactly(n: int, tick: Decimal) -> None:
    price = ticks_to_price(n, tick)
    assert price == n * tick
    assert price_to_ticks(price, tick) == n


# ----------------------------------------------------------------------------------------------
# Validation


def test_valid_orders_pass() -> None:
    validate_order(BTC, BUY, LIMIT, D("0.001"), D("60000.01"))
    validate_order(BTC, SELL, MARKET, D("0.001"), None)
    validate_order(BTC, SELL, MARKET, D("0.001"), D("60000.005"))  # reference price: no tick


@pytest.mark.parametrize(
    ("side", "otype", "qty", "price", "match"),
    [
        (BUY, LIMIT, "0.001", "60000.005", r"tick size 0\.01; round_price gives 60000 for a buy"),
        (SELL, LIMIT, "0.001", "60000.005", r"round_price gives 60000\.01 for a sell"),
        (BUY, LIMIT, "0.0012345", "60000", r"step size 0\.00001; round_qty gives 0\.00123"),
        (BUY, LIMIT, "0.000001", "60000", None),  # off step before min_qty
        (BUY, LIMIT, "9000.1", "1", r"above max_qty 9000"),
        (BUY, LIMIT, "0.00008", "60000", r"notional 4\.8 .*below min_notional 5"),
        (BUY, MARKET, "0.00008", "60000", r"below min_notional 5"),
        (BUY, LIMIT, "200", "60000", r"notional 12000000 .*above max_notional 9000000"),
        (BUY, LIMIT, "0.001", None, "needs a price"),
        (BUY, LIMIT, "0", "60000", r"qty must be > 0"),
        (BUY, LIMIT, "-1", "60000", r"qty must be > 0"),
        (BUY, LIMIT, "0.001", "0", r"price must be > 0"),
        (BUY, LIMIT, "0.001", "-60000", r"price must be > 0"),
    ],
)
def test_invalid_orders_name_the_rule(
    side: OrderSide, otype: OrderType, qty: str, price: str | None, match: str | None
) -> None:
    with pytest.raises(InvalidOrder, match=match) as info:
        validate_order(BTC, side, otype, D(qty), None if price is None else D(price))
    assert info.value.exchange == "binance" and info.value.market == "spot"
    assert str(info.value).startswith("binance spot: BTC/USDT (BTCUSDT): ")


def test_min_qty() -> None:
    i = make(step="0.001", min_qty="0.01")
    with pytest.raises(InvalidOrder, match=r"below min_qty 0\.01"):
        validate_order(i, BUY, LIMIT, D("0.009"), D("100"))


def test_zero_limits_mean_no_constraint() -> None:
    i = make(tick="0", step="0", min_qty="0", max_qty=D(0), min_notional=D(0), max_notional=D(0))
    validate_order(i, BUY, LIMIT, D("123456.123456789"), D("0.000000001"))


def test_notional_is_exact() -> None:
    # 0.1 x 50 = 5 exactly; a float product would be 5.000000000000001 or 4.999...
    i = make(tick="0.1", step="0.1", min_qty="0.1", min_notional=D("5"), max_notional=D("5"))
    validate_order(i, BUY, LIMIT, D("0.1"), D("50.0"))


def test_instrument_not_trading() -> None:
    with pytest.raises(InvalidOrder, match=r"not trading .*'break'"):
        validate_order(make(status="break"), BUY, LIMIT, D("0.001"), D("60000"))


def test_validate_refuses_floats() -> None:
    with pytest.raises(TypeError, match="float"):
        validate_order(BTC, BUY, LIMIT, 0.001, D("60000"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        validate_order(BTC, BUY, LIMIT, D("0.001"), 60000.0)  # type: ignore[arg-type]


@given(prices.filter(lambda p: p > 0), prices.filter(lambda q: q > 0), st.sampled_from([BUY, SELL]))
def test_rounded_orders_pass_grid_rules(price: Decimal, qty: Decimal, side: OrderSide) -> None:
    i = make(tick="0.5", step="0.001", min_qty="0")
    p = round_price(i, price, side)
    q = round_qty(i, qty)
    if p > 0 and q > 0:
        validate_order(i, side, LIMIT, q, p)
