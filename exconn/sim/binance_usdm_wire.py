"""USD-M market-data payloads (REST and streams) built from the integer market model."""

from typing import Any

from exconn.sim.binance_usdm_symbols import ContractFormat
from exconn.sim.limits import RateLimit
from exconn.sim.market import BookSnapshot, DepthDiff, Trade
from exconn.sim.symbols import SimSymbol

UM = 1  # `st`: 1 = USD-M, 2 = COIN-M (fields added after the 2026 COIN-M merge)
FUNDING_INTERVAL_MS = 8 * 3600 * 1000
FUNDING_RATE = "0.00010000"  # constant: the sim has no funding process
INTEREST_RATE = "0.00010000"


def depth_update(
    fmt: ContractFormat, diff: DepthDiff, prev_u: int, event_ms: int, txn_ms: int
) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": event_ms,
        "T": txn_ms,
        "s": fmt.symbol,
        "ps": fmt.symbol,
        "st": UM,
        "U": diff.first_id,
        "u": diff.last_id,
        "pu": prev_u,
        "b": fmt.levels(diff.bids),
        "a": fmt.levels(diff.asks),
    }


def partial_depth(
    fmt: ContractFormat, snap: BookSnapshot, first_id: int, prev_u: int, now_ms: int
) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": now_ms,
        "T": now_ms,
        "s": fmt.symbol,
        "U": first_id,
        "u": snap.last_update_id,
        "pu": prev_u,
        "b": fmt.levels(snap.bids),
        "a": fmt.levels(snap.asks),
    }


def depth_snapshot(fmt: ContractFormat, snap: BookSnapshot, now_ms: int) -> dict[str, Any]:
    return {
        "lastUpdateId": snap.last_update_id,
        "E": now_ms,
        "T": now_ms,
        "bids": fmt.levels(snap.bids),
        "asks": fmt.levels(snap.asks),
    }


def book_ticker(
    fmt: ContractFormat,
    update_id: int,
    bid: tuple[int, int],
    ask: tuple[int, int],
    now_ms: int,
) -> dict[str, Any]:
    return {
        "e": "bookTicker",
        "u": update_id,
        "E": now_ms,
        "T": now_ms,
        "s": fmt.symbol,
        "b": fmt.price(bid[0]),
        "B": fmt.qty(bid[1]),
        "a": fmt.price(ask[0]),
        "A": fmt.qty(ask[1]),
        "st": UM,
        "ps": fmt.symbol,
    }


def rest_book_ticker(
    fmt: ContractFormat,
    update_id: int,
    bid: tuple[int, int],
    ask: tuple[int, int],
    now_ms: int,
) -> dict[str, Any]:
    return {
        "symbol": fmt.symbol,
        "bidPrice": fmt.price(bid[0]),
        "bidQty": fmt.qty(bid[1]),
        "askPrice": fmt.price(ask[0]),
        "askQty": fmt.qty(ask[1]),
        "time": now_ms,
        "lastUpdateId": update_id,
    }


def agg_trade(fmt: ContractFormat, trade: Trade, now_ms: int) -> dict[str, Any]:
    # One fill is one aggregate here (the engine reports fills one by one).
    return {
        "e": "aggTrade",
        "E": now_ms,
        "a": trade.trade_id,
        "s": fmt.symbol,
        "p": fmt.price(trade.price),
        "q": fmt.qty(trade.qty),
        "f": trade.trade_id,
        "l": trade.trade_id,
        "T": trade.time_ms,
        "m": trade.buyer_is_maker,
        "st": UM,
    }


def rest_agg_trade(fmt: ContractFormat, trade: Trade) -> dict[str, Any]:
    """`GET /fapi/v1/aggTrades` row: the stream's keys without e, E, s (binance.md §8.1)."""
    return {
        "a": trade.trade_id,
        "p": fmt.price(trade.price),
        "q": fmt.qty(trade.qty),
        "f": trade.trade_id,
        "l": trade.trade_id,
        "T": trade.time_ms,
        "m": trade.buyer_is_maker,
    }


def ticker_24hr(symbol: str, stats: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """`<s>@ticker`: as spot's 24hrTicker without best bid/ask (x, b, B, a, A)."""
    return {
        "e": "24hrTicker",
        "E": now_ms,
        "s": symbol,
        "p": stats["priceChange"],
        "P": stats["priceChangePercent"],
        "w": stats["weightedAvgPrice"],
        "c": stats["lastPrice"],
        "Q": stats["lastQty"],
        "o": stats["openPrice"],
        "h": stats["highPrice"],
        "l": stats["lowPrice"],
        "v": stats["volume"],
        "q": stats["quoteVolume"],
        "O": stats["openTime"],
        "C": stats["closeTime"],
        "F": stats["firstId"],
        "L": stats["lastId"],
        "n": stats["count"],
    }


def rest_trade(fmt: ContractFormat, trade: Trade) -> dict[str, Any]:
    return {
        "id": trade.trade_id,
        "price": fmt.price(trade.price),
        "qty": fmt.qty(trade.qty),
        "quoteQty": fmt.quote(trade.price * trade.qty),
        "time": trade.time_ms,
        "isBuyerMaker": trade.buyer_is_maker,
    }


def next_funding_ms(now_ms: int) -> int:
    return (now_ms // FUNDING_INTERVAL_MS + 1) * FUNDING_INTERVAL_MS


def mark_price(fmt: ContractFormat, mark: str, now_ms: int) -> dict[str, Any]:
    return {
        "e": "markPriceUpdate",
        "E": now_ms,
        "s": fmt.symbol,
        "p": mark,
        "i": mark,
        "P": mark,
        "r": FUNDING_RATE,
        "T": next_funding_ms(now_ms),
        "st": UM,
    }


def premium_index(fmt: ContractFormat, mark: str, now_ms: int) -> dict[str, Any]:
    return {
        "symbol": fmt.symbol,
        "markPrice": mark,
        "indexPrice": mark,
        "estimatedSettlePrice": mark,
        "lastFundingRate": FUNDING_RATE,
        "interestRate": INTEREST_RATE,
        "nextFundingTime": next_funding_ms(now_ms),
        "time": now_ms,
    }


def exchange_info(
    symbols: list[SimSymbol], limits: tuple[RateLimit, ...], now_ms: int
) -> dict[str, Any]:
    assets = sorted({s.quote for s in symbols})
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [lim.as_json() for lim in limits],
        "exchangeFilters": [],
        "assets": [
            {"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"} for a in assets
        ],
        "symbols": [_symbol_info(s) for s in symbols],
    }


def _symbol_info(sym: SimSymbol) -> dict[str, Any]:
    fmt = ContractFormat(sym)
    return {
        "symbol": sym.symbol,
        "pair": sym.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": sym.base,
        "quoteAsset": sym.quote,
        "marginAsset": sym.quote,
        "pricePrecision": fmt.price_decimals,
        "quantityPrecision": fmt.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": str(sym.tick_size),
                "maxPrice": str(sym.max_price),
                "tickSize": str(sym.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": str(sym.min_qty),
                "maxQty": str(sym.max_qty),
                "stepSize": str(sym.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": str(sym.min_qty),
                "maxQty": str(sym.max_qty),
                "stepSize": str(sym.step_size),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": str(sym.min_notional)},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": ["LIMIT", "MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }
