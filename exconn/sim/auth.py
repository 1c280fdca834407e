"""Request authentication as Binance and Bybit do it: API keys, signatures, timing.

Pure functions over the bytes a request arrived with, so a handler passes exactly what it
received and gets back `AuthOk` or an `AuthError` that already holds the exchange's code,
HTTP status and message. Time is always passed in (`now_ms` is the *server's* clock; see
`ServerClock` for a skewed one).

Check order (the docs do not give one): key present and well-formed, key known, IP allowed,
permission held, mandatory parameters, signature, then timing. The signature comes before the
clock so that a request whose bytes were altered is always reported as a signature failure,
whatever its timestamp says.
"""

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote_plus

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from exconn.sim import errors as E

Venue = Literal["binance", "bybit"]
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

DEFAULT_RECV_WINDOW_MS = 5000
BINANCE_MAX_RECV_WINDOW_MS = 60_000
FUTURE_TOLERANCE_MS = 1000  # both venues reject timestamp >= server time + 1000
# Binance API keys are 64 alphanumerics; anything else is "API-key format invalid.".
BINANCE_KEY_FORMAT = re.compile(r"[A-Za-z0-9]{64}")
# A 13-digit ms timestamp lasts until the year 2286; 16 digits means microseconds.
_MICROS_FROM = 10**14
_TIMESTAMP_RANGE = "^[0-9]{1,20}$"
_RECV_WINDOW_RANGE = "^[0-9]{1,20}(\\.[0-9]{1,3})?$"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,20}")
_RECV_WINDOW_RE = re.compile(r"([0-9]{1,20})(?:\.([0-9]{1,3}))?")
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,20}")  # str.isdigit would also take non-ASCII digits


class KeyKind(StrEnum):
    HMAC = "HMAC"
    RSA = "RSA"
    ED25519 = "ED25519"


class Permission(StrEnum):
    READ = "READ"
    SPOT_TRADE = "SPOT_TRADE"
    FUTURES_TRADE = "FUTURES_TRADE"
    WITHDRAW = "WITHDRAW"


# Most tests want a key that simply works; permission tests pass their own set.
DEFAULT_PERMISSIONS = frozenset({Permission.READ, Permission.SPOT_TRADE, Permission.FUTURES_TRADE})


@dataclass(frozen=True, slots=True)
class ApiKey:
    api_key: str
    kind: KeyKind
    account: str  # account / UID the key belongs to: the limiter counts orders by it
    secret: bytes | None = None  # HMAC only
    public_key: PublicKey | None = None  # RSA / Ed25519 only; the private half is never kept
    permissions: frozenset[str] = DEFAULT_PERMISSIONS
    ips: frozenset[str] | None = None  # None = no IP restriction


