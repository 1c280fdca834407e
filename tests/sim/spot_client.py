"""Signed Binance spot clients for the simulator tests, written from binance.md §2 only
(not from the simulator's or exconn's code)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from exconn.sim import BinanceSpotSim
from exconn.sim.binance_spot_keys import ApiKeys
from tests.sim.helpers import WsClient


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def sign(keys: ApiKeys, kind: str, payload: bytes) -> str:
    if kind == "hmac":
        return hmac.new(keys.hmac_secret.encode(), payload, hashlib.sha256).hexdigest()
    pem = keys.ed25519_private_pem if kind == "ed25519" else keys.rsa_private_pem
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(payload)
    else:
        assert isinstance(key, rsa.RSAPrivateKey)
        raw = key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(raw).decode()


def api_key(keys: ApiKeys, kind: str) -> str:
    return {"hmac": keys.hmac_key, "ed25519": keys.ed25519_key, "rsa": keys.rsa_key}[kind]


class Rest:
    """Signed REST as binance.md §2.3: the signature covers the exact query string sent."""

    def __init__(self, sim: BinanceSpotSim, keys: ApiKeys, kind: str = "hmac") -> None:
        self.sim, self.keys, self.kind = sim, keys, kind
        self.client = httpx.Client(base_url=sim.rest_url, timeout=10)

    def call(self, method: str, path: str, **params: Any) -> httpx.Response:
        params.setdefault("timestamp", now_ms())
        query = urlencode({k: str(v) for k, v in params.items()})
        signature = quote(sign(self.keys, self.kind, query.encode()), safe="")
        return self.client.request(
            method,
            f"{path}?{query}&signature={signature}",
            headers={"X-MBX-APIKEY": api_key(self.keys, self.kind)},
        )

    def ok(self, method: str, path: str, **params: Any) -> Any:
        response = self.call(method, path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def order(self, **params: Any) -> httpx.Response:
        return self.call("POST", "/api/v3/order", **params)

    def close(self) -> None:
        self.client.close()


class WsApi:
    """The WebSocket API with requests signed as binance.md §2.3 (sorted params)."""

    def __init__(self, sim: BinanceSpotSim, query: str = "") -> None:
        self.client = WsClient(f"{sim.ws_url}/ws-api/v3{query}")
        self._next = 1
        self.events: list[dict[str, Any]] = []  # user-data events seen while waiting

    def signed_params(self, keys: ApiKeys, kind: str, **params: Any) -> dict[str, Any]:
        params = {"apiKey": api_key(keys, kind), "timestamp": now_ms(), **params}
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params)).encode()
        return {**params, "signature": sign(keys, kind, payload)}

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = f"req-{self._next}"
        self._next += 1
        msg: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.client.send(json.dumps(msg))
        for _ in range(10_000):
            frame = self.client.recv_json()
            if "subscriptionId" in frame and "event" in frame:
                self.events.append(frame)
            elif frame.get("id") == request_id:
                return frame
        raise AssertionError("no response")

    def next_event(self) -> dict[str, Any]:
        if self.events:
            return self.events.pop(0)
        frame = self.client.recv_json()
        assert "event" in frame, frame
        return frame

    def events_until(self, predicate: Any, limit: int = 1000) -> list[dict[str, Any]]:
        out = []
        for _ in range(limit):
            event = self.next_event()
            out.append(event)
            if predicate(event["event"]):
                return out
        raise AssertionError("event never came")

    def close(self) -> None:
        self.client.close()


def dec(text: str) -> Decimal:
    return Decimal(text)
