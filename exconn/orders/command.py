"""The order command core, pure: pre-trade validation, client order ids, the intent journal,
and the classification of an answer (or an exception) into accepted / rejected / unknown.

An order must never be placed twice. The rules that guarantee it live here, not in an actor:

1. ``validate_place`` refuses, before anything is sent, an order that breaks the instrument's
   rules (tick, step, min/max qty, min notional) or a venue constraint exconn knows.
2. Every order carries a client order id (``new_client_order_id`` or the engine's, checked by
   ``check_client_order_id``): an unknown outcome can then be resolved by a query.
3. ``IntentJournal`` records the intent *before* sending. A retry of the same intent (the same
   client id) reuses that id; while a send is in flight or its outcome is unknown, a second
   send is refused with ``OutcomeUnknown`` until a query or a stream event resolves it.
4. ``classify_error`` / ``outcome_of_error`` sort what came back: timeouts, 5xx, Binance
   -1006/-1007, Bybit 10000/10014/10016, a socket lost during submit are *unknown*, never
   *rejected*; anything exconn cannot recognise is unknown too (the safe side).
"""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import msgspec

from exconn import errors
from exconn.errors import InvalidOrder, OutcomeUnknown
from exconn.messages import (
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReply,
    PlaceOrder,
    PositionSide,
)
from exconn.model.enums import Exchange, Market, OrderType, TimeInForce
from exconn.model.instruments import Instrument, validate_order

__all__ = [
    "BINANCE_CLIENT_ID",
    "BYBIT_CLIENT_ID",
    "UNKNOWN_CODES",
    "Intent",
    "IntentJournal",
    "IntentState",
    "Outcome",
    "ReplyContext",
    "RestRequest",
    "assign_client_order_id",
    "check_client_order_id",
    "classify_code",
    "classify_error",
    "is_post_only",
    "new_client_order_id",
    "order_fingerprint",
    "outcome_of_error",
    "reply_outcome",
    "validate_place",
]

# ------------------------------------------------------------------------------------------
# Client order ids

#: binance.md §8.2 (newClientOrderId); the spot docs give the same pattern.
BINANCE_CLIENT_ID = re.compile(r"[\.A-Z\:/a-z0-9_-]{1,36}")
#: bybit.md §5 (orderLinkId: up to 36 characters of letters, digits, - and _).
BYBIT_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
CLIENT_ID_RULES: Mapping[str, re.Pattern[str]] = {
    Exchange.BINANCE: BINANCE_CLIENT_ID,
    Exchange.BYBIT: BYBIT_CLIENT_ID,
}
MAX_CLIENT_ID = 36
# Binance names its own liquidation/ADL/settlement orders with these (binance.md §9.3): an
# engine id starting so would be mistaken for one of them when reading the stream.
RESERVED_PREFIXES = ("autoclose-", "adl_autoclose", "settlement_autoclose-")
DEFAULT_PREFIX = "ex"
_RANDOM_HEX = 12  # 48 random bits per id on top of the time and the process counter
_counter = itertools.count()


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if not n:
            return out


def check_client_order_id(exchange: str, client_order_id: str) -> str:
    """``client_order_id`` if the venue accepts it, else InvalidOrder naming the rule."""
    rule = CLIENT_ID_RULES.get(str(exchange))
    if rule is None:
        raise InvalidOrder(f"no client order id rule for exchange {exchange!r}")
    if not isinstance(client_order_id, str) or not rule.fullmatch(client_order_id):
        allowed = "A-Z a-z 0-9 . : / _ -" if rule is BINANCE_CLIENT_ID else "A-Z a-z 0-9 _ -"
        raise InvalidOrder(
            f"client order id {client_order_id!r} is not 1-{MAX_CLIENT_ID} characters of {allowed}",
            exchange=exchange,
        )
    if client_order_id.startswith(RESERVED_PREFIXES):
        raise InvalidOrder(
            f"client order id {client_order_id!r} starts with a prefix the venue uses for its "
            f"own orders ({', '.join(RESERVED_PREFIXES)})",
            exchange=exchange,
        )
    return client_order_id