class KeyRegistry:
    """The keys one simulated exchange knows."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    def add_hmac(
        self,
        api_key: str,
        secret: str | bytes,
        *,
        account: str | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
        ips: Iterable[str] | None = None,
    ) -> ApiKey:
        raw = secret.encode() if isinstance(secret, str) else secret
        return self._add(
            ApiKey(
                api_key,
                KeyKind.HMAC,
                account or api_key,
                secret=raw,
                permissions=frozenset(permissions),
                ips=None if ips is None else frozenset(ips),
            )
        )

    def add_public_key(
        self,
        api_key: str,
        pem: str | bytes,
        *,
        account: str | None = None,
        permissions: Iterable[str] = DEFAULT_PERMISSIONS,
        ips: Iterable[str] | None = None,
    ) -> ApiKey:
        """Register an RSA or Ed25519 key from PEM (public, or private: only its public half
        is kept, which lets tests register the published demo private keys directly)."""
        public = load_public_key(pem)
        kind = KeyKind.RSA if isinstance(public, rsa.RSAPublicKey) else KeyKind.ED25519
        return self._add(
            ApiKey(
                api_key,
                kind,
                account or api_key,
                public_key=public,
                permissions=frozenset(permissions),
                ips=None if ips is None else frozenset(ips),
            )
        )

    def remove(self, api_key: str) -> None:
        self._keys.pop(api_key, None)

    def get(self, api_key: str) -> ApiKey | None:
        return self._keys.get(api_key)

    def __contains__(self, api_key: object) -> bool:
        return api_key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def _add(self, key: ApiKey) -> ApiKey:
        self._keys[key.api_key] = key
        return key


def load_public_key(pem: str | bytes) -> PublicKey:
    data = pem.encode() if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        key: Any = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"only RSA and Ed25519 keys are supported, not {type(key).__name__}")
    return key


class ServerClock:
    """The simulated exchange's clock: an injectable source plus a skew, so tests can make
    the server run ahead of or behind the client."""

    def __init__(self, source_ms: Callable[[], int] | None = None, skew_ms: int = 0) -> None:
        self._source = source_ms or (lambda: time.time_ns() // 1_000_000)
        self.skew_ms = skew_ms

    def __call__(self) -> int:
        return self._source() + self.skew_ms


@dataclass(frozen=True, slots=True)
class AuthOk:
    key: ApiKey
    timestamp_ms: int = 0
    recv_window_ms: float = DEFAULT_RECV_WINDOW_MS
    # Binance REST: the decoded request parameters (query wins over body, as on Binance),
    # without `signature`; handlers can read them from here instead of parsing again.
    params: dict[str, str] = field(default_factory=dict)

    ok: Literal[True] = True


@dataclass(frozen=True, slots=True)
class AuthError:
    venue: Venue
    code: int
    msg: str
    http_status: int
    time_ms: int = 0  # Bybit bodies carry the server time

    ok: Literal[False] = False

    def body(self) -> bytes:
        if self.venue == "binance":
            return E.binance_body(self.code, self.msg)
        return E.bybit_body(self.code, self.msg, self.time_ms)

    def ws_response(self, request_id: Any) -> dict[str, Any]:
        """Binance WebSocket API error response."""
        return E.binance_ws_error(request_id, self.http_status, self.code, self.msg)


AuthResult = AuthOk | AuthError


# --------------------------------------------------------------------------- signatures


def _hmac_hex(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, payload, hashlib.sha256).hexdigest()


def _check_hmac_hex(secret: bytes, payload: bytes, sig: str, case_sensitive: bool) -> bool:
    if not _HEX64.fullmatch(sig):
        return False
    given = sig if case_sensitive else sig.lower()
    return hmac.compare_digest(given, _hmac_hex(secret, payload))


def _check_public(key: PublicKey, payload: bytes, sig_b64: str) -> bool:
    try:
        raw = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    # Only the canonical encoding: base64 ignores the spare bits of its last character, so
    # without this a changed last character could still verify.
    if base64.b64encode(raw).decode() != sig_b64:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(raw, payload)
    except InvalidSignature:
        return False
    return True


def check_binance_signature(key: ApiKey, payload: bytes, signature: str) -> bool:
    """`signature` is the decoded value (base64 already percent-decoded for RSA/Ed25519).
    HMAC hex is accepted in any case, as Binance does; base64 is case-sensitive by nature."""
    if key.kind == KeyKind.HMAC:
        assert key.secret is not None
        return _check_hmac_hex(key.secret, payload, signature, case_sensitive=False)
    assert key.public_key is not None
    return _check_public(key.public_key, payload, signature)


def check_bybit_signature(key: ApiKey, payload: bytes, signature: str) -> bool:
    """HMAC keys: lower-case hex only (the docs specify lower case and say nothing of other
    cases, so the stricter reading is the safe one for a test double). RSA: base64.
    Bybit has no Ed25519 keys, so an Ed25519 key never verifies."""
    if key.kind == KeyKind.HMAC:
        assert key.secret is not None
        return _check_hmac_hex(key.secret, payload, signature, case_sensitive=True)
    if key.kind == KeyKind.RSA:
        assert key.public_key is not None
        return _check_public(key.public_key, payload, signature)
    return False


# --------------------------------------------------------------------------- timing


def timestamp_error(ts_us: int, server_ms: int, recv_window_us: int) -> str | None:
    """Binance's rule, which is also Bybit's: reject when timestamp >= server + 1000 ms or
    server - timestamp > recvWindow. Everything in microseconds so µs timestamps and
    fractional recvWindows compare exactly. Returns which side failed, or None."""
    server_us = server_ms * 1000
    if ts_us >= server_us + FUTURE_TOLERANCE_MS * 1000:
        return "ahead"
    if server_us - ts_us > recv_window_us:
        return "behind"
    return None


# --------------------------------------------------------------------------- Binance


def _binance(code: int, msg: str, status: int = 400) -> AuthError:
    return AuthError("binance", code, msg, status)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for k, v in headers.items():
        if k.lower() == lowered:
            return v
    return None


def _key_checks(
    keys: KeyRegistry,
    api_key: str | None,
    ip: str | None,
    required: str | None,
    missing: AuthError,
) -> ApiKey | AuthError:
    if not api_key:
        return missing
    if not BINANCE_KEY_FORMAT.fullmatch(api_key):
        return _binance(-2014, E.BINANCE_BAD_API_KEY_FMT, 401)
    key = keys.get(api_key)
    rejected = _binance(-2015, E.BINANCE_REJECTED_MBX_KEY, 401)
    if key is None:
        return rejected
    if key.ips is not None and ip not in key.ips:
        return rejected
    if required is not None and required not in key.permissions:
        return rejected
    return key


def verify_binance_api_key(
    keys: KeyRegistry,
    headers: Mapping[str, str],
    *,
    ip: str | None = None,
    required: str | None = None,
) -> AuthResult:
    """Key-only endpoints (USER_STREAM / listenKey management): header, no signature."""
    found = _key_checks(
        keys,
        _header(headers, "X-MBX-APIKEY"),
        ip,
        required,
        _binance(-2014, E.BINANCE_BAD_API_KEY_FMT, 401),
    )
    return found if isinstance(found, AuthError) else AuthOk(found)


def _split_signature(part: bytes) -> tuple[bytes, bytes | None]:
    """Strip a trailing `signature=…` from a query string or body; the signature must be the
    last parameter, as every Binance example sends it."""
    if part.startswith(b"signature=") and b"&" not in part:
        return b"", part[len(b"signature=") :]
    idx = part.rfind(b"&signature=")
    if idx >= 0 and b"&" not in part[idx + 1 :]:
        return part[:idx], part[idx + len(b"&signature=") :]
    return part, None


def _parse_params(raw: bytes) -> list[tuple[str, str]] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return parse_qsl(text, keep_blank_values=True)


def _binance_timing(params: Mapping[str, str]) -> tuple[int, float, int, int] | AuthError:
    """(timestamp ms, recvWindow ms, timestamp µs, recvWindow µs) or the parameter error."""
    raw_ts = params.get("timestamp", "")
    if raw_ts == "":
        return _binance(-1102, E.BINANCE_MANDATORY_PARAM % "timestamp")
    if not _TIMESTAMP_RE.fullmatch(raw_ts):
        return _binance(-1100, E.BINANCE_ILLEGAL_CHARS % ("timestamp", _TIMESTAMP_RANGE))
    ts = int(raw_ts)
    ts_us = ts if ts >= _MICROS_FROM else ts * 1000
    raw_rw = params.get("recvWindow")
    rw_us = DEFAULT_RECV_WINDOW_MS * 1000
    if raw_rw is not None:
        m = _RECV_WINDOW_RE.fullmatch(raw_rw)
        if m is None:
            return _binance(-1100, E.BINANCE_ILLEGAL_CHARS % ("recvWindow", _RECV_WINDOW_RANGE))
        rw_us = int(m.group(1)) * 1000 + int((m.group(2) or "0").ljust(3, "0"))
        if rw_us > BINANCE_MAX_RECV_WINDOW_MS * 1000:
            return _binance(
                -1102, E.BINANCE_PARAM_TOO_LARGE % ("recvWindow", BINANCE_MAX_RECV_WINDOW_MS)
            )
    return ts_us // 1000, rw_us / 1000, ts_us, rw_us


def _binance_time_check(ts_us: int, rw_us: int, now_ms: int) -> AuthError | None:
    side = timestamp_error(ts_us, now_ms, rw_us)
    if side == "ahead":
        return _binance(-1021, E.BINANCE_TIMESTAMP_AHEAD)
    if side == "behind":
        return _binance(-1021, E.BINANCE_TIMESTAMP_OUTSIDE)
    return None


def verify_binance_rest(
    keys: KeyRegistry,
    method: str,
    query: bytes,
    body: bytes,
    headers: Mapping[str, str],
    now_ms: int,
    *,
    ip: str | None = None,
    required: str | None = None,
) -> AuthResult:
    """A SIGNED (TRADE / USER_DATA) REST request.

    `query` is the raw query string as received (no `?`), `body` the raw form body. The
    signed payload is query + body exactly as sent, concatenated without a separator, with
    the trailing `signature=` parameter removed. GET parameters live only in the query
    string, so a GET body is ignored.
    """
    if method.upper() == "GET":
        body = b""
    found = _key_checks(
        keys,
        _header(headers, "X-MBX-APIKEY"),
        ip,
        required,
        _binance(-2014, E.BINANCE_BAD_API_KEY_FMT, 401),
    )
    if isinstance(found, AuthError):
        return found
    key = found

    q_payload, q_sig = _split_signature(query)
    b_payload, b_sig = (body, None) if q_sig is not None else _split_signature(body)
    q_params, b_params = _parse_params(q_payload), _parse_params(b_payload)
    if q_params is None or b_params is None:
        return _binance(-1100, "Illegal characters found in a parameter.")
    for params in (q_params, b_params):
        names = [k for k, _ in params]
        if len(names) != len(set(names)):
            return _binance(-1101, E.BINANCE_DUPLICATE_PARAM)
    merged = dict(b_params) | dict(q_params)  # the query string wins, as documented
    sig_raw = q_sig if q_sig is not None else b_sig
    if "signature" in merged:
        if sig_raw is not None:
            return _binance(-1101, E.BINANCE_DUPLICATE_PARAM)
        if merged["signature"] != "":
            # Not the last parameter: the payload would contain the signature itself, which
            # no correct client produces.
            return _binance(-1022, E.BINANCE_INVALID_SIGNATURE)
    if not sig_raw:
        return _binance(-1102, E.BINANCE_MANDATORY_PARAM % "signature")
    timing = _binance_timing(merged)
    if isinstance(timing, AuthError):
        return timing
    ts_ms, rw_ms, ts_us, rw_us = timing
    try:
        signature = unquote_plus(sig_raw.decode("ascii"), errors="strict")
    except UnicodeDecodeError:
        return _binance(-1022, E.BINANCE_INVALID_SIGNATURE)
    if not check_binance_signature(key, q_payload + b_payload, signature):
        return _binance(-1022, E.BINANCE_INVALID_SIGNATURE)
    late = _binance_time_check(ts_us, rw_us, now_ms)
    if late is not None:
        return late
    return AuthOk(key, ts_ms, rw_ms, merged)


def ws_param_value(value: Any) -> str:
    """How a JSON parameter value appears in the WebSocket API signature payload: strings
    raw (UTF-8, not percent-encoded), numbers and booleans as JSON writes them. Clients
    should send prices and quantities as strings: a float's text is not preserved."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def binance_ws_payload(params: Mapping[str, Any]) -> bytes:
    """All params except `signature`, sorted by key, `k=v` joined with `&`."""
    return "&".join(
        f"{k}={ws_param_value(params[k])}" for k in sorted(params) if k != "signature"
    ).encode("utf-8")


