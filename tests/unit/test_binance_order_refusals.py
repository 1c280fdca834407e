"""USD-M order refusals that the venue answers with a 4xx and a code of its own must reach
the engine as ``OrderRejected`` (nothing was placed), not as an unknown outcome that sends
exconn to resolve a placement that never happened (found by the lifecycle matrix,
tests/integration/test_order_lifecycle.py)."""

from __future__ import annotations

import pytest

from exconn import errors
from exconn.messages import OrderOutcomeUnknown, OrderRejected
from exconn.orders.command import ReplyContext, outcome_of_error
from exconn.venues.binance.errors import error_for

CTX = ReplyContext(
    exchange="binance", market="linear", symbol="BTC/USDT:USDT", action="place",
    client_order_id="c-1",
)  # fmt: skip


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (-2019, "Margin is insufficient.", errors.InsufficientFunds),
        (-5022, "Due to the order could not be executed as maker, the Post Only order will be "
         "rejected. The order will not be recorded in the order history", errors.InvalidOrder),
        (-4164, "Order's notional must be no smaller than 100", errors.InvalidOrder),
        (-4061, "Order's position side does not match user's setting.", errors.InvalidOrder),
    ],
)  # fmt: skip
def test_a_usdm_refusal_is_a_rejection(code: int, message: str, kind: type) -> None:
    err = error_for(400, code, message, endpoint="POST /fapi/v1/order")
    assert type(err) is kind
    reply = outcome_of_error(err, CTX)
    assert isinstance(reply, OrderRejected), reply
    assert reply.code == code and reply.reason == kind.__name__
    assert reply.client_order_id == "c-1"


def test_an_unknown_code_and_a_5xx_stay_unknown() -> None:
    odd = error_for(400, -9999, "never seen", endpoint="POST /fapi/v1/order")
    assert isinstance(outcome_of_error(odd, CTX), OrderOutcomeUnknown)
    down = error_for(503, -1001, "Internal error", endpoint="POST /fapi/v1/order")
    assert isinstance(outcome_of_error(down, CTX), OrderOutcomeUnknown)
