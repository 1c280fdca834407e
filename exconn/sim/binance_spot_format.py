"""JSON shapes of Binance spot orders, trades and user-data events (binance.md §4, §9.2).

Field names are Binance's, misspelling included (`cummulativeQuoteQty` on orders,
`cumulativeQuoteQty` on the amend response).
"""

from dataclasses import dataclass
from typing import Any

from exconn.sim.accounts import Instrument
from exconn.sim.fixed import fmt_units
from exconn.sim.matching import (
    ExecType,
    Fill,
    OrderEvent,
    OrderState,
    OrderStatus,
    OrderType,
    Reason,
    TimeInForce,
)

ZERO = "0.00000000"
EXEC_TYPES = {ExecType.AMENDED: "REPLACED"}
REJECT_REASONS = {
    Reason.INSUFFICIENT_BALANCE: "INSUFFICIENT_BALANCES",
    Reason.WOULD_TAKE: "WOULD_MATCH_IMMEDIATELY",
}
EXPIRY_REASONS = {
    Reason.IOC_REMAINDER: "UNFILLED_IOC_QUANTITY_EXPIRED",
    Reason.FOK_UNFILLED: "UNFILLED_FOK_ORDER_EXPIRED",
    Reason.NO_LIQUIDITY: "INSUFFICIENT_LIQUIDITY",
}


@dataclass(slots=True)
class OrderRecord:
    """A user's order as the venue remembers it (open or not)."""

    symbol: str
    type_name: str  # LIMIT, LIMIT_MAKER, MARKET
    state: OrderState
    inst: Instrument
    client_id: str  # current id: an amend with newClientOrderId renames the order
    quote_qty_units: int = 0  # quoteOrderQty as sent, in 1e-8 quote units
    cancel_client_id: str = ""  # set while a cancel request is being executed
    prev_client_id: str = ""  # the id before the last cancel/amend renamed it

    def price(self) -> str:
        if self.state.price is None:
            return ZERO
        return fmt_units(self.state.price * self.inst.tick_units)

    def qty(self, steps: int) -> str:
        return fmt_units(self.inst.qty_units(steps))

    def quote(self, tick_steps: int) -> str:
        return fmt_units(self.inst.notional_units(tick_steps))

    @property
    def tif(self) -> str:
        # MARKET and LIMIT_MAKER orders report GTC, as in Binance's examples.
        tif = self.state.tif
        return "GTC" if tif in (TimeInForce.POST_ONLY,) or self.type_name == "MARKET" else tif.value

    def status(self) -> str:
        return self.state.status.value


def _core(rec: OrderRecord) -> dict[str, Any]:
    s = rec.state
    return {
        "price": rec.price(),
        "origQty": rec.qty(s.qty),
        "executedQty": rec.qty(s.filled),
        "origQuoteOrderQty": fmt_units(rec.quote_qty_units),
        "cummulativeQuoteQty": rec.quote(s.filled_notional),
        "status": rec.status(),
        "timeInForce": rec.tif,
        "type": rec.type_name,
        "side": s.side.value,
    }


def order_ack(rec: OrderRecord, transact_ms: int) -> dict[str, Any]:
    s = rec.state
    return {
        "symbol": rec.symbol,
        "orderId": s.order_id,
        "orderListId": -1,
        "clientOrderId": rec.client_id,
        "transactTime": transact_ms,
    }


def order_result(rec: OrderRecord, transact_ms: int) -> dict[str, Any]:
    return (
        order_ack(rec, transact_ms)
        | _core(rec)
        | {
            "workingTime": rec.state.created_ms,
            "selfTradePreventionMode": rec.state.stp.value,
        }
    )


def fill_json(rec: OrderRecord, fill: Fill) -> dict[str, Any]:
    return {
        "price": fmt_units(fill.price * rec.inst.tick_units),
        "qty": rec.qty(fill.qty),
        "commission": fmt_units(fill.fee),
        "commissionAsset": fill.fee_asset or rec.inst.quote,
        "tradeId": fill.trade_id,
    }


def order_response(
    rec: OrderRecord, resp_type: str, transact_ms: int, fills: list[Fill]
) -> dict[str, Any]:
    if resp_type == "ACK":
        return order_ack(rec, transact_ms)
    body = order_result(rec, transact_ms)
    if resp_type == "FULL":
        body["fills"] = [fill_json(rec, f) for f in fills]
    return body


