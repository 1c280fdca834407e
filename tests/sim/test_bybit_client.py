"""Test-side Bybit V5 client pieces, written from bybit.md independently of exconn's own
client code (a shared misreading must not hide on both sides). No tests here."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import websocket

from exconn.sim import BybitSim

TIMEOUT = 10.0
Levels = list[tuple[Decimal, Decimal]]


@pytest.fixture
def bybit() -> Iterator[BybitSim]:
    """A paused simulator: tests drive the market with step() so runs repeat exactly."""
    sim = BybitSim(seed=5, depth_interval_ms=20, levels=60)
    sim.start()
    try:
        sim.pause()
        yield sim
    finally:
        sim.stop()


class Rest:
    """Signs V5 requests: HMAC-SHA256 hex over timestamp + key + recvWindow + payload."""

    def __init__(
        self,
        sim: BybitSim,
        key: str | None = None,
        secret: str | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        default_key, default_secret = sim.api_keys()[0]
        self.base, self.key = sim.rest_url, key or default_key
        self.secret = secret or default_secret
        self.clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.http = httpx.Client(timeout=TIMEOUT)

    def headers(self, payload: str) -> dict[str, str]:
        ts, rw = str(self.clock_ms()), "5000"
        sign = hmac.new(
            self.secret.encode(), (ts + self.key + rw + payload).encode(), hashlib.sha256
        ).hexdigest()
        return {
            "X-BAPI-API-KEY": self.key,
            "X-BAPI-TIMESTAMP": ts,
            "X-BAPI-RECV-WINDOW": rw,
            "X-BAPI-SIGN": sign,
        }

    def get(self, path: str, **params: Any) -> httpx.Response:
        query = urlencode(sorted(params.items()))
        return self.http.get(f"{self.base}{path}?{query}", headers=self.headers(query))

    def post(self, path: str, **body: Any) -> httpx.Response:
        text = json.dumps(body)
        headers = {**self.headers(text), "Content-Type": "application/json"}
        return self.http.post(f"{self.base}{path}", content=text, headers=headers)

    def ok(self, method: str, path: str, **params: Any) -> Any:
        r = self.get(path, **params) if method == "GET" else self.post(path, **params)
        body = r.json()
        assert body["retCode"] == 0, body
        return body["result"]


class Ws:
    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=TIMEOUT)

    def send(self, obj: Any) -> None:
        self.ws.send(json.dumps(obj))

    def recv(self) -> Any:
        return json.loads(self.ws.recv())

    def until(self, pred: Callable[[Any], bool], limit: int = 5000) -> Any:
        for _ in range(limit):
            msg = self.recv()
            if pred(msg):
                return msg
        raise AssertionError("no matching message")

    def close(self) -> None:
        self.ws.close()


def private_ws(sim: BybitSim, topics: list[str]) -> Ws:
    key, secret = sim.api_keys()[0]
    ws = Ws(sim.ws_url + "/v5/private")
    expires = time.time_ns() // 1_000_000 + 10_000
    sig = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256).hexdigest()
    ws.send({"req_id": "a", "op": "auth", "args": [key, expires, sig]})
    assert ws.recv()["success"] is True
    ws.send({"op": "subscribe", "args": topics})
    assert ws.recv()["success"] is True
    return ws


class LocalBook:
    """Applies bybit.md §7: snapshot (or u == 1) replaces; size "0" deletes; else set."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.u = 0
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.gaps: list[tuple[int, int]] = []

    def apply(self, msg: dict[str, Any]) -> None:
        data = msg["data"]
        if msg["type"] == "snapshot" or data["u"] == 1:
            self.bids, self.asks = {}, {}
        elif data["u"] <= self.u:
            return
        elif data["u"] != self.u + 1:
            self.gaps.append((self.u, data["u"]))
        for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
            for p, q in levels:
                if Decimal(q) == 0:
                    side.pop(Decimal(p), None)
                else:
                    side[Decimal(p)] = Decimal(q)
        self.u = data["u"]

    def view(self) -> tuple[int, Levels, Levels]:
        bids = sorted(self.bids.items(), reverse=True)[: self.depth]
        asks = sorted(self.asks.items())[: self.depth]
        return self.u, bids, asks
