"""exconn.sim.auth: every published signing vector is accepted, the same request with one
byte changed is rejected with the exchange's code, and the key / timing rules hold at their
exact boundaries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from exconn.sim import errors as E
from exconn.sim.auth import (
    AuthError,
    AuthOk,
    AuthResult,
    KeyKind,
    KeyRegistry,
    Permission,
    ServerClock,
    binance_ws_payload,
    verify_binance_api_key,
    verify_binance_rest,
    verify_binance_ws,
    verify_bybit_rest,
    verify_bybit_ws_auth,
)
from tests.conftest import CORPUS, REFERENCE, require_shared

SIGNING_CASES = CORPUS / "signing" / "signing_cases.json"
VECTORS = REFERENCE / "vectors.md"
BINANCE_CATALOG = CORPUS / "binance" / "spot" / "rest" / "docs__errors_catalog.json"
BYBIT_CATALOG = CORPUS / "bybit" / "rest" / "docs__v5_error_codes.json"

GENERATED_KEY = "SimTestKey0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"[:64]
NOW = 1_700_000_000_000


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One signed request, replayable with parts of it changed."""

    id: str
    transport: str  # binance-rest | binance-ws | bybit-rest | bybit-ws
    keys: KeyRegistry
    api_key: str
    signature: str
    now_ms: int
    query: str = ""
    body: str = ""
    sig_in_body: bool = False
    method: str = "POST"
    ws_params: dict[str, Any] = field(default_factory=dict)
    recv_window: str | None = None  # Bybit header
    timestamp: str = ""  # Bybit header

    def send(self, **changes: Any) -> AuthResult:
        c = replace(self, **changes)
        if c.transport == "binance-rest":
            sig = "signature=" + quote(c.signature, safe="")
            query, body = c.query, c.body
            if c.sig_in_body:
                body = f"{body}&{sig}" if body else sig
            else:
                query = f"{query}&{sig}" if query else sig
            return verify_binance_rest(
                c.keys,
                c.method,
                query.encode(),
                body.encode(),
                {"X-MBX-APIKEY": c.api_key},
                c.now_ms,
            )
        if c.transport == "binance-ws":
            return verify_binance_ws(c.keys, c.ws_params | {"signature": c.signature}, c.now_ms)
        if c.transport == "bybit-rest":
            headers = {
                "X-BAPI-API-KEY": c.api_key,
                "X-BAPI-TIMESTAMP": c.timestamp,
                "X-BAPI-SIGN": c.signature,
            }
            if c.recv_window is not None:
                headers["X-BAPI-RECV-WINDOW"] = c.recv_window
            return verify_bybit_rest(
                c.keys, c.method, c.query.encode(), c.body.encode(), headers, c.now_ms
            )
        return verify_bybit_ws_auth(c.keys, [c.api_key, int(c.timestamp), c.signature], c.now_ms)

    @property
    def rejection_code(self) -> int:
        return -1022 if self.transport.startswith("binance") else 10004


def _registry(api_key: str, secret: str | None = None, pem: str | None = None) -> KeyRegistry:
    keys = KeyRegistry()
    if secret is not None:
        keys.add_hmac(api_key, secret)
    else:
        assert pem is not None
        keys.add_public_key(api_key, pem)
    return keys


def _param(payload: str, name: str) -> str:
    m = re.search(rf"(?:^|&){name}=([^&]*)", payload)
    assert m, f"{name} not in {payload}"
    return m.group(1)


def binance_rest_case(
    id: str,
    keys: KeyRegistry,
    api_key: str,
    sig: str,
    query: str,
    body: str = "",
    sig_in_body: bool = False,
) -> Case:
    now = int(_param(query + "&" + body, "timestamp"))
    return Case(
        id, "binance-rest", keys, api_key, sig, now, query=query, body=body, sig_in_body=sig_in_body
    )


def binance_ws_case(id: str, keys: KeyRegistry, sig: str, params: dict[str, Any]) -> Case:
    return Case(
        id,
        "binance-ws",
        keys,
        str(params["apiKey"]),
        sig,
        int(params["timestamp"]),
        ws_params=params,
    )


def _vectors_md() -> str:
    return require_shared(VECTORS).read_text()