def verify_binance_ws(
    keys: KeyRegistry,
    params: Mapping[str, Any],
    now_ms: int,
    *,
    ip: str | None = None,
    required: str | None = None,
) -> AuthResult:
    """A signed WebSocket API request (`params` holds apiKey, timestamp, signature).
    Errors become `{"id", "status", "error"}` via `AuthError.ws_response`."""
    api_key = params.get("apiKey")
    found = _key_checks(
        keys,
        api_key if isinstance(api_key, str) else None,
        ip,
        required,
        _binance(-1102, E.BINANCE_MANDATORY_PARAM % "apiKey"),
    )
    if isinstance(found, AuthError):
        return found
    signature = params.get("signature")
    if not isinstance(signature, str) or not signature:
        return _binance(-1102, E.BINANCE_MANDATORY_PARAM % "signature")
    text_params = {k: ws_param_value(v) for k, v in params.items() if k != "signature"}
    timing = _binance_timing(text_params)
    if isinstance(timing, AuthError):
        return timing
    ts_ms, rw_ms, ts_us, rw_us = timing
    if not check_binance_signature(found, binance_ws_payload(params), signature):
        return _binance(-1022, E.BINANCE_INVALID_SIGNATURE)
    late = _binance_time_check(ts_us, rw_us, now_ms)
    if late is not None:
        return late
    return AuthOk(found, ts_ms, rw_ms, text_params)


