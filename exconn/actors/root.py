"""Root: spawned by ``exconn.start``; creates the router and one supervisor per exchange,
forwards engine commands to them (order commands and order queries to the exchange's
supervisor, which hands them to its order actors), and restarts either if it dies.

The root keeps its own copy of who subscribed to what, so a restarted router gets every
subscription back; a restarted supervisor gets its streams back from the router. A crash in
one exchange's subtree never touches another exchange.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

from loguru import logger
from thespian.actors import (
    ActorExitRequest,
    ActorTypeDispatcher,
    ChildActorExited,
    DeadEnvelope,
    WakeupMessage,
)

from exconn.actors.order_messages import (
    OrderEntryAt,
    RoutedCommand,
    RoutedQuery,
    query_refusal,
    refusals,
)
from exconn.actors.router import MarketDataRouter
from exconn.actors.supervisor import ExchangeSupervisor
from exconn.actors.timers import Timers
from exconn.logs import configure
from exconn.messages import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CancelOrders,
    CommandNotDelivered,
    GetBalances,
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetOrderEntry,
    GetPositions,
    GetStatus,
    OrderEntry,
    PlaceOrder,
    PlaceOrders,
    RootStart,
    RootStarted,
    RouterInit,
    Subscribe,
    SupervisorInit,
    Unsubscribe,
)
from exconn.topics import SubscriptionRegistry
from exconn.transport.backoff import Backoff

HEALTHY_AFTER_SECONDS = 30.0
MAX_ENTRY_WATCHERS = 256  # per exchange: engines' actors told where its OrderCommand is
_COMMANDS = (PlaceOrder, PlaceOrders, AmendOrder, CancelOrder, CancelAll, CancelOrders)


class TreeStatus:
    """Reply to GetStatus sent to the root (plain class: holds actor addresses)."""

    def __init__(self, router: Any, supervisors: dict[str, Any], restarts: int, pid: int) -> None:
        self.router = router
        self.supervisors = supervisors
        self.restarts = restarts
        self.pid = pid


class _Slot:
    """One supervised child of the root: its address, when it started, its backoff."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.address: Any = None
        self.started_at = 0.0
        self.backoff = Backoff()


