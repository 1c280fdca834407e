"""USD-M order parameters: validation into an engine request, or the documented error.

Texts are Binance's where the reference gives them; the rest follow the futures error
catalogue wording as closely as the reference lets us (see docs/simulator.md, USD-M).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from exconn.sim.binance_usdm_symbols import ContractFormat
from exconn.sim.matching import (
    OrderRequest,
    OrderType,
    PositionSide,
    Reason,
    Side,
    StpMode,
    TimeInForce,
)
from exconn.sim.symbols import SimSymbol

CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
ALGO_TYPES = {"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"}
TIFS = {
    "GTC": TimeInForce.GTC,
    "IOC": TimeInForce.IOC,
    "FOK": TimeInForce.FOK,
    "GTX": TimeInForce.POST_ONLY,
}
TIF_NAMES = {v: k for k, v in TIFS.items()}
STP_DEFAULT = StpMode.EXPIRE_MAKER  # binance.md §8: EXPIRE_MAKER is the default

MANDATORY = "Mandatory parameter '%s' was not sent, was empty/null, or malformed."


@dataclass(frozen=True, slots=True)
class ApiError:
    code: int
    msg: str
    status: int = 400


def mandatory(name: str) -> ApiError:
    return ApiError(-1102, MANDATORY % name)


INVALID_SYMBOL = ApiError(-1121, "Invalid symbol.")
NO_SUCH_ORDER = ApiError(-2013, "Order does not exist.")
UNKNOWN_ORDER = ApiError(-2011, "Unknown order sent.")
BAD_PRECISION = ApiError(-1111, "Precision is over the maximum defined for this asset.")
DUPLICATE_CLIENT_ID = ApiError(-4116, "ClientOrderId is duplicated.")
REDUCE_ONLY_IN_HEDGE = ApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
NO_NEED_TO_MODIFY = ApiError(-5027, "No need to modify the order.")
ALGO_ONLY = ApiError(
    -4120,
    "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
)

REJECTIONS: dict[Reason, ApiError] = {
    Reason.WOULD_TAKE: ApiError(
        -5022,
        "Due to the order could not be executed as maker, the Post Only order will be "
        "rejected. The order will not be recorded in the order history",
    ),
    Reason.INSUFFICIENT_MARGIN: ApiError(-2019, "Margin is insufficient."),
    Reason.REDUCE_ONLY: ApiError(-2022, "ReduceOnly Order is rejected."),
    Reason.POSITION_SIDE: ApiError(-4061, "Order's position side does not match user's setting."),
    Reason.INVALID: ApiError(-1013, "Invalid quantity."),
}


def rejection(reason: Reason) -> ApiError:
    return REJECTIONS.get(reason, ApiError(-2010, "Order would be rejected."))


def parse_order(
    account: str,
    sym: SimSymbol,
    fmt: ContractFormat,
    params: Mapping[str, str],
    hedge_mode: bool,
    auto_client_id: str,
) -> OrderRequest | ApiError:
    side_raw = params.get("side", "")
    if not side_raw:
        return mandatory("side")
    if side_raw not in ("BUY", "SELL"):
        return ApiError(-1117, "Invalid side.")
    type_raw = params.get("type", "")
    if not type_raw:
        return mandatory("type")
    if type_raw in ALGO_TYPES:
        return ALGO_ONLY
    if type_raw not in ("LIMIT", "MARKET"):
        return ApiError(-1116, "Invalid orderType.")
    order_type = OrderType(type_raw)
    pos_raw = params.get("positionSide", "BOTH")
    if pos_raw not in ("BOTH", "LONG", "SHORT"):
        return ApiError(-4003, "Invalid positionSide.")  # wording UNCONFIRMED
    reduce_raw = params.get("reduceOnly")
    if reduce_raw not in (None, "true", "false"):
        return ApiError(-1100, "Illegal characters found in parameter 'reduceOnly'.")
    reduce_only = reduce_raw == "true"
    if hedge_mode and reduce_only:
        return REDUCE_ONLY_IN_HEDGE
    client_id = params.get("newClientOrderId") or auto_client_id
    if not CLIENT_ID.fullmatch(client_id):
        return ApiError(
            -1100,
            "Illegal characters found in parameter 'newClientOrderId'; legal range is "
            "'^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
        )
    qty_raw = params.get("quantity", "")
    if not qty_raw:
        return mandatory("quantity")
    qty = fmt.parse_qty(qty_raw)
    if qty is None:
        return BAD_PRECISION
    if qty <= 0:
        return ApiError(-4003, "Quantity less than or equal to zero.")
    if qty < sym.min_qty_steps:
        return ApiError(-4003, "Quantity less than or equal to zero.")
    if qty * fmt.step_units > int(sym.max_qty * 100_000_000):
        return ApiError(-4005, "Quantity greater than max quantity.")
    price: int | None = None
    tif = TimeInForce.GTC
    if order_type is OrderType.LIMIT:
        tif_raw = params.get("timeInForce", "")
        if not tif_raw:
            return mandatory("timeInForce")
        if tif_raw not in TIFS:
            return ApiError(-1115, "Invalid timeInForce.")
        tif = TIFS[tif_raw]
        price_raw = params.get("price", "")
        if not price_raw:
            return mandatory("price")
        price = fmt.parse_price(price_raw)
        if price is None:
            return BAD_PRECISION
        if price <= 0:
            return ApiError(-4001, "Price less than 0.")
    stp_raw = params.get("selfTradePreventionMode")
    stp = STP_DEFAULT
    if stp_raw is not None:
        if stp_raw not in StpMode.__members__:
            return ApiError(
                -1100, "Illegal characters found in parameter 'selfTradePreventionMode'."
            )
        stp = StpMode(stp_raw)
    return OrderRequest(
        account,
        Side(side_raw),
        qty,
        price,
        order_type,
        tif,
        None,
        client_id,
        stp,
        reduce_only,
        PositionSide(pos_raw),
    )


def below_min_notional(sym: SimSymbol, fmt: ContractFormat, price: int, qty: int) -> bool:
    notional_units = fmt.notional_units(price * qty)
    return notional_units < int(sym.min_notional * 100_000_000)
