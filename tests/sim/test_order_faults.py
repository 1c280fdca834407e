"""The order faults of issue 6 (races, faults) on each simulator, seen from real sockets:

- ``stream_before_ack``: the order's private-stream frames are on the wire before its REST
  answer (readable on the private socket the moment the answer is in);
- ``duplicate_fill``: the next fill frame arrives twice, with the same trade id;
- ``drop_after_accept``: the order executes, the HTTP connection closes unanswered (httpx:
  ``RemoteProtocolError``), and the venue holds exactly one order under its client id.

``after_execution`` itself is checked with stand-in writers: it holds the answer until every
writer has flushed, whatever the order they flush in."""

from __future__ import annotations

import asyncio
import json
import select
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
import websocket

from exconn.model.enums import Exchange, Market
from exconn.sim import BinanceSpotSim, BinanceUsdmSim, BybitSim
from exconn.sim.fault_registry import FaultKind, FaultRegistry
from exconn.sim.order_faults import after_execution
from exconn.sim.symbols import DEFAULT_SYMBOLS
from exconn.venues.binance import user_stream as binance
from exconn.venues.bybit import user_stream as bybit
from exconn.venues.keys import Credentials
from tests.sim.helpers import wait_until
from tests.sim.spot_client import Rest as SpotRest
from tests.sim.test_bybit_client import Rest as BybitRest
from tests.sim.test_usdm_helpers import Rest as UsdmRest
from tests.sim.test_user_stream_sims import instruments, pump

TIMEOUT = 10.0
Frame = dict[str, Any]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Venue:
    """One simulator with an open private stream and a signed REST client."""

    name: str
    sim: Any
    ws: websocket.WebSocket

    def place(self, cid: str, crossing: bool) -> httpx.Response:
        """A limit buy: IOC at the best ask (``crossing``, it fills at once) or resting 5 %
        under the bid."""
        raise NotImplementedError

    def orders_with(self, cid: str) -> list[Frame]:
        """The venue's order rows under this client id (a query, not the stream)."""
        raise NotImplementedError

    def accepted(self, response: httpx.Response) -> bool:
        raise NotImplementedError

    def fill_ids(self, frame: Frame) -> list[str]:
        raise NotImplementedError

    def settled(self, frame: Frame) -> bool:
        """The balance/position frame the venue sends after an order's fills."""
        raise NotImplementedError

    def add_fault(self, kind: FaultKind, endpoint: bool = True) -> None:
        self.sim.add_fault(kind, endpoint=self.endpoint if endpoint else None)

    endpoint: str

    def close(self) -> None:
        self.ws.close()

    def frames_until_settled(self) -> list[Frame]:
        """Private frames up to the first balance/position frame after a fill (bounded)."""
        frames: list[Frame] = []
        for _ in range(500):
            frame = json.loads(self.ws.recv())
            frames.append(frame)
            if self.settled(frame) and any(self.fill_ids(f) for f in frames):
                return frames
        raise AssertionError(f"the order's frames never settled: {frames}")


class Spot(Venue):
    name = "binance_spot"
    endpoint = "POST /api/v3/order"

    def __init__(self, sim: BinanceSpotSim) -> None:
        self.sim = sim
        keys = sim.api_keys(0)
        self.rest = SpotRest(sim, keys)
        handler = binance.UserStreamHandler(
            Market.SPOT, instruments(Exchange.BINANCE, Market.SPOT, sim.symbols)
        )
        self.ws = websocket.create_connection(f"{sim.ws_url}/ws-api/v3", timeout=TIMEOUT)
        creds = Credentials(keys.hmac_key, secret=keys.hmac_secret)
        for frame in handler.open_frames(creds, now_ms()):
            self.ws.send(frame)
        pump(self.ws, handler, lambda _: handler.subscribed or handler.error is not None)
        assert handler.subscribed, handler.error

    def place(self, cid: str, crossing: bool) -> httpx.Response:
        _, bids, asks = self.sim.book("BTCUSDT")
        price, qty = asks[0] if crossing else (bids[0][0] * Decimal("0.95"), Decimal("0.001"))
        return self.rest.order(
            symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC" if crossing else "GTC",
            quantity=str(qty), price=str(Decimal(price).quantize(Decimal("0.01"))),
            newClientOrderId=cid,
        )  # fmt: skip

    def orders_with(self, cid: str) -> list[Frame]:
        rows = self.rest.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT")
        return [r for r in rows if r["clientOrderId"] == cid]

    def accepted(self, response: httpx.Response) -> bool:
        return response.status_code == 200

    def fill_ids(self, frame: Frame) -> list[str]:
        event = frame.get("event") or {}
        trade = event.get("e") == "executionReport" and event.get("x") == "TRADE"
        return [str(event["t"])] if trade else []

    def settled(self, frame: Frame) -> bool:
        return (frame.get("event") or {}).get("e") == "outboundAccountPosition"

    def close(self) -> None:
        self.rest.close()
        super().close()


