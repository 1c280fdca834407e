"""Bybit V5 signatures match the published cases byte for byte
(../shared/reference/vectors.md §4, ../shared/corpus/signing/signing_cases.json and the ccxt
request bodies in ../shared/corpus/signing/ccxt-static-request/)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from exconn.transport.clock import ClockOffset
from exconn.transport.rest import RestClient
from exconn.venues.bybit import endpoints
from exconn.venues.bybit.signing import rest_headers, rest_payload, ws_auth_args, ws_auth_payload
from exconn.venues.keys import Credentials

# vectors.md §4: a synthetic secret the vectors were derived with (not a real key).
DERIVED_SECRET = "TEST-SECRET-not-a-real-key-0123456789"
ANY = msgspec.json.Decoder(Any)


def _vector_rows(reference: Path) -> dict[str, tuple[str, str]]:
    """id -> (string signed, hex signature) of the ``Y<n>`` rows of vectors.md §4."""
    rows = {}
    for line in (reference / "vectors.md").read_text().splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 4 and re.fullmatch(r"Y\d", cells[1]):
            signed = re.findall(r"`([^`]*)`", cells[2])[0]  # notes after it quote `:` too
            rows[cells[1]] = (signed, re.findall(r"`([^`]*)`", cells[3])[0])
    return rows


def _split_rest(signed: str) -> tuple[int, str, int, str]:
    """``timestamp + apiKey + recvWindow + data`` back into its parts (13-digit ms time,
    the docs' ``XXXXXXXXXX`` key, a 4-digit window)."""
    match = re.fullmatch(r"(\d{13})(X{10})(\d{4})(.*)", signed, re.S)
    assert match, signed
    return int(match[1]), match[2], int(match[3]), match[4]


def test_vectors_y1_to_y4(reference: Path) -> None:
    rows = _vector_rows(reference)
    assert sorted(rows) == ["Y1", "Y2", "Y3", "Y4"]
    for vid in ("Y1", "Y2"):
        signed, expected = rows[vid]
        ts, key, window, data = _split_rest(signed)
        assert rest_payload(ts, key, window, data) == signed
        creds = Credentials(key, secret=DERIVED_SECRET)
        assert creds.sign(signed) == expected, vid
        assert rest_headers(creds, ts, window, data)["X-BAPI-SIGN"] == expected, vid
    for vid in ("Y3", "Y4"):
        signed, expected = rows[vid]
        expires = int(signed.removeprefix("GET/realtime"))
        assert ws_auth_payload(expires) == signed
        args = ws_auth_args(Credentials("XXXXXXXXXX", secret=DERIVED_SECRET), expires)
        assert args == ["XXXXXXXXXX", str(expires), expected], vid


def _cases(corpus: Path) -> list[dict[str, Any]]:
    cases = json.loads((corpus / "signing" / "signing_cases.json").read_text())["cases"]
    return [c for c in cases if c["exchange"] == "bybit"]


def test_corpus_cases_build_the_same_string_and_signature(corpus: Path) -> None:
    checked, strings_only = 0, 0
    for case in _cases(corpus):
        if case["transport"] == "REST":
            data = case.get("query_string") or case["request_body"]
            ts, window = int(case["timestamp"]), int(case["recv_window"])
            assert rest_payload(ts, case["api_key"], window, data) == case["signature_payload"]
            if case["secret"] is None:
                strings_only += 1  # the docs' secret is unpublished: check the string signed
                continue
            signer = endpoints.RestSigner(
                Credentials(case["api_key"], secret=case["secret"]), recv_window_ms=window
            )
            query = case.get("query_string", "")
            sent_query, headers = signer.sign(query, case.get("request_body", ""), ts)
            assert sent_query == query, case["id"]
            assert headers == {
                "X-BAPI-API-KEY": case["api_key"],
                "X-BAPI-TIMESTAMP": case["timestamp"],
                "X-BAPI-RECV-WINDOW": case["recv_window"],
                "X-BAPI-SIGN": case["expected_signature"],
            }, case["id"]
        else:
            creds = Credentials(case["api_key"], secret=case["secret"])
            assert ws_auth_payload(case["expires"]) == case["signature_payload"]
            key, expires, signature = case["ws_auth_message"]["args"]
            assert ws_auth_args(creds, case["expires"]) == [key, str(expires), signature]
        checked += 1
    assert (checked, strings_only) == (3, 2)


def test_ccxt_bodies_are_sent_and_signed_byte_for_byte(corpus: Path) -> None:
    """Whatever body a caller builds is sent exactly as built, and the signature covers those
    bytes: each ccxt case's body, given as parameters, leaves RestClient unchanged."""
    path = corpus / "signing" / "ccxt-static-request" / "ccxt-static-request__bybit_subset.json"
    cases = [c for group in json.loads(path.read_text())["methods"].values() for c in group]
    seen: list[httpx.Request] = []

    def host(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"retCode": 0, "retMsg": "OK", "result": {}})

    secret = "ccxt-case-secret"
    client = RestClient(
        "https://api.bybit.test",
        exchange="bybit",
        venue=endpoints.REST,
        signer=endpoints.RestSigner(Credentials("ccxt-case-key", secret=secret)),
        transport=httpx.MockTransport(host),
        clock=_synced_clock(),
    )
    try:
        for case in cases:
            params = json.loads(case["output"])  # keeps the key order
            url = httpx.URL(case["url"])
            client.signed_request("POST", url.path, params, ANY, is_order=False)
            request = seen[-1]
            assert request.content == case["output"].encode(), case["description"]
            h = request.headers
            payload = f"{h['X-BAPI-TIMESTAMP']}ccxt-case-key5000{case['output']}"
            expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            assert h["X-BAPI-SIGN"] == expected, case["description"]
    finally:
        client.close()
    assert len(cases) >= 20


def _synced_clock() -> ClockOffset:
    """A clock that needs no time endpoint (the mock host has none): one local sample."""
    clock = ClockOffset()
    now = time.time() * 1000
    clock.add_sample(now, 0.0, now)
    return clock


def test_rest_headers_never_leak_the_secret() -> None:
    creds = Credentials("key-abc", secret=DERIVED_SECRET)
    headers = rest_headers(creds, 1, 5000, "x")
    assert DERIVED_SECRET not in json.dumps(headers)
    assert DERIVED_SECRET not in repr(endpoints.RestSigner(creds))


@pytest.mark.parametrize("expires", [1662350400000, 1711010121452])
def test_ws_auth_args_are_strings(expires: int) -> None:
    args = ws_auth_args(Credentials("k", secret=DERIVED_SECRET), expires)
    assert all(isinstance(a, str) for a in args) and args[1] == str(expires)
