"""Bybit V5 number formatting, ids and instrument descriptions, from grid units.

Bybit prints prices with the tick size's decimals and quantities with the step's (the
recorded XRPUSDT book: "1.9531", "6203"); computed values (execValue, fees, balances) are
plain decimals without trailing zeros, as in the docs' examples ("119.015", "0.071409").
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exconn.sim.fixed import SCALE, to_units
from exconn.sim.symbols import SimSymbol

CATEGORIES = ("spot", "linear")
MAX_LEVERAGE = 100
LAUNCH_TIME_MS = "1585526400000"


def _decimals(step: Decimal) -> int:
    exponent = step.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def plain(units: int) -> str:
    """1e-8 units as the shortest exact decimal ("0", "119.015", "-3.5")."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    whole, frac = divmod(units, SCALE)
    text = f"{frac:08d}".rstrip("0")
    return f"{sign}{whole}.{text}" if text else f"{sign}{whole}"


def fixed_dp(units: int, dp: int) -> str:
    """Units with exactly `dp` decimals (truncated; callers pass grid-exact values)."""
    sign = "-" if units < 0 else ""
    units = abs(units)
    whole, frac = divmod(units, SCALE)
    if dp == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{f'{frac:08d}'[:dp]}"


def dec_units(text: str) -> int | None:
    """A decimal string as 1e-8 units; None when malformed or finer than 1e-8."""
    try:
        value = Decimal(text)
        if not value.is_finite():
            return None
        return to_units(value)
    except (ArithmeticError, ValueError):
        return None


def deterministic_uuid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, "/".join(str(p) for p in parts)))


@dataclass(frozen=True, slots=True)
class Wire:
    """Formatting for one (category, symbol)."""

    category: str
    sym: SimSymbol

    @property
    def symbol(self) -> str:
        return self.sym.symbol

    @property
    def price_dp(self) -> int:
        return _decimals(self.sym.tick_size)

    @property
    def qty_dp(self) -> int:
        return _decimals(self.sym.step_size)

    def price(self, ticks: int) -> str:
        return fixed_dp(ticks * self.sym.tick_units, self.price_dp)

    def qty(self, steps: int) -> str:
        return fixed_dp(steps * self.sym.step_units, self.qty_dp)

    def value(self, notional: int) -> str:
        """Tick-steps as a quote amount."""
        return plain(notional * self.sym.tick_units * self.sym.step_units // SCALE)

    def price_units(self, ticks: int) -> int:
        return ticks * self.sym.tick_units

    def levels(self, levels: list[tuple[int, int]]) -> list[list[str]]:
        # A removed level's size is "0" (docs' delta example), not "0.000".
        return [[self.price(p), self.qty(q) if q else "0"] for p, q in levels]

    def ticks_of(self, text: str) -> int | None:
        """A price string on this symbol's tick grid, else None."""
        units = dec_units(text)
        if units is None or units <= 0 or units % self.sym.tick_units:
            return None
        return units // self.sym.tick_units

    def steps_of(self, text: str) -> int | None:
        units = dec_units(text)
        if units is None or units <= 0 or units % self.sym.step_units:
            return None
        return units // self.sym.step_units

    def order_id(self, engine_id: int) -> str:
        # Spot ids are long decimal strings, derivatives ids are UUIDs (docs' examples).
        if self.category == "spot":
            return str(1_900_000_000_000_000_000 + engine_id)
        return deterministic_uuid("order", self.symbol, engine_id)

    def instrument(self) -> dict[str, Any]:
        return spot_instrument(self.sym) if self.category == "spot" else linear_instrument(self.sym)


def spot_instrument(sym: SimSymbol) -> dict[str, Any]:
    return {
        "symbol": sym.symbol,
        "baseCoin": sym.base,
        "quoteCoin": sym.quote,
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "none",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": str(sym.step_size.normalize()),
            "quotePrecision": "0.00000001",
            "minOrderQty": str(sym.min_qty.normalize()),
            "maxOrderQty": str(sym.max_qty.normalize()),
            "minOrderAmt": str(sym.min_notional.normalize()),
            "maxOrderAmt": str(sym.max_notional.normalize()),
            "maxLimitOrderQty": str(sym.max_qty.normalize()),
            "maxMarketOrderQty": str((sym.max_qty / 2).normalize()),
            "postOnlyMaxLimitOrderSize": str((sym.max_qty * 5).normalize()),
        },
        "priceFilter": {"tickSize": str(sym.tick_size.normalize())},
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
        "symbolType": "",
    }


def linear_instrument(sym: SimSymbol) -> dict[str, Any]:
    tick = sym.tick_size
    return {
        "symbol": sym.symbol,
        "contractType": "LinearPerpetual",
        "status": "Trading",
        "baseCoin": sym.base,
        "quoteCoin": sym.quote,
        "launchTime": LAUNCH_TIME_MS,
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": str(_decimals(tick)),
        "leverageFilter": {
            "minLeverage": "1",
            "maxLeverage": f"{MAX_LEVERAGE}.00",
            "leverageStep": "0.01",
        },
        "priceFilter": {
            "minPrice": str(tick),
            "maxPrice": str(sym.max_price),
            "tickSize": str(tick),
        },
        "lotSizeFilter": {
            "maxOrderQty": str(sym.max_qty),
            "minOrderQty": str(sym.min_qty),
            "qtyStep": str(sym.step_size),
            "postOnlyMaxOrderQty": str(sym.max_qty),
            "maxMktOrderQty": str(sym.max_qty / 2),
            "minNotionalValue": str(sym.min_notional.normalize()),
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": sym.quote,
        "copyTrading": "none",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
        "isPreListing": False,
        "preListingInfo": None,
        "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.1"},
        "symbolType": "",
    }