class Usdm(Venue):
    name = "binance_usdm"
    endpoint = "POST /fapi/v1/order"

    def __init__(self, sim: BinanceUsdmSim) -> None:
        self.sim = sim
        key, secret = sim.api_keys()[0]
        creds = Credentials(key, secret=secret)
        handler = binance.UserStreamHandler(
            Market.LINEAR, instruments(Exchange.BINANCE, Market.LINEAR, sim.symbols)
        )
        create = binance.create_listen_key(creds)
        with httpx.Client(base_url=sim.rest_url, timeout=TIMEOUT) as http:
            reply = http.request(create.method, create.path, headers=dict(create.headers))
            assert reply.status_code == 200, reply.text
            handler.on_listen_key(reply.content)
        before = sim.connection_count()
        self.ws = websocket.create_connection(handler.stream_url(sim.ws_url), timeout=TIMEOUT)
        assert sim.wait_for_connections(before + 1, TIMEOUT)
        self.rest = UsdmRest(sim, key, secret, now_ms)

    def place(self, cid: str, crossing: bool) -> httpx.Response:
        top = self.rest.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT").json()
        if crossing:
            price, qty = Decimal(top["askPrice"]), Decimal(top["askQty"])
        else:
            price, qty = (
                (Decimal(top["bidPrice"]) * Decimal("0.95")).quantize(Decimal("0.1")),
                (Decimal("0.01")),
            )
        return self.rest.order(
            side="BUY", type="LIMIT", timeInForce="IOC" if crossing else "GTC",
            quantity=str(qty), price=str(price), newClientOrderId=cid,
        )  # fmt: skip

    def orders_with(self, cid: str) -> list[Frame]:
        # The simulator has no allOrders: the orders these tests count rest (open orders).
        rows = self.rest.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT").json()
        return [r for r in rows if r["clientOrderId"] == cid]

    def accepted(self, response: httpx.Response) -> bool:
        return response.status_code == 200

    def fill_ids(self, frame: Frame) -> list[str]:
        order = frame.get("o") or {}
        trade = frame.get("e") == "ORDER_TRADE_UPDATE" and order.get("x") == "TRADE"
        return [str(order["t"])] if trade else []

    def settled(self, frame: Frame) -> bool:
        return frame.get("e") == "ACCOUNT_UPDATE"

    def close(self) -> None:
        self.rest.close()
        super().close()


