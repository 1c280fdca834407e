"""OrderCommand's durable intent journal, driven without an actor system (the venue's REST
call replaced): the IN_FLIGHT record is on disk before the send; the answer's record and the
order row for OrderQuery come after the engine has its reply, and are not lost."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from exconn import errors
from exconn.actors import order_command
from exconn.actors.order_command import OrderCommand
from exconn.actors.order_messages import CommandReply, OrderCommandInit, Submitted
from exconn.config import SEAL_KEY_ENV
from exconn.messages import OrderAccepted, OrderOutcomeUnknown, PlaceOrder
from exconn.model.enums import Exchange, Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.orders.journal_store import IntentRecord, JournalStore, store_dir
from exconn.venues.keys import Credentials

D = Decimal
ENGINE, QUERY = "engine", "query"
INST = Instrument(
    exchange=Exchange.BINANCE,
    market=Market.SPOT,
    symbol="BTC/USDT",
    venue_symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    settle=None,
    tick_size=D("0.01"),
    step_size=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D("100"),
    min_notional=D("5"),
)


def _order(cid: str) -> PlaceOrder:
    return PlaceOrder(
        exchange="binance",
        market=Market.SPOT,
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=D("0.01"),
        price=D("60000"),
        client_order_id=cid,
    )


class Harness:
    """An OrderCommand with its durable journal under ``base``; what it sends is recorded
    with the journal's content at that moment."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sent: list[tuple[Any, Any, list[tuple[str, str]]]] = []
        self.at_call: list[list[tuple[str, str]]] = []
        self.answer: Any = None
        cmd: Any = OrderCommand()
        cmd.send = lambda to, message: self.sent.append((to, message, self.journal()))
        cmd.wakeupAfter = lambda *_: None
        init = OrderCommandInit(
            exchange="binance",
            markets=("spot",),
            rest_urls={"spot": "http://127.0.0.1:9"},  # never reached: call is replaced
            credentials=Credentials("key", secret="secret"),
            instruments=(INST,),
            query=QUERY,
            rest_budget_dir=str(base),
            log_level="WARNING",
        )
        cmd.receiveMessage(init, "supervisor")
        cmd.venue.call = self.call
        self.cmd = cmd

    def journal(self) -> list[tuple[str, str]]:
        directory = store_dir(str(self.base))
        assert directory is not None
        store: JournalStore[IntentRecord] = JournalStore(
            directory / "intents-binance.jsonl", IntentRecord
        )
        try:
            return [(str(r.order.client_order_id), r.state) for r in store.load()]
        finally:
            store.close()

    def call(self, market: str, request: Any, decoder: Any = None) -> Any:
        self.at_call.append(self.journal())
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    def close(self) -> None:
        self.cmd.venue.close()
        self.cmd.intent_store.close()


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(SEAL_KEY_ENV, "unit-test-seal")
    # What an actor process does to itself, not to the test process: its log setup, and
    # dying with its parent.
    monkeypatch.setattr(order_command, "configure", lambda level: None)
    monkeypatch.setattr(order_command, "tie_to_parent", lambda: True)
    h = Harness(tmp_path)
    try:
        yield h
    finally:
        h.close()


def _to(harness: Harness, who: str) -> list[tuple[Any, list[tuple[str, str]]]]:
    return [(message, journal) for to, message, journal in harness.sent if to == who]


def test_in_flight_is_on_disk_before_the_send_and_the_answer_after_the_reply(
    harness: Harness,
) -> None:
    harness.answer = {
        "symbol": "BTCUSDT",
        "orderId": 42,
        "clientOrderId": "jr-1",
        "transactTime": 1_700_000_000_000,
        "price": "60000.00",
        "origQty": "0.01000000",
        "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "status": "NEW",
        "timeInForce": "GTC",
        "type": "LIMIT",
        "side": "BUY",
        "workingTime": 1_700_000_000_000,
        "selfTradePreventionMode": "NONE",
    }
    harness.cmd.receiveMessage(_order("jr-1"), ENGINE)

    assert harness.at_call == [[("jr-1", "in_flight")]]  # durable before the send
    [(reply, journal_at_reply)] = _to(harness, ENGINE)
    assert isinstance(reply, OrderAccepted) and reply.exchange_order_id == "42"
    assert journal_at_reply == [("jr-1", "in_flight")]  # the engine is not kept waiting
    assert harness.journal() == [("jr-1", "in_flight"), ("jr-1", "accepted")]
    told = [message for message, _ in _to(harness, QUERY)]
    assert isinstance(told[0], Submitted)
    assert isinstance(told[1], CommandReply) and told[1].reply == reply
    assert told[1].order is not None and told[1].order.exchange_order_id == "42"


def test_an_unknown_outcome_is_written_and_a_resend_refused(harness: Harness) -> None:
    harness.answer = errors.OutcomeUnknown(
        "timed out after sending", exchange="binance", client_order_id="jr-2"
    )
    harness.cmd.receiveMessage(_order("jr-2"), ENGINE)
    [(reply, _)] = _to(harness, ENGINE)
    assert isinstance(reply, OrderOutcomeUnknown)
    assert harness.journal() == [("jr-2", "in_flight"), ("jr-2", "unknown")]

    harness.cmd.receiveMessage(_order("jr-2"), ENGINE)
    assert len(harness.at_call) == 1  # nothing sent again
    assert harness.journal()[-1] == ("jr-2", "unknown")


def test_a_restart_after_the_reply_but_before_the_answer_is_written_resolves_it(
    harness: Harness,
) -> None:
    """Killed between the reply and the deferred write: the intent is in flight on disk, so
    the next process treats it as unknown (refused for a re-send, resolved by query)."""
    harness.answer = {"symbol": "BTCUSDT", "orderId": 7, "clientOrderId": "jr-3", "status": "NEW"}
    harness.cmd._flush_query = lambda: None  # the process dies right after the reply
    harness.cmd.receiveMessage(_order("jr-3"), ENGINE)
    assert harness.journal() == [("jr-3", "in_flight")]
    harness.close()

    again = Harness(harness.base)
    try:
        assert [i.client_order_id for i in again.cmd.journal.unresolved()] == ["jr-3"]
        assert "jr-3" in again.cmd.pending  # resolved by query on a timer
        again.cmd.receiveMessage(_order("jr-3"), ENGINE)
        assert again.at_call == []
        [(refused, _)] = _to(again, ENGINE)
        assert refused.reason == "OutcomeUnknown"
    finally:
        again.close()
