"""Bybit V5 request signing (../shared/reference/bybit.md §2, §8; vectors.md §4).

REST: the string signed is ``timestamp + api_key + recv_window + payload``, where the payload
is the query string exactly as sent (GET, without ``?``) or the exact JSON body bytes (POST);
it travels in ``X-BAPI-SIGN`` beside ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` and
``X-BAPI-RECV-WINDOW``. HMAC-SHA256 keys sign in lower-case hex, RSA keys (RSASSA-PKCS1-v1_5 +
SHA-256) in base64; Bybit has no Ed25519 keys.
Private WebSocket: ``{"op":"auth","args":[api_key, expires_ms, signature]}`` with the signature
of ``"GET/realtime" + expires_ms``.
"""

from __future__ import annotations

from exconn.errors import ConfigError
from exconn.venues.keys import Credentials, KeyKind

RECV_WINDOW_DEFAULT_MS = 5000  # bybit.md §2: the server's default when the header is absent


def rest_payload(timestamp_ms: int, api_key: str, recv_window_ms: int, data: str) -> str:
    """The string a REST request signs; ``data`` is the query (GET) or the body (POST)."""
    return f"{timestamp_ms}{api_key}{recv_window_ms}{data}"


def rest_headers(
    credentials: Credentials, timestamp_ms: int, recv_window_ms: int, data: str
) -> dict[str, str]:
    """The authentication headers of one REST request over ``data`` exactly as sent."""
    check_key(credentials)
    signature = credentials.sign(
        rest_payload(timestamp_ms, credentials.api_key, recv_window_ms, data)
    )
    return {
        "X-BAPI-API-KEY": credentials.api_key,
        "X-BAPI-TIMESTAMP": str(timestamp_ms),
        "X-BAPI-RECV-WINDOW": str(recv_window_ms),
        "X-BAPI-SIGN": signature,
    }


def ws_auth_payload(expires_ms: int) -> str:
    return f"GET/realtime{expires_ms}"


def ws_auth_args(credentials: Credentials, expires_ms: int) -> list[str]:
    """``args`` of the private WebSocket ``auth`` request: key, expiry (ms, a time in the
    server's future) and the signature of ``GET/realtime{expires}``."""
    check_key(credentials)
    return [credentials.api_key, str(expires_ms), credentials.sign(ws_auth_payload(expires_ms))]


def check_key(credentials: Credentials) -> None:
    if credentials.kind is KeyKind.ED25519:
        raise ConfigError(
            "Bybit API keys are HMAC (system-generated) or RSA (self-generated); an Ed25519 key "
            "cannot sign for Bybit",
            exchange="bybit",
        )