class Bybit(Venue):
    name = "bybit"
    endpoint = "POST /v5/order/create"

    def __init__(self, sim: BybitSim) -> None:
        self.sim = sim
        key, secret = sim.api_keys()[0]
        handler = bybit.UserStreamHandler(
            instruments(Exchange.BYBIT, Market.LINEAR, list(DEFAULT_SYMBOLS))
        )
        self.ws = websocket.create_connection(sim.ws_url + bybit.PRIVATE_PATH, timeout=TIMEOUT)
        for frame in handler.open_frames(Credentials(key, secret=secret), now_ms()):
            self.ws.send(frame)
        pump(self.ws, handler, lambda _: handler.subscribed or handler.error is not None)
        assert handler.subscribed, handler.error
        self.rest = BybitRest(sim)

    def place(self, cid: str, crossing: bool) -> httpx.Response:
        self.sim.step(1)  # publish the book the order is priced from
        _, bids, asks = self.sim.book("linear", "BTCUSDT")
        price, qty = asks[0] if crossing else (bids[0][0] * Decimal("0.95"), Decimal("0.01"))
        return self.rest.post(
            "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
            orderType="Limit", timeInForce="IOC" if crossing else "GTC", qty=str(qty),
            price=str(Decimal(price).quantize(Decimal("0.01"))), orderLinkId=cid,
        )  # fmt: skip

    def orders_with(self, cid: str) -> list[Frame]:
        rows: list[Frame] = []
        for path in ("/v5/order/realtime", "/v5/order/history"):
            found = self.rest.ok("GET", path, category="linear", symbol="BTCUSDT", orderLinkId=cid)
            rows += found["list"]
        return list({r["orderId"]: r for r in rows}.values())

    def accepted(self, response: httpx.Response) -> bool:
        return response.status_code == 200 and response.json()["retCode"] == 0

    def fill_ids(self, frame: Frame) -> list[str]:
        if not str(frame.get("topic", "")).startswith("execution"):
            return []
        return [str(d["execId"]) for d in frame.get("data") or []]

    def settled(self, frame: Frame) -> bool:
        return frame.get("topic") == "wallet"

    def close(self) -> None:
        self.rest.http.close()
        super().close()


@pytest.fixture(params=["binance_spot", "binance_usdm", "bybit"])
def venue(request: pytest.FixtureRequest) -> Iterator[Venue]:
    factories: dict[str, Callable[[], Any]] = {
        "binance_spot": lambda: BinanceSpotSim(seed=7, depth_interval_ms=20),
        "binance_usdm": lambda: BinanceUsdmSim(seed=7, depth_interval_ms=20),
        "bybit": lambda: BybitSim(seed=5, depth_interval_ms=20, levels=60),
    }
    wrappers: dict[str, Callable[[Any], Venue]] = {
        "binance_spot": Spot,
        "binance_usdm": Usdm,
        "bybit": Bybit,
    }
    sim = factories[request.param]()
    v: Venue | None = None
    try:
        sim.start()
        sim.pause()
        v = wrappers[request.param](sim)
        yield v
    finally:
        try:
            if v is not None:
                v.close()
        finally:
            sim.stop()


def _readable(ws: websocket.WebSocket) -> bool:
    ready, _, _ = select.select([ws.sock], [], [], 0)
    return bool(ready)


def test_stream_before_ack_puts_the_stream_frames_on_the_wire_first(venue: Venue) -> None:
    venue.add_fault(FaultKind.STREAM_BEFORE_ACK)
    response = venue.place("race-1", crossing=True)
    assert venue.accepted(response), response.text
    # No wait: the frames were written before the answer, so they are already here.
    assert _readable(venue.ws), "the REST answer came before the order's stream frames"
    frames = venue.frames_until_settled()
    assert [i for f in frames for i in venue.fill_ids(f)], "the order filled on the stream"
    stats = venue.sim.stats()
    assert stats["streams_before_ack"] == 1 and stats.get("streams_not_flushed", 0) == 0
    assert venue.sim.faults() == []


def test_a_held_private_stream_holds_the_answer_until_it_flows() -> None:
    """The answer waits for the stream, not for a delay: a stalled private socket keeps the
    executed order's answer back until the stall ends, then both arrive, stream first."""
    sim = BinanceSpotSim(seed=7, depth_interval_ms=20)
    spot: Spot | None = None
    checker: SpotRest | None = None
    try:
        sim.start()
        sim.pause()
        spot = Spot(sim)
        checker = SpotRest(sim, sim.api_keys(0))
        conn = next(c["id"] for c in sim.connections() if "ws-api" in c["path"])
        stall = sim.add_fault("stall", connection=conn, count=None, duration_ms=600_000)
        sim.add_fault(FaultKind.STREAM_BEFORE_ACK, endpoint=spot.endpoint, max_hold_s=60)
        with ThreadPoolExecutor(1) as pool:
            try:
                answer = pool.submit(spot.place, "held-1", True)
                wait_until(
                    lambda: [o for o in orders_of(checker) if o["clientOrderId"] == "held-1"],
                    "the order to execute",
                )
                assert not answer.done(), "answered while the order's stream frames were held"
                assert not _readable(spot.ws)
            finally:
                sim.remove_fault(stall)
            response = answer.result(timeout=30)
        assert spot.accepted(response), response.text
        assert _readable(spot.ws)
        assert [i for f in spot.frames_until_settled() for i in spot.fill_ids(f)]
    finally:
        try:
            if checker is not None:
                checker.close()
            if spot is not None:
                spot.close()
        finally:
            sim.stop()


