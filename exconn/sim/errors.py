"""Error bodies as Binance and Bybit send them, and the message texts they use.

Binance texts are copied verbatim from the spot errors catalog (errors.md). Bybit texts come
from the V5 error table, except where the live server is known to send something else: the
table describes a code and the server's `retMsg` differs. Those use the text seen in
responses quoted in public issue threads, each noted below.
"""

from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode

# Binance (errors.md); "%s" stands for a value the server fills in.
BINANCE_TOO_MANY_REQUESTS_WEIGHT = (
    "Too much request weight used; current limit is %s request weight per %s. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
BINANCE_IP_BANNED = (
    "Way too much request weight used; IP banned until %s. "
    "Please use WebSocket Streams for live updates to avoid bans."
)
BINANCE_TOO_MANY_ORDERS = "Too many new orders; current limit is %s orders per %s."
BINANCE_TIMESTAMP_OUTSIDE = "Timestamp for this request is outside of the recvWindow."
BINANCE_TIMESTAMP_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
BINANCE_INVALID_SIGNATURE = "Signature for this request is not valid."
BINANCE_ILLEGAL_CHARS = "Illegal characters found in parameter '%s'; legal range is '%s'."
BINANCE_DUPLICATE_PARAM = "Duplicate values for a parameter detected."
BINANCE_MANDATORY_PARAM = "Mandatory parameter '%s' was not sent, was empty/null, or malformed."
BINANCE_PARAM_TOO_LARGE = "'%s' contains unexpected value. Cannot be greater than %s."
BINANCE_BAD_API_KEY_FMT = "API-key format invalid."
BINANCE_REJECTED_MBX_KEY = "Invalid API-key, IP, or permissions for action."

# Bybit V5.
BYBIT_OK = "OK"
# Seen verbatim in pybit#191 (2024), sieblyio/bybit-api#236 (2023), JKorf/Bybit.Net#273
# (2025); the table's "The request time exceeds the time window range." is not what is sent.
BYBIT_TIMESTAMP = (
    "invalid request, please check your server timestamp or recv_window param. "
    "req_timestamp[%s],server_timestamp[%s],recv_window[%s]"
)
# Seen verbatim in VictorFrWu/bybit-java-api#57 and JKorf/Bybit.Net#240 (2024).
BYBIT_INVALID_KEY = "API key is invalid."
BYBIT_INVALID_SIGN = "Error sign, please check your signature generation algorithm."
BYBIT_PERMISSION_DENIED = "Permission denied, please check your API key permissions."
BYBIT_UNMATCHED_IP = "Unmatched IP, please check your API key's bound IP addresses."
# The rate-limit page quotes this exact retMsg (the error table says "Too many visits.
# Exceeded the API Rate Limit.").
BYBIT_TOO_MANY_VISITS = "Too many visits!"
# UNCONFIRMED for V5: the shape of the reply when auth headers are missing is not documented;
# this is the V5 text as remembered from live use, sent with HTTP 401 (error table: "put
# authentication params in the request header").
BYBIT_EMPTY_AUTH = "empty value: apiTimestamp[%s] apiKey[%s] apiSignature[%s]"
BYBIT_PARAM_ERROR = "Request parameter error"
# Private-stream auth replies: the recorded failure for a bad key (nautilus fixture
# ws_auth_failure.json) and the text pybit#152/#300 quote for an expired `expires`.
BYBIT_WS_INVALID_KEY = "Invalid apikey"
BYBIT_WS_PARAMS_ERROR = "Params Error"
# The docs quote "403, access too frequent" for the per-IP limit; the body is not shown.
BYBIT_IP_LIMITED_BODY = b"access too frequent"


def binance_body(code: int, msg: str) -> bytes:
    return _encode({"code": code, "msg": msg})


def binance_ws_error(
    request_id: Any, status: int, code: int, msg: str, data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A WebSocket API error response (`rateLimits` is added by the caller when wanted)."""
    error: dict[str, Any] = {"code": code, "msg": msg}
    if data is not None:
        error["data"] = data
    return {"id": request_id, "status": status, "error": error}


def bybit_envelope(ret_code: int, ret_msg: str, time_ms: int, result: Any = None) -> dict[str, Any]:
    return {
        "retCode": ret_code,
        "retMsg": ret_msg,
        "result": {} if result is None else result,
        "retExtInfo": {},
        "time": time_ms,
    }


def bybit_body(ret_code: int, ret_msg: str, time_ms: int) -> bytes:
    return _encode(bybit_envelope(ret_code, ret_msg, time_ms))


def bybit_ws_auth_reply(
    ret_code: int, ret_msg: str, conn_id: str, req_id: str | None = None
) -> dict[str, Any]:
    """The reply to `{"op":"auth"}` on the private stream.

    Both shapes are in use: the newer one with retCode/retMsg/connId (success and bad key are
    recorded that way) and the older success/ret_msg/conn_id one (what expired requests get).
    """
    if ret_code in (0, 10003, 10004):
        reply: dict[str, Any] = {
            "op": "auth",
            "success": ret_code == 0,
            "retCode": ret_code,
            "retMsg": ret_msg,
            "connId": conn_id,
        }
    else:
        reply = {"success": False, "ret_msg": ret_msg, "op": "auth", "conn_id": conn_id}
    if req_id is not None:
        reply["req_id"] = req_id
    return reply