def _md_cases(text: str) -> list[Case]:
    secret = re.search(r"Secret key \(official example, not a live key\):\n`([^`]+)`", text)
    api_key = re.search(r"API key paired with it: `([^`]+)`", text)
    bybit_secret = re.search(r"synthetic secret `([^`]+)`", text)
    pems = re.findall(r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----", text, re.S)
    assert secret and api_key and bybit_secret and len(pems) == 2
    rsa_pem, ed_pem = pems
    cases: list[Case] = []

    b_rows = re.findall(r"^\| (B\d) \| ([^|]*) \| `([^`]+)` \| `([0-9a-f]{64})` \|", text, re.M)
    assert [r[0] for r in b_rows] == ["B1", "B2", "B3", "B4", "B5", "B6"]
    for vid, context, payload, sig in b_rows:
        if context.startswith("REST"):
            key = api_key.group(1)
            keys = _registry(key, secret.group(1))
            cases.append(binance_rest_case(vid, keys, key, sig, payload))
            cases.append(binance_rest_case(vid + "-body", keys, key, sig, "", payload, True))
        else:
            params = dict(p.split("=", 1) for p in payload.split("&"))
            keys = _registry(params["apiKey"], secret.group(1))
            cases.append(binance_ws_case(vid, keys, sig, params))

    r_rows = re.findall(r"^\| (R\d) \| `([^`]+)` \| `([A-Za-z0-9+/=]+)` \|", text, re.M)
    assert [r[0] for r in r_rows] == ["R1", "R2"]
    for vid, payload, sig in r_rows:
        keys = _registry(GENERATED_KEY, pem=rsa_pem)
        cases.append(binance_rest_case(vid, keys, GENERATED_KEY, sig, payload))

    e_rows = re.findall(
        r"^\| (E\d) \| (REST|WS-API sorted) payload `([^`]+)` \| `([A-Za-z0-9+/=]+)`[^|]*\|",
        text,
        re.M,
    )
    assert [r[0] for r in e_rows] == ["E1", "E2"]
    for vid, kind, payload, sig in e_rows:
        if kind == "REST":
            keys = _registry(GENERATED_KEY, pem=ed_pem)
            cases.append(binance_rest_case(vid, keys, GENERATED_KEY, sig, payload))
        else:
            params = dict(p.split("=", 1) for p in payload.split("&"))
            keys = _registry(params["apiKey"], pem=ed_pem)
            cases.append(binance_ws_case(vid, keys, sig, params))

    y_rows = re.findall(r"^\| (Y\d) \| `([^`]+)`(?: \([^)]*\))? \| `([0-9a-f]{64})` \|", text, re.M)
    assert [r[0] for r in y_rows] == ["Y1", "Y2", "Y3", "Y4"]
    for vid, plain, sig in y_rows:
        if plain.startswith("GET/realtime"):
            expires = plain.removeprefix("GET/realtime")
            keys = _registry("XXXXXXXXXX", bybit_secret.group(1))
            cases.append(
                Case(vid, "bybit-ws", keys, "XXXXXXXXXX", sig, int(expires) - 1, timestamp=expires)
            )
            continue
        m = re.fullmatch(r"(\d{13})([A-Za-z_]+)(\d+)(.*)", plain)
        assert m, plain
        ts, key, rw, data = m.groups()
        keys = _registry(key, bybit_secret.group(1))
        get = not data.startswith("{")
        cases.append(
            Case(
                vid,
                "bybit-rest",
                keys,
                key,
                sig,
                int(ts),
                method="GET" if get else "POST",
                query=data if get else "",
                body="" if get else data,
                recv_window=rw,
                timestamp=ts,
            )
        )
    return cases


def _corpus_cases(doc: dict[str, Any]) -> list[Case]:
    cases: list[Case] = []
    for c in doc["cases"]:
        if c.get("secret") is None:
            continue  # signature published without its key: nothing to verify against
        assert c["algorithm"] == "HMAC-SHA256"
        secret, sig = c["secret"], c["expected_signature"]
        if c["exchange"] == "binance" and c["transport"] == "REST":
            key = c.get("api_key") or GENERATED_KEY
            keys = _registry(key, secret)
            if "wellformed_signature_payload" in c:
                # Docs bug: the published signature covers "timestamp= 159…" (stray space);
                # the real request is the well-formed one.
                sig = c["wellformed_expected_signature_computed_by_corpus_builder"]
            if "query_string" in c and "request_body" in c:
                cases.append(
                    binance_rest_case(
                        c["id"], keys, key, sig, c["query_string"], c["request_body"], True
                    )
                )
            elif "request_body" in c:
                cases.append(
                    binance_rest_case(c["id"], keys, key, sig, "", c["request_body"], True)
                )
            else:
                cases.append(binance_rest_case(c["id"], keys, key, sig, c["signature_payload"]))
        elif c["exchange"] == "binance":
            params = {k: v for k, v in c["request"]["params"].items() if k != "signature"}
            assert binance_ws_payload(params).decode() == c["signature_payload"]
            cases.append(binance_ws_case(c["id"], _registry(params["apiKey"], secret), sig, params))
        elif c["transport"] == "WebSocket auth":
            keys = _registry(c["api_key"], secret)
            cases.append(
                Case(
                    c["id"],
                    "bybit-ws",
                    keys,
                    c["api_key"],
                    sig,
                    int(c["expires"]) - 1,
                    timestamp=str(c["expires"]),
                )
            )
        else:
            get = c["method"] == "GET"
            cases.append(
                Case(
                    c["id"],
                    "bybit-rest",
                    _registry(c["api_key"], secret),
                    c["api_key"],
                    sig,
                    int(c["timestamp"]),
                    method=c["method"],
                    query=c.get("query_string", ""),
                    body=c.get("request_body", ""),
                    recv_window=str(c["recv_window"]),
                    timestamp=str(c["timestamp"]),
                )
            )
            assert get == (cases[-1].body == "")
    return cases


@pytest.fixture(scope="module")
def published() -> list[Case]:
    doc = json.loads(require_shared(SIGNING_CASES).read_text())
    return _md_cases(_vectors_md()) + _corpus_cases(doc)


# --------------------------------------------------------------------------- mutations


def _flip(ch: str, alphabet: str) -> str:
    return alphabet[(alphabet.index(ch) + 1) % len(alphabet)]


_CLASSES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def flip_char(ch: str) -> str | None:
    """Another character of the same kind, so the request keeps its structure."""
    for cls in _CLASSES:
        if ch in cls:
            return _flip(ch, cls)
    return {"+": "/", "/": "+"}.get(ch)


def flip_hex(ch: str) -> str:
    return _flip(ch, "0123456789abcdef") if ch in "0123456789abcdef" else _flip(ch, "ABCDEF")


def value_positions(payload: str) -> Iterator[int]:
    """Indices of characters inside `k=v` values."""
    in_value = False
    for i, ch in enumerate(payload):
        if ch == "&":
            in_value = False
        elif ch == "=" and not in_value:
            in_value = True
        elif in_value:
            yield i


def mutated(text: str, positions: Iterator[int] | range) -> Iterator[str]:
    for i in positions:
        new = flip_char(text[i])
        if new is not None:
            yield text[:i] + new + text[i + 1 :]


def payload_mutations(case: Case) -> Iterator[tuple[str, dict[str, Any]]]:
    """(description, changes) for every one-character change of a signed value."""
    if case.transport == "binance-rest":
        for part in ("query", "body"):
            text = getattr(case, part)
            for i, new in zip(
                value_positions(text), mutated(text, value_positions(text)), strict=False
            ):
                yield f"{part}[{i}]", {part: new}
    elif case.transport == "binance-ws":
        for name, value in case.ws_params.items():
            if name == "apiKey":
                continue  # a different key is a different error (-2015)
            text = str(value)
            for new in mutated(text, range(len(text))):
                yield name, {"ws_params": case.ws_params | {name: new}}
    elif case.transport == "bybit-rest":
        part = "query" if case.method == "GET" else "body"
        text = getattr(case, part)
        for i, new in enumerate(mutated(text, range(len(text)))):
            yield f"{part}#{i}", {part: new}
        for new in mutated(case.timestamp, range(len(case.timestamp))):
            yield "timestamp", {"timestamp": new}
    else:
        for new in mutated(case.timestamp, range(len(case.timestamp))):
            yield "expires", {"timestamp": new, "now_ms": min(case.now_ms, int(new) - 1)}


def signature_mutations(case: Case) -> Iterator[str]:
    sig = case.signature
    is_hex = re.fullmatch(r"[0-9a-f]{64}", sig) is not None
    for i, ch in enumerate(sig):
        new = flip_hex(ch) if is_hex else flip_char(ch)
        if new is not None:
            yield sig[:i] + new + sig[i + 1 :]


# --------------------------------------------------------------------------- vectors


def test_vector_files_parse_completely(published: list[Case]) -> None:
    ids = {c.id for c in published}
    assert {
        "B1",
        "B2",
        "B3",
        "B4",
        "B5",
        "B6",
        "R1",
        "R2",
        "E1",
        "E2",
        "Y1",
        "Y2",
        "Y3",
        "Y4",
    } <= ids
    assert {
        "binance-spot-rest-hmac-mixed-query-and-body",
        "binance-usdm-rest-hmac-mixed",
        "bybit-v5-nautilus-ws-auth",
        "bybit-v5-nautilus-post",
    } <= ids
    assert {c.transport for c in published} == {
        "binance-rest",
        "binance-ws",
        "bybit-rest",
        "bybit-ws",
    }


def test_every_published_vector_is_accepted(published: list[Case]) -> None:
    for case in published:
        result = case.send()
        assert isinstance(result, AuthOk), f"{case.id}: {result}"
        assert result.key.api_key == case.api_key


def test_one_byte_of_the_payload_changed_is_rejected(published: list[Case]) -> None:
    for case in published:
        count = 0
        for where, changes in payload_mutations(case):
            result = case.send(**changes)
            assert isinstance(result, AuthError), f"{case.id} {where}: accepted"
            assert result.code == case.rejection_code, f"{case.id} {where}: {result}"
            count += 1
        assert count > 5, case.id


def test_one_byte_of_the_signature_changed_is_rejected(published: list[Case]) -> None:
    for case in published:
        for sig in signature_mutations(case):
            result = case.send(signature=sig)
            assert isinstance(result, AuthError), f"{case.id}: {sig} accepted"
            assert result.code == case.rejection_code, f"{case.id}: {result}"


def test_any_byte_of_a_rest_request_changed_is_never_accepted(published: list[Case]) -> None:
    """Key names and separators too (those may give other codes, e.g. -1102)."""
    for case in published:
        if case.transport != "binance-rest":
            continue
        for part in ("query", "body"):
            text = getattr(case, part)
            for i in range(len(text)):
                new = text[:i] + ("x" if text[i] != "x" else "y") + text[i + 1 :]
                assert not case.send(**{part: new}).ok, f"{case.id} {part}[{i}]"


def test_binance_hmac_hex_is_case_insensitive_bybit_is_not(published: list[Case]) -> None:
    for case in published:
        if not re.fullmatch(r"[0-9a-f]{64}", case.signature):
            continue
        result = case.send(signature=case.signature.upper())
        if case.transport.startswith("binance"):
            assert result.ok, case.id
        else:
            assert isinstance(result, AuthError) and result.code == 10004, case.id


def test_usdm_docs_signature_with_the_stray_space_is_rejected() -> None:
    doc = json.loads(require_shared(SIGNING_CASES).read_text())
    c = next(c for c in doc["cases"] if c["id"] == "binance-usdm-rest-hmac-mixed")
    keys = _registry(c["api_key"], c["secret"])
    case = binance_rest_case(
        "bug",
        keys,
        c["api_key"],
        c["expected_signature"],
        c["query_string"],
        c["request_body"],
        True,
    )
    result = case.send()
    assert isinstance(result, AuthError) and result.code == -1022


def test_rsa_signature_must_be_percent_encoded() -> None:
    """An unencoded '+' in base64 reads as a space in a form-encoded request."""
    text = _vectors_md()
    r1 = re.search(r"^\| R1 \| `([^`]+)` \| `([A-Za-z0-9+/=]+)` \|", text, re.M)
    pem = re.search(r"-----BEGIN PRIVATE KEY-----.*?-----END PRIVATE KEY-----", text, re.S)
    assert r1 and pem and "+" in r1.group(2)
    keys = _registry(GENERATED_KEY, pem=pem.group(0))
    raw = f"{r1.group(1)}&signature={r1.group(2)}".encode()
    result = verify_binance_rest(
        keys,
        "POST",
        raw,
        b"",
        {"X-MBX-APIKEY": GENERATED_KEY},
        int(_param(r1.group(1), "timestamp")),
    )
    assert isinstance(result, AuthError) and result.code == -1022


# --------------------------------------------------------------------------- generated keys


def _rsa_pem() -> tuple[rsa.RSAPrivateKey, bytes]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _ed_pem() -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    private = ed25519.Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="module")
def rsa_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    return _rsa_pem()


