"""OrderCommand's order WebSocket and the REST budget it shares, driven without an actor system
(a fake WebSocket session, REST over ``httpx.MockTransport``, a fixed wall clock): a venue's
rate-limit answer over the WebSocket stops the REST traffic it shares a budget with, and an
order that falls back to REST (socket not opened) is counted once."""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from exconn.actors import order_command
from exconn.actors.order_command import OrderCommand
from exconn.actors.order_messages import OrderCommandInit
from exconn.config import SEAL_KEY_ENV
from exconn.messages import CancelAll, OrderAccepted, OrderRejected, PlaceOrder
from exconn.model.enums import Exchange, Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.transport.rest import RestClient
from exconn.transport.ws_request import RequestNotSent
from exconn.venues.bybit.endpoints import uid_limit
from exconn.venues.driver import venue_rest_client
from exconn.venues.keys import Credentials

D = Decimal
ENGINE = "engine"
URL = "http://127.0.0.1:9"  # never reached: the transport is a mock
CREDS = Credentials("key-1234", secret="s3cret")


def _instrument(exchange: Exchange, market: Market, symbol: str, settle: str | None) -> Instrument:
    return Instrument(
        exchange=exchange,
        market=market,
        symbol=symbol,
        venue_symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        settle=settle,
        tick_size=D("0.01"),
        step_size=D("0.001"),
        min_qty=D("0.001"),
        max_qty=D("100"),
        min_notional=D("5"),
    )


BINANCE = _instrument(Exchange.BINANCE, Market.SPOT, "BTC/USDT", None)
BYBIT = _instrument(Exchange.BYBIT, Market.LINEAR, "BTC/USDT:USDT", "USDT")


def _order(inst: Instrument, cid: str) -> PlaceOrder:
    return PlaceOrder(
        exchange=str(inst.exchange),
        market=inst.market,
        symbol=inst.symbol,
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=D("0.01"),
        price=D("60000"),
        client_order_id=cid,
    )


class FakeSession:
    """``WsRequestSession`` as OrderCommand uses it: each request takes the next answer (a
    function of the request id, or an exception to raise)."""

    def __init__(self, *answers: Callable[[str], Any] | BaseException) -> None:
        self.answers = deque(answers)
        self.frames: list[Any] = []

    def request(self, req_id: str, frame: bytes) -> Any:
        item = self.answers.popleft()
        if isinstance(item, BaseException):
            raise item
        self.frames.append(json.loads(frame))
        return item(req_id)

    def close(self) -> None:
        return None


class Harness:
    """An OrderCommand for one market of ``inst``'s exchange, with order entry over a fake
    WebSocket session and REST over a mock transport that records the paths it was sent."""

    def __init__(
        self, base: Path, inst: Instrument, session: FakeSession, server_ahead_ms: int = 0
    ) -> None:
        self.inst = inst
        self.server_ahead_ms = server_ahead_ms
        self.market = str(inst.market)
        self.exchange = str(inst.exchange)
        self.now_ms = int(time.time() * 1000)  # fixed: stops and windows do not move on
        self.paths: list[str] = []
        self.replies: list[Any] = []
        cmd: Any = OrderCommand()
        cmd.send = lambda to, message: self.replies.append(message) if to == ENGINE else None
        cmd.wakeupAfter = lambda *_: None
        init = OrderCommandInit(
            exchange=self.exchange,
            markets=(self.market,),
            rest_urls={self.market: URL},
            credentials=CREDS,
            instruments=(inst,),
            rest_budget_dir=str(base),
            log_level="WARNING",
            order_ws_urls={self.market: "ws://127.0.0.1:9"},
        )
        cmd.receiveMessage(init, "supervisor")
        cmd.venue.rest[self.market].close()
        self.rest: RestClient = venue_rest_client(
            self.exchange,
            self.market,
            URL,
            signer=cmd.venue.endpoints.RestSigner(CREDS),
            budget_dir=str(base),
            max_wait=0.0,
            wall=lambda: self.now_ms / 1000,
            transport=httpx.MockTransport(self.http),
        )
        cmd.venue.rest[self.market] = self.rest
        cmd.ws_sessions[self.market].close()
        cmd.ws_sessions[self.market] = session
        self.cmd = cmd

    def http(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/v3/time":
            return httpx.Response(200, json={"serverTime": self.server_ms})
        if path == "/v5/market/time":
            nano = str(self.server_ms * 1_000_000)
            return httpx.Response(200, json={"retCode": 0, "result": {"timeNano": nano}})
        self.paths.append(path)
        if self.exchange == "bybit":
            cid = json.loads(request.content)["orderLinkId"]
            body = {"retCode": 0, "retMsg": "OK", "result": {"orderId": "7", "orderLinkId": cid}}
            return httpx.Response(200, json=body)
        return httpx.Response(200, json=[])

    @property
    def server_ms(self) -> int:
        return self.now_ms + self.server_ahead_ms

    def send(self, message: Any) -> Any:
        self.cmd.receiveMessage(message, ENGINE)
        return self.replies[-1]

    def close(self) -> None:
        self.cmd.venue.close()
        if self.cmd.intent_store is not None:
            self.cmd.intent_store.close()


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(SEAL_KEY_ENV, "unit-test-seal")
    # What an actor process does to itself, not to the test process.
    monkeypatch.setattr(order_command, "configure", lambda level: None)
    monkeypatch.setattr(order_command, "tie_to_parent", lambda: True)
    made: list[Harness] = []

    def make(inst: Instrument, session: FakeSession, server_ahead_ms: int = 0) -> Harness:
        made.append(Harness(tmp_path, inst, session, server_ahead_ms))
        return made[-1]

    try:
        yield make
    finally:
        for h in made:
            h.close()


def test_a_binance_ws_429_refuses_the_next_rest_request_without_sending(harness: Any) -> None:
    def too_much_weight(req_id: str) -> dict[str, Any]:
        now = h.now_ms
        error = {
            "code": -1003,
            "msg": "Too much request weight used; current limit is 6000 per 1 MINUTE.",
            "data": {"serverTime": now, "retryAfter": now + 60_000},
        }
        return {"id": req_id, "status": 429, "error": error}

    session = FakeSession(too_much_weight)
    h = harness(BINANCE, session)

    placed = h.send(_order(BINANCE, "c-1"))
    # The order's own reply is as before: refused, nothing was placed.
    assert isinstance(placed, OrderRejected) and placed.reason == "RateLimited"
    assert placed.code == -1003 and len(session.frames) == 1

    # Cancel-all has no WebSocket form on Binance: REST, refused before anything is sent.
    refused = h.send(CancelAll(exchange="binance", market=Market.SPOT, symbol="BTC/USDT"))
    assert isinstance(refused, OrderRejected) and refused.reason == "RateLimited"
    assert "not sent" in refused.message
    assert h.paths == []

    # Nor over the WebSocket: the budget is the host's.
    again = h.send(_order(BINANCE, "c-2"))
    assert isinstance(again, OrderRejected) and again.reason == "RateLimited"
    assert len(session.frames) == 1


def test_a_bybit_ws_10006_stops_the_rest_endpoint_until_its_reset(harness: Any) -> None:
    def too_many_visits(req_id: str) -> dict[str, Any]:
        header = {
            "X-Bapi-Limit": "10",
            "X-Bapi-Limit-Status": "0",
            "X-Bapi-Limit-Reset-Timestamp": str(h.now_ms + 1500),
        }
        return {"reqId": req_id, "retCode": 10006, "retMsg": "Too many visits!", "header": header}

    session = FakeSession(too_many_visits)
    h = harness(BYBIT, session)
    placed = h.send(_order(BYBIT, "c-1"))
    assert isinstance(placed, OrderRejected) and placed.reason == "RateLimited"

    h.cmd.ws_sessions.clear()  # the next order goes over REST
    refused = h.send(_order(BYBIT, "c-2"))
    assert isinstance(refused, OrderRejected) and refused.reason == "RateLimited"
    assert "not sent" in refused.message and h.paths == []


def test_an_order_falling_back_to_rest_is_counted_once(harness: Any) -> None:
    """The socket cannot be opened: the WebSocket reservation is released and REST reserves
    again; the per-UID create budget holds one unit for the one order sent. The venue's clock
    is ahead: the first reservation is made before the clock is synced (for the WebSocket
    timestamp) and released at the time it was made, not at the synced time."""
    session = FakeSession(RequestNotSent("connect failed"), RequestNotSent("connect failed"))
    h = harness(BYBIT, session, server_ahead_ms=3000)
    limit = uid_limit("/v5/order/create", "linear")
    limiter = h.rest.limiter
    assert limiter is not None

    placed = h.send(_order(BYBIT, "c-1"))
    assert isinstance(placed, OrderAccepted)
    assert h.paths == ["/v5/order/create"] and session.frames == []
    assert limiter.used(limit, h.server_ms) == 1
    assert limiter.used(limit, h.now_ms) == 0  # the unsynced reservation was given back

    assert isinstance(h.send(_order(BYBIT, "c-2")), OrderAccepted)
    assert limiter.used(limit, h.server_ms) == 2
