"""The order command core: validation before sending, client order ids, the intent journal
(never a second send of one intent), and the outcome classification table."""

from __future__ import annotations

import pickle
import re
from decimal import Decimal

import httpx
import pytest

from exconn import errors
from exconn.errors import InvalidOrder, OutcomeUnknown
from exconn.messages import (
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    PlaceOrder,
    PositionSide,
)
from exconn.model.enums import Exchange, Market, OrderSide, OrderType, TimeInForce
from exconn.model.instruments import Instrument
from exconn.orders.command import (
    BINANCE_CLIENT_ID,
    BYBIT_CLIENT_ID,
    IntentJournal,
    IntentState,
    Outcome,
    ReplyContext,
    assign_client_order_id,
    check_client_order_id,
    classify_code,
    classify_error,
    new_client_order_id,
    outcome_of_error,
    validate_place,
)

D = Decimal


def instrument(exchange: str = "binance", market: Market = Market.SPOT) -> Instrument:
    linear = market is Market.LINEAR
    return Instrument(
        exchange=Exchange(exchange),
        market=market,
        symbol="BTC/USDT:USDT" if linear else "BTC/USDT",
        venue_symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        settle="USDT" if linear else None,
        tick_size=D("0.01"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D("100"),
        min_notional=D("5"),
    )


def order(**kw) -> PlaceOrder:
    base = {
        "exchange": "binance",
        "market": Market.SPOT,
        "symbol": "BTC/USDT",
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "qty": D("0.01"),
        "price": D("60000"),
    }
    base.update(kw)
    return PlaceOrder(**base)


# ------------------------------------------------------------------------------ validation
def test_a_valid_order_passes() -> None:
    validate_place(order(), instrument())


@pytest.mark.parametrize(
    ("changes", "text"),
    [
        ({"price": D("60000.005")}, "not a multiple of tick size 0.01"),
        ({"qty": D("0.0105")}, "not a multiple of step size 0.001"),
        ({"qty": D("0")}, "qty must be > 0"),
        ({"qty": D("1000")}, "above max_qty 100"),
        ({"qty": D("0.001"), "price": D("100")}, "below min_notional 5"),
        ({"price": None}, "needs a price"),
        ({"type": OrderType.MARKET}, "market order takes no price"),
        ({"type": OrderType.MARKET, "price": None, "post_only": True}, "cannot be post-only"),
        ({"type": OrderType.MARKET, "price": None, "time_in_force": TimeInForce.FOK}, "FOK"),
        ({"post_only": True, "time_in_force": TimeInForce.IOC}, "post-only conflicts"),
        ({"reduce_only": True}, "reduce-only exists only"),
        ({"position_side": PositionSide.LONG}, "position side exists only"),
        ({"symbol": "ETH/USDT"}, "instrument mismatch"),
    ],
)
def test_invalid_orders_are_refused_before_sending(changes: dict, text: str) -> None:
    with pytest.raises(InvalidOrder, match=re.escape(text)) as info:
        validate_place(order(**changes), instrument())
    assert info.value.code is None  # exconn's own refusal, not the venue's


def test_binance_refuses_reduce_only_in_hedge_mode_bybit_does_not() -> None:
    hedge = {
        "market": Market.LINEAR,
        "symbol": "BTC/USDT:USDT",
        "reduce_only": True,
        "position_side": PositionSide.SHORT,
    }
    with pytest.raises(InvalidOrder, match="hedge mode"):
        validate_place(order(**hedge), instrument("binance", Market.LINEAR))
    validate_place(order(exchange="bybit", **hedge), instrument("bybit", Market.LINEAR))


def test_float_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        order(qty=0.01)
    with pytest.raises(TypeError):
        order(price=60000.0)


# ------------------------------------------------------------------------------ client ids
@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_generated_ids_are_unique_and_valid_on_the_venue(exchange: str) -> None:
    ids = {new_client_order_id(exchange) for _ in range(5000)}
    assert len(ids) == 5000
    rule = BINANCE_CLIENT_ID if exchange == "binance" else BYBIT_CLIENT_ID
    assert all(rule.fullmatch(i) and len(i) <= 36 for i in ids)


def test_ids_stay_unique_with_a_frozen_clock_and_a_stuck_random_source() -> None:
    ids = {
        new_client_order_id("bybit", now_ms=lambda: 1_700_000_000_000, token=lambda n: "0" * 2 * n)
        for _ in range(1000)
    }
    assert len(ids) == 1000


@pytest.mark.parametrize(
    ("exchange", "cid", "ok"),
    [
        ("binance", "my.order:1/a_b-c", True),  # Binance allows . : /
        ("bybit", "my.order:1", False),  # Bybit does not
        ("bybit", "order_1-A", True),
        ("binance", "x" * 36, True),
        ("binance", "x" * 37, False),
        ("bybit", "", False),
        ("binance", "spaces no", False),
        ("binance", "autoclose-123", False),  # the venue's own liquidation orders
        ("binance", "ordér", False),
    ],
)
def test_engine_ids_are_checked(exchange: str, cid: str, ok: bool) -> None:
    if ok:
        assert check_client_order_id(exchange, cid) == cid
    else:
        with pytest.raises(InvalidOrder):
            check_client_order_id(exchange, cid)


def test_assign_keeps_the_engines_id_and_fills_a_missing_one() -> None:
    assert assign_client_order_id(order(client_order_id="mine-1")).client_order_id == "mine-1"
    assigned = assign_client_order_id(order())
    assert assigned.client_order_id and BINANCE_CLIENT_ID.fullmatch(assigned.client_order_id)
    with pytest.raises(InvalidOrder):
        assign_client_order_id(order(client_order_id="bad id"))


# ------------------------------------------------------------------------------ journal
def _reply(kind: str, cid: str, **kw):
    common = {
        "exchange": "binance",
        "market": "spot",
        "symbol": "BTC/USDT",
        "action": "place",
        "client_order_id": cid,
    }
    if kind == "accepted":
        return OrderAccepted(exchange_order_id="42", **common, **kw)
    if kind == "rejected":
        return OrderRejected(code=-2010, message="no", **common)
    return OrderOutcomeUnknown(known="timeout", **common)


def test_the_journal_never_allows_a_second_send_of_an_unknown_intent() -> None:
    journal = IntentJournal()
    o = order(client_order_id="i-1")
    journal.record(o)
    journal.begin_send("binance", "spot", "i-1")
    # While in flight: refused.
    with pytest.raises(OutcomeUnknown) as info:
        journal.begin_send("binance", "spot", "i-1")
    assert info.value.client_order_id == "i-1"
    journal.settle(_reply("unknown", "i-1"))
    # Unknown: refused, again and again, until resolved.
    for _ in range(3):
        with pytest.raises(OutcomeUnknown):
            journal.begin_send("binance", "spot", "i-1")
    assert [i.client_order_id for i in journal.unresolved()] == ["i-1"]
    intent = journal.resolve("binance", "spot", "i-1", exists=True, exchange_order_id="77")
    assert intent.state is IntentState.ACCEPTED and intent.exchange_order_id == "77"
    with pytest.raises(InvalidOrder, match="already accepted"):
        journal.begin_send("binance", "spot", "i-1")
    assert intent.attempts == 1


def test_a_retry_reuses_the_client_id_after_a_rejection_or_a_proven_non_send() -> None:
    journal = IntentJournal()
    o = order(client_order_id="i-2")
    first = journal.record(o)
    journal.begin_send("binance", "spot", "i-2")
    journal.not_sent("binance", "spot", "i-2")  # refused by the limiter before sending
    assert journal.record(o) is first  # the same intent, the same id
    journal.begin_send("binance", "spot", "i-2")
    journal.settle(_reply("rejected", "i-2"))
    journal.begin_send("binance", "spot", "i-2")  # the venue holds no order: may retry
    journal.settle(_reply("accepted", "i-2"))
    assert first.state is IntentState.ACCEPTED and first.attempts == 2
    assert first.exchange_order_id == "42"


def test_unknown_resolved_as_absent_may_be_sent_again_under_the_same_id() -> None:
    journal = IntentJournal()
    journal.record(order(client_order_id="i-3"))
    journal.begin_send("binance", "spot", "i-3")
    journal.settle(_reply("unknown", "i-3"))
    journal.resolve("binance", "spot", "i-3", exists=False)
    assert journal.begin_send("binance", "spot", "i-3").attempts == 2


def test_a_late_event_showing_the_order_exists_blocks_any_resend() -> None:
    journal = IntentJournal()
    journal.record(order(client_order_id="i-4"))
    journal.begin_send("binance", "spot", "i-4")
    journal.settle(_reply("rejected", "i-4"))
    journal.resolve("binance", "spot", "i-4", exists=True)  # the stream says otherwise
    with pytest.raises(InvalidOrder):
        journal.begin_send("binance", "spot", "i-4")


def test_one_client_id_one_order() -> None:
    journal = IntentJournal()
    journal.record(order(client_order_id="i-5"))
    with pytest.raises(InvalidOrder, match="different order"):
        journal.record(order(client_order_id="i-5", qty=D("0.02")))
    with pytest.raises(ValueError):
        journal.record(order())  # no id yet


def test_intents_are_per_exchange_and_market() -> None:
    journal = IntentJournal()
    journal.record(order(client_order_id="same"))
    journal.record(order(client_order_id="same", exchange="bybit"))
    journal.begin_send("binance", "spot", "same")
    journal.begin_send("bybit", "spot", "same")
    assert len(journal) == 2


# ------------------------------------------------------------------------------ classification
@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (OutcomeUnknown(exchange="binance", client_order_id="a"), Outcome.UNKNOWN),
        (errors.ExchangeDown(exchange="binance", code=-1006), Outcome.UNKNOWN),
        (errors.ExchangeError(exchange="binance", code=-1007), Outcome.UNKNOWN),
        (errors.ExchangeDown(exchange="bybit", code=10016), Outcome.UNKNOWN),
        (errors.ExchangeError(exchange="bybit", code=10000), Outcome.UNKNOWN),
        (errors.ExchangeDown(exchange="binance"), Outcome.UNKNOWN),  # 5xx / no answer
        (httpx.ReadTimeout("slow"), Outcome.UNKNOWN),
        (TimeoutError(), Outcome.UNKNOWN),
        (ConnectionResetError(), Outcome.UNKNOWN),  # socket lost during submit
        (httpx.RemoteProtocolError("Server disconnected"), Outcome.UNKNOWN),  # closed unanswered
        (httpx.ReadError("reset"), Outcome.UNKNOWN),
        (RuntimeError("anything else"), Outcome.UNKNOWN),
        (InvalidOrder(exchange="binance", code=-1013), Outcome.REJECTED),
        (errors.InsufficientFunds(exchange="bybit", code=110007), Outcome.REJECTED),
        (errors.RateLimited(exchange="binance", retry_after=1), Outcome.REJECTED),
        (errors.Banned(exchange="binance"), Outcome.REJECTED),
        (errors.ClockSkew(exchange="binance", code=-1021), Outcome.REJECTED),
        (errors.AuthError(exchange="bybit", code=10003), Outcome.REJECTED),
        (errors.OrderNotFound(exchange="binance", code=-2011), Outcome.REJECTED),
        (errors.ExchangeError(exchange="binance", code=-9999), Outcome.UNKNOWN),
    ],
)
def test_classification_table(exc: BaseException, outcome: Outcome) -> None:
    assert classify_error(exc) is outcome