@pytest.fixture(scope="module")
def ed_key() -> tuple[ed25519.Ed25519PrivateKey, bytes]:
    return _ed_pem()


def _sign_rsa(private: rsa.RSAPrivateKey, payload: bytes) -> str:
    return base64.b64encode(private.sign(payload, padding.PKCS1v15(), hashes.SHA256())).decode()


def _sign_ed(private: ed25519.Ed25519PrivateKey, payload: bytes) -> str:
    return base64.b64encode(private.sign(payload)).decode()


PAYLOAD = f"symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=0.1&timestamp={NOW}"


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_generated_asymmetric_keys_binance_rest_and_ws(
    kind: str, rsa_key: tuple[Any, bytes], ed_key: tuple[Any, bytes]
) -> None:
    private, public = rsa_key if kind == "rsa" else ed_key
    sign: Callable[[Any, bytes], str] = _sign_rsa if kind == "rsa" else _sign_ed
    keys = KeyRegistry()
    entry = keys.add_public_key(GENERATED_KEY, public)
    assert entry.kind == (KeyKind.RSA if kind == "rsa" else KeyKind.ED25519)
    assert entry.secret is None

    rest = binance_rest_case("gen", keys, GENERATED_KEY, sign(private, PAYLOAD.encode()), PAYLOAD)
    assert rest.send().ok
    assert not rest.send(query=PAYLOAD.replace("0.1", "0.2")).ok
    # Case matters for base64 (unlike HMAC hex).
    swapped = rest.signature.swapcase()
    assert isinstance(r := rest.send(signature=swapped), AuthError) and r.code == -1022

    params = {
        "apiKey": GENERATED_KEY,
        "symbol": "１２３４５６",
        "timestamp": NOW,
        "recvWindow": 100,
    }
    ws = binance_ws_case("gen-ws", keys, sign(private, binance_ws_payload(params)), params)
    assert ws.send().ok
    assert not ws.send(ws_params=params | {"recvWindow": 101}).ok


