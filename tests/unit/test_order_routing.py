"""Order queries through the root: where they go and what an unroutable one answers. The
root is run in-process (simpleSystemBase) without a config, so no exchange is configured."""

from __future__ import annotations

import pickle
from collections.abc import Iterator

import pytest
from thespian.actors import ActorSystem

from exconn import messages
from exconn.actors import order_messages
from exconn.actors.order_messages import RoutedQuery, query_refusal
from exconn.actors.root import Root, unroutable
from exconn.messages import (
    GetBalances,
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetPositions,
    OrderQueryMessage,
    QueryRejected,
)


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    sys = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        yield sys
    finally:
        sys.shutdown()


QUERIES: list[OrderQueryMessage] = [
    GetOrder(exchange="kraken", client_order_id="c1"),
    GetOpenOrders("BTC/USDT", "spot", "kraken"),
    GetFills(exchange="kraken"),
    GetBalances(exchange="kraken"),
    GetPositions(exchange="kraken"),
]


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: type(q).__name__)
def test_a_query_for_an_unconfigured_exchange_is_rejected_with_the_query(
    system: ActorSystem, query: OrderQueryMessage
) -> None:
    root = system.createActor(Root)
    reply = system.ask(root, query, 5)
    assert isinstance(reply, QueryRejected), reply
    assert reply.reason == "ConfigError" and reply.exchange == "kraken"
    assert reply.query == query and "not configured" in reply.message


def test_a_query_naming_no_exchange_is_rejected(system: ActorSystem) -> None:
    root = system.createActor(Root)
    reply = system.ask(root, GetOpenOrders(), 5)
    assert isinstance(reply, QueryRejected), reply
    assert reply.reason == "ConfigError" and "exchange=" in reply.message


def test_unroutable_reasons() -> None:
    assert unroutable(None, False, "x")[0] == "ConfigError"
    assert unroutable("bybit", False, "x") == ("ConfigError", "exchange 'bybit' is not configured")
    reason, text = unroutable("bybit", True, "ask again")
    assert reason == "ExchangeDown" and text.endswith("ask again")


def test_query_messages_keep_their_old_import_path_and_pickle_through_a_route() -> None:
    for name in ("GetOrder", "GetOpenOrders", "GetFills", "OrderView", "FillsView"):
        assert getattr(order_messages, name) is getattr(messages, name)
    # Positional use from before the exchange field existed still means (symbol, market).
    assert GetFills("BTC/USDT", "spot") == GetFills(symbol="BTC/USDT", market="spot")
    routed = RoutedQuery(GetOrder(exchange="binance", client_order_id="c1"), reply_to=None)
    assert pickle.loads(pickle.dumps(routed)) == routed
    refusal = query_refusal(None, routed.query, "ExchangeDown", "restarting")
    assert refusal.exchange == "" and refusal.query == routed.query