class Root(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.config: Any = None
        self.router = _Slot("router")
        self.supervisors: dict[str, _Slot] = {}
        # exchange -> its OrderCommand, as its supervisor last reported (OrderEntryAt)
        self.order_entries: dict[str, Any] = {}
        # exchange -> {str(address): address} of the actors that asked to be told (GetOrderEntry)
        self.entry_watchers: dict[str, dict[str, Any]] = {}
        self.registry = SubscriptionRegistry()  # mirror of the router's, for its restarts
        self.timers = Timers(self)
        self.restarts = 0
        self.exiting = False
        self.log = logger

    def receiveMsg_RootStart(self, msg: RootStart, sender: Any) -> None:
        if self.config is None:
            self.config = msg.config
            configure(self.config.log_level)
            self.log = logger.bind(component="root")
            # A command sent to an OrderCommand that has died comes back here, not lost
            # silently (receiveMsg_DeadEnvelope).
            self.handleDeadLetters(startHandling=True)
            for ex in self.config.exchanges:
                self.supervisors[ex.name] = slot = _Slot(ex.name)
                self._start_supervisor(slot)
            self._start_router()
        self.send(sender, RootStarted())

    # -- children -------------------------------------------------------------------------------
    def _start_supervisor(self, slot: _Slot) -> None:
        ex = next(e for e in self.config.exchanges if e.name == slot.name)
        slot.address = self.createActor(ExchangeSupervisor)
        slot.started_at = time.monotonic()
        self.send(
            slot.address,
            SupervisorInit(exchange=ex.name, config=ex, log_level=self.config.log_level),
        )

    def _start_router(self) -> None:
        self.router.address = self.createActor(MarketDataRouter)
        self.router.started_at = time.monotonic()
        self._init_router()
        for subscriber, topics in self.registry.subscriptions():
            self.send(self.router.address, Subscribe(subscriber=subscriber, topics=topics))

    def _init_router(self) -> None:
        supervisors = {n: s.address for n, s in self.supervisors.items() if s.address is not None}
        markets = {ex.name: tuple(ex.markets) for ex in self.config.exchanges}
        accounts = tuple(ex.name for ex in self.config.exchanges if ex.credentials is not None)
        self.send(
            self.router.address,
            RouterInit(supervisors=supervisors, markets=markets, accounts=accounts),
        )

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender: Any) -> None:
        if self.exiting:
            return
        for slot in [self.router, *self.supervisors.values()]:
            # A child failing in __init__ can be reported twice: only the current address counts.
            if slot.address is None or slot.address != msg.childAddress:
                continue
            slot.address = None
            self._set_entry(slot.name, None)  # the command died with its supervisor
            self.restarts += 1
            if time.monotonic() - slot.started_at > HEALTHY_AFTER_SECONDS:
                slot.backoff.reset()
            delay = slot.backoff.next_delay()
            self.log.warning("{} died; restarting in {:.1f} s", slot.name, delay)
            self.timers.start(f"restart:{slot.name}", delay)
            if slot is not self.router and self.router.address is not None:
                self._init_router()  # stop routing to the dead supervisor meanwhile

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        purpose = self.timers.fire(msg.payload)
        if purpose is None or not purpose.startswith("restart:"):
            return
        name = purpose.split(":", 1)[1]
        if name == "router":
            if self.router.address is None:
                self._start_router()
            return
        slot = self.supervisors.get(name)
        if slot is not None and slot.address is None:
            self._start_supervisor(slot)
            if self.router.address is not None:
                self._init_router()  # the router re-sends that exchange's demands

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        self.exiting = True

    # -- engine commands ------------------------------------------------------------------------
    def receiveMsg_Subscribe(self, msg: Subscribe, sender: Any) -> None:
        for topic in msg.topics:
            # A bad topic is not mirrored; the router reports it to the subscriber.
            with contextlib.suppress(ValueError):
                self.registry.subscribe(msg.subscriber, [topic])
        if self.router.address is not None:
            self.send(self.router.address, msg)

    def receiveMsg_Unsubscribe(self, msg: Unsubscribe, sender: Any) -> None:
        self.registry.unsubscribe(msg.subscriber, msg.topics)
        if self.router.address is not None:
            self.send(self.router.address, msg)

    # -- order commands: to the exchange's supervisor, which hands them to its OrderCommand;
    # the asker travels along (``RoutedCommand.reply_to``) and gets the replies directly.
    def receiveMsg_PlaceOrder(self, msg: PlaceOrder, sender: Any) -> None:
        self._route_command(msg.exchange, msg, sender)

    def receiveMsg_AmendOrder(self, msg: AmendOrder, sender: Any) -> None:
        self._route_command(msg.exchange, msg, sender)

    def receiveMsg_CancelOrder(self, msg: CancelOrder, sender: Any) -> None:
        self._route_command(msg.exchange, msg, sender)

    def receiveMsg_CancelAll(self, msg: CancelAll, sender: Any) -> None:
        self._route_command(msg.exchange, msg, sender)

    def receiveMsg_PlaceOrders(self, msg: PlaceOrders, sender: Any) -> None:
        for exchange, items in _by_exchange(msg.orders).items():
            self._route_command(exchange, PlaceOrders(tuple(items)), sender)

    def receiveMsg_CancelOrders(self, msg: CancelOrders, sender: Any) -> None:
        for exchange, items in _by_exchange(msg.orders).items():
            self._route_command(exchange, CancelOrders(tuple(items)), sender)

    def receiveMsg_OrderEntryAt(self, msg: OrderEntryAt, sender: Any) -> None:
        slot = self.supervisors.get(msg.exchange)
        if slot is None or slot.address != sender:
            return  # from a supervisor that has since been replaced
        self._set_entry(msg.exchange, msg.address)

    def _set_entry(self, exchange: str, address: Any) -> None:
        """Record where ``exchange``'s OrderCommand is and tell the watchers if it moved."""
        if self.order_entries.get(exchange) == address:
            return
        if address is None:
            self.order_entries.pop(exchange, None)
        else:
            self.order_entries[exchange] = address
        for watcher in self.entry_watchers.get(exchange, {}).values():
            self.send(watcher, self._entry(exchange))

    def _entry(self, exchange: str) -> OrderEntry:
        address = self.order_entries.get(exchange)
        if address is not None:
            return OrderEntry(exchange, address)
        slot = self.supervisors.get(exchange)
        if slot is None:
            return OrderEntry(exchange, None, f"exchange {exchange!r} is not configured")
        ex = next(e for e in self.config.exchanges if e.name == exchange)
        if ex.credentials is None:
            return OrderEntry(exchange, None, f"{exchange} has no API credentials")
        return OrderEntry(exchange, None, f"{exchange} order command is (re)starting")

    def receiveMsg_GetOrderEntry(self, msg: GetOrderEntry, sender: Any) -> None:
        if msg.exchange in self.supervisors:  # no watchers for a name that is not configured
            watchers = self.entry_watchers.setdefault(msg.exchange, {})
            if not msg.watch:
                watchers.pop(str(sender), None)
            elif str(sender) in watchers or len(watchers) < MAX_ENTRY_WATCHERS:
                watchers[str(sender)] = sender
            else:
                self.log.warning("{}: {} order-entry watchers already", msg.exchange, len(watchers))
        self.send(sender, self._entry(msg.exchange))

    def receiveMsg_DeadEnvelope(self, msg: DeadEnvelope, sender: Any) -> None:
        """A message whose target had died. Only the order path's matter here: nothing of
        them reached an order actor, so they can be answered (or re-routed) safely."""
        dead, message = msg.deadAddress, msg.deadMessage
        for exchange, entry in list(self.order_entries.items()):
            if entry == dead:
                self._set_entry(exchange, None)  # its supervisor will say where the new one is
        if isinstance(message, RoutedCommand):
            # Sent to an OrderCommand that had just died, so nothing of it was sent: hand it
            # to the supervisor, which passes it to the new one or, while that is starting,
            # refuses it (ExchangeDown): answered either way, never lost.
            exchange = _exchange_of(message.command)
            slot = self.supervisors.get(exchange)
            if (
                not message.returned
                and slot is not None
                and slot.address is not None
                and slot.address != dead
            ):
                self.send(slot.address, RoutedCommand(message.command, message.reply_to, True))
                return
            reason, text = unroutable(exchange, slot is not None, "nothing was sent")
            for reply in refusals(message.command, reason, text):
                self.send(message.reply_to, reply)
        elif isinstance(message, _COMMANDS):
            # Sent straight to a dead OrderCommand (GetOrderEntry): the sender is not known;
            # the exchange's watchers are who sent it.
            exchange = _exchange_of(message)
            self.log.warning(
                "{} sent to a dead order command: not delivered", type(message).__name__
            )
            for watcher in self.entry_watchers.get(exchange, {}).values():
                self.send(watcher, CommandNotDelivered(exchange, message))
        elif isinstance(message, OrderEntry):
            self.entry_watchers.get(message.exchange, {}).pop(str(dead), None)

    def _route_command(self, exchange: str, command: Any, sender: Any) -> None:
        entry = self.order_entries.get(exchange)
        if entry is not None:
            self.send(entry, RoutedCommand(command, sender))
            return
        slot = self.supervisors.get(exchange)
        if slot is not None and slot.address is not None:
            self.send(slot.address, RoutedCommand(command, sender))
            return
        reason, text = unroutable(exchange, slot is not None, "nothing was sent")
        for reply in refusals(command, reason, text):
            self.send(sender, reply)

    # -- order queries: the same way to the exchange's OrderQuery (``RoutedQuery``), which
    # answers the asker.
    def receiveMsg_GetOrder(self, msg: GetOrder, sender: Any) -> None:
        self._route_query(msg, sender)

    def receiveMsg_GetOpenOrders(self, msg: GetOpenOrders, sender: Any) -> None:
        self._route_query(msg, sender)

    def receiveMsg_GetFills(self, msg: GetFills, sender: Any) -> None:
        self._route_query(msg, sender)

    def receiveMsg_GetBalances(self, msg: GetBalances, sender: Any) -> None:
        self._route_query(msg, sender)

    def receiveMsg_GetPositions(self, msg: GetPositions, sender: Any) -> None:
        self._route_query(msg, sender)

    def _route_query(self, query: Any, sender: Any) -> None:
        exchange = query.exchange
        slot = self.supervisors.get(exchange) if exchange else None
        if slot is not None and slot.address is not None:
            self.send(slot.address, RoutedQuery(query, sender))
            return
        reason, text = unroutable(exchange, slot is not None, "ask again")
        self.send(sender, query_refusal(exchange, query, reason, text))

    def receiveMsg_GetStatus(self, msg: GetStatus, sender: Any) -> None:
        supervisors = {n: s.address for n, s in self.supervisors.items() if s.address is not None}
        self.send(sender, TreeStatus(self.router.address, supervisors, self.restarts, os.getpid()))


def unroutable(exchange: str | None, configured: bool, restarting_hint: str) -> tuple[str, str]:
    """(reason, message) for an order command or query the root cannot hand to ``exchange``'s
    supervisor: none named, none configured, or (``configured``) it is being restarted."""
    if not exchange:
        return "ConfigError", "no exchange named: order messages sent to the root need exchange="
    if not configured:
        return "ConfigError", f"exchange {exchange!r} is not configured"
    return "ExchangeDown", f"{exchange} supervisor is restarting: {restarting_hint}"


def _exchange_of(command: Any) -> str:
    items = getattr(command, "orders", None)
    first = items[0] if items else command
    return str(getattr(first, "exchange", ""))


def _by_exchange(orders: Any) -> dict[str, list[Any]]:
    """A batch's orders grouped by exchange, each group in the batch's order."""
    out: dict[str, list[Any]] = {}
    for order in orders:
        out.setdefault(order.exchange, []).append(order)
    return out