def new_client_order_id(
    exchange: str,
    prefix: str = DEFAULT_PREFIX,
    *,
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    token: Callable[[int], str] = secrets.token_hex,
) -> str:
    """A fresh id valid on every venue: ``<prefix>-<ms base36><counter base36>-<random hex>``
    (about 28 characters with the default prefix). Unique within the process by the counter,
    across processes and restarts by the time and 48 random bits."""
    if not re.fullmatch(r"[A-Za-z0-9]{0,8}", prefix):
        raise ValueError(f"client id prefix must be 0-8 letters or digits, not {prefix!r}")
    stamp = _base36(now_ms()) + _base36(next(_counter) % 36**3).rjust(3, "0")
    text = f"{prefix}-{stamp}-{token(_RANDOM_HEX // 2)}" if prefix else f"{stamp}-{token(6)}"
    return check_client_order_id(exchange, text)


def assign_client_order_id(order: PlaceOrder, prefix: str = DEFAULT_PREFIX) -> PlaceOrder:
    """``order`` with a client order id: the engine's (checked) or a new one."""
    if order.client_order_id is not None:
        check_client_order_id(order.exchange, order.client_order_id)
        return order
    cid = new_client_order_id(order.exchange, prefix)
    return msgspec.structs.replace(order, client_order_id=cid)


# ------------------------------------------------------------------------------------------
# Pre-trade validation


def is_post_only(order: PlaceOrder) -> bool:
    return order.post_only or order.time_in_force is TimeInForce.POST_ONLY


def _invalid(order: PlaceOrder, text: str) -> InvalidOrder:
    return InvalidOrder(
        f"{order.symbol}: {text}", exchange=order.exchange, market=str(order.market)
    )


def validate_place(order: PlaceOrder, instrument: Instrument) -> None:
    """Raise InvalidOrder (clear message, ``code`` None) for an order that must not be sent:
    wrong instrument, an instrument rule broken (``exconn.model.instruments.validate_order``),
    or a combination the venues refuse. Nothing is rounded: that is the engine's decision."""
    if (str(order.exchange), Market(order.market), order.symbol) != (
        str(instrument.exchange),
        instrument.market,
        instrument.symbol,
    ):
        raise _invalid(
            order,
            f"instrument mismatch: the order is for {order.exchange} {order.market} "
            f"{order.symbol}, the rules given are {instrument.exchange} {instrument.market} "
            f"{instrument.symbol}",
        )
    tif = TimeInForce(order.time_in_force)
    post_only = is_post_only(order)
    if order.type is OrderType.MARKET:
        if order.price is not None:
            raise _invalid(order, "a market order takes no price")
        if post_only:
            raise _invalid(order, "a market order cannot be post-only")
        if tif is TimeInForce.FOK:
            # Bybit turns every market order into IOC; Binance takes no timeInForce for it.
            raise _invalid(order, "a market order is always IOC; FOK is not available")
    elif post_only and tif in (TimeInForce.IOC, TimeInForce.FOK):
        raise _invalid(order, f"post-only conflicts with time in force {tif.value}")
    if order.market is Market.SPOT:
        if order.reduce_only:
            raise _invalid(order, "reduce-only exists only for linear (derivatives) markets")
        if order.position_side is not None:
            raise _invalid(order, "position side exists only for linear (derivatives) markets")
    elif (
        order.reduce_only
        and order.exchange == Exchange.BINANCE
        and order.position_side in (PositionSide.LONG, PositionSide.SHORT)
    ):
        # binance.md §8.2: reduceOnly is not allowed in hedge mode (the side closes it).
        raise _invalid(order, "Binance does not accept reduce-only in hedge mode")
    validate_order(instrument, order.side, order.type, order.qty, order.price)


# ------------------------------------------------------------------------------------------
# Outcome classification


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # the command had no effect: safe to send again (same client id)
    UNKNOWN = "unknown"  # it may have taken effect: resolve by query before anything else


