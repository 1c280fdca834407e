"""exconn's pure domain model: enums, exact decimals and UTC times, symbols, instruments and
their trading rules, and the order state machine. No I/O here."""

from exconn.model.decimal import (
    format_decimal,
    require_decimal,
    require_utc,
    to_decimal,
    utc_from_ms,
    utc_now,
)
from exconn.model.enums import (
    BookSide,
    Exchange,
    Market,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from exconn.model.instruments import (
    Instrument,
    price_to_ticks,
    round_price,
    round_qty,
    ticks_to_price,
    validate_order,
)
from exconn.model.orders import (
    ALLOWED,
    OPEN,
    TERMINAL,
    OrderState,
    apply_update,
    can_transition,
    mark,
    transition,
)
from exconn.model.symbols import SymbolMap, make_symbol, parse_symbol

__all__ = [
    "ALLOWED",
    "OPEN",
    "TERMINAL",
    "BookSide",
    "Exchange",
    "Instrument",
    "Market",
    "OrderSide",
    "OrderState",
    "OrderStatus",
    "OrderType",
    "SymbolMap",
    "TimeInForce",
    "apply_update",
    "can_transition",
    "format_decimal",
    "make_symbol",
    "mark",
    "parse_symbol",
    "price_to_ticks",
    "require_decimal",
    "require_utc",
    "round_price",
    "round_qty",
    "ticks_to_price",
    "to_decimal",
    "transition",
    "utc_from_ms",
    "utc_now",
    "validate_order",
]
