"""exconn's error tree: every failure reaches the caller as one of these.

``ExconnError`` is the base. Each error carries, where known, the exchange, market, endpoint or
stream, and the exchange's own code and text, and its ``str()`` ends with what to do next::

    binance spot GET /api/v3/depth: code -1121 'Invalid symbol.'; check the symbol name

Errors cross process boundaries (actors), so every class pickles with its attributes. Text that
may have come from a request or a frame is passed through ``redact`` when the error is built, so
no attribute, ``str()``, ``repr()`` or pickle ever holds an API key or a signature.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

__all__ = [
    "AuthError",
    "Banned",
    "BookGap",
    "ClockSkew",
    "ConfigError",
    "ExchangeDown",
    "ExchangeError",
    "ExconnError",
    "InsufficientFunds",
    "InvalidOrder",
    "InvalidSymbol",
    "InvalidTransition",
    "MalformedMessage",
    "OrderNotFound",
    "OutcomeUnknown",
    "ProtocolError",
    "RateLimited",
    "UnknownSymbol",
    "redact",
]

RAW_EXCERPT_CHARS = 200

# Key names whose values are credentials. The look-behind keeps "sign" from matching inside
# other words while still matching the whole header names listed before it.
_SECRET_KEYS = (
    r"x-mbx-apikey|x-bapi-api-key|x-bapi-sign|api[_-]?key|api[_-]?secret|secret[_-]?key"
    r"|secret|signature|sign"
)
_SECRET_RE = re.compile(
    rf"(?P<key>(?<![\w-])(?:{_SECRET_KEYS}))(?![\w-])"
    r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>[^&\s'\",;}\]]+)",
    re.IGNORECASE,
)
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """``text`` with the values of API keys and signatures replaced by ``<redacted>``.

    Handles query strings (``signature=...&``), header lines (``X-MBX-APIKEY: ...``) and
    dict/JSON reprs (``'X-BAPI-SIGN': '...'``, ``"apiKey":"..."``).
    """
    return _SECRET_RE.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)


def _clean(text: str | None) -> str | None:
    return None if text is None else redact(str(text))


def _restore(cls: type[ExconnError], args: tuple[Any, ...], state: dict[str, Any]) -> ExconnError:
    # Bypasses __init__: subclasses have required keyword-only arguments, and the state is
    # already validated and redacted.
    err = cls.__new__(cls)
    err.args = args
    err.__dict__.update(state)
    return err


class ExconnError(Exception):
    """Base of every exconn error. Catch this to catch them all."""

    #: What the caller should do next; appended to ``str()`` when no explicit message is given.
    hint: ClassVar[str] = ""

    exchange: str | None
    market: str | None
    code: int | str | None
    venue_message: str | None
    endpoint: str | None
    message: str | None

    def __init__(
        self,
        message: str | None = None,
        *,
        exchange: str | None = None,
        market: str | None = None,
        code: int | str | None = None,
        venue_message: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        self.message = _clean(message)
        super().__init__(*(() if self.message is None else (self.message,)))
        self.exchange = None if exchange is None else str(exchange)
        self.market = None if market is None else str(market)
        self.code = code
        self.venue_message = _clean(venue_message)
        self.endpoint = _clean(endpoint)

    def _details(self) -> list[str]:
        """Subclass-specific parts of ``str()`` (retry time, ids, ...)."""
        return []

    def __str__(self) -> str:
        parts: list[str] = []
        if self.message:
            parts.append(self.message)
        if self.code is not None:
            code = f"code {self.code}"
            parts.append(f"{code} {self.venue_message!r}" if self.venue_message else code)
        elif self.venue_message:
            parts.append(repr(self.venue_message))
        parts.extend(self._details())
        if not self.message and self.hint:
            parts.append(self.hint)
        body = "; ".join(parts) or type(self).__name__
        where = " ".join(p for p in (self.exchange, self.market, self.endpoint) if p)
        return f"{where}: {body}" if where else body

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if v is not None)
        return f"{type(self).__name__}({fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, dict(self.__dict__)))


# --------------------------------------------------------------------------------------------
# Local errors: raised before anything leaves the process.


class ConfigError(ExconnError):
    """The configuration is incomplete or inconsistent (unknown exchange, missing URL or key).

    Raised at start-up or when a command names something not configured; fix the config."""

    hint = "fix the configuration"


class InvalidSymbol(ExconnError, ValueError):
    """A symbol is malformed (not ``BASE/QUOTE`` or ``BASE/QUOTE:SETTLE``) or the exchange says
    it does not exist (Binance -1121). Check the spelling; symbols are upper-case."""

    hint = "check the symbol name"


class UnknownSymbol(ExconnError, KeyError):
    """A well-formed symbol that this exchange and market do not list (or whose instruments are
    not loaded yet). Check the name, the market (spot vs linear), and that instruments loaded."""

    hint = "check the symbol name, the market, and that instruments are loaded"

    def __init__(
        self,
        message: str | None = None,
        *,
        symbol: str | None = None,
        venue_symbol: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.symbol = symbol
        self.venue_symbol = venue_symbol

    def _details(self) -> list[str]:
        out = []
        if self.symbol is not None:
            out.append(f"unknown symbol {self.symbol!r}")
        if self.venue_symbol is not None:
            out.append(f"unknown venue symbol {self.venue_symbol!r}")
        return out

    # KeyError.__str__ would print the repr of the message; keep the readable form.
    __str__ = ExconnError.__str__


class InvalidTransition(ExconnError, ValueError):
    """An order update would move the order's status backwards or sideways (e.g. filled -> new).

    The update is out of order or inconsistent with what is known: do not apply it; reconcile the
    order by querying it."""

    hint = "the update is out of order or inconsistent; reconcile by querying the order"

    def __init__(
        self,
        message: str | None = None,
        *,
        current: str | None = None,
        new: str | None = None,
        client_order_id: str | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.current = None if current is None else str(current)
        self.new = None if new is None else str(new)
        self.client_order_id = client_order_id

    def _details(self) -> list[str]:
        out = []
        if self.client_order_id is not None:
            out.append(f"order {self.client_order_id!r}")
        if self.current is not None or self.new is not None:
            out.append(f"illegal status transition {self.current} -> {self.new}")
        return out


# --------------------------------------------------------------------------------------------
# Errors the venue reported (or that a venue's answer implies).


class ExchangeError(ExconnError):
    """Base for errors the exchange reported; ``code`` and ``venue_message`` hold its own words.

    Raised as-is for codes exconn does not classify: read the code and message."""

    hint = "see the exchange's code and message"


class RateLimited(ExchangeError):
    """Too many requests (HTTP 429, Binance -1003/-1015, Bybit 10006/10018).

    Stop sending on this exchange until ``retry_after`` seconds have passed, then retry.
    Ignoring it escalates to ``Banned``."""

    hint = "back off, then retry"

    def __init__(
        self, message: str | None = None, *, retry_after: float | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = None if retry_after is None else float(retry_after)

    def _details(self) -> list[str]:
        return [] if self.retry_after is None else [f"retry after {self.retry_after:g} s"]


class Banned(ExchangeError):
    """The exchange banned this IP or key (Binance HTTP 418 after ignoring 429s).

    Send nothing to this exchange until ``until`` (or ``retry_after`` seconds); retrying earlier
    extends the ban."""

    hint = "send nothing to this exchange until the ban lifts"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        until: datetime | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = None if retry_after is None else float(retry_after)
        self.until = until

    def _details(self) -> list[str]:
        out = []
        if self.until is not None:
            out.append(f"banned until {self.until.isoformat()}")
        if self.retry_after is not None:
            out.append(f"retry after {self.retry_after:g} s")
        return out


class ClockSkew(ExchangeError):
    """The request timestamp was outside the exchange's receive window (Binance -1021).

    Resync the clock offset with the exchange's server time, then retry."""

    hint = "resync the clock offset with the server time and retry"