#: Codes meaning "execution status unknown" (binance.md §11, bybit.md §9 and §11).
UNKNOWN_CODES: Mapping[str, frozenset[int]] = {
    Exchange.BINANCE: frozenset({-1006, -1007}),
    Exchange.BYBIT: frozenset(
        {
            10000,  # server timeout
            10014,  # duplicate request: one like it was already received
            10016,  # internal error / restarting
            10019,  # WS order entry: service restarting
            20006,  # WS order entry: duplicate reqId, the first one may have been processed
        }
    ),
}
# Errors that prove the command had no effect: the venue refused it, or exconn refused to
# send it (budget, ban, breaker open, missing configuration).
_REJECTED: tuple[type[errors.ExconnError], ...] = (
    errors.InvalidOrder,
    errors.InsufficientFunds,
    errors.InvalidSymbol,
    errors.UnknownSymbol,
    errors.OrderNotFound,
    errors.RateLimited,
    errors.Banned,
    errors.ClockSkew,
    errors.AuthError,
    errors.ConfigError,
)


def classify_code(exchange: str, status: int | None, code: int | None) -> Outcome:
    """An answer that carries an error: HTTP ``status`` (None on WS without one) and the
    venue's ``code``. 5xx, 408 and the unknown-outcome codes are UNKNOWN; the rest is
    REJECTED (4xx, a Bybit non-zero retCode in a 200)."""
    if code is not None and code in UNKNOWN_CODES.get(str(exchange), frozenset()):
        return Outcome.UNKNOWN
    if status is not None and (status >= 500 or status == 408):
        return Outcome.UNKNOWN
    return Outcome.REJECTED


def classify_error(exc: BaseException) -> Outcome:
    """What an exception raised while submitting a command says about its outcome.

    ``OutcomeUnknown``, an unknown-outcome code, ``ExchangeDown`` (the transport raises it
    for a read-style failure it cannot place: treated as doubtful), a timeout or a lost socket
    (``OSError``, ``TimeoutError``, websocket closed) and anything unrecognised are UNKNOWN;
    the typed refusals in ``_REJECTED`` are REJECTED."""
    if isinstance(exc, OutcomeUnknown):
        return Outcome.UNKNOWN
    if isinstance(exc, errors.ExconnError):
        code = exc.code if isinstance(exc.code, int) else None
        if (
            exc.exchange is not None
            and code is not None
            and code in UNKNOWN_CODES.get(exc.exchange, frozenset())
        ):
            return Outcome.UNKNOWN
        if isinstance(exc, _REJECTED):
            return Outcome.REJECTED
        return Outcome.UNKNOWN
    return Outcome.UNKNOWN


class ReplyContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a reply is about (the venue's answer rarely says all of it)."""

    exchange: str
    market: str
    symbol: str
    action: str  # place, amend, cancel, cancel_all
    client_order_id: str | None = None


def outcome_of_error(exc: BaseException, ctx: ReplyContext) -> OrderRejected | OrderOutcomeUnknown:
    """The reply for a command whose submission raised ``exc``. Secrets never reach it: exconn
    errors are redacted when built, other exceptions are reduced to their type name."""
    code = exc.code if isinstance(exc, errors.ExconnError) else None
    text = str(exc) if isinstance(exc, errors.ExconnError) else type(exc).__name__
    cid = ctx.client_order_id
    if isinstance(exc, OutcomeUnknown) and exc.client_order_id is not None:
        cid = exc.client_order_id
    common = {
        "exchange": ctx.exchange,
        "market": ctx.market,
        "symbol": ctx.symbol,
        "action": ctx.action,
        "client_order_id": cid,
        "code": code,
    }
    if classify_error(exc) is Outcome.UNKNOWN:
        return OrderOutcomeUnknown(known=f"sent; no reliable answer: {text}", **common)
    return OrderRejected(message=text, reason=type(exc).__name__, **common)


def reply_outcome(reply: OrderReply) -> Outcome:
    if isinstance(reply, OrderAccepted):
        return Outcome.ACCEPTED
    if isinstance(reply, OrderRejected):
        return Outcome.REJECTED
    return Outcome.UNKNOWN


# ------------------------------------------------------------------------------------------
# Requests (what order_entry builders return)


class RestRequest(Protocol):
    """A REST request ``exconn.transport.rest.RestClient.call`` sends."""

    method: str
    path: str
    params: Mapping[str, Any]
    signed: bool
    is_order: bool


# ------------------------------------------------------------------------------------------
# The intent journal


class IntentState(StrEnum):
    RECORDED = "recorded"  # recorded, not on the wire (or proven not sent)
    IN_FLIGHT = "in_flight"  # sent, no answer yet
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # refused: a retry (same client id) may be sent
    UNKNOWN = "unknown"  # sent, outcome lost: resolve before anything else


def order_fingerprint(order: PlaceOrder) -> tuple[Any, ...]:
    """What makes two PlaceOrders the same intent (everything but nothing else)."""
    return (
        str(order.exchange),
        str(order.market),
        order.symbol,
        str(order.side),
        str(order.type),
        order.qty,
        order.price,
        str(order.time_in_force),
        order.reduce_only,
        order.post_only,
        None if order.position_side is None else str(order.position_side),
    )


@dataclass
class Intent:
    client_order_id: str
    exchange: str
    market: str
    symbol: str
    fingerprint: tuple[Any, ...]
    state: IntentState = IntentState.RECORDED
    attempts: int = 0  # sends put on the wire
    exchange_order_id: str | None = None
    last_reply: OrderReply | None = None
    history: list[IntentState] = field(default_factory=list)
    order: PlaceOrder | None = None  # what was recorded (a durable journal keeps it)
    sent_at: float | None = None  # wall-clock seconds of the last send


class IntentJournal:
    """Placement intents by (exchange, market, client order id). In memory; an actor that
    holds it must resolve ``unresolved()`` by query after a restart of the venue connection.
    ``listener`` is told every state change (``begin_send`` included, before the send), so
    an actor can keep the journal durable (``exconn.orders.journal_store``) and ``restore``
    it after its own restart.

    Life of an intent: ``record`` -> ``begin_send`` (IN_FLIGHT; the only way to get a
    permission to send) -> ``settle`` with the reply (ACCEPTED / REJECTED / UNKNOWN) or
    ``not_sent`` -> and for UNKNOWN ``resolve`` after a query or a stream event.
    ``begin_send`` refuses: IN_FLIGHT and UNKNOWN (``OutcomeUnknown``), ACCEPTED
    (``InvalidOrder``: it is placed already). A REJECTED or RECORDED intent may be sent again
    under the same client id: the venue holds no order under it.
    """

    def __init__(self, listener: Callable[[Intent], None] | None = None) -> None:
        self._intents: dict[tuple[str, str, str], Intent] = {}
        self._listener = listener

    @staticmethod
    def _key(exchange: str, market: str, client_order_id: str) -> tuple[str, str, str]:
        return (str(exchange), str(market), client_order_id)

    def get(self, exchange: str, market: str, client_order_id: str) -> Intent | None:
        return self._intents.get(self._key(exchange, market, client_order_id))

    def _require(self, exchange: str, market: str, client_order_id: str) -> Intent:
        intent = self.get(exchange, market, client_order_id)
        if intent is None:
            raise KeyError(f"no intent for client order id {client_order_id!r}")
        return intent

    def record(self, order: PlaceOrder) -> Intent:
        """Record ``order`` (it must carry its client order id) before it is sent; the same
        order again returns the recorded intent (a retry). The same client id for a different
        order is InvalidOrder: one id, one order."""
        cid = order.client_order_id
        if cid is None:
            raise ValueError("assign a client order id before recording the intent")
        key = self._key(order.exchange, order.market, cid)
        fingerprint = order_fingerprint(order)
        found = self._intents.get(key)
        if found is not None:
            if found.fingerprint != fingerprint:
                raise InvalidOrder(
                    f"client order id {cid!r} is already used for a different order; "
                    "use a new id for a new order",
                    exchange=order.exchange,
                    market=str(order.market),
                )
            return found
        intent = Intent(
            cid, str(order.exchange), str(order.market), order.symbol, fingerprint, order=order
        )
        intent.history.append(intent.state)
        self._intents[key] = intent
        return intent

    def _move(self, intent: Intent, state: IntentState) -> Intent:
        intent.state = state
        intent.history.append(state)
        if self._listener is not None:
            self._listener(intent)
        return intent

    def restore(
        self,
        order: PlaceOrder,
        state: IntentState,
        *,
        attempts: int = 0,
        exchange_order_id: str | None = None,
        sent_at: float | None = None,
    ) -> Intent:
        """An intent read back from a durable journal after a restart (the listener is not
        told). One that was IN_FLIGHT when the process died is UNKNOWN: the send may have
        reached the venue."""
        if state is IntentState.IN_FLIGHT:
            state = IntentState.UNKNOWN
        cid = order.client_order_id
        if cid is None:
            raise ValueError("a restored intent must carry its client order id")
        intent = Intent(
            cid,
            str(order.exchange),
            str(order.market),
            order.symbol,
            order_fingerprint(order),
            state=state,
            attempts=attempts,
            exchange_order_id=exchange_order_id,
            history=[state],
            order=order,
            sent_at=sent_at,
        )
        self._intents[self._key(order.exchange, order.market, cid)] = intent
        return intent

    def begin_send(self, exchange: str, market: str, client_order_id: str) -> Intent:
        """Permission to put the intent on the wire, once per attempt."""
        intent = self._require(exchange, market, client_order_id)
        if intent.state in (IntentState.IN_FLIGHT, IntentState.UNKNOWN):
            what = "in flight" if intent.state is IntentState.IN_FLIGHT else "unknown"
            raise OutcomeUnknown(
                f"the order's previous send is {what}: not sent again; resolve it first by "
                "querying its client order id (or its stream event)",
                exchange=exchange,
                market=str(market),
                client_order_id=client_order_id,
            )
        if intent.state is IntentState.ACCEPTED:
            raise InvalidOrder(
                f"client order id {client_order_id!r} was already accepted: not sent again",
                exchange=exchange,
                market=str(market),
            )
        intent.attempts += 1
        intent.sent_at = time.time()
        return self._move(intent, IntentState.IN_FLIGHT)

    def not_sent(self, exchange: str, market: str, client_order_id: str) -> Intent:
        """The attempt provably never left the process (refused before sending)."""
        intent = self._require(exchange, market, client_order_id)
        if intent.state is not IntentState.IN_FLIGHT:
            raise ValueError(f"intent {client_order_id!r} is {intent.state}, not in flight")
        intent.attempts -= 1
        return self._move(intent, IntentState.RECORDED)

    def settle(self, reply: OrderReply) -> Intent:
        """Apply the reply of an in-flight send."""
        if reply.client_order_id is None:
            raise ValueError("a placement reply must carry its client order id")
        intent = self._require(reply.exchange, reply.market, reply.client_order_id)
        if intent.state is not IntentState.IN_FLIGHT:
            raise ValueError(f"intent {reply.client_order_id!r} is {intent.state}, not in flight")
        intent.last_reply = reply
        outcome = reply_outcome(reply)
        if isinstance(reply, OrderAccepted) and reply.exchange_order_id:
            intent.exchange_order_id = reply.exchange_order_id
        return self._move(intent, IntentState(outcome.value))

    def resolve(
        self,
        exchange: str,
        market: str,
        client_order_id: str,
        *,
        exists: bool,
        exchange_order_id: str | None = None,
    ) -> Intent:
        """Settle an UNKNOWN (or in-flight) intent from a query by client id or a stream event:
        ``exists`` the venue knows the order (ACCEPTED), else it was never placed (REJECTED,
        so it may be sent again under the same id). A later event about an already decided
        intent changes nothing but the order id."""
        intent = self._require(exchange, market, client_order_id)
        if exchange_order_id:
            intent.exchange_order_id = exchange_order_id
        if intent.state in (IntentState.UNKNOWN, IntentState.IN_FLIGHT):
            return self._move(intent, IntentState.ACCEPTED if exists else IntentState.REJECTED)
        if exists and intent.state is not IntentState.ACCEPTED:
            # The venue holds the order whatever an earlier answer said: never send it again.
            return self._move(intent, IntentState.ACCEPTED)
        return intent

    def unresolved(self) -> list[Intent]:
        return [
            i
            for i in self._intents.values()
            if i.state in (IntentState.IN_FLIGHT, IntentState.UNKNOWN)
        ]

    def __len__(self) -> int:
        return len(self._intents)

    def __iter__(self) -> Iterator[Intent]:
        return iter(list(self._intents.values()))
