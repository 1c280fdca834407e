"""Exact numbers and UTC times at exconn's edges.

Prices and quantities are ``decimal.Decimal`` everywhere: a float cannot hold 0.1, and an order
sent at 0.30000000000000004 is a different order. Floats are refused loudly rather than
converted, because by the time a float reaches exconn the damage is already done.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = [
    "format_decimal",
    "require_decimal",
    "require_utc",
    "to_decimal",
    "utc_from_ms",
    "utc_now",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _float_error(value: float, name: str, accepted: str) -> TypeError:
    return TypeError(
        f"{name} must be a {accepted}, not float ({value!r}): floats cannot represent "
        f"prices exactly; pass Decimal('{value!r}')"
    )


def _require_finite(value: Decimal, name: str) -> Decimal:
    if not value.is_finite():
        raise ValueError(f"{name} must be a finite number, not {value}")
    return value


def to_decimal(value: object, name: str = "value") -> Decimal:
    """``value`` as an exact Decimal: Decimal passes through, str and int convert exactly.

    Raises TypeError for float (and bool, and anything else) and ValueError for text that is not
    a number or for NaN/Infinity. ``name`` is the field, for the message.
    """
    if isinstance(value, Decimal):
        return _require_finite(value, name)
    # bool is an int subclass; True as a quantity is a bug, not 1.
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a Decimal, str or int, not bool ({value!r})")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name} must be a decimal number, got {value!r}") from None
        return _require_finite(result, name)
    if isinstance(value, float):
        raise _float_error(value, name, "Decimal, str or int")
    raise TypeError(f"{name} must be a Decimal, str or int, not {type(value).__name__}")


def require_decimal(value: object, name: str) -> Decimal:
    """``value`` itself if it is a finite Decimal; the public API takes nothing else.

    TypeError for any other type (floats get an explanation), ValueError for NaN/Infinity.
    """
    if isinstance(value, Decimal):
        return _require_finite(value, name)
    if isinstance(value, float):
        raise _float_error(value, name, "Decimal")
    hint = ""
    if isinstance(value, str | int) and not isinstance(value, bool):
        hint = f"; pass Decimal({str(value)!r})"
    raise TypeError(f"{name} must be a Decimal, not {type(value).__name__} ({value!r}){hint}")


def format_decimal(value: Decimal) -> str:
    """Plain notation for the wire: no exponent, no trailing zeros (``1E-8`` -> ``0.00000001``,
    ``60000.00`` -> ``60000``). Exact for any number of digits."""
    _require_finite(value, "value")
    # format "f" is exact; Decimal.normalize() would round to the context's 28 digits.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def utc_from_ms(ms: int) -> datetime:
    """Exchange epoch milliseconds as an aware UTC datetime (exact, no float)."""
    if isinstance(ms, bool) or not isinstance(ms, int):
        raise TypeError(f"milliseconds must be an int, not {type(ms).__name__} ({ms!r})")
    return _EPOCH + timedelta(milliseconds=ms)


def utc_now() -> datetime:
    return datetime.now(UTC)


def require_utc(dt: datetime, name: str) -> datetime:
    """``dt`` converted to UTC. A naive datetime is refused: its zone is a guess."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(dt).__name__}")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {dt.isoformat()}")
    return dt if dt.tzinfo is UTC else dt.astimezone(UTC)
