"""Shape conformance: each bybit_* reference payload the simulator can produce, produced,
with the same keys and JSON types (values differ). Not produced, and why:
* bybit_rest_instruments_option, bybit_rest_tickers_inverse, bybit_ws_pong_option,
  bybit_ws_subscribe_response_option, bybit_ws_tickers_option: option/inverse are not served.
* bybit_ws_auth_failure: produced, but by the shared errors.bybit_ws_auth_reply (checked).
* bybit_wstrade_*: the order-entry WebSocket /v5/trade is not implemented.
* *_request payloads are client messages (sent by the tests, not produced).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from exconn.sim import BybitSim
from tests.sim.test_bybit_client import Rest, Ws, bybit, private_ws

__all__ = ["bybit"]
MAPS = (".cumFeeDetail",)
PAYLOADS = Path("/work/shared/reference/payloads")


def same_shape(ours: Any, ref: Any, path: str = "$") -> None:
    """Reference keys present with the same JSON type, recursively (first list item)."""
    if isinstance(ref, dict):
        assert isinstance(ours, dict), f"{path}: {ours!r}"
        if path.endswith(MAPS):
            return  # coin -> fee: the keys are data, not field names
        for key, value in ref.items():
            assert key in ours, f"{path}: missing {key!r}"
            same_shape(ours[key], value, f"{path}.{key}")
    elif isinstance(ref, list):
        assert isinstance(ours, list), f"{path}: {ours!r}"
        if ref and ours and key_types_matter(ref[0]):
            same_shape(ours[0], ref[0], f"{path}[0]")
    elif ref is None:
        return  # null in an example says nothing about the type
    else:
        assert type(ours) is type(ref) or (isinstance(ref, float) and isinstance(ours, int)), (
            f"{path}: {ours!r} vs {ref!r}"
        )


def key_types_matter(item: Any) -> bool:
    return not (isinstance(item, dict) and not item)


def load(name: str) -> Any:
    path = PAYLOADS / name
    if not path.exists():
        pytest.skip("shared reference payloads not available")
    return json.loads(path.read_text())


def test_rest_shapes(bybit: BybitSim) -> None:
    bybit.step(30)
    base, rest = bybit.rest_url, Rest(bybit)
    public = {
        "bybit_rest_time.json": ("/v5/market/time", {}),
        "bybit_rest_instruments_linear.json": (
            "/v5/market/instruments-info",
            {"category": "linear"},
        ),
        "bybit_rest_instruments_spot.json": ("/v5/market/instruments-info", {"category": "spot"}),
        "bybit_rest_orderbook.json": (
            "/v5/market/orderbook",
            {"category": "spot", "symbol": "BTCUSDT"},
        ),
        "bybit_rest_recent_trade.json": (
            "/v5/market/recent-trade",
            {"category": "spot", "symbol": "BTCUSDT"},
        ),
        "bybit_rest_kline.json": ("/v5/market/kline", {"symbol": "BTCUSDT", "interval": "1"}),
        "bybit_rest_tickers_spot.json": ("/v5/market/tickers", {"category": "spot"}),
    }
    for name, (path, params) in public.items():
        same_shape(httpx.get(base + path, params=params).json(), load(name), name)
    same_shape(httpx.get(base + "/v5/market/time").json(), load("bybit_rest_common_envelope.json"))
    ask = bybit.book("linear", "BTCUSDT")[2][0]
    order = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "side": "Buy",
        "orderType": "Limit",
        "qty": str(ask[1] + Decimal(1)),
        "price": str(ask[0]),
        "orderLinkId": "shape-1",
    }
    same_shape(rest.post("/v5/order/create", **order).json(), load("bybit_rest_order_create.json"))
    amend = {
        "category": "linear",
        "symbol": "BTCUSDT",
        "orderLinkId": "shape-1",
        "qty": str(ask[1] + Decimal(2)),
    }
    same_shape(rest.post("/v5/order/amend", **amend).json(), load("bybit_rest_order_amend.json"))
    same_shape(
        rest.get("/v5/order/realtime", category="linear", symbol="BTCUSDT").json(),
        load("bybit_rest_order_realtime.json"),
    )
    same_shape(
        rest.get("/v5/execution/list", category="linear").json(),
        load("bybit_rest_execution_list.json"),
    )
    same_shape(
        rest.get("/v5/position/list", category="linear", symbol="BTCUSDT").json(),
        load("bybit_rest_position_list.json"),
    )
    same_shape(
        rest.get("/v5/account/wallet-balance", accountType="UNIFIED").json(),
        load("bybit_rest_wallet_balance.json"),
    )
    cancel = {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "shape-1"}
    same_shape(rest.post("/v5/order/cancel", **cancel).json(), load("bybit_rest_order_cancel.json"))
    same_shape(
        rest.get("/v5/order/history", category="linear").json(),
        load("bybit_rest_order_history.json"),
    )
    rest.post(
        "/v5/order/create", **{**order, "orderLinkId": "shape-2", "price": "59000", "qty": "0.01"}
    )
    same_shape(
        rest.post("/v5/order/cancel-all", category="linear", symbol="BTCUSDT").json(),
        load("bybit_rest_order_cancel_all.json"),
    )
    same_shape(
        rest.post(
            "/v5/position/set-leverage",
            category="linear",
            symbol="BTCUSDT",
            buyLeverage="3",
            sellLeverage="3",
        ).json(),
        load("bybit_rest_set_leverage.json"),
    )


def test_public_ws_shapes(bybit: BybitSim) -> None:
    for channel in ("spot", "linear"):
        ws = Ws(f"{bybit.ws_url}/v5/public/{channel}")
        ws.send(
            {
                "req_id": "10001",
                "op": "subscribe",
                "args": [
                    "orderbook.50.BTCUSDT",
                    "publicTrade.BTCUSDT",
                    "tickers.BTCUSDT",
                    "kline.5.BTCUSDT",
                ],
            }
        )
        same_shape(ws.recv(), load(f"bybit_ws_subscribe_response_{channel}.json"))
        same_shape(ws.recv(), load("bybit_ws_orderbook_snapshot.json"))
        ticker = ws.recv()
        ref = (
            "bybit_ws_tickers_spot.json"
            if channel == "spot"
            else "bybit_ws_tickers_linear_snapshot.json"
        )
        same_shape(ticker, load(ref))
        ws.send({"op": "subscribe", "args": ["invalid.topic.BTCUSDT"]})
        same_shape(ws.recv(), load("bybit_ws_subscribe_failure.json"))
        ws.send(load("bybit_ws_ping_request.json"))
        same_shape(ws.recv(), load(f"bybit_ws_pong_{channel}.json"))
        bybit.step(40)
        want = {
            "delta": "bybit_ws_orderbook_delta.json",
            "trade": "bybit_ws_publicTrade.json",
            "kline": "bybit_ws_kline.json",
        }
        for _ in range(2000):
            if not want:
                break
            msg = ws.recv()
            kind = (
                "delta"
                if msg.get("type") == "delta" and msg["topic"].startswith("orderbook")
                else "trade"
                if msg["topic"].startswith("publicTrade")
                else "kline"
                if msg["topic"].startswith("kline")
                else None
            )
            if kind in want and (kind != "trade" or channel == "linear"):
                same_shape(msg, load(want.pop(kind)))
            elif kind == "trade":
                want.pop(kind)
        assert not want
        ws.close()


def test_private_ws_shapes(bybit: BybitSim) -> None:
    from exconn.sim.errors import bybit_ws_auth_reply

    same_shape(
        bybit_ws_auth_reply(10003, "Invalid apikey", "c"), load("bybit_ws_auth_failure.json")
    )
    ws = Ws(f"{bybit.ws_url}/v5/private")
    ws.send({"op": "auth", "args": ["x", 1, "y"]})
    assert ws.recv()["success"] is False
    ws.close()
    ws = private_ws(bybit, ["order", "execution", "position", "wallet"])
    ws.send(load("bybit_ws_ping_request.json"))
    same_shape(ws.recv(), load("bybit_ws_pong_private.json"))
    bybit.step(1)
    ask = bybit.book("linear", "ETHUSDT")[2][0]
    Rest(bybit).ok(
        "POST",
        "/v5/order/create",
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty=str(ask[1]),
        price=str(ask[0]),
    )
    want = {t: f"bybit_ws_{t}.json" for t in ("order", "execution", "position", "wallet")}
    for _ in range(10):
        if not want:
            break
        msg = ws.recv()
        same_shape(msg, load(want.pop(msg["topic"])))
    assert not want
    ws.close()