def query_order(rec: OrderRecord) -> dict[str, Any]:
    s = rec.state
    return {
        "symbol": rec.symbol,
        "orderId": s.order_id,
        "orderListId": -1,
        "clientOrderId": rec.client_id,
        **_core(rec),
        "stopPrice": ZERO,
        "icebergQty": ZERO,
        "time": s.created_ms,
        "updateTime": s.updated_ms,
        "isWorking": s.status.is_open,
        "workingTime": s.created_ms,
        "selfTradePreventionMode": s.stp.value,
    }


def cancel_response(rec: OrderRecord, cancel_client_id: str, transact_ms: int) -> dict[str, Any]:
    s = rec.state
    return {
        "symbol": rec.symbol,
        "origClientOrderId": rec.client_id,
        "orderId": s.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_client_id,
        "transactTime": transact_ms,
        **_core(rec),
        "selfTradePreventionMode": s.stp.value,
    }


def amend_response(
    rec: OrderRecord, orig_client_id: str, transact_ms: int, execution_id: int
) -> dict[str, Any]:
    s = rec.state
    return {
        "transactTime": transact_ms,
        "executionId": execution_id,
        "amendedOrder": {
            "symbol": rec.symbol,
            "orderId": s.order_id,
            "orderListId": -1,
            "origClientOrderId": orig_client_id,
            "clientOrderId": rec.client_id,
            "price": rec.price(),
            "qty": rec.qty(s.qty),
            "executedQty": rec.qty(s.filled),
            "preventedQty": ZERO,
            "quoteOrderQty": fmt_units(rec.quote_qty_units),
            "cumulativeQuoteQty": rec.quote(s.filled_notional),
            "status": rec.status(),
            "timeInForce": rec.tif,
            "type": rec.type_name,
            "side": s.side.value,
            "workingTime": s.created_ms,
            "selfTradePreventionMode": s.stp.value,
        },
    }


def execution_report(
    rec: OrderRecord, event: OrderEvent, execution_id: int, event_ms: int
) -> dict[str, Any]:
    s, fill = event.order, event.fill
    exec_type = EXEC_TYPES.get(event.exec_type, event.exec_type.value)
    canceled = event.exec_type is ExecType.CANCELED
    report: dict[str, Any] = {
        "e": "executionReport",
        "E": event_ms,
        "s": rec.symbol,
        "c": rec.cancel_client_id if canceled and rec.cancel_client_id else rec.client_id,
        "S": s.side.value,
        "o": rec.type_name,
        "f": rec.tif,
        "q": rec.qty(s.qty),
        "p": rec.price(),
        "P": ZERO,
        "F": ZERO,
        "g": -1,
        "C": rec.client_id if canceled and rec.cancel_client_id else rec.prev_client_id,
        "x": exec_type,
        "X": s.status.value,
        "r": REJECT_REASONS.get(event.reason, "NONE"),
        "i": s.order_id,
        "l": rec.qty(fill.qty) if fill else ZERO,
        "z": rec.qty(s.filled),
        "L": fmt_units(fill.price * rec.inst.tick_units) if fill else ZERO,
        "n": fmt_units(fill.fee) if fill else "0",
        "N": (fill.fee_asset or rec.inst.quote) if fill else None,
        "T": event.time_ms,
        "t": fill.trade_id if fill else -1,
        "I": execution_id,
        "w": s.status.is_open and s.type is OrderType.LIMIT,
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": s.created_ms,
        "Z": rec.quote(s.filled_notional),
        "Y": rec.quote(fill.notional) if fill else ZERO,
        "Q": fmt_units(rec.quote_qty_units),
        "W": s.created_ms,
        "V": s.stp.value,
    }
    if s.status is OrderStatus.EXPIRED and event.reason in EXPIRY_REASONS:
        report["eR"] = EXPIRY_REASONS[event.reason]
    return report


def my_trade(rec: OrderRecord, fill: Fill, time_ms: int) -> dict[str, Any]:
    s = rec.state
    return {
        "symbol": rec.symbol,
        "id": fill.trade_id,
        "orderId": s.order_id,
        "orderListId": -1,
        "price": fmt_units(fill.price * rec.inst.tick_units),
        "qty": rec.qty(fill.qty),
        "quoteQty": rec.quote(fill.notional),
        "commission": fmt_units(fill.fee),
        "commissionAsset": fill.fee_asset or rec.inst.quote,
        "time": time_ms,
        "isBuyer": s.side.value == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }
