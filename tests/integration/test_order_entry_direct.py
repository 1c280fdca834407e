"""Order commands sent straight to the exchange's OrderCommand (``GetOrderEntry``), inside the
real tree (``exconn.start`` with keys, simulators on 127.0.0.1).

- The address the root gives takes orders exactly as the root does (``OrderAccepted``, the
  order at the venue and in the read model).
- A watcher is told every move: the old address, None while the OrderCommand is dead, the new
  one after its restart.
- A command sent to the dead OrderCommand's address reaches nothing: the watcher is told
  ``CommandNotDelivered`` and the venue never saw it; sent again to the new address, it is
  placed once.
- A ``RoutedCommand`` the root had sent to an OrderCommand that died is handed to the
  supervisor and answered by the new OrderCommand: never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from thespian.actors import Actor

import exconn
from exconn.actors.order_messages import RoutedCommand
from exconn.messages import (
    CommandNotDelivered,
    GetOrder,
    GetOrderEntry,
    OrderAccepted,
    OrderEntry,
    OrderRejected,
    OrderView,
    PlaceOrder,
)
from exconn.model.enums import Market
from exconn.sim import BinanceSpotSim, BybitSim
from tests.integration.conftest import wait_for
from tests.integration.test_order_restart import _kill
from tests.integration.test_order_tree import _binance, _bybit, _instrument, _resting_buy
from tests.sim.spot_client import Rest as SpotRest

ASK_S = 30.0
WAIT = 30.0


@dataclass(frozen=True)
class Watch:
    root: Any
    exchange: str


@dataclass(frozen=True)
class SendTo:
    address: Any
    message: Any


class GetSeen:
    pass


class EntryWatcher(Actor):
    """An engine actor: watches an exchange's order entry, sends what it is told to send, and
    keeps every message it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, Watch):
            self.send(message.root, GetOrderEntry(message.exchange))
        elif isinstance(message, SendTo):
            self.send(message.address, message.message)
        elif isinstance(message, GetSeen):
            self.send(sender, list(self.seen))
        else:
            self.seen.append(message)


def _seen(ex: exconn.Exconn, watcher: Any) -> list[Any]:
    reply = ex.system.ask(watcher, GetSeen(), 10)
    assert isinstance(reply, list), f"watcher did not answer: {reply!r}"
    return reply


def _entries(ex: exconn.Exconn, watcher: Any) -> list[Any]:
    """The addresses the watcher was told, in order (consecutive repeats are not expected)."""
    return [m.address for m in _seen(ex, watcher) if isinstance(m, OrderEntry)]


def _replies(ex: exconn.Exconn, watcher: Any, cid: str, kind: type) -> list[Any]:
    return [
        m
        for m in _seen(ex, watcher)
        if isinstance(m, kind)
        and (m.command.client_order_id if isinstance(m, CommandNotDelivered) else m.client_order_id)
        == cid
    ]