def orders_of(rest: SpotRest) -> list[Frame]:
    rows: list[Frame] = rest.ok("GET", "/api/v3/allOrders", symbol="BTCUSDT")
    return rows


def test_duplicate_fill_sends_the_next_fill_twice_with_its_trade_id(venue: Venue) -> None:
    venue.add_fault(FaultKind.DUPLICATE_FILL, endpoint=False)
    response = venue.place("dup-1", crossing=True)
    assert venue.accepted(response), response.text
    frames = venue.frames_until_settled()
    ids = [i for f in frames for i in venue.fill_ids(f)]
    counts = Counter(ids)
    first = ids[0]
    assert counts[first] == 2, counts
    assert all(n == 1 for i, n in counts.items() if i != first), counts
    assert venue.sim.stats()["fills_duplicated"] == 1
    # Spent: the next fill is sent once.
    again = venue.place("dup-2", crossing=True)
    assert venue.accepted(again), again.text
    later = Counter(i for f in venue.frames_until_settled() for i in venue.fill_ids(f))
    assert later and all(n == 1 for n in later.values()), later


def test_drop_after_accept_executes_then_closes_unanswered(venue: Venue) -> None:
    venue.add_fault(FaultKind.DROP_AFTER_ACCEPT)
    with pytest.raises(httpx.RemoteProtocolError):
        venue.place("drop-1", crossing=False)
    rows = venue.orders_with("drop-1")
    assert len(rows) == 1, rows  # it executed, once
    assert venue.sim.stats()["drops_after_accept"] == 1
    # The fault is spent and the client's pool recovers: the next order is answered.
    assert venue.accepted(venue.place("drop-2", crossing=False))
    assert len(venue.orders_with("drop-2")) == 1


# ------------------------------------------------------------------ after_execution itself
class _Writer:
    """Stands in for a QueuedWriter: ``flushed`` waits until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked = 0

    async def flushed(self, timeout: float) -> bool:
        self.asked += 1
        await self.release.wait()
        return True


def test_after_execution_holds_the_answer_until_every_writer_has_flushed() -> None:
    async def scenario() -> None:
        faults = FaultRegistry()
        faults.add(FaultKind.STREAM_BEFORE_ACK, endpoint="POST /x")
        writers = [_Writer(), _Writer()]
        stats: Counter[str] = Counter()
        where = {"venue": None, "endpoint": "POST /x", "symbol": None}
        task = asyncio.create_task(after_execution(faults, 0, where, writers, stats))
        for _ in range(20):  # let the task run as far as it can
            await asyncio.sleep(0)
        assert [w.asked for w in writers] == [1, 1] and not task.done()
        writers[1].release.set()
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done(), "answered before the first writer flushed"
        writers[0].release.set()
        assert await asyncio.wait_for(task, 5) is False  # held, then answered (not dropped)
        assert stats["streams_before_ack"] == 1
        # Spent: the next request is not held at all.
        assert await after_execution(faults, 0, where, [_Writer()], stats) is False

    asyncio.run(scenario())


def test_after_execution_drop_and_targets() -> None:
    async def scenario() -> None:
        faults = FaultRegistry()
        faults.add(FaultKind.DROP_AFTER_ACCEPT, endpoint="POST /order")
        stats: Counter[str] = Counter()
        other = {"venue": None, "endpoint": "DELETE /order", "symbol": None}
        assert await after_execution(faults, 0, other, [], stats) is False
        where = {"venue": None, "endpoint": "POST /order", "symbol": None}
        assert await after_execution(faults, 0, where, [], stats) is True
        assert await after_execution(faults, 0, where, [], stats) is False  # once
        assert stats["drops_after_accept"] == 1

    asyncio.run(scenario())
