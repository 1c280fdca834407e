"""USD-M private payloads: REST order/position bodies and user-stream events."""

from decimal import Decimal
from typing import Any

from exconn.sim.accounts import Position
from exconn.sim.binance_usdm_orders import TIF_NAMES
from exconn.sim.binance_usdm_symbols import ContractFormat, fmt_decimal
from exconn.sim.fixed import SCALE, fmt_units
from exconn.sim.matching import ExecType, Fill, OrderState, Reason

EXEC_TYPES = {
    ExecType.NEW: "NEW",
    ExecType.TRADE: "TRADE",
    ExecType.AMENDED: "AMENDMENT",
    ExecType.CANCELED: "CANCELED",
    ExecType.EXPIRED: "EXPIRED",
}
# `er` (expiry reason) numbers from the UM "Event: Order Update" page (binance.md §10).
EXPIRY_REASONS = {
    Reason.SELF_TRADE: 1,
    Reason.IOC_REMAINDER: 2,
    Reason.FOK_UNFILLED: 2,
    Reason.NO_LIQUIDITY: 2,
    Reason.REDUCE_ONLY: 4,
}


def signed_units(units: int) -> str:
    return ("-" if units < 0 else "") + fmt_units(abs(units))


def order_body(fmt: ContractFormat, o: OrderState) -> dict[str, Any]:
    return {
        "orderId": o.order_id,
        "symbol": fmt.symbol,
        "status": o.status.value,
        "clientOrderId": o.client_id,
        "price": fmt.price(o.price or 0),
        "avgPrice": fmt.avg_price(o.filled_notional, o.filled),
        "origQty": fmt.qty(o.qty),
        "executedQty": fmt.qty(o.filled),
        "cumQty": fmt.qty(o.filled),
        "cumQuote": fmt.quote(o.filled_notional),
        "timeInForce": TIF_NAMES[o.tif],
        "type": o.type.value,
        "reduceOnly": o.reduce_only,
        "closePosition": False,
        "side": o.side.value,
        "positionSide": o.position_side.value,
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "origType": o.type.value,
        "priceMatch": "NONE",
        "selfTradePreventionMode": o.stp.value,
        "goodTillDate": 0,
        "time": o.created_ms,
        "updateTime": o.updated_ms,
    }


def order_trade_update(
    fmt: ContractFormat,
    o: OrderState,
    exec_type: ExecType,
    reason: Reason,
    fill: Fill | None,
    realised_units: int,
    bids_notional: int,
    asks_notional: int,
    event_ms: int,
    txn_ms: int,
) -> dict[str, Any]:
    status = o.status.value
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": event_ms,
        "T": txn_ms,
        "o": {
            "s": fmt.symbol,
            "c": o.client_id,
            "S": o.side.value,
            "o": o.type.value,
            "f": TIF_NAMES[o.tif],
            "q": fmt.qty(o.qty),
            "p": fmt.price(o.price or 0),
            "ap": fmt.avg_price(o.filled_notional, o.filled),
            "sp": "0",
            "x": EXEC_TYPES[exec_type],
            "X": status,
            "i": o.order_id,
            "l": fmt.qty(fill.qty if fill else 0),
            "z": fmt.qty(o.filled),
            "L": fmt.price(fill.price if fill else 0),
            "N": fmt_asset(fill),
            "n": fmt_units(fill.fee) if fill else "0",
            "T": txn_ms,
            "t": fill.trade_id if fill else 0,
            "b": fmt.quote(bids_notional),
            "a": fmt.quote(asks_notional),
            "m": bool(fill and fill.is_maker),
            "R": o.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": o.type.value,
            "ps": o.position_side.value,
            "cp": False,
            "AP": "0",
            "cr": "0",
            "pP": False,
            "si": 0,
            "ss": 0,
            "rp": signed_units(realised_units),
            "V": o.stp.value,
            "pm": "NONE",
            "gtd": 0,
            "er": str(EXPIRY_REASONS.get(reason, 0)),
        },
    }


