"""Shared helpers for the Bybit REST chaos tests (BybitSim on 127.0.0.1)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

import msgspec

from exconn.sim import BybitSim
from exconn.transport.rest import RestClient
from exconn.venues.bybit import endpoints
from exconn.venues.keys import Credentials

ANY = msgspec.json.Decoder(Any)  # type: ignore[var-annotated]
SPOT_TICK = Decimal("0.01")


def bybit_client(rest_url: str, creds: Credentials | None = None, **kw: Any) -> RestClient:
    signer = endpoints.RestSigner(creds) if creds is not None else None
    return RestClient(rest_url, exchange="bybit", venue=endpoints.REST, signer=signer, **kw)


def hmac_credentials(sim: BybitSim, index: int = 0) -> Credentials:
    key, secret = sim.api_keys()[index]
    return Credentials(key, secret=secret)


def resting_price(client: RestClient, symbol: str = "BTCUSDT") -> Decimal:
    """A spot buy price inside the venue's ±10 % band that does not trade (5 % under bid)."""
    ticker = client.call(endpoints.tickers("spot", symbol), ANY)["result"]["list"][0]
    price = Decimal(ticker["bid1Price"]) * Decimal("0.95")
    return price.quantize(SPOT_TICK, rounding=ROUND_DOWN)


def resting_order(link_id: str, price: Decimal, symbol: str = "BTCUSDT") -> endpoints.Request:
    return endpoints.create_order(
        "spot",
        symbol,
        "Buy",
        "Limit",
        Decimal("0.001"),
        price=price,
        time_in_force="GTC",
        order_link_id=link_id,
    )


def order_status(client: RestClient, link_id: str) -> str | None:
    """The order's status by its orderLinkId, open or recently closed (None: unknown)."""
    found = client.call(endpoints.open_orders("spot", order_link_id=link_id, open_only=1), ANY)
    orders = found["result"]["list"]
    return orders[0]["orderStatus"] if orders else None


def requests_answered(sim: BybitSim) -> int:
    return int(sim.stats()["rest_requests"])
