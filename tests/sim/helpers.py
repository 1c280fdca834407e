"""Test-side clients for the simulator, written from the Binance reference independently
of exconn's own client code (a shared misreading must not hide on both sides)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import websocket

DEFAULT_TIMEOUT = 10.0
Levels = list[tuple[Decimal, Decimal]]
WIRE_NUMBER = re.compile(r"^\d+\.\d{8}$")  # Binance prints 8 decimals


def load(payloads: Path, name: str) -> Any:
    return json.loads((payloads / name).read_text())


def same_shape(ours: dict[str, Any], reference: dict[str, Any]) -> None:
    """Every reference key is present with the same JSON type."""
    for key, value in reference.items():
        assert key in ours, f"missing {key!r}"
        assert type(ours[key]) is type(value), f"{key!r}: {ours[key]!r} vs {value!r}"


def wait_until(condition: Callable[[], Any], what: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Poll a condition with a bounded deadline; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


class WsClient:
    """Blocking websocket-client wrapper whose every receive has a deadline."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout)
        self._timeout = timeout
        self._next_id = 1

    def send(self, obj: Any) -> None:
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def request(self, method: str, params: list[Any] | None = None) -> int:
        request_id = self._next_id
        self._next_id += 1
        msg: dict[str, Any] = {"method": method, "id": request_id}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return request_id

    def recv_text(self) -> str:
        data = self.ws.recv()
        assert isinstance(data, str), f"expected a text frame, got {data!r}"
        return data

    def recv_json(self) -> Any:
        return json.loads(self.recv_text())

    def recv_until(self, predicate: Callable[[Any], bool], limit: int = 10_000) -> list[Any]:
        """Messages up to and including the first that matches (bounded count)."""
        seen = []
        for _ in range(limit):
            msg = self.recv_json()
            seen.append(msg)
            if predicate(msg):
                return seen
        raise AssertionError(f"no matching message within {limit} messages")

    def response(self, request_id: int) -> tuple[Any, list[Any]]:
        """The response to `request_id` and the stream events received before it."""
        seen = self.recv_until(lambda m: isinstance(m, dict) and m.get("id") == request_id
                               and "e" not in m and "stream" not in m)
        return seen[-1], seen[:-1]

    def close(self) -> None:
        self.ws.close()


def event_of(msg: dict[str, Any]) -> dict[str, Any]:
    return msg["data"] if "stream" in msg else msg


class LocalBook:
    """Binance spot local book, procedure of binance.md §7.1."""

    def __init__(self) -> None:
        self.buffer: list[dict[str, Any]] = []
        self.update_id: int | None = None
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    @property
    def synced(self) -> bool:
        return self.update_id is not None

    def on_event(self, event: dict[str, Any]) -> None:
        if self.update_id is None:
            self.buffer.append(event)
        else:
            self._apply(event)

    def load_snapshot(self, snapshot: dict[str, Any]) -> None:
        last = snapshot["lastUpdateId"]
        if self.buffer and last < self.buffer[0]["U"]:
            raise AssertionError("snapshot older than the first buffered event")
        self.bids = {Decimal(p): Decimal(q) for p, q in snapshot["bids"]}
        self.asks = {Decimal(p): Decimal(q) for p, q in snapshot["asks"]}
        self.update_id = last
        pending, self.buffer = [e for e in self.buffer if e["u"] > last], []
        for event in pending:
            self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        assert self.update_id is not None
        if event["u"] < self.update_id:
            return
        if event["U"] > self.update_id + 1:
            raise AssertionError(f"gap: U={event['U']} after {self.update_id}")
        for side, levels in ((self.bids, event["b"]), (self.asks, event["a"])):
            for price, qty in levels:
                if Decimal(qty) == 0:
                    side.pop(Decimal(price), None)
                else:
                    side[Decimal(price)] = Decimal(qty)
        self.update_id = event["u"]

    def view(self) -> tuple[int | None, Levels, Levels]:
        return (
            self.update_id,
            sorted(self.bids.items(), reverse=True),
            sorted(self.asks.items()),
        )