def user_trade(
    fmt: ContractFormat, o: OrderState, fill: Fill, realised_units: int, time_ms: int
) -> dict[str, Any]:
    """One ``GET /fapi/v1/userTrades`` row (fields of the official Account Trade List
    example). ``commission`` is what the fill cost, positive, as the stream's ``n``; the
    documented example's negative figure is not a rule the stream follows."""
    return {
        "symbol": fmt.symbol,
        "id": fill.trade_id,
        "orderId": o.order_id,
        "side": o.side.value,
        "price": fmt.price(fill.price),
        "qty": fmt.qty(fill.qty),
        "realizedPnl": signed_units(realised_units),
        "quoteQty": fmt.quote(fill.notional),
        "commission": fmt_units(fill.fee),
        "commissionAsset": fmt_asset(fill),
        "time": time_ms,
        "positionSide": o.position_side.value,
        "buyer": o.side.value == "BUY",
        "maker": fill.is_maker,
    }


def fmt_asset(fill: Fill | None) -> str:
    return fill.fee_asset if fill and fill.fee_asset else "USDT"


def entry_price(fmt: ContractFormat, pos: Position) -> str:
    entry = pos.entry_price()
    if entry is None:
        return "0.0"
    value = Decimal(entry.numerator) / Decimal(entry.denominator)
    return fmt_decimal(value * fmt.tick_units / SCALE, 8)


def unrealised_units(fmt: ContractFormat, pos: Position, mark_ticks: int) -> int:
    """(mark - entry) x size in 1e-8 units of the settle asset, rounded toward zero."""
    value = mark_ticks * pos.size - (pos.cost if pos.size > 0 else -pos.cost)
    sign = -1 if value < 0 else 1
    return sign * (abs(value) * fmt.tick_units * fmt.step_units // SCALE)


def position_risk(
    fmt: ContractFormat,
    pos: Position,
    position_side: str,
    leverage: int,
    mark_ticks: int,
    update_ms: int,
) -> dict[str, Any]:
    notional = fmt.notional_units(mark_ticks * abs(pos.size)) * (1 if pos.size >= 0 else -1)
    entry = entry_price(fmt, pos)
    return {
        "symbol": fmt.symbol,
        "positionAmt": _signed_qty(fmt, pos.size),
        "entryPrice": entry,
        "breakEvenPrice": entry,
        "markPrice": fmt.price(mark_ticks),
        "unRealizedProfit": signed_units(unrealised_units(fmt, pos, mark_ticks)),
        "liquidationPrice": "0",
        "leverage": str(leverage),
        "maxNotionalValue": "1000000",
        "marginType": "cross",
        "isolatedMargin": "0.00000000",
        "isAutoAddMargin": "false",
        "positionSide": position_side,
        "notional": signed_units(notional),
        "isolatedWallet": "0",
        "updateTime": update_ms,
    }


def account_position(
    fmt: ContractFormat, pos: Position, position_side: str, mark_ticks: int
) -> dict[str, Any]:
    entry = entry_price(fmt, pos)
    return {
        "s": fmt.symbol,
        "pa": _signed_qty(fmt, pos.size),
        "ep": entry,
        "bep": entry,
        "cr": signed_units(pos.realised),
        "up": signed_units(unrealised_units(fmt, pos, mark_ticks)),
        "mt": "cross",
        "iw": "0",
        "ps": position_side,
    }


def account_update(
    asset: str,
    wallet_units: int,
    positions: list[dict[str, Any]],
    reason: str,
    event_ms: int,
    txn_ms: int,
) -> dict[str, Any]:
    wallet = signed_units(wallet_units)
    return {
        "e": "ACCOUNT_UPDATE",
        "E": event_ms,
        "T": txn_ms,
        "a": {
            "m": reason,
            "B": [{"a": asset, "wb": wallet, "cw": wallet, "bc": "0"}],
            "P": positions,
        },
    }


def _signed_qty(fmt: ContractFormat, size: int) -> str:
    text = fmt.qty(abs(size))
    return f"-{text}" if size < 0 else text
