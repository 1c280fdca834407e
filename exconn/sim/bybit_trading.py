"""The private V5 operations: validate Bybit parameters, act on the ledgers, answer.

Every function returns `(retCode, retMsg, result)`. Codes and texts follow bybit.md §11 and
the V5 error table; where a category-specific code exists (spot 170xxx) it is used for spot.
Choices where the docs are silent are marked "chosen".
"""

import re
from decimal import Decimal
from typing import Any

from exconn.sim.auth import ApiKey
from exconn.sim.bybit_account_view import account_info_json, api_key_json
from exconn.sim.bybit_core import BybitCore
from exconn.sim.bybit_orders import UserOrder
from exconn.sim.bybit_wire import MAX_LEVERAGE, Wire, dec_units
from exconn.sim.fixed import SCALE
from exconn.sim.matching import (
    AmendRejected,
    MatchingError,
    OrderNotFound,
    OrderRequest,
    OrderType,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)

Answer = tuple[int, str, Any]
OK = "OK"
LINK_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
TIFS = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "PostOnly": TimeInForce.POST_ONLY,
}
PRICE_BAND = Decimal("0.1")  # riskParameters.priceLimitRatioY served in instruments-info


def _err(code: int, msg: str) -> Answer:
    return code, msg, {}


def _param(msg: str) -> Answer:
    return _err(10001, msg)


