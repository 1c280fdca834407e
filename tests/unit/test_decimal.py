"""Exact decimals and UTC times: floats refused, wire formatting exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exconn.model.decimal import (
    format_decimal,
    require_decimal,
    require_utc,
    to_decimal,
    utc_from_ms,
    utc_now,
)


def test_to_decimal_exact_inputs() -> None:
    d = Decimal("0.1")
    assert to_decimal(d) is d
    assert to_decimal("0.1") == Decimal("0.1")
    assert to_decimal("1E-8") == Decimal("0.00000001")
    assert to_decimal(12345678901234567890123456789012345) == Decimal(
        "12345678901234567890123456789012345"
    )


def test_to_decimal_refuses_float_with_a_helpful_message() -> None:
    with pytest.raises(TypeError) as info:
        to_decimal(0.1, "price")
    assert str(info.value) == (
        "price must be a Decimal, str or int, not float (0.1): floats cannot represent prices "
        "exactly; pass Decimal('0.1')"
    )


@pytest.mark.parametrize("value", [True, False, None, [1], b"1"])
def test_to_decimal_refuses_other_types(value: object) -> None:
    with pytest.raises(TypeError):
        to_decimal(value, "qty")


@pytest.mark.parametrize("value", ["abc", "", "1,5", "0x10"])
def test_to_decimal_invalid_text_names_the_field(value: str) -> None:
    with pytest.raises(ValueError, match="qty"):
        to_decimal(value, "qty")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-inf", "sNaN", Decimal("NaN")])
def test_to_decimal_refuses_non_finite(value: object) -> None:
    with pytest.raises(ValueError, match="finite"):
        to_decimal(value, "price")


def test_require_decimal_accepts_only_decimal() -> None:
    d = Decimal("60000")
    assert require_decimal(d, "price") is d
    with pytest.raises(TypeError, match=r"not float \(0\.1\).*Decimal\('0\.1'\)"):
        require_decimal(0.1, "price")
    with pytest.raises(TypeError, match=r"price must be a Decimal, not str"):
        require_decimal("60000", "price")
    with pytest.raises(TypeError, match="qty must be a Decimal, not int"):
        require_decimal(1, "qty")
    with pytest.raises(TypeError):
        require_decimal(True, "qty")
    with pytest.raises(ValueError):
        require_decimal(Decimal("NaN"), "qty")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1E-8", "0.00000001"),
        ("60000.00", "60000"),
        ("6E+4", "60000"),
        ("0.10", "0.1"),
        ("0", "0"),
        ("0E-8", "0"),
        ("-0.0", "0"),
        ("-1.50", "-1.5"),
        ("100", "100"),
        ("0.00000100", "0.000001"),
        ("12345678901234567890123456789.123456789", "12345678901234567890123456789.123456789"),
    ],
)
def test_format_decimal(value: str, text: str) -> None:
    assert format_decimal(Decimal(value)) == text


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_format_decimal_round_trips_exactly_without_exponent(d: Decimal) -> None:
    text = format_decimal(d)
    assert "E" not in text.upper()
    assert Decimal(text) == d
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")


def test_format_decimal_refuses_nan() -> None:
    with pytest.raises(ValueError):
        format_decimal(Decimal("NaN"))


def test_utc_from_ms_is_exact_and_aware() -> None:
    dt = utc_from_ms(1723161255208)
    assert dt.tzinfo is UTC
    assert dt == datetime(2024, 8, 8, 23, 54, 15, 208000, tzinfo=UTC)
    assert utc_from_ms(0) == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(TypeError):
        utc_from_ms(1.5)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_utc_from_ms_round_trips(ms: int) -> None:
    dt = utc_from_ms(ms)
    assert (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) == ms


def test_utc_now_is_aware() -> None:
    assert utc_now().tzinfo is UTC


def test_require_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        require_utc(datetime(2024, 1, 1), "updated_at")
    with pytest.raises(TypeError):
        require_utc("2024-01-01", "updated_at")  # type: ignore[arg-type]
    plus2 = datetime(2024, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    out = require_utc(plus2, "t")
    assert out.tzinfo is UTC and out == plus2 and out.hour == 12