class AuthError(ExchangeError):
    """The exchange refused the credentials: bad key or signature, missing permission, or an IP
    not on the key's whitelist. Retrying will not help; fix the key or its settings."""

    hint = "check the API key, its permissions and IP whitelist"


class InvalidOrder(ExchangeError):
    """The order breaks a rule: tick, step, min/max quantity, notional, or a parameter the
    exchange rejects. Raised by the exchange or, before sending, by exconn's own validation
    (then ``code`` is None). Resending it unchanged fails again: fix the order."""

    hint = "fix the order; resending it unchanged fails again"


class InsufficientFunds(ExchangeError):
    """The account lacks the balance or margin for the order. Reduce the size or add funds."""

    hint = "reduce the size or add funds"


class OrderNotFound(ExchangeError):
    """The exchange does not know the order (already closed and purged, or never placed).

    For a cancel this usually means it already filled or was canceled: query its status."""

    hint = "the order is closed or was never placed; query its status"


class OutcomeUnknown(ExchangeError):
    """The order may or may not exist: the request timed out, got a 5xx, or the socket dropped
    after sending (Binance -1006/-1007).

    Resolve it by querying ``client_order_id``; never re-send it under a new id, or it may be
    placed twice."""

    hint = "query the order by its client order id; never re-send it under a new id"

    def __init__(
        self, message: str | None = None, *, client_order_id: str | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.client_order_id = client_order_id

    def _details(self) -> list[str]:
        if self.client_order_id is None:
            return []
        return [f"client order id {self.client_order_id!r}"]


class ExchangeDown(ExchangeError):
    """The exchange is unreachable, answering 5xx, in maintenance, or its circuit breaker is open.

    Retry later; for order placement see ``OutcomeUnknown``."""

    hint = "retry later"


# --------------------------------------------------------------------------------------------
# Protocol errors: what arrived cannot be trusted.


class ProtocolError(ExconnError):
    """Base for data that breaks the protocol: the message is skipped (and counted), and any
    state built from the stream is resynced."""

    hint = "skip the message; resync state that depends on it"


class MalformedMessage(ProtocolError):
    """A frame or response body could not be decoded or is inconsistent (e.g. a cumulative fill
    above the order quantity). It is skipped; ``raw_excerpt`` keeps its first 200 characters."""

    hint = "the message was skipped"

    def __init__(
        self, message: str | None = None, *, raw_excerpt: str | bytes | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        if isinstance(raw_excerpt, bytes | bytearray | memoryview):
            raw_excerpt = bytes(raw_excerpt[:RAW_EXCERPT_CHARS]).decode("utf-8", "replace")
        # Truncating before redacting is safe: a secret value always follows its key.
        self.raw_excerpt = _clean(None if raw_excerpt is None else raw_excerpt[:RAW_EXCERPT_CHARS])

    def _details(self) -> list[str]:
        return [] if self.raw_excerpt is None else [f"raw {self.raw_excerpt!r}"]


class BookGap(ProtocolError):
    """An order book update does not follow the previous one (sequence gap). The book cannot be
    trusted: it is resynced from a snapshot."""

    hint = "resync the book from a snapshot"

    def __init__(
        self,
        message: str | None = None,
        *,
        symbol: str | None = None,
        expected: int | None = None,
        got: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.symbol = symbol
        self.expected = expected
        self.got = got

    def _details(self) -> list[str]:
        out = [] if self.symbol is None else [self.symbol]
        if self.expected is not None or self.got is not None:
            out.append(f"expected update {self.expected}, got {self.got}")
        return out