def test_generated_rsa_key_bybit_rest(rsa_key: tuple[Any, bytes]) -> None:
    private, public = rsa_key
    keys = KeyRegistry()
    keys.add_public_key("bybitRsaKey", public)
    body = '{"category":"spot","symbol":"BTCUSDT"}'
    sig = _sign_rsa(private, f"{NOW}bybitRsaKey5000{body}".encode())
    case = Case(
        "rsa",
        "bybit-rest",
        keys,
        "bybitRsaKey",
        sig,
        NOW,
        body=body,
        recv_window="5000",
        timestamp=str(NOW),
    )
    assert case.send().ok
    assert isinstance(r := case.send(body=body.replace("spot", "spou")), AuthError)
    assert r.code == 10004


def test_bybit_rejects_ed25519_keys(ed_key: tuple[Any, bytes]) -> None:
    private, public = ed_key
    keys = KeyRegistry()
    keys.add_public_key("bybitEdKey", public)
    sig = _sign_ed(private, f"{NOW}bybitEdKey5000".encode())
    case = Case(
        "ed",
        "bybit-rest",
        keys,
        "bybitEdKey",
        sig,
        NOW,
        method="GET",
        recv_window="5000",
        timestamp=str(NOW),
    )
    assert isinstance(r := case.send(), AuthError) and r.code == 10004


