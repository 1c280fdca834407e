"""New-order parameters of Binance spot: parsing, then the symbol filters (binance.md §4.1, §5).

Pure: a parameter mapping in, an `OrderRequest` on the symbol's grid out, or the `ApiError`
Binance answers. Checks run in the order Binance's examples imply: mandatory and malformed
parameters (-1102/-1100/-1111/-11xx) first, then the filters (-1013 "Filter failure: X")
in exchangeInfo order: PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from exconn.sim import binance_spot_reply as R
from exconn.sim.binance_spot_reply import ApiError, bad_request, mandatory
from exconn.sim.fixed import SCALE
from exconn.sim.matching import OrderRequest, OrderType, Side, StpMode, TimeInForce
from exconn.sim.symbols import SimSymbol

_NUMBER = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?")
_CLIENT_ID = re.compile(r"[.A-Za-z0-9:/_-]{1,36}")  # Binance: ^[\.A-Z\:/a-z0-9_-]{1,36}$
SUPPORTED_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
RESP_TYPES = ("ACK", "RESULT", "FULL")
STP_MODES = {m.value: m for m in StpMode}
DEFAULT_STP = StpMode.EXPIRE_MAKER  # exchangeInfo's defaultSelfTradePreventionMode


@dataclass(frozen=True, slots=True)
class NewOrder:
    symbol: str
    type_name: str  # LIMIT, LIMIT_MAKER or MARKET as the client sent it
    resp_type: str
    request: OrderRequest


def decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _NUMBER.fullmatch(raw):
        raise bad_request(-1100, R.ILLEGAL_NUMBER % (name, R.NUMBER_RANGE))
    value = Decimal(raw)
    if value * SCALE != int(value * SCALE):
        raise bad_request(-1111, R.TOO_MUCH_PRECISION % name)
    return value


def int_param(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not re.fullmatch(r"[0-9]{1,19}", raw):
        raise bad_request(-1100, R.ILLEGAL_NUMBER % (name, "^[0-9]{1,20}$"))
    return int(raw)


def client_id_param(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _CLIENT_ID.fullmatch(raw):
        raise bad_request(-1100, R.ILLEGAL_NUMBER % (name, "^[\\.A-Z\\:/a-z0-9_-]{1,36}$"))
    return raw


def _filter(name: str) -> ApiError:
    return bad_request(-1013, f"Filter failure: {name}")


def _on_grid(value: Decimal, step: Decimal) -> bool:
    return value % step == 0


def parse_new_order(
    params: Mapping[str, str],
    sym: SimSymbol,
    account: str,
    client_id: str,
    reference_price: Decimal,
) -> NewOrder:
    """`client_id` is used when the client sent no newClientOrderId."""
    side_raw = params.get("side") or ""
    if not side_raw:
        raise mandatory("side")
    if side_raw not in ("BUY", "SELL"):
        raise bad_request(-1117, "Invalid side.")
    type_raw = params.get("type") or ""
    if not type_raw:
        raise mandatory("type")
    if type_raw not in SUPPORTED_TYPES:
        if type_raw in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"):
            raise bad_request(-1014, R.UNSUPPORTED_COMBINATION)  # not simulated
        raise bad_request(-1116, "Invalid orderType.")
    tif_raw = params.get("timeInForce") or ""
    qty = decimal_param(params, "quantity")
    quote_qty = decimal_param(params, "quoteOrderQty")
    price = decimal_param(params, "price")
    resp_type = params.get("newOrderRespType") or (
        "FULL" if type_raw in ("LIMIT", "MARKET") else "ACK"
    )
    if resp_type not in RESP_TYPES:
        raise bad_request(-1100, R.ILLEGAL_NUMBER % ("newOrderRespType", "^(ACK|RESULT|FULL)$"))
    stp_raw = params.get("selfTradePreventionMode") or DEFAULT_STP.value
    if stp_raw not in STP_MODES:
        raise bad_request(-1013, "Invalid selfTradePreventionMode.")  # chosen: DECREMENT etc.
    cid = client_id_param(params, "newClientOrderId") or client_id
    if type_raw == "LIMIT":
        if not tif_raw:
            raise mandatory("timeInForce")
        if tif_raw not in ("GTC", "IOC", "FOK"):
            raise bad_request(-1115, "Invalid timeInForce.")
        if qty is None:
            raise mandatory("quantity")
        if price is None:
            raise mandatory("price")
        tif = TimeInForce(tif_raw)
    elif type_raw == "LIMIT_MAKER":
        if tif_raw:
            raise bad_request(-1106, R.NOT_REQUIRED % "timeInForce")
        if qty is None:
            raise mandatory("quantity")
        if price is None:
            raise mandatory("price")
        tif = TimeInForce.POST_ONLY
    else:
        if tif_raw:
            raise bad_request(-1106, R.NOT_REQUIRED % "timeInForce")
        if price is not None:
            raise bad_request(-1106, R.NOT_REQUIRED % "price")
        if qty is None and quote_qty is None:
            raise bad_request(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!"
            )
        if qty is not None and quote_qty is not None:
            raise bad_request(-1106, R.NOT_REQUIRED % "quoteOrderQty")
        tif = TimeInForce.IOC
    if type_raw != "MARKET" and quote_qty is not None:
        raise bad_request(-1106, R.NOT_REQUIRED % "quoteOrderQty")
    _check_filters(sym, type_raw, price, qty, quote_qty, reference_price)
    market = type_raw == "MARKET"
    request = OrderRequest(
        account=account,
        side=Side(side_raw),
        qty=int(qty / sym.step_size) if qty is not None else 0,
        price=None if price is None else int(price / sym.tick_size),
        type=OrderType.MARKET if market else OrderType.LIMIT,
        tif=tif,
        quote_qty=None if quote_qty is None else _tick_steps(quote_qty, sym),
        client_id=cid,
        stp=STP_MODES[stp_raw],
    )
    return NewOrder(sym.symbol, type_raw, resp_type, request)


def _tick_steps(quote: Decimal, sym: SimSymbol) -> int:
    """A quote amount as whole tick-steps (rounded down: never spend more than asked)."""
    return int(quote / (sym.tick_size * sym.step_size))


def _check_filters(
    sym: SimSymbol,
    type_name: str,
    price: Decimal | None,
    qty: Decimal | None,
    quote_qty: Decimal | None,
    reference_price: Decimal,
) -> None:
    if price is not None and (
        price < sym.tick_size or price > sym.max_price or not _on_grid(price, sym.tick_size)
    ):
        raise _filter("PRICE_FILTER")
    if qty is not None and (
        qty < sym.min_qty or qty > sym.max_qty or not _on_grid(qty, sym.step_size) or qty <= 0
    ):
        raise _filter("LOT_SIZE")
    if type_name == "MARKET" and qty is not None and qty > sym.max_qty:
        raise _filter("MARKET_LOT_SIZE")
    if quote_qty is not None:
        notional = quote_qty
    else:
        assert qty is not None
        notional = qty * (price if price is not None else reference_price)
    # applyMinToMarket true, applyMaxToMarket false (as exchangeInfo says).
    if notional < sym.min_notional or (type_name != "MARKET" and notional > sym.max_notional):
        raise _filter("NOTIONAL")
