"""The blocking WebSocket request session (exconn.transport.ws_request) over a fake socket,
and the venues' order-entry WebSocket protocols (answer keys, session opening, frames)."""

from __future__ import annotations

import json
from collections import deque
from decimal import Decimal
from typing import Any

import pytest

from exconn.config import Config, ExchangeConfig
from exconn.errors import ConfigError
from exconn.messages import CancelOrder, PlaceOrder
from exconn.model.enums import Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.transport.ws_request import AnswerLost, RequestNotSent, WsRequestSession
from exconn.venues.binance import order_entry as binance
from exconn.venues.bybit import order_entry as bybit
from exconn.venues.keys import Credentials


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeSocket:
    """Frames queued by the test; ``None`` in the queue is a control frame, an exception is
    raised when reached. An empty queue times out (advancing the clock past the wait)."""

    def __init__(self, clock: Clock, frames: list[Any] | None = None) -> None:
        self.clock = clock
        self.frames: deque[Any] = deque(frames or [])
        self.sent: list[bytes] = []
        self.closed = False
        self.fail_send = False
        self.replies: dict[str, Any] = {}  # reply to a sent frame whose id/op matches

    def send(self, data: bytes) -> None:
        if self.closed or self.fail_send:
            raise ConnectionError("broken pipe")
        self.sent.append(data)
        msg = json.loads(data)
        key = msg.get("id") or msg.get("reqId") or f"op:{msg.get('op')}"
        if key in self.replies:
            self.frames.append(self.replies.pop(key))

    def recv(self, timeout: float) -> bytes | str | None:
        if not self.frames:
            self.clock.now += timeout
            raise TimeoutError
        item = self.frames.popleft()
        if isinstance(item, BaseException):
            raise item
        return item if item is None or isinstance(item, bytes | str) else json.dumps(item)

    def readable(self) -> bool:
        return bool(self.frames)

    def close(self) -> None:
        self.closed = True


class Connector:
    def __init__(self, sockets: list[FakeSocket | Exception]) -> None:
        self.sockets = deque(sockets)
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> FakeSocket:
        self.calls += 1
        item = self.sockets.popleft()
        if isinstance(item, Exception):
            raise item
        return item


class Protocol:
    max_idle_s = 60.0

    def __init__(self, open_frames: list[tuple[str, bytes]] | None = None) -> None:
        self._open = open_frames or []

    def open_frames(self, now_ms: int) -> list[tuple[str, bytes]]:
        return list(self._open)

    def open_error(self, answer: Any) -> str | None:
        return None if answer.get("ok") else "refused"

    def answer_key(self, message: Any) -> str | None:
        return str(message["id"]) if isinstance(message, dict) and "id" in message else None


def _session(sockets: list[Any], clock: Clock, protocol: Any = None) -> WsRequestSession:
    return WsRequestSession(
        "ws://127.0.0.1:1/x",
        protocol or Protocol(),
        timeout_s=5.0,
        connect_timeout_s=5.0,
        monotonic=clock,
        now_ms=lambda: 1_700_000_000_000,
        connector=Connector(sockets),
    )


def _frame(req_id: str) -> bytes:
    return json.dumps({"id": req_id, "method": "order.place"}).encode()


def test_the_answer_with_the_request_id_is_returned_and_other_frames_are_ignored() -> None:
    clock = Clock()
    sock = FakeSocket(clock, [{"id": "old", "late": True}, None, "not json", {"event": "x"}])
    sock.replies["r1"] = {"id": "r1", "result": 1}
    session = _session([sock], clock)
    assert session.request("r1", _frame("r1")) == {"id": "r1", "result": 1}
    assert sock.sent == [_frame("r1")]
    # Frames already waiting are read before the send: the late answer, the push, the
    # garbage; none of them is taken for the answer.
    assert session.stats["ignored_frames"] == 3
    assert session.stats["malformed_frames"] == 1


def test_no_answer_in_time_is_answer_lost_and_the_next_request_uses_a_new_socket() -> None:
    clock = Clock()
    first, second = FakeSocket(clock), FakeSocket(clock)
    second.replies["r2"] = {"id": "r2"}
    session = _session([first, second], clock)
    with pytest.raises(AnswerLost):
        session.request("r1", _frame("r1"))
    assert first.sent == [_frame("r1")] and first.closed
    assert session.request("r2", _frame("r2")) == {"id": "r2"}
    assert second.sent == [_frame("r2")]  # r1 is never sent again
    assert session.stats["connects"] == 2 and session.stats["timeouts"] == 1


def test_a_socket_lost_after_the_send_is_answer_lost() -> None:
    clock = Clock()
    sock = FakeSocket(clock)
    sock.replies["r1"] = ConnectionError("reset by peer")
    session = _session([sock], clock)
    with pytest.raises(AnswerLost):
        session.request("r1", _frame("r1"))
    assert sock.sent == [_frame("r1")]
    assert not session.connected


def test_a_failing_send_is_answer_lost_not_not_sent() -> None:
    # Part of the frame may have left: the venue may act on it.
    clock = Clock()
    sock = FakeSocket(clock)
    sock.fail_send = True
    session = _session([sock], clock)
    with pytest.raises(AnswerLost):
        session.request("r1", _frame("r1"))


def test_a_failed_connect_is_request_not_sent() -> None:
    clock = Clock()
    session = _session([ConnectionError("refused")], clock)
    with pytest.raises(RequestNotSent):
        session.request("r1", _frame("r1"))
    assert session.stats["connect_failures"] == 1


def test_the_session_opening_is_awaited_before_the_request_and_a_refusal_sends_nothing() -> None:
    clock = Clock()
    auth = (json.dumps({"id": "auth"}).encode(), json.dumps({"id": "auth"}).encode())
    refused = FakeSocket(clock)
    refused.replies["auth"] = {"id": "auth", "ok": False}
    ok = FakeSocket(clock)
    ok.replies["auth"] = {"id": "auth", "ok": True}
    ok.replies["r1"] = {"id": "r1"}
    session = _session([refused, ok], clock, Protocol([("auth", auth[0])]))
    with pytest.raises(RequestNotSent):
        session.request("r1", _frame("r1"))
    assert refused.sent == [auth[0]] and refused.closed
    assert session.request("r1", _frame("r1")) == {"id": "r1"}
    assert ok.sent == [auth[0], _frame("r1")]


def test_an_unanswered_session_opening_is_request_not_sent() -> None:
    clock = Clock()
    silent = FakeSocket(clock)
    session = _session([silent], clock, Protocol([("auth", b'{"op":"auth"}')]))
    with pytest.raises(RequestNotSent):
        session.request("r1", _frame("r1"))
    assert silent.sent == [b'{"op":"auth"}']


def test_a_session_opening_that_cannot_be_built_leaves_no_half_open_socket() -> None:
    class NoKeys(Protocol):
        def open_frames(self, now_ms: int) -> list[tuple[str, bytes]]:
            raise ConfigError("no credentials")

    clock = Clock()
    sock = FakeSocket(clock)
    session = _session([sock], clock, NoKeys())
    with pytest.raises(RequestNotSent):
        session.request("r1", _frame("r1"))
    assert sock.sent == [] and sock.closed and not session.connected


def test_a_socket_idle_too_long_is_replaced_before_the_send() -> None:
    clock = Clock()
    first, second = FakeSocket(clock), FakeSocket(clock)
    first.replies["r1"] = {"id": "r1"}
    second.replies["r2"] = {"id": "r2"}
    session = _session([first, second], clock)
    session.request("r1", _frame("r1"))
    clock.now += Protocol.max_idle_s + 1
    session.request("r2", _frame("r2"))
    assert first.closed and first.sent == [_frame("r1")]
    assert second.sent == [_frame("r2")]
    assert session.stats["idle_replaced"] == 1


def test_a_socket_the_venue_closed_while_idle_is_found_before_the_send() -> None:
    clock = Clock()
    first, second = FakeSocket(clock), FakeSocket(clock)
    first.replies["r1"] = {"id": "r1"}
    second.replies["r2"] = {"id": "r2"}
    session = _session([first, second], clock)
    session.request("r1", _frame("r1"))
    first.frames.append(ConnectionError("closed by the venue"))
    assert session.request("r2", _frame("r2")) == {"id": "r2"}
    assert first.sent == [_frame("r1")]  # r2 never went to the dead socket
    assert session.stats["closed_while_idle"] == 1


# -- configuration --------------------------------------------------------------------------------
def test_order_entry_urls_by_venue_and_market() -> None:
    bybit_live = ExchangeConfig(name="bybit", markets=("spot", "linear"), order_entry="ws")
    assert bybit_live.order_ws_urls() == {
        "spot": "wss://stream.bybit.com/v5/trade",
        "linear": "wss://stream.bybit.com/v5/trade",
    }
    # Binance: spot over the WebSocket API, USD-M stays on REST.
    binance = ExchangeConfig(name="binance", markets=("spot", "linear"), order_entry="ws")
    assert set(binance.order_ws_urls()) == {"spot"}
    assert binance.order_ws_urls()["spot"].endswith("/ws-api/v3")
    assert ExchangeConfig(name="bybit", markets=("linear",)).order_ws_urls() == {}
    with pytest.raises(ConfigError):
        ExchangeConfig(name="bybit", environment="demo", order_entry="ws")
    with pytest.raises(ConfigError):
        ExchangeConfig(name="bybit", order_entry="fix")
    sim = Config.for_sim(
        "http://127.0.0.1:1", "ws://127.0.0.1:2", bybit=("http://127.0.0.1:3", "ws://127.0.0.1:4"),
        order_entry="ws",
    )  # fmt: skip
    urls = {e.name: e.order_ws_urls() for e in sim.exchanges}
    assert urls["binance"] == {"spot": "ws://127.0.0.1:2/ws-api/v3"}
    assert urls["bybit"]["linear"] == "ws://127.0.0.1:4/v5/trade"
    default = Config.for_sim("http://127.0.0.1:1", "ws://127.0.0.1:2")
    assert all(e.order_ws_urls() == {} for e in default.exchanges)


