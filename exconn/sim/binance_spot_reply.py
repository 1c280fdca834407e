"""What a Binance spot operation answers, independent of REST or the WebSocket API."""

from dataclasses import dataclass, field
from typing import Any

# errors.md texts used by the trading endpoints.
INVALID_SYMBOL = "Invalid symbol."
UNKNOWN_ORDER = "Unknown order sent."
NO_SUCH_ORDER = "Order does not exist."
INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
WOULD_TAKE = "Order would immediately match and take."
DUPLICATE_ORDER = "Duplicate order sent."
UNSUPPORTED_COMBINATION = "Unsupported order combination."
CANCEL_REPLACE_FAILED = "Order cancel-replace failed."
CANCEL_REPLACE_PARTIAL = "Order cancel-replace partially failed."
AMEND_INCREASE = "Order amend (quantity increase) is not supported."
MANDATORY = "Mandatory parameter '%s' was not sent, was empty/null, or malformed."
ILLEGAL_NUMBER = "Illegal characters found in parameter '%s'; legal range is '%s'."
NUMBER_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
TOO_MUCH_PRECISION = "Parameter '%s' has too much precision."
NOT_REQUIRED = "Parameter '%s' sent when not required."
MORE_THAN_24H = "More than 24 hours between startTime and endTime."
BOTH_SENT = "Parameters '%s' and '%s' must not be sent together."  # chosen text for -1128
INTERNAL = "Internal error; unable to process your request. Please try again."
OVERLOADED = (
    "Server is currently overloaded with other requests. Please try again in a few minutes."
)
UNEXPECTED_RESPONSE = (
    "An unexpected response was received from the message bus. Execution status unknown."
)
TIMEOUT = (
    "Timeout waiting for response from backend server. "
    "Send status unknown; execution status unknown."
)


@dataclass(frozen=True, slots=True)
class ApiError(Exception):
    status: int
    code: int
    msg: str
    data: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out


def bad_request(code: int, msg: str) -> ApiError:
    return ApiError(400, code, msg)


def mandatory(name: str) -> ApiError:
    return ApiError(400, -1102, MANDATORY % name)


@dataclass(slots=True)
class Reply:
    """A successful answer: body plus whether an order was placed (for order-count headers)."""

    body: Any
    status: int = 200
    placed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
