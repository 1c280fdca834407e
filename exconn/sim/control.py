"""Parsing and validation of market-stream control messages (SUBSCRIBE and friends).

Pure: text in, either a `Command` or the error object Binance would send back.
"""

import re
from dataclasses import dataclass
from typing import Any

import msgspec

RequestId = int | str | None

METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
MAX_STREAMS = 1024
_INT64 = (-(1 << 63), (1 << 63) - 1)
# The docs say "alphanumeric, at most 36 chars"; '-' and '_' are let through so UUIDs work.
_STR_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Command:
    method: str
    params: list[Any]
    id: RequestId


def error(
    code: int, msg: str, request_id: RequestId = None, with_id: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "msg": msg}
    if with_id:
        body["id"] = request_id
    return body


def invalid(msg: str, request_id: RequestId = None) -> dict[str, Any]:
    return error(2, f"Invalid request: {msg}", request_id)


def _valid_id(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, str) and _STR_ID.fullmatch(value) is not None


def parse(text: str | bytes) -> Command | dict[str, Any]:
    try:
        msg = _decode(text)
    except msgspec.DecodeError as exc:
        return error(3, f"Invalid JSON: {exc}", with_id=False)
    if not isinstance(msg, dict):
        return invalid("expected a JSON object")
    request_id = msg.get("id")
    if not _valid_id(request_id):
        return invalid("request ID must be an int64, an alphanumeric string or null")
    method = msg.get("method")
    if method is None:
        return invalid("missing field `method`", request_id)
    if method not in METHODS:
        expected = ", ".join(f"`{m}`" for m in METHODS)
        return invalid(f"unknown variant `{method}`, expected one of {expected}", request_id)
    params = msg.get("params", [])
    if not isinstance(params, list):
        return invalid("params must be a list", request_id)
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not params or not all(isinstance(p, str) and p for p in params):
            return invalid("params must be a non-empty list of stream names", request_id)
        if len(params) > MAX_STREAMS:
            return invalid("too many parameters", request_id)
    elif method == "LIST_SUBSCRIPTIONS" and params:
        return invalid("too many parameters", request_id)
    return Command(method, params, request_id)