# --------------------------------------------------------------------------- Bybit


def _bybit(code: int, msg: str, now_ms: int, status: int = 200) -> AuthError:
    # Bybit answers auth failures with HTTP 200 and the code in retCode (pybit only looks at
    # retCode 10002/10006 after checking for status 200).
    return AuthError("bybit", code, msg, status, now_ms)


def _bybit_key(keys: KeyRegistry, api_key: str, ip: str | None, now_ms: int) -> ApiKey | AuthError:
    key = keys.get(api_key)
    if key is None:
        return _bybit(10003, E.BYBIT_INVALID_KEY, now_ms)
    if key.ips is not None and ip not in key.ips:
        return _bybit(10010, E.BYBIT_UNMATCHED_IP, now_ms)
    return key


def verify_bybit_rest(
    keys: KeyRegistry,
    method: str,
    query: bytes,
    body: bytes,
    headers: Mapping[str, str],
    now_ms: int,
    *,
    ip: str | None = None,
    required: str | None = None,
) -> AuthResult:
    """A private V5 REST request. Signed text: timestamp + apiKey + recvWindow + (the query
    string as sent, for GET | the exact body bytes, otherwise), with the three header
    values exactly as sent (an absent recv-window header contributes nothing)."""
    api_key = _header(headers, "X-BAPI-API-KEY") or ""
    raw_ts = _header(headers, "X-BAPI-TIMESTAMP") or ""
    sign = _header(headers, "X-BAPI-SIGN") or ""
    raw_rw = _header(headers, "X-BAPI-RECV-WINDOW")
    if not (api_key and raw_ts and sign):
        return _bybit(10001, E.BYBIT_EMPTY_AUTH % (raw_ts, api_key, sign), now_ms, 401)
    found = _bybit_key(keys, api_key, ip, now_ms)
    if isinstance(found, AuthError):
        return found
    if not _DIGITS.fullmatch(raw_ts) or (raw_rw is not None and not _DIGITS.fullmatch(raw_rw)):
        return _bybit(10001, E.BYBIT_PARAM_ERROR, now_ms)
    data = query if method.upper() == "GET" else body
    payload = (raw_ts + api_key + (raw_rw or "")).encode() + data
    if not check_bybit_signature(found, payload, sign):
        return _bybit(10004, E.BYBIT_INVALID_SIGN, now_ms)
    ts = int(raw_ts)
    rw = int(raw_rw) if raw_rw is not None else DEFAULT_RECV_WINDOW_MS
    if timestamp_error(ts * 1000, now_ms, rw * 1000) is not None:
        return _bybit(10002, E.BYBIT_TIMESTAMP % (ts, now_ms, rw), now_ms)
    if required is not None and required not in found.permissions:
        return _bybit(10005, E.BYBIT_PERMISSION_DENIED, now_ms)
    return AuthOk(found, ts, rw)