def test_private_pem_keeps_only_the_public_half(rsa_key: tuple[Any, bytes]) -> None:
    private, _ = rsa_key
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    entry = KeyRegistry().add_public_key(GENERATED_KEY, pem)
    assert isinstance(entry.public_key, rsa.RSAPublicKey)


# --------------------------------------------------------------------------- Binance rules


SECRET = "simulator-secret"


def _hmac(payload: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def _keys(**kwargs: Any) -> KeyRegistry:
    keys = KeyRegistry()
    keys.add_hmac(GENERATED_KEY, SECRET, **kwargs)
    return keys


def rest(
    keys: KeyRegistry,
    query: str,
    now_ms: int = NOW,
    *,
    api_key: str | None = GENERATED_KEY,
    sign: bool = True,
    ip: str | None = None,
    required: str | None = None,
    method: str = "POST",
    body: str = "",
) -> AuthResult:
    if sign:
        query = f"{query}&signature={_hmac(query + body)}"
    headers = {} if api_key is None else {"x-mbx-apikey": api_key}  # any header case
    return verify_binance_rest(
        keys, method, query.encode(), body.encode(), headers, now_ms, ip=ip, required=required
    )


def err(result: AuthResult) -> tuple[int, str, int]:
    assert isinstance(result, AuthError), result
    return result.code, result.msg, result.http_status


@pytest.mark.parametrize(
    ("offset", "recv_window", "expected"),
    [
        (-5000, None, None),  # exactly recvWindow old (default 5000): accepted
        (-5001, None, E.BINANCE_TIMESTAMP_OUTSIDE),
        (999, None, None),  # 999 ms ahead: accepted
        (1000, None, E.BINANCE_TIMESTAMP_AHEAD),  # ">= serverTime + 1000" is rejected
        (1000, "60000", E.BINANCE_TIMESTAMP_AHEAD),  # a big window never helps a fast clock
        (-60000, "60000", None),
        (-60001, "60000", E.BINANCE_TIMESTAMP_OUTSIDE),
        (0, "0", None),
        (-1, "0", E.BINANCE_TIMESTAMP_OUTSIDE),
    ],
)
def test_binance_timestamp_boundaries(
    offset: int, recv_window: str | None, expected: str | None
) -> None:
    query = f"timestamp={NOW + offset}"
    if recv_window is not None:
        query += f"&recvWindow={recv_window}"
    result = rest(_keys(), query)
    if expected is None:
        assert isinstance(result, AuthOk)
        assert result.timestamp_ms == NOW + offset
    else:
        assert err(result) == (-1021, expected, 400)


def test_binance_microsecond_timestamp_and_fractional_recv_window() -> None:
    now_us = NOW * 1000
    ok = rest(_keys(), f"timestamp={now_us - 5_000_500}&recvWindow=5000.5")
    assert isinstance(ok, AuthOk) and ok.recv_window_ms == 5000.5
    assert err(rest(_keys(), f"timestamp={now_us - 5_000_501}&recvWindow=5000.5"))[0] == -1021
    assert rest(_keys(), f"timestamp={now_us + 999_999}").ok
    assert err(rest(_keys(), f"timestamp={now_us + 1_000_000}"))[0] == -1021


def test_binance_recv_window_over_60000_and_malformed() -> None:
    assert err(rest(_keys(), f"timestamp={NOW}&recvWindow=60001")) == (
        -1102,
        "'recvWindow' contains unexpected value. Cannot be greater than 60000.",
        400,
    )
    code, msg, _ = err(rest(_keys(), f"timestamp={NOW}&recvWindow=abc"))
    assert code == -1100 and "'recvWindow'" in msg
    code, msg, _ = err(rest(_keys(), "timestamp=12ab"))
    assert code == -1100 and "'timestamp'" in msg


def test_server_clock_skew_moves_the_window() -> None:
    clock = ServerClock(lambda: NOW, skew_ms=-2000)  # server 2 s behind the client
    assert clock() == NOW - 2000
    assert err(rest(_keys(), f"timestamp={NOW}", clock()))[1] == E.BINANCE_TIMESTAMP_AHEAD
    clock.skew_ms = 0
    assert rest(_keys(), f"timestamp={NOW}", clock()).ok


def test_binance_key_errors() -> None:
    keys = _keys()
    assert err(rest(keys, f"timestamp={NOW}", api_key=None)) == (
        -2014,
        "API-key format invalid.",
        401,
    )
    assert err(rest(keys, f"timestamp={NOW}", api_key="short"))[0] == -2014
    unknown = "Z" * 64
    assert err(rest(keys, f"timestamp={NOW}", api_key=unknown)) == (
        -2015,
        "Invalid API-key, IP, or permissions for action.",
        401,
    )


def test_binance_permissions_and_ip_whitelist() -> None:
    keys = _keys(permissions=[Permission.READ], ips=["10.0.0.1"])
    q = f"timestamp={NOW}"
    assert rest(keys, q, ip="10.0.0.1", required=Permission.READ).ok
    assert err(rest(keys, q, ip="10.0.0.1", required=Permission.SPOT_TRADE))[0] == -2015
    assert err(rest(keys, q, ip="10.0.0.2", required=Permission.READ))[0] == -2015
    assert err(rest(keys, q, ip=None))[0] == -2015
    headers = {"X-MBX-APIKEY": GENERATED_KEY}
    assert verify_binance_api_key(keys, headers, ip="10.0.0.1").ok
    assert err(verify_binance_api_key(keys, headers, ip="10.0.0.9"))[0] == -2015


def test_binance_missing_and_misplaced_parameters() -> None:
    keys = _keys()
    assert err(rest(keys, f"timestamp={NOW}", sign=False)) == (
        -1102,
        "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
        400,
    )
    assert err(rest(keys, "symbol=BTCUSDT")) == (
        -1102,
        "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
        400,
    )
    q = f"timestamp={NOW}"
    sig = _hmac(q)
    not_last = f"signature={sig}&{q}".encode()
    result = verify_binance_rest(keys, "POST", not_last, b"", {"X-MBX-APIKEY": GENERATED_KEY}, NOW)
    assert err(result)[0] == -1022
    twice = f"{q}&signature={sig}".encode()
    result = verify_binance_rest(
        keys, "POST", twice, f"signature={sig}".encode(), {"X-MBX-APIKEY": GENERATED_KEY}, NOW
    )
    assert err(result) == (-1101, "Duplicate values for a parameter detected.", 400)
    dup = f"timestamp={NOW}&timestamp={NOW}"
    assert err(rest(keys, dup))[0] == -1101


def test_binance_query_wins_and_get_ignores_body() -> None:
    keys = _keys()
    ok = rest(keys, f"symbol=BTCUSDT&timestamp={NOW}", body="symbol=ETHUSDT")
    assert isinstance(ok, AuthOk) and ok.params["symbol"] == "BTCUSDT"
    assert "signature" not in ok.params
    q = f"timestamp={NOW}"
    result = verify_binance_rest(
        keys,
        "GET",
        f"{q}&signature={_hmac(q)}".encode(),
        b"junk=1",
        {"X-MBX-APIKEY": GENERATED_KEY},
        NOW,
    )
    assert result.ok


def test_binance_ws_errors_and_response_shape() -> None:
    keys = _keys()
    params: dict[str, Any] = {"apiKey": GENERATED_KEY, "timestamp": NOW - 6000}
    sig = _hmac(binance_ws_payload(params).decode())
    result = verify_binance_ws(keys, params | {"signature": sig}, NOW)
    assert isinstance(result, AuthError) and result.code == -1021
    assert result.ws_response("abc") == {
        "id": "abc",
        "status": 400,
        "error": {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
    }
    missing = verify_binance_ws(keys, {"timestamp": NOW, "signature": sig}, NOW)
    assert err(missing)[:2] == (-1102, E.BINANCE_MANDATORY_PARAM % "apiKey")
    assert json.loads(result.body()) == {"code": -1021, "msg": E.BINANCE_TIMESTAMP_OUTSIDE}


# --------------------------------------------------------------------------- Bybit rules


def bybit(
    keys: KeyRegistry,
    now_ms: int,
    ts: int = NOW,
    rw: str | None = "5000",
    *,
    api_key: str = "bybitKey",
    required: str | None = None,
    ip: str | None = None,
    secret: str = SECRET,
) -> AuthResult:
    query = "category=linear&symbol=BTCUSDT"
    sig = _hmac(f"{ts}{api_key}{rw or ''}{query}", secret)
    headers = {"X-BAPI-API-KEY": api_key, "X-BAPI-TIMESTAMP": str(ts), "X-BAPI-SIGN": sig}
    if rw is not None:
        headers["X-BAPI-RECV-WINDOW"] = rw
    return verify_bybit_rest(
        keys, "GET", query.encode(), b"", headers, now_ms, ip=ip, required=required
    )


def _bybit_keys(**kwargs: Any) -> KeyRegistry:
    keys = KeyRegistry()
    keys.add_hmac("bybitKey", SECRET, account="uid-1", **kwargs)
    return keys


@pytest.mark.parametrize(
    ("now_offset", "rw", "accepted"),
    [
        (5000, "5000", True),  # server - recv_window <= timestamp
        (5001, "5000", False),
        (-999, "5000", True),  # timestamp < server + 1000
        (-1000, "5000", False),
        (5000, None, True),  # header absent: default 5000
        (5001, None, False),
        (20000, "20000", True),
    ],
)
def test_bybit_timestamp_boundaries(now_offset: int, rw: str | None, accepted: bool) -> None:
    now = NOW + now_offset
    result = bybit(_bybit_keys(), now, rw=rw)
    if accepted:
        assert isinstance(result, AuthOk) and result.key.account == "uid-1"
    else:
        window = rw or "5000"
        assert err(result) == (10002, E.BYBIT_TIMESTAMP % (NOW, now, window), 200)
        body = json.loads(result.body())  # type: ignore[union-attr]
        assert body == {
            "retCode": 10002,
            "retMsg": body["retMsg"],
            "result": {},
            "retExtInfo": {},
            "time": now,
        }


def test_bybit_key_ip_permission_errors() -> None:
    keys = _bybit_keys(permissions=[Permission.READ], ips=["10.0.0.1"])
    assert bybit(keys, NOW, ip="10.0.0.1", required=Permission.READ).ok
    assert err(bybit(keys, NOW, ip="10.0.0.1", required=Permission.SPOT_TRADE)) == (
        10005,
        E.BYBIT_PERMISSION_DENIED,
        200,
    )
    assert err(bybit(keys, NOW, ip="10.0.0.2")) == (10010, E.BYBIT_UNMATCHED_IP, 200)
    assert err(bybit(keys, NOW, api_key="other"))[:2] == (10003, "API key is invalid.")
    assert err(bybit(keys, NOW, ip="10.0.0.1", secret="wrong"))[0] == 10004


def test_bybit_missing_headers_is_http_401() -> None:
    result = verify_bybit_rest(_bybit_keys(), "GET", b"", b"", {"X-BAPI-API-KEY": "bybitKey"}, NOW)
    code, msg, status = err(result)
    assert (code, status) == (10001, 401) and "apiKey[bybitKey]" in msg


def test_bybit_ws_auth_expiry_and_bad_key() -> None:
    keys = _bybit_keys()
    expires = NOW + 1000
    sig = _hmac(f"GET/realtime{expires}")
    assert verify_bybit_ws_auth(keys, ["bybitKey", expires, sig], NOW + 999).ok
    assert verify_bybit_ws_auth(keys, ["bybitKey", str(expires), sig], NOW).ok
    expired = verify_bybit_ws_auth(keys, ["bybitKey", expires, sig], NOW + 1000)
    assert err(expired)[:2] == (10002, "Params Error")
    assert E.bybit_ws_auth_reply(10002, "Params Error", "c1") == {
        "success": False,
        "ret_msg": "Params Error",
        "op": "auth",
        "conn_id": "c1",
    }
    bad_key = verify_bybit_ws_auth(keys, ["nope", expires, sig], NOW)
    assert err(bad_key)[:2] == (10003, "Invalid apikey")
    assert E.bybit_ws_auth_reply(10003, "Invalid apikey", "c2") == {
        "op": "auth",
        "success": False,
        "retCode": 10003,
        "retMsg": "Invalid apikey",
        "connId": "c2",
    }
    assert err(verify_bybit_ws_auth(keys, ["bybitKey", expires], NOW))[0] == 10001


# --------------------------------------------------------------------------- catalogs


def test_binance_messages_are_verbatim_from_the_catalog() -> None:
    catalog = json.loads(require_shared(BINANCE_CATALOG).read_text())
    messages = {e["code"]: e["messages"] for e in catalog["errors"]}
    expected = {
        -1003: [E.BINANCE_TOO_MANY_REQUESTS_WEIGHT, E.BINANCE_IP_BANNED],
        -1015: [E.BINANCE_TOO_MANY_ORDERS],
        -1021: [E.BINANCE_TIMESTAMP_OUTSIDE, E.BINANCE_TIMESTAMP_AHEAD],
        -1022: [E.BINANCE_INVALID_SIGNATURE],
        -1100: [E.BINANCE_ILLEGAL_CHARS],
        -1101: [E.BINANCE_DUPLICATE_PARAM],
        -1102: [E.BINANCE_MANDATORY_PARAM, E.BINANCE_PARAM_TOO_LARGE],
        -2014: [E.BINANCE_BAD_API_KEY_FMT],
        -2015: [E.BINANCE_REJECTED_MBX_KEY],
    }
    for code, ours in expected.items():
        for msg in ours:
            assert msg in messages[code], (code, msg)


def test_bybit_messages_from_the_catalog_where_not_overridden() -> None:
    catalog = json.loads(require_shared(BYBIT_CATALOG).read_text())
    uta = {e["code"]: e["description"] for e in catalog["errors"] if e["section"] == "UTA"}
    assert uta[10004] == E.BYBIT_INVALID_SIGN
    assert uta[10005] == E.BYBIT_PERMISSION_DENIED
    assert uta[10010] == E.BYBIT_UNMATCHED_IP
    assert uta[10001] == E.BYBIT_PARAM_ERROR
    # Overridden with what the server is seen sending; the catalog names the same error.
    assert uta[10003].startswith("API key is invalid.")
    assert uta[10006].startswith("Too many visits")
