"""Users' orders and fills as Bybit reports them (REST lists and the private topics).

The engine's neutral events are translated here: statuses, cancel types and reject
reasons use Bybit's enumerations (bybit.md §10). Where the docs are silent (chosen):
* an IOC/FOK/Market remainder ends `Cancelled` (linear) or `PartiallyFilledCanceled`
  (spot, after a partial fill), rejectReason `EC_NoImmediateQtyToFill` when nothing filled;
* a PostOnly order that would take ends `Cancelled` with `EC_PostOnlyWillTakeLiquidity`
  (the order-history example shows exactly that).
"""

from dataclasses import dataclass, field
from typing import Any

from exconn.sim.bybit_wire import Wire, deterministic_uuid, plain
from exconn.sim.matching import ExecType, OrderEvent, OrderStatus, Reason, Side

OPEN_STATUSES = ("New", "PartiallyFilled")


@dataclass(slots=True)
class Execution:
    exec_id: str
    trade_id: int
    price: int
    qty: int
    notional: int
    fee: int  # 1e-8 units of fee_coin
    fee_coin: str
    fee_rate: str
    is_maker: bool
    time_ms: int
    leaves: int
    closed: int  # linear: steps that reduced the position
    pnl: int  # linear: realised PnL of this fill, 1e-8 units