def bybit_ws_auth_payload(expires: int | str) -> bytes:
    return f"GET/realtime{expires}".encode()


def verify_bybit_ws_auth(
    keys: KeyRegistry, args: Any, now_ms: int, *, ip: str | None = None
) -> AuthResult:
    """`{"op":"auth","args":[apiKey, expires, signature]}`: signature over
    "GET/realtime" + expires; `expires` (ms) must still be in the future. Build the reply
    frame with `errors.bybit_ws_auth_reply(err.code, err.msg, conn_id)`."""
    if not (isinstance(args, list) and len(args) == 3):
        return _bybit(10001, E.BYBIT_WS_PARAMS_ERROR, now_ms)
    api_key, expires, sign = args
    if not isinstance(api_key, str) or not isinstance(sign, str):
        return _bybit(10001, E.BYBIT_WS_PARAMS_ERROR, now_ms)
    # pybit sends expires as a number, older clients as a digit string: both are signed as
    # their decimal text.
    if isinstance(expires, bool) or not (
        isinstance(expires, int) or (isinstance(expires, str) and _DIGITS.fullmatch(expires))
    ):
        return _bybit(10001, E.BYBIT_WS_PARAMS_ERROR, now_ms)
    found = keys.get(api_key)
    if found is None:
        return _bybit(10003, E.BYBIT_WS_INVALID_KEY, now_ms)
    if found.ips is not None and ip not in found.ips:
        return _bybit(10010, E.BYBIT_UNMATCHED_IP, now_ms)
    if not check_bybit_signature(found, bybit_ws_auth_payload(expires), sign):
        return _bybit(10004, E.BYBIT_INVALID_SIGN, now_ms)
    if int(expires) <= now_ms:
        return _bybit(10002, E.BYBIT_WS_PARAMS_ERROR, now_ms)
    return AuthOk(found, int(expires), 0)
