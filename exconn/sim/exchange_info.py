"""The GET /api/v3/exchangeInfo document (current spot shape, numbers in filters as strings)."""

from decimal import Decimal
from typing import Any

from exconn.sim.fixed import fmt_units, to_units
from exconn.sim.symbols import SimSymbol

RATE_LIMITS: list[dict[str, Any]] = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
]

# Only what the simulator executes, so a client reading exchangeInfo learns its limits.
_ORDER_TYPES = ["LIMIT", "LIMIT_MAKER", "MARKET"]
_STP_MODES = ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"]


def _s(value: Decimal) -> str:
    return fmt_units(to_units(value))


def symbol_info(sym: SimSymbol) -> dict[str, Any]:
    return {
        "symbol": sym.symbol,
        "status": "TRADING",
        "baseAsset": sym.base,
        "baseAssetPrecision": 8,
        "quoteAsset": sym.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": list(_ORDER_TYPES),
        "icebergAllowed": False,
        "ocoAllowed": False,
        "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": False,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _s(sym.tick_size),
                "maxPrice": _s(sym.max_price),
                "tickSize": _s(sym.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": _s(sym.min_qty),
                "maxQty": _s(sym.max_qty),
                "stepSize": _s(sym.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                # Real symbols publish a zero step here: "no step" for market orders.
                "filterType": "MARKET_LOT_SIZE",
                "minQty": _s(Decimal(0)),
                "maxQty": _s(sym.max_qty),
                "stepSize": _s(Decimal(0)),
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": _s(sym.min_notional),
                "applyMinToMarket": True,
                "maxNotional": _s(sym.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": list(_STP_MODES),
    }


def exchange_info(symbols: list[SimSymbol], server_time_ms: int) -> dict[str, Any]:
    return {
        "timezone": "UTC",
        "serverTime": server_time_ms,
        "rateLimits": RATE_LIMITS,
        "exchangeFilters": [],
        "symbols": [symbol_info(sym) for sym in symbols],
    }
