"""The error tree: hierarchy, readable messages, pickling across processes, no secrets."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

import pytest

from exconn import errors
from exconn.errors import (
    AuthError,
    Banned,
    BookGap,
    ClockSkew,
    ConfigError,
    ExchangeDown,
    ExchangeError,
    ExconnError,
    InsufficientFunds,
    InvalidOrder,
    InvalidSymbol,
    InvalidTransition,
    MalformedMessage,
    OrderNotFound,
    OutcomeUnknown,
    ProtocolError,
    RateLimited,
    UnknownSymbol,
    redact,
)

ALL = [
    ConfigError,
    InvalidSymbol,
    UnknownSymbol,
    ExchangeError,
    RateLimited,
    Banned,
    ClockSkew,
    AuthError,
    InvalidOrder,
    InsufficientFunds,
    OrderNotFound,
    OutcomeUnknown,
    ExchangeDown,
    ProtocolError,
    MalformedMessage,
    BookGap,
    InvalidTransition,
]


def test_hierarchy() -> None:
    for cls in ALL:
        assert issubclass(cls, ExconnError)
        assert cls.__doc__, f"{cls.__name__} needs a docstring saying when and what next"
    for cls in (
        RateLimited,
        Banned,
        ClockSkew,
        AuthError,
        InvalidOrder,
        InsufficientFunds,
        OrderNotFound,
        OutcomeUnknown,
        ExchangeDown,
    ):
        assert issubclass(cls, ExchangeError)
    assert issubclass(MalformedMessage, ProtocolError)
    assert issubclass(BookGap, ProtocolError)
    assert issubclass(InvalidSymbol, ValueError)
    assert issubclass(InvalidTransition, ValueError)
    assert issubclass(UnknownSymbol, KeyError)
    # Banned must not be caught by a retry loop written for RateLimited.
    assert not issubclass(Banned, RateLimited)


def test_str_has_exchange_endpoint_code_text_and_next_step() -> None:
    e = InvalidSymbol(
        exchange="binance",
        market="spot",
        endpoint="GET /api/v3/depth",
        code=-1121,
        venue_message="Invalid symbol.",
    )
    assert (
        str(e)
        == "binance spot GET /api/v3/depth: code -1121 'Invalid symbol.'; check the symbol name"
    )


def test_positional_message_replaces_hint() -> None:
    e = ExchangeDown("GET /api/v3/time timed out; retry later", exchange="binance")
    assert str(e) == "binance: GET /api/v3/time timed out; retry later"
    assert e.args == ("GET /api/v3/time timed out; retry later",)


def test_bare_error_still_reads() -> None:
    assert str(ExconnError()) == "ExconnError"
    assert str(ExchangeDown()) == "retry later"


def test_rate_limited_says_when() -> None:
    e = RateLimited(retry_after=12, exchange="binance", code=-1003, venue_message="Too many")
    assert e.retry_after == 12.0
    assert "retry after 12 s" in str(e)


def test_banned_until() -> None:
    until = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    e = Banned(retry_after=60.5, until=until, exchange="binance")
    assert "2024-01-01T12:00:00+00:00" in str(e) and "60.5 s" in str(e)


def test_unknown_symbol_str_not_quoted_like_keyerror() -> None:
    e = UnknownSymbol(exchange="bybit", market="linear", symbol="ETH/BTC:BTC")
    text = str(e)
    assert text.startswith("bybit linear: unknown symbol 'ETH/BTC:BTC'")
    assert not text.startswith('"') and not text.startswith("'")
    with pytest.raises(KeyError):
        raise e


def test_outcome_unknown_says_not_to_resend() -> None:
    e = OutcomeUnknown(client_order_id="x-1", exchange="binance", code=-1007)
    assert "'x-1'" in str(e) and "never re-send" in str(e)


def test_book_gap_and_transition_details() -> None:
    gap = BookGap(symbol="BTC/USDT", expected=101, got=105, exchange="binance")
    assert "expected update 101, got 105" in str(gap) and "BTC/USDT" in str(gap)
    t = InvalidTransition(current="filled", new="new", client_order_id="c1")
    assert "filled -> new" in str(t) and "'c1'" in str(t)


def test_malformed_keeps_only_an_excerpt() -> None:
    raw = "x" * 5000
    e = MalformedMessage("bad frame", raw_excerpt=raw)
    assert e.raw_excerpt == "x" * errors.RAW_EXCERPT_CHARS
    b = MalformedMessage(raw_excerpt=b"\xff" + b"y" * 500)
    assert b.raw_excerpt is not None and len(b.raw_excerpt) == errors.RAW_EXCERPT_CHARS


SAMPLES: list[ExconnError] = [
    ConfigError("no exchange configured"),
    InvalidSymbol(exchange="binance", code=-1121, venue_message="Invalid symbol."),
    UnknownSymbol(exchange="binance", market="spot", symbol="X/Y", venue_symbol="XY"),
    ExchangeError(exchange="bybit", code="10001", venue_message="params error"),
    RateLimited(retry_after=3.0, exchange="binance", endpoint="POST /api/v3/order"),
    Banned(retry_after=120.0, until=datetime(2030, 1, 1, tzinfo=UTC), exchange="binance"),
    ClockSkew(exchange="binance", code=-1021),
    AuthError(exchange="bybit", code=10003),
    InvalidOrder("qty below min_qty", exchange="binance", market="spot"),
    InsufficientFunds(exchange="binance", code=-2010, venue_message="insufficient balance"),
    OrderNotFound(exchange="binance", code=-2011),
    OutcomeUnknown(client_order_id="abc", exchange="binance", code=-1007),
    ExchangeDown(exchange="bybit", endpoint="GET /v5/market/time"),
    ProtocolError("bad"),
    MalformedMessage("bad json", raw_excerpt="{not json", exchange="binance"),
    BookGap(symbol="BTC/USDT", expected=1, got=3),
    InvalidTransition(current="filled", new="new", client_order_id="c"),
]


@pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
def test_pickle_round_trip_keeps_type_attributes_and_message(err: ExconnError) -> None:
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert back.__dict__ == err.__dict__
    assert str(back) == str(err)
    assert repr(back) == repr(err)
    assert back.args == err.args


class VenueSpecific(ExchangeError):
    """A subclass with a required keyword argument, as venue code may define."""

    def __init__(self, *, needed: int, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.needed = needed


def test_subclass_with_required_keyword_pickles() -> None:
    err = VenueSpecific(needed=7, exchange="bybit", code=110007)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is VenueSpecific and back.needed == 7 and str(back) == str(err)


def test_every_class_is_sampled() -> None:
    assert {type(e) for e in SAMPLES} == set(ALL)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /api/v3/order?symbol=BTCUSDT&timestamp=1&signature=deadbeef01", "deadbeef01"),
        ("POST /api/v3/order?signature=c0ffee&recvWindow=5000", "c0ffee"),
        ("headers {'X-MBX-APIKEY': 'vmPUZE6mv9SD5VNH'}", "vmPUZE6mv9SD5VNH"),
        ("X-MBX-APIKEY: vmPUZE6mv9SD5VNH", "vmPUZE6mv9SD5VNH"),
        ('{"X-BAPI-API-KEY": "XXXXXXXXXX", "X-BAPI-SIGN": "abc123"}', "XXXXXXXXXX"),
        ('{"X-BAPI-API-KEY": "XXXXXXXXXX", "X-BAPI-SIGN": "abc123"}', "abc123"),
        ('{"method":"order.place","params":{"apiKey":"k3yk3y","signature":"s1g"}}', "k3yk3y"),
        ('{"method":"order.place","params":{"apiKey":"k3yk3y","signature":"s1g"}}', "s1g"),
        ("apiKey=k3yk3y&timestamp=1", "k3yk3y"),
        ("api_key=k3yk3y&sign=s1gn", "s1gn"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "<redacted>" in redact(text)


def test_redact_leaves_ordinary_text() -> None:
    text = "GET /api/v3/depth?symbol=BTCUSDT&limit=100: code -1121 'Invalid symbol.'; design"
    assert redact(text) == text


def test_errors_never_hold_secrets() -> None:
    e = AuthError(
        "request GET /api/v3/account?timestamp=1&signature=deadbeef failed",
        exchange="binance",
        endpoint="GET /api/v3/account?timestamp=1&signature=deadbeef",
        venue_message="bad header X-MBX-APIKEY: sekrit123",
        code=-2015,
    )
    m = MalformedMessage(raw_excerpt='{"apiKey":"sekrit123","x":1}')
    for err in (e, m):
        for text in (str(err), repr(err), pickle.dumps(err).decode("latin-1")):
            assert "deadbeef" not in text and "sekrit123" not in text
