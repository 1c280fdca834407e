"""Shared helpers for the Binance REST chaos tests (simulator on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from exconn.sim.binance_spot_keys import ApiKeys
from exconn.transport.breaker import HostBreaker
from exconn.transport.rest import RestClient
from exconn.venues.binance import endpoints
from exconn.venues.binance.errors import error_for
from exconn.venues.binance.wire import error_decoder
from exconn.venues.keys import Credentials

ANY = msgspec.json.Decoder(Any)  # type: ignore[var-annotated]


class ManualWall:
    """Wall clock = real time + a shift the test controls (to reach a Retry-After deadline
    without sleeping)."""

    def __init__(self) -> None:
        import time

        self._time = time.time
        self.shift = 0.0

    def __call__(self) -> float:
        return self._time() + self.shift


def credentials(keys: ApiKeys, kind: str) -> Credentials:
    if kind == "hmac":
        return Credentials(keys.hmac_key, secret=keys.hmac_secret)
    if kind == "ed25519":
        return Credentials(keys.ed25519_key, private_key_pem=keys.ed25519_private_pem)
    return Credentials(keys.rsa_key, private_key_pem=keys.rsa_private_pem)


def spot_client(rest_url: str, creds: Credentials | None = None, **kw: Any) -> RestClient:
    signer = endpoints.RestSigner(creds) if creds is not None else None
    return RestClient(
        rest_url,
        exchange="binance",
        error_for=error_for,
        error_decoder=error_decoder,
        venue=endpoints.SPOT_REST,
        signer=signer,
        **kw,
    )


def fast_breaker(host: str = "127.0.0.1", fail_max: int = 3) -> HostBreaker:
    return HostBreaker(host, fail_max=fail_max, reset_timeout=30.0)


def order_params(client_id: str, price: str = "10000") -> Iterator[tuple[str, str]]:
    """A resting BTCUSDT limit buy far below the market (it never fills)."""
    yield from [
        ("symbol", "BTCUSDT"),
        ("side", "BUY"),
        ("type", "LIMIT"),
        ("timeInForce", "GTC"),
        ("quantity", "0.001"),
        ("price", price),
        ("newClientOrderId", client_id),
    ]