@pytest.mark.parametrize(
    ("exchange", "status", "code", "outcome"),
    [
        ("binance", 500, None, Outcome.UNKNOWN),
        ("binance", 503, None, Outcome.UNKNOWN),
        ("binance", 408, -1007, Outcome.UNKNOWN),
        ("binance", 400, -1006, Outcome.UNKNOWN),
        ("binance", 400, -2010, Outcome.REJECTED),
        ("binance", 429, -1003, Outcome.REJECTED),
        ("bybit", 200, 10000, Outcome.UNKNOWN),
        ("bybit", 200, 10016, Outcome.UNKNOWN),
        ("bybit", None, 20006, Outcome.UNKNOWN),
        ("bybit", 200, 10001, Outcome.REJECTED),
        ("bybit", 200, 110007, Outcome.REJECTED),
        ("bybit", 200, -1007, Outcome.REJECTED),  # a Binance code means nothing on Bybit
    ],
)
def test_code_classification(exchange: str, status, code, outcome: Outcome) -> None:
    assert classify_code(exchange, status, code) is outcome


def test_outcome_of_error_builds_typed_replies_without_secrets() -> None:
    ctx = ReplyContext(
        exchange="binance", market="spot", symbol="BTC/USDT", action="place", client_order_id="c1"
    )
    unknown = outcome_of_error(
        OutcomeUnknown("POST /api/v3/order: timed out", exchange="binance", client_order_id="c1"),
        ctx,
    )
    assert isinstance(unknown, OrderOutcomeUnknown) and unknown.client_order_id == "c1"
    rejected = outcome_of_error(
        InvalidOrder("bad signature=abcdef", exchange="binance", code=-1013), ctx
    )
    assert isinstance(rejected, OrderRejected)
    assert rejected.code == -1013 and rejected.reason == "InvalidOrder"
    assert "abcdef" not in rejected.message
    lost = outcome_of_error(ConnectionResetError("apiKey=SECRET"), ctx)
    assert isinstance(lost, OrderOutcomeUnknown) and "SECRET" not in lost.known
    assert pickle.loads(pickle.dumps(rejected)) == rejected