def _s(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve(core: BybitCore, params: dict[str, Any]) -> Wire | Answer:
    cat = _s(params, "category")
    if cat not in ("spot", "linear"):
        return _param("Illegal category")  # chosen text
    symbol = _s(params, "symbol")
    wire = core.wires.get((cat, symbol))
    if wire is None:
        return (
            _err(170121, "Invalid symbol.")
            if cat == "spot"
            else _param("params error: symbol invalid")
        )
    return wire


def _not_found(cat: str) -> Answer:
    return (
        _err(170213, "Order does not exist.")
        if cat == "spot"
        else _err(110001, "Order does not exist")
    )


def _find(core: BybitCore, account: str, wire: Wire, params: dict[str, Any]) -> UserOrder | None:
    order_id, link_id = _s(params, "orderId"), _s(params, "orderLinkId")
    if order_id:  # orderId wins over orderLinkId (cancel-order.mdx)
        order = core.orders.get(order_id)
    else:
        order = next(
            (
                o
                for o in reversed(core.orders.values())
                if link_id and o.link_id == link_id and o.is_open and o.account == account
            ),
            None,
        )
    if order is None or order.account != account or order.wire != wire:
        return None
    return order


def _price_band(core: BybitCore, cat: str, wire: Wire, side: Side, price: int) -> Answer | None:
    ref = core.mid(cat, wire.symbol)
    if side is Side.BUY and price > ref * (1 + PRICE_BAND):
        limit = wire.price(int(ref * (1 + PRICE_BAND)))
        return (
            _err(170193, f"Buy order price cannot be higher than {limit}.")
            if cat == "spot"
            else _err(110003, "Order price exceeds the allowable range.")
        )
    if side is Side.SELL and price < ref * (1 - PRICE_BAND):
        limit = wire.price(int(ref * (1 - PRICE_BAND)) + 1)
        return (
            _err(170194, f"Sell order price cannot be lower than {limit}.")
            if cat == "spot"
            else _err(110003, "Order price exceeds the allowable range.")
        )
    return None


def create_order(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    wire = resolve(core, params)
    if not isinstance(wire, Wire):
        return wire
    cat = wire.category
    spot = cat == "spot"
    side_text, type_text = _s(params, "side"), _s(params, "orderType")
    if side_text not in ("Buy", "Sell"):
        return _param("params error: side invalid")
    if type_text not in ("Limit", "Market"):
        return _param("params error: orderType invalid")
    side = Side.BUY if side_text == "Buy" else Side.SELL
    market = type_text == "Market"
    tif_text = "IOC" if market else (_s(params, "timeInForce") or "GTC")
    if tif_text not in TIFS:
        return _param("params error: timeInForce invalid")
    link_id = _s(params, "orderLinkId")
    if link_id and not LINK_ID.fullmatch(link_id):
        return _param("params error: orderLinkId invalid")
    if link_id and any(o.link_id == link_id and o.account == account for o in core.orders.values()):
        return (
            _err(170141, "Duplicate clientOrderId")
            if spot
            else _err(110072, "OrderLinkedID is duplicate")
        )
    if _s(params, "positionIdx") not in ("", "0"):
        return _param("position idx not match position mode")
    reduce_only = _s(params, "reduceOnly") == "true" and not spot
    market_unit = _s(params, "marketUnit")
    by_quote = spot and market and side is Side.BUY and market_unit != "baseCoin"
    qty_text = _s(params, "qty")
    price: int | None = None
    if not market:
        price = wire.ticks_of(_s(params, "price"))
        if price is None:
            return (
                _err(170134, "Order price decimal too long.")
                if spot
                else _param("params error: price invalid")
            )
        band = _price_band(core, cat, wire, side, price)
        if band is not None:
            return band
    qty = quote_qty = 0
    if by_quote:
        units = dec_units(qty_text)
        per_notional = wire.sym.tick_units * wire.sym.step_units // SCALE
        if units is None or units <= 0:
            return _err(170130, "Data sent for paramter 'qty' is not valid.")
        quote_qty = units // per_notional
        if Decimal(qty_text) < wire.sym.min_notional:
            return _err(170140, "Order value exceeded lower limit")
    else:
        steps = wire.steps_of(qty_text)
        if steps is None:
            return (
                _err(170137, "Order volume decimal too long")
                if spot
                else _param("params error: qty invalid")
            )
        qty = steps
        if qty < wire.sym.min_qty_steps:
            return (
                _err(170136, "Order quantity lower than the minimum.")
                if spot
                else _param("The number of contracts exceeds minimum limit allowed")
            )
        ref = price if price is not None else core.mid(cat, wire.symbol)
        value = Decimal(wire.value(ref * qty))
        if value < wire.sym.min_notional and not reduce_only:
            return (
                _err(170140, "Order value exceeded lower limit")
                if spot
                else _err(110094, "Order notional value below the lower limit")
            )
    ledger = core.ledgers[cat]
    book = core.markets[cat].get(wire.symbol).engine
    now = core.now()
    order = UserOrder(
        wire=wire,
        account=account,
        engine_id=book.next_order_id,
        order_id=wire.order_id(book.next_order_id),
        link_id=link_id,
        side=side,
        order_type=type_text,
        tif=tif_text,
        price=price,
        qty_text=qty_text,
        reduce_only=reduce_only,
        market_unit=market_unit if spot and market else "",
        created_ms=now,
    )
    request = OrderRequest(
        account,
        side,
        qty,
        price,
        OrderType.MARKET if market else OrderType.LIMIT,
        TIFS[tif_text],
        quote_qty if by_quote else None,
        link_id,
        StpMode.NONE,
        reduce_only,
    )
    core.register_pending(order)
    try:
        batch = ledger.submit(wire.symbol, request, now)
    finally:
        core.register_pending(None)
    state = batch.order
    if state is not None and state.status.value == "REJECTED":
        reason = next((e.reason for e in batch.order_events), Reason.NONE)
        refused = _refusal(core, cat, account, reason)
        if refused is not None:
            return refused
    return 0, OK, {"orderId": order.order_id, "orderLinkId": link_id}


def _refusal(core: BybitCore, cat: str, account: str, reason: Reason) -> Answer | None:
    if reason is Reason.WOULD_TAKE:
        return None  # accepted, then cancelled: reported on the order stream
    if reason is Reason.INSUFFICIENT_BALANCE:
        return _err(170131, "Insufficient balance.")
    if reason is Reason.INSUFFICIENT_MARGIN:
        wallet = core.ledgers["linear"].account(account).wallets.get("USDT", 0)
        # chosen: an empty or negative wallet is 110004, otherwise 110007
        return (
            _err(110004, "Wallet balance is insufficient")
            if wallet <= 0
            else _err(110007, "Available balance is insufficient")
        )
    if reason is Reason.REDUCE_ONLY:
        return _err(110017, "orderQty will be truncated to zero")
    if reason is Reason.POSITION_SIDE:
        return _param("position idx not match position mode")
    return _param(f"params error: {reason.value}")


def amend_order(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    wire = resolve(core, params)
    if not isinstance(wire, Wire):
        return wire
    cat = wire.category
    order = _find(core, account, wire, params)
    if order is None or not order.is_open:
        return _not_found(cat)
    qty = price = None
    if _s(params, "qty"):
        qty = wire.steps_of(_s(params, "qty"))
        if qty is None:
            return _param("params error: qty invalid")
    if _s(params, "price"):
        price = wire.ticks_of(_s(params, "price"))
        if price is None:
            return _param("params error: price invalid")
        band = _price_band(core, cat, wire, order.side, price)
        if band is not None:
            return band
    if qty is None and price is None:
        return _param("order not modified")  # chosen text
    try:
        core.ledgers[cat].amend(wire.symbol, account, order.engine_id, core.now(), qty, price)
    except OrderNotFound:
        return _not_found(cat)
    except AmendRejected as exc:
        if exc.reason in (Reason.INSUFFICIENT_BALANCE, Reason.INSUFFICIENT_MARGIN):
            return _err(110012, "Insufficient available balance.")
        return _param(f"params error: {exc}")
    return 0, OK, {"orderId": order.order_id, "orderLinkId": order.link_id}


def cancel_order(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    wire = resolve(core, params)
    if not isinstance(wire, Wire):
        return wire
    cat = wire.category
    order = _find(core, account, wire, params)
    if order is None or not order.is_open:
        return _not_found(cat)
    try:
        core.ledgers[cat].cancel(wire.symbol, account, order.engine_id, core.now())
    except MatchingError:
        return _not_found(cat)
    return 0, OK, {"orderId": order.order_id, "orderLinkId": order.link_id}


def cancel_all(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    cat = _s(params, "category")
    if cat not in ("spot", "linear"):
        return _param("Illegal category")
    symbol, settle, base = (_s(params, k) for k in ("symbol", "settleCoin", "baseCoin"))
    if cat == "linear" and not (symbol or settle or base):
        return _param("params error: symbol or settleCoin is required")
    if symbol and (cat, symbol) not in core.wires:
        return (
            _param("params error: symbol invalid")
            if cat == "linear"
            else _err(170121, "Invalid symbol.")
        )
    targets = [
        o
        for o in list(core.orders.values())
        if o.account == account
        and o.wire.category == cat
        and o.is_open
        and (not symbol or o.wire.symbol == symbol)
        and (symbol or not settle or o.wire.sym.quote == settle)
        and (symbol or not base or o.wire.sym.base == base)
    ]
    done = []
    for order in targets[:500]:  # futures cancel at most 500 (cancel-all.mdx)
        try:
            core.ledgers[cat].cancel(order.wire.symbol, account, order.engine_id, core.now())
        except MatchingError:
            continue
        done.append({"orderId": order.order_id, "orderLinkId": order.link_id})
    return 0, OK, {"list": done, "success": "1"}


def _page(
    items: list[Any], params: dict[str, Any], default: int, cap: int
) -> tuple[list[Any], str] | None:
    """A page and the next cursor (an offset, chosen); None when `limit` is invalid."""
    raw = _s(params, "limit") or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= cap:
        return None
    cursor = _s(params, "cursor")
    start = int(cursor) if cursor.isdigit() else 0
    end = start + int(raw)
    return items[start:end], (str(end) if end < len(items) else "")


def list_orders(core: BybitCore, account: str, params: dict[str, Any], history: bool) -> Answer:
    cat = _s(params, "category")
    if cat not in ("spot", "linear"):
        return _param("Illegal category")
    symbol, order_id, link_id = (_s(params, k) for k in ("symbol", "orderId", "orderLinkId"))
    settle, base = _s(params, "settleCoin"), _s(params, "baseCoin")
    if cat == "linear" and not history and not (symbol or settle or base):
        return _param("params error: symbol or settleCoin is required")
    open_only = not history and _s(params, "openOnly") in ("", "0")
    status = _s(params, "orderStatus")
    found = [
        o
        for o in reversed(core.orders.values())
        if o.account == account
        and o.wire.category == cat
        and (not symbol or o.wire.symbol == symbol)
        and (not order_id or o.order_id == order_id)
        and (not link_id or o.link_id == link_id)
        and (not settle or o.wire.sym.quote == settle)
        and (not base or o.wire.sym.base == base)
        and (not status or o.status == status)
        and (o.is_open or not open_only)
    ]
    page = _page([o.json() for o in found], params, 20, 50)
    if page is None:
        return _param("params error: limit invalid")
    items, cursor = page
    return 0, OK, {"list": items, "nextPageCursor": cursor, "category": cat}


def executions(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    cat = _s(params, "category")
    if cat not in ("spot", "linear"):
        return _param("Illegal category")
    symbol, order_id = _s(params, "symbol"), _s(params, "orderId")
    rows = []
    for o in core.orders.values():
        if o.account != account or o.wire.category != cat:
            continue
        if (symbol and o.wire.symbol != symbol) or (order_id and o.order_id != order_id):
            continue
        mark = core.mid(cat, o.wire.symbol)
        rows += [
            (ex.time_ms, ex.trade_id, o.execution_json(ex, False, mark)) for ex in o.executions
        ]
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)  # execTime desc
    page = _page([r[2] for r in rows], params, 50, 100)
    if page is None:
        return _param("params error: limit invalid")
    items, cursor = page
    return 0, OK, {"nextPageCursor": cursor, "category": cat, "list": items}


def positions(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    if _s(params, "category") != "linear":
        return _param("Illegal category")
    symbol, settle = _s(params, "symbol"), _s(params, "settleCoin")
    if not (symbol or settle):
        return _param("params error: symbol or settleCoin is required")
    if symbol:
        if ("linear", symbol) not in core.wires:
            return _param("params error: symbol invalid")
        rows = [core.position(account, symbol, False)]
    else:
        ledger = core.ledgers["linear"]
        held = ledger.account(account).positions
        rows = [
            core.position(account, sym, False)
            for (sym, _), pos in held.items()
            if pos.size and ledger.instruments[sym].quote == settle
        ]
    return 0, OK, {"list": rows, "nextPageCursor": "", "category": "linear"}


def set_leverage(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    if _s(params, "category") != "linear":
        return _param("Illegal category")
    symbol = _s(params, "symbol")
    if ("linear", symbol) not in core.wires:
        return _param("params error: symbol invalid")
    buy, sell = _s(params, "buyLeverage"), _s(params, "sellLeverage")
    if buy != sell:
        return _param("buy leverage must be equal to sell leverage")  # chosen text
    try:
        value = Decimal(buy)
    except ArithmeticError:
        return _param("params error: leverage invalid")
    if (
        not value.is_finite()
        or value != value.to_integral_value()
        or not 1 <= value <= MAX_LEVERAGE
    ):
        # chosen: the sim keeps integer leverage (the real step is 0.01)
        return _param("params error: leverage invalid")
    ledger = core.ledgers["linear"]
    acct = ledger.account(account)
    if ledger.leverage(acct, symbol) == int(value):
        return _err(110043, "Set leverage has not been modified.")
    ledger.set_leverage(account, symbol, int(value))
    return 0, OK, {}


def wallet_balance(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    if _s(params, "accountType") != "UNIFIED":
        return _param("accountType only support UNIFIED.")  # chosen text
    coins = [c for c in _s(params, "coin").split(",") if c] or None
    return 0, OK, {"list": [core.wallet(account, coins)]}


def account_info(core: BybitCore, account: str, params: dict[str, Any]) -> Answer:
    return 0, OK, account_info_json()


def query_api(core: BybitCore, key: ApiKey, params: dict[str, Any]) -> Answer:
    return 0, OK, api_key_json(key)