@dataclass(slots=True)
class UserOrder:
    wire: Wire
    account: str
    engine_id: int
    order_id: str
    link_id: str
    side: Side
    order_type: str  # "Limit" | "Market"
    tif: str
    price: int | None
    qty_text: str  # as the client gave it (spot market buys: a quote amount)
    reduce_only: bool
    market_unit: str
    created_ms: int
    status: str = "New"
    qty: int = 0
    filled: int = 0
    notional: int = 0
    fee: int = 0
    fee_coin: str = ""
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    updated_ms: int = 0
    closed_pnl: int = 0
    executions: list[Execution] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def apply(self, event: OrderEvent) -> None:
        state = event.order
        self.qty, self.filled, self.notional = state.qty, state.filled, state.filled_notional
        self.price = state.price if state.price is not None else self.price
        self.updated_ms = event.time_ms
        spot = self.wire.category == "spot"
        kind = event.exec_type
        if kind is ExecType.NEW or kind is ExecType.AMENDED:
            self.status = "PartiallyFilled" if self.filled else "New"
        elif kind is ExecType.TRADE:
            self.status = "Filled" if state.status is OrderStatus.FILLED else "PartiallyFilled"
        elif kind is ExecType.REJECTED and event.reason is Reason.WOULD_TAKE:
            self.status = "Cancelled"
            self.reject_reason = "EC_PostOnlyWillTakeLiquidity"
        elif kind is ExecType.REJECTED:
            self.status, self.reject_reason = "Rejected", "EC_Others"
        else:  # cancelled or expired
            self.status = "PartiallyFilledCanceled" if spot and self.filled else "Cancelled"
            if event.reason is Reason.USER:
                self.cancel_type = "CancelByUser"
            elif event.reason is Reason.REDUCE_ONLY:
                self.cancel_type = "CancelByReduceOnly"
            elif event.reason is Reason.SELF_TRADE:
                self.cancel_type, self.reject_reason = "CancelBySmp", "EC_BySelfMatch"
            elif not self.filled:
                self.reject_reason = "EC_NoImmediateQtyToFill"

    def leaves(self) -> int:
        return max(0, self.qty - self.filled) if self.is_open else 0

    def json(self) -> dict[str, Any]:
        w = self.wire
        avg = w.price(self.notional // self.filled) if self.filled else "0"
        if self.filled and self.notional % self.filled:
            avg = plain(w.price_units(1) * self.notional // self.filled)
        leaves = self.leaves()
        qty_text = (
            self.qty_text
            if self.order_type == "Market" and w.category == "spot"
            else w.qty(self.qty)
        )
        return {
            "category": w.category,
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "blockTradeId": "",
            "symbol": w.symbol,
            "price": w.price(self.price) if self.price is not None else "0",
            "qty": qty_text,
            "side": "Buy" if self.side is Side.BUY else "Sell",
            "isLeverage": "0" if w.category == "spot" else "",
            "positionIdx": 0,
            "orderStatus": self.status,
            "createType": "CreateByUser",
            "cancelType": self.cancel_type,
            "rejectReason": self.reject_reason,
            "avgPrice": avg,
            "leavesQty": w.qty(leaves),
            "leavesValue": w.value(leaves * (self.price or 0)),
            "cumExecQty": w.qty(self.filled),
            "cumExecValue": w.value(self.notional),
            "cumExecFee": plain(self.fee),
            "cumFeeDetail": {self.fee_coin: plain(self.fee)} if self.fee else {},
            "feeCurrency": "",
            "closedPnl": plain(self.closed_pnl),
            "timeInForce": self.tif,
            "orderType": self.order_type,
            "stopOrderType": "",
            "orderIv": "",
            "marketUnit": self.market_unit,
            "triggerPrice": "0",
            "takeProfit": "0",
            "stopLoss": "0",
            "tpTriggerBy": "",
            "slTriggerBy": "",
            "triggerDirection": 0,
            "triggerBy": "",
            "lastPriceOnCreated": "",
            "reduceOnly": self.reduce_only,
            "closeOnTrigger": False,
            "smpType": "None",
            "smpGroup": 0,
            "smpOrderId": "",
            "tpslMode": "",
            "tpLimitPrice": "",
            "slLimitPrice": "",
            "placeType": "",
            "slippageToleranceType": "UNKNOWN",
            "slippageTolerance": "",
            "extraFees": "",
            "rpiTakerAccess": False,
            "rpiMatchedQty": "0",
            "createdTime": str(self.created_ms),
            "updatedTime": str(self.updated_ms or self.created_ms),
        }

    def execution_json(self, ex: Execution, ws: bool, mark: int) -> dict[str, Any]:
        w = self.wire
        linear = w.category == "linear"
        return {
            "category": w.category,
            "symbol": w.symbol,
            "orderId": self.order_id,
            "orderLinkId": self.link_id,
            "side": "Buy" if self.side is Side.BUY else "Sell",
            "orderPrice": w.price(self.price) if self.price is not None else "0",
            "orderQty": w.qty(self.qty),
            "leavesQty": w.qty(ex.leaves),
            "createType": "CreateByUser",
            "orderType": self.order_type,
            "stopOrderType": "UNKNOWN",
            "execId": ex.exec_id,
            "execPrice": w.price(ex.price),
            "execQty": w.qty(ex.qty),
            "execValue": w.value(ex.notional),
            "execFee": plain(ex.fee),
            "feeRate": ex.fee_rate,
            "feeCurrency": ex.fee_coin,
            "execType": "Trade",
            "execTime": str(ex.time_ms),
            "isMaker": ex.is_maker,
            "markPrice": w.price(mark),
            "indexPrice": "",
            "underlyingPrice": "",
            "tradeIv": "",
            "markIv": "",
            "blockTradeId": "",
            "closedSize": w.qty(ex.closed) if linear else "",
            "execPnl": plain(ex.pnl) if linear else "0",
            "isLeverage": "0" if w.category == "spot" else "",
            "marketUnit": self.market_unit,
            "extraFees": [] if ws else "",
            "seq": ex.trade_id,
        }


def new_execution(
    order: UserOrder, event: OrderEvent, fee_rate: str, closed: int, pnl: int
) -> Execution:
    fill = event.fill
    assert fill is not None
    return Execution(
        exec_id=deterministic_uuid(
            "exec", order.wire.category, order.wire.symbol, fill.trade_id, order.engine_id
        ),
        trade_id=fill.trade_id,
        price=fill.price,
        qty=fill.qty,
        notional=fill.notional,
        fee=fill.fee,
        fee_coin=fill.fee_asset,
        fee_rate=fee_rate,
        is_maker=fill.is_maker,
        time_ms=event.time_ms,
        leaves=event.order.leaves if event.order.status.is_open else 0,
        closed=closed,
        pnl=pnl,
    )
