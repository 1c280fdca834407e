"""Test-side clients for the USD-M simulator, written from binance.md, not from exconn."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websocket

from exconn.sim import BinanceUsdmSim

# Re-exported: the USD-M tests take it from here with the clients.
from tests.sim.helpers import wait_until as wait_until

TIMEOUT = 10.0


class ManualClock:
    """An injectable server clock that only moves when a test moves it."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


class Rest:
    """httpx client that signs like the Binance docs: HMAC-SHA256 over the query string."""

    def __init__(self, sim: BinanceUsdmSim, key: str, secret: str, clock: Callable[[], int]):
        self.http = httpx.Client(base_url=sim.rest_url, timeout=TIMEOUT)
        self.key, self.secret, self.clock = key, secret, clock

    def public(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def signed(self, method: str, path: str, **params: Any) -> httpx.Response:
        params.setdefault("timestamp", self.clock())
        query = urllib.parse.urlencode(params)
        sig = hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
        return self.http.request(
            method, f"{path}?{query}&signature={sig}", headers={"X-MBX-APIKEY": self.key}
        )

    def keyed(self, method: str, path: str) -> httpx.Response:
        return self.http.request(method, path, headers={"X-MBX-APIKEY": self.key})

    def order(self, **params: Any) -> httpx.Response:
        params.setdefault("symbol", "BTCUSDT")
        return self.signed("POST", "/fapi/v1/order", **params)

    def close(self) -> None:
        self.http.close()


class Ws:
    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=TIMEOUT)

    def text(self) -> str:
        data = self.ws.recv()
        assert isinstance(data, str), data
        return data

    def json(self) -> Any:
        return json.loads(self.text())

    def until(self, predicate: Callable[[Any], bool], limit: int = 5000) -> Any:
        for _ in range(limit):
            msg = self.json()
            if predicate(msg):
                return msg
        raise AssertionError("no matching message")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture
def make_usdm() -> Iterator[Callable[..., BinanceUsdmSim]]:
    started: list[BinanceUsdmSim] = []

    def factory(**kwargs: Any) -> BinanceUsdmSim:
        kwargs.setdefault("seed", 7)
        kwargs.setdefault("depth_interval_ms", 20)
        sim = BinanceUsdmSim(**kwargs)
        started.append(sim)
        sim.start()
        sim.pause()  # tests drive the market with step() so runs repeat exactly
        return sim

    try:
        yield factory
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture
def usdm(make_usdm: Callable[..., BinanceUsdmSim]) -> BinanceUsdmSim:
    return make_usdm()


@pytest.fixture
def rest(usdm: BinanceUsdmSim) -> Iterator[Rest]:
    key, secret = usdm.api_keys()[0]
    client = Rest(usdm, key, secret, lambda: time.time_ns() // 1_000_000)
    try:
        yield client
    finally:
        client.close()
