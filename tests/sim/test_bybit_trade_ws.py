"""The Bybit simulator's order-entry WebSocket (`/v5/trade`) and batch endpoints
(`/v5/order/create-batch`, `cancel-batch`), driven by the independent test client: shapes
of bybit.md §9 and the recorded payloads, auth, reqId rules, per-item batch results, the
shared rate budget and the after-accept faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websocket

from exconn.sim import BybitSim
from tests.sim.test_bybit_client import Rest, Ws, bybit  # noqa: F401 (fixture)

PAYLOADS = Path("/work/shared/reference/payloads")


def _trade_ws(sim: BybitSim, auth: bool = True) -> Ws:
    ws = Ws(sim.ws_url + "/v5/trade")
    if auth:
        key, secret = sim.api_keys()[0]
        expires = time.time_ns() // 1_000_000 + 10_000
        sig = hmac.new(
            secret.encode(), f"GET/realtime{expires}".encode(), hashlib.sha256
        ).hexdigest()
        ws.send({"op": "auth", "args": [key, expires, sig]})
        reply = ws.recv()
        expected = json.loads((PAYLOADS / "bybit_wstrade_auth_response.json").read_text())
        assert set(reply) == set(expected) and reply["retCode"] == 0, reply
    return ws


def _request(req_id: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
    now = str(time.time_ns() // 1_000_000)
    header = {"X-BAPI-TIMESTAMP": now, "X-BAPI-RECV-WINDOW": "5000"}
    return {"reqId": req_id, "header": header, "op": op, "args": [args]}


def _order(link_id: str, price: str = "10000") -> dict[str, Any]:
    return {
        "category": "linear", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
        "qty": "0.001", "price": price, "orderLinkId": link_id,
    }  # fmt: skip


def _open(rest: Rest, link_id: str) -> list[dict[str, Any]]:
    result = rest.ok("GET", "/v5/order/realtime", category="linear", symbol="BTCUSDT",
                     orderLinkId=link_id)  # fmt: skip
    return [r for r in result["list"] if r["orderLinkId"] == link_id]


def test_order_ops_answer_in_the_recorded_shape(bybit: BybitSim) -> None:  # noqa: F811
    ws, rest = _trade_ws(bybit), Rest(bybit)
    try:
        ws.send(_request("c-1", "order.create", _order("wt-1")))
        reply = ws.recv()
        expected = json.loads((PAYLOADS / "bybit_wstrade_order_create_response.json").read_text())
        assert set(reply) == set(expected), reply
        assert set(reply["header"]) == set(expected["header"])
        assert reply["reqId"] == "c-1" and reply["retCode"] == 0 and reply["op"] == "order.create"
        (row,) = _open(rest, "wt-1")
        assert reply["data"] == {"orderId": row["orderId"], "orderLinkId": "wt-1"}

        amend = {"category": "linear", "symbol": "BTCUSDT", "orderLinkId": "wt-1", "price": "9999"}
        ws.send(_request("a-1", "order.amend", amend))
        amended = ws.recv()
        assert amended["retCode"] == 0 and amended["op"] == "order.amend", amended
        assert Decimal(_open(rest, "wt-1")[0]["price"]) == Decimal("9999")

        ws.send(_request("x-1", "order.cancel", {"category": "linear", "symbol": "BTCUSDT",
                                                 "orderLinkId": "wt-1"}))  # fmt: skip
        assert ws.recv()["retCode"] == 0
        ws.send(_request("x-2", "order.cancel", {"category": "linear", "symbol": "BTCUSDT",
                                                 "orderLinkId": "wt-1"}))  # fmt: skip
        gone = ws.recv()
        assert gone["reqId"] == "x-2" and gone["retCode"] == 110001, gone

        ws.send({"op": "ping"})
        pong = ws.recv()
        assert pong["op"] == "pong" and pong["retCode"] == 0 and len(pong["data"]) == 1
    finally:
        ws.close()


def test_requests_need_auth_a_fresh_req_id_and_a_timestamp_in_the_window(
    bybit: BybitSim,  # noqa: F811
) -> None:
    anon = _trade_ws(bybit, auth=False)
    ws = _trade_ws(bybit)
    try:
        anon.send(_request("n-1", "order.create", _order("wt-anon")))
        assert anon.recv()["retCode"] == 10003
        ws.send(_request("d-1", "order.create", _order("wt-d1")))
        assert ws.recv()["retCode"] == 0
        ws.send(_request("d-1", "order.create", _order("wt-d2")))
        assert ws.recv()["retCode"] == 20006  # duplicate reqId: not executed
        stale = _request("s-1", "order.create", _order("wt-stale"))
        stale["header"]["X-BAPI-TIMESTAMP"] = str(time.time_ns() // 1_000_000 - 60_000)
        ws.send(stale)
        assert ws.recv()["retCode"] == 10002
        ws.send(_request("u-1", "order.nothing", {}))
        assert ws.recv()["retCode"] == 10404
        assert _open(Rest(bybit), "wt-d2") == [] and _open(Rest(bybit), "wt-stale") == []
    finally:
        ws.close()
        anon.close()


def test_drop_after_accept_executes_then_cuts_the_socket(bybit: BybitSim) -> None:  # noqa: F811
    ws = _trade_ws(bybit)
    try:
        bybit.add_fault("drop", endpoint="order.create", count=1)
        ws.send(_request("c-1", "order.create", _order("wt-drop")))
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError)):
            ws.recv()
        assert len(_open(Rest(bybit), "wt-drop")) == 1
    finally:
        ws.close()


def test_error_after_accept_answers_10016_with_the_order_placed(bybit: BybitSim) -> None:  # noqa: F811
    ws = _trade_ws(bybit)
    try:
        bybit.error_after_accept("order.create", count=1)
        ws.send(_request("c-1", "order.create", _order("wt-err")))
        assert ws.recv()["retCode"] == 10016
        assert len(_open(Rest(bybit), "wt-err")) == 1
    finally:
        ws.close()


def test_rest_batches_answer_per_item(bybit: BybitSim) -> None:  # noqa: F811
    rest = Rest(bybit)
    items = [{k: v for k, v in _order(f"wb-{i}").items() if k != "category"} for i in range(3)]
    items[1]["side"] = "Up"  # refused alone
    r = rest.post("/v5/order/create-batch", category="linear", request=items)
    body = r.json()
    assert body["retCode"] == 0, body
    codes = [e["code"] for e in body["retExtInfo"]["list"]]
    assert codes[0] == 0 and codes[1] != 0 and codes[2] == 0
    rows = body["result"]["list"]
    assert [row["orderLinkId"] for row in rows] == ["wb-0", "wb-1", "wb-2"]
    assert rows[1]["orderId"] == "" and rows[0]["orderId"] == _open(rest, "wb-0")[0]["orderId"]
    assert _open(rest, "wb-1") == []

    cancel = [{"symbol": "BTCUSDT", "orderLinkId": f"wb-{i}"} for i in (0, 2)]
    r = rest.post("/v5/order/cancel-batch", category="linear", request=cancel)
    assert [e["code"] for e in r.json()["retExtInfo"]["list"]] == [0, 0]
    assert _open(rest, "wb-0") == [] and _open(rest, "wb-2") == []

    too_many = [{**items[0], "orderLinkId": f"wm-{i}"} for i in range(21)]
    r = rest.post("/v5/order/create-batch", category="linear", request=too_many)
    assert r.json()["retCode"] == 10001


def test_a_batch_past_the_rate_budget_fails_only_the_orders_beyond_it(
    bybit: BybitSim,  # noqa: F811
) -> None:
    # Linear batches: 10 orders a second per UID, counted per order (bybit.md §3).
    rest = Rest(bybit)
    items = [{k: v for k, v in _order(f"wr-{i}").items() if k != "category"} for i in range(12)]
    r = rest.post("/v5/order/create-batch", category="linear", request=items)
    codes = [e["code"] for e in r.json()["retExtInfo"]["list"]]
    assert codes == [0] * 10 + [10006, 10006], codes
