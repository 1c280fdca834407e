"""Signed REST requests against the simulator with each key type (binance.md §2.3)."""

from __future__ import annotations

import pytest

from exconn.sim import BinanceSpotSim
from tests.chaos.binance_rest_support import ANY, credentials, order_params, spot_client


@pytest.fixture(scope="module")
def sim():
    with BinanceSpotSim(accounts=1) as running:
        yield running


@pytest.mark.parametrize("kind", ["hmac", "ed25519", "rsa"])
def test_signed_account_request_is_accepted(sim: BinanceSpotSim, kind: str) -> None:
    client = spot_client(sim.rest_url, credentials(sim.api_keys(0), kind))
    try:
        account = client.signed_request(
            "GET", "/api/v3/account", {"omitZeroBalances": "true"}, ANY, is_order=False
        )
        assert "balances" in account
        assert client.stats["clock_skew_rejections"] == 0
    finally:
        client.close()


@pytest.mark.parametrize("kind", ["hmac", "ed25519", "rsa"])
def test_signed_order_round_trip(sim: BinanceSpotSim, kind: str) -> None:
    client = spot_client(sim.rest_url, credentials(sim.api_keys(0), kind))
    cid = f"sign-{kind}"
    try:
        placed = client.signed_request(
            "POST", "/api/v3/order", list(order_params(cid)), ANY, is_order=True
        )
        assert placed["clientOrderId"] == cid
        canceled = client.signed_request(
            "DELETE",
            "/api/v3/order",
            {"symbol": "BTCUSDT", "origClientOrderId": cid},
            ANY,
            is_order=True,
        )
        assert canceled["status"] == "CANCELED"
    finally:
        client.close()