# -- venue protocols ------------------------------------------------------------------------------
CREDS = Credentials("key-1234", secret="s3cret")
SPOT = Instrument(
    exchange="binance", market=Market.SPOT, symbol="BTC/USDT", venue_symbol="BTCUSDT",
    base="BTC", quote="USDT", settle=None, tick_size=Decimal("0.01"), step_size=Decimal("0.00001"),
    min_qty=Decimal("0.00001"),
)  # fmt: skip
LINEAR = Instrument(
    exchange="bybit", market=Market.LINEAR, symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT",
    base="BTC", quote="USDT", settle="USDT", tick_size=Decimal("0.1"), step_size=Decimal("0.001"),
    min_qty=Decimal("0.001"),
)  # fmt: skip


def _order(exchange: str, inst: Instrument) -> PlaceOrder:
    return PlaceOrder(
        exchange, inst.market, inst.symbol, OrderSide.BUY, OrderType.LIMIT,
        Decimal("0.01"), Decimal("50000"), client_order_id="cid-1",
    )  # fmt: skip


def test_binance_ws_entry_signs_each_request_and_matches_answers_by_id() -> None:
    entry = binance.WsEntry(CREDS)
    assert entry.open_frames(0) == []
    assert entry.supports("spot", "place") and entry.supports("spot", "cancel")
    assert not entry.supports("spot", "amend") and not entry.supports("linear", "place")
    frame = json.loads(entry.build("place", _order("binance", SPOT), SPOT, req_id="q1",
                                   timestamp_ms=1_700_000_000_000))  # fmt: skip
    assert frame["id"] == "q1" and frame["method"] == "order.place"
    params = frame["params"]
    assert params["newClientOrderId"] == "cid-1" and params["apiKey"] == "key-1234"
    assert params["timestamp"] == 1_700_000_000_000 and params["signature"]
    assert entry.answer_key({"id": "q1", "status": 200, "result": {}}) == "q1"
    assert entry.answer_key({"e": "executionReport"}) is None
    assert entry.result_of({"id": "q1", "status": 200, "result": {"orderId": 7}}) == {"orderId": 7}
    cancel = CancelOrder(exchange="binance", market=Market.SPOT, symbol="BTC/USDT",
                         client_order_id="cid-1")  # fmt: skip
    frame = json.loads(entry.build("cancel", cancel, SPOT, req_id="q2", timestamp_ms=1))
    assert frame["method"] == "order.cancel" and frame["params"]["origClientOrderId"] == "cid-1"
    assert "s3cret" not in repr(entry)
    with pytest.raises(ConfigError):
        binance.WsEntry(None).build(
            "place", _order("binance", SPOT), SPOT, req_id="q", timestamp_ms=1
        )


def test_bybit_ws_entry_authenticates_once_and_sends_unsigned_order_ops() -> None:
    entry = bybit.WsEntry(CREDS)
    ((key, auth),) = entry.open_frames(1_700_000_000_000)
    body = json.loads(auth)
    assert key == "op:auth" and body["op"] == "auth"
    assert body["args"][0] == "key-1234" and body["args"][1] == 1_700_000_005_000
    assert entry.open_error({"retCode": 0, "retMsg": "OK", "op": "auth"}) is None
    assert "10004" in str(entry.open_error({"retCode": 10004, "retMsg": "sign", "op": "auth"}))
    assert entry.answer_key({"retCode": 0, "op": "auth", "connId": "c"}) == "op:auth"
    frame = json.loads(entry.build("place", _order("bybit", LINEAR), LINEAR, req_id="b1",
                                   timestamp_ms=1_700_000_000_000))  # fmt: skip
    assert frame["op"] == "order.create" and frame["reqId"] == "b1"
    assert frame["header"]["X-BAPI-TIMESTAMP"] == "1700000000000"
    assert frame["args"][0]["orderLinkId"] == "cid-1" and frame["args"][0]["category"] == "linear"
    assert entry.answer_key({"reqId": "b1", "retCode": 0, "op": "order.create"}) == "b1"
    assert entry.supports("linear", "amend") and not entry.supports("linear", "cancel_all")
    with pytest.raises(ConfigError):
        bybit.WsEntry(None).open_frames(0)


# -- the REST budget a WebSocket order draws on ---------------------------------------------------
def test_a_websocket_order_draws_on_the_rest_budget() -> None:
    import httpx

    from exconn.errors import RateLimited
    from exconn.transport.rest import RestClient
    from exconn.venues.bybit.endpoints import REST

    def no_http(request: httpx.Request) -> httpx.Response:
        raise AssertionError("reserve sends nothing")

    rest = RestClient(
        "http://127.0.0.1:1",
        exchange="bybit",
        venue=REST,
        max_wait=0.0,
        transport=httpx.MockTransport(no_http),
    )
    try:
        request = bybit.place_request(_order("bybit", LINEAR), LINEAR)
        reserved = 0
        with pytest.raises(RateLimited):  # refused before anything is sent, as over REST
            for _ in range(11):
                rest.reserve(request)
                reserved += 1
        # Linear create: 10 a second per UID (the limiter may keep a margin below it).
        assert 1 <= reserved <= 10
    finally:
        rest.close()
