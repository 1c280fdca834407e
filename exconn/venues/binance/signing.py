"""Binance request signing (../shared/reference/binance.md §2.3).

REST: the payload is the query string exactly as sent (percent-encoded, in the order sent)
concatenated with the body, no separator; ``signature`` goes last. HMAC signatures are hex;
RSA and Ed25519 are base64, percent-encoded when put in a query or body.
WebSocket API: the payload is every parameter except ``signature``, sorted by key, ``k=v``
joined by ``&``, values raw UTF-8 (not percent-encoded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

from exconn.venues.keys import Credentials


def encode_params(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&k=v`` in the given order, every byte outside ``A-Za-z0-9-._~`` percent-encoded."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def rest_payload(query: str, body: str = "") -> str:
    return query + body


def signed_query(params: Iterable[tuple[str, str]], credentials: Credentials) -> str:
    """The query string to send: the encoded parameters plus ``&signature=...`` last."""
    query = encode_params(params)
    signature = credentials.sign(query)
    return f"{query}&signature={quote(signature, safe='')}"


def ws_api_payload(params: Mapping[str, str]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")


def ws_api_signed(params: Mapping[str, str], credentials: Credentials) -> dict[str, str]:
    """``params`` with ``apiKey`` and ``signature`` added, ready for a WebSocket API request."""
    signed = dict(params)
    signed["apiKey"] = credentials.api_key
    signed["signature"] = credentials.sign(ws_api_payload(signed))
    return signed