def _venue_has(rest: SpotRest, cid: str) -> bool:
    response = rest.call("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=cid)
    return response.status_code == 200


def _in_read_model(ex: exconn.Exconn, exchange: str, cid: str) -> bool:
    view = ex.ask(GetOrder(client_order_id=cid, exchange=exchange), ASK_S)
    return isinstance(view, OrderView) and view.order is not None


def _place(ex: exconn.Exconn, address: Any, order: PlaceOrder) -> Any:
    reply = ex.system.ask(address, order, ASK_S)
    assert reply is not None, "no answer from the order entry"
    return reply


def test_binance_orders_straight_to_the_order_command_across_its_restart(
    spot_sim: BinanceSpotSim,
) -> None:
    inst = _instrument("binance", Market.SPOT, spot_sim.rest_url, "BTC/USDT")
    _, bids, _ = spot_sim.book("BTCUSDT")
    bid = Decimal(str(bids[0][0]))
    rest = SpotRest(spot_sim, spot_sim.api_keys(0))
    ex = _binance(spot_sim)
    try:
        unknown = ex.ask(GetOrderEntry("kraken", watch=False), ASK_S)
        assert isinstance(unknown, OrderEntry) and unknown.address is None
        assert "not configured" in unknown.reason

        watcher = ex.create_actor(EntryWatcher)
        ex.system.tell(watcher, Watch(ex.root, "binance"))
        first = wait_for(
            lambda: [a for a in _entries(ex, watcher) if a is not None], "an order entry", WAIT
        )[0]
        assert ex.order_entry("binance") == first

        # Straight to it: the same answer, order and read model as through the root.
        direct = _place(ex, first, _resting_buy("binance", inst, bid, "direct-1"))
        assert isinstance(direct, OrderAccepted), direct
        assert direct.client_order_id == "direct-1" and direct.exchange_order_id
        assert _venue_has(rest, "direct-1")
        wait_for(lambda: _in_read_model(ex, "binance", "direct-1"), "direct-1 in OrderQuery", WAIT)

        # The OrderCommand dies: a command sent to its address is not delivered, and said so.
        old = _kill(ex, "binance", "order_command")
        assert old == first
        lost = _resting_buy("binance", inst, bid, "direct-2")
        ex.system.tell(watcher, SendTo(old, lost))
        undelivered = wait_for(
            lambda: _replies(ex, watcher, "direct-2", CommandNotDelivered),
            "CommandNotDelivered for direct-2",
            WAIT,
        )
        assert undelivered[0].command == lost and undelivered[0].exchange == "binance"

        # A command the root had routed to the dead one is handed on, not lost.
        rerouted = _resting_buy("binance", inst, bid, "direct-3")
        ex.system.tell(watcher, SendTo(old, RoutedCommand(rerouted, watcher)))

        # The watcher is told the address is gone, then the new one.
        moves = wait_for(
            lambda: (lambda e: e if e and e[-1] not in (None, old) else None)(
                _entries(ex, watcher)
            ),
            "the new order entry",
            WAIT,
        )
        new = moves[-1]
        after_old = moves[moves.index(old) + 1 : -1]  # a watcher asking early is told None first
        assert after_old and all(a is None for a in after_old), moves
        assert ex.order_entry("binance") == new

        # Answered by the new OrderCommand, or refused (nothing sent) while it was starting.
        answer3 = wait_for(
            lambda: (
                _replies(ex, watcher, "direct-3", OrderAccepted)
                or _replies(ex, watcher, "direct-3", OrderRejected)
            ),
            "an answer for direct-3",
            WAIT,
        )
        assert len(answer3) == 1
        if isinstance(answer3[0], OrderRejected):
            assert answer3[0].reason == "ExchangeDown", answer3
        assert _venue_has(rest, "direct-3") == isinstance(answer3[0], OrderAccepted)
        assert not _venue_has(rest, "direct-2")  # nothing of it reached the venue

        # Sent again, now to the new address: placed once.
        ex.system.tell(watcher, SendTo(new, lost))
        wait_for(
            lambda: _replies(ex, watcher, "direct-2", OrderAccepted), "direct-2 accepted", WAIT
        )
        assert _venue_has(rest, "direct-2")
        assert len(_replies(ex, watcher, "direct-2", OrderAccepted)) == 1
    finally:
        ex.shutdown()
        rest.close()


def test_bybit_orders_straight_to_the_order_command(bybit_sim: BybitSim) -> None:
    inst = _instrument("bybit", Market.LINEAR, bybit_sim.rest_url, "BTC/USDT:USDT")
    ex = _bybit(bybit_sim)
    try:
        bybit_sim.step(1)  # publish the book the order is priced from
        _, bids, _ = bybit_sim.book("linear", "BTCUSDT")
        address = wait_for(lambda: ex.order_entry("bybit"), "the bybit order entry", WAIT)
        order = _resting_buy("bybit", inst, Decimal(str(bids[0][0])), "direct-bybit-1")
        reply = _place(ex, address, order)
        assert isinstance(reply, OrderAccepted), reply
        assert reply.exchange_order_id
        wait_for(
            lambda: _in_read_model(ex, "bybit", "direct-bybit-1"), "the order in OrderQuery", WAIT
        )
        # The same intent again, through the root: refused, not a second order.
        again = ex.ask(order, ASK_S)
        assert isinstance(again, OrderRejected), again
    finally:
        ex.shutdown()
