"""ExchangeSupervisor: one per exchange; a crash below it never leaves its subtree.

It loads the instruments, owns the desired state (which topic goes to whom), starts connection
actors and restarts a dead one with backoff, replaying every route so its subscriptions come
back. Subscribers of a dead connection's books get a ``BookReset`` at once.

With credentials it also runs the order path (DESIGN §5): one ``OrderQuery`` (the read model;
it reconciles by REST on every start) and one ``OrderCommand``, restarted with backoff like the
connections. The private streams feed the query (``SetQueryActor``), which publishes the
account topics; order commands from the root (``RoutedCommand``) go to the command actor, order
queries (``RoutedQuery``) to the query actor.
"""

from __future__ import annotations

import os
import time
from typing import Any

from loguru import logger
from thespian.actors import ActorExitRequest, ActorTypeDispatcher, ChildActorExited, WakeupMessage

from exconn import errors
from exconn.actors.connection import MarketDataConnection
from exconn.actors.lifeline import tie_to_parent
from exconn.actors.md_messages import ConnectionSetup
from exconn.actors.order_command import OrderCommand
from exconn.actors.order_messages import (
    OrderActorStarted,
    OrderCommandInit,
    OrderEntryAt,
    OrderQueryInit,
    Reconcile,
    RoutedCommand,
    RoutedQuery,
    SetQueryActor,
    query_refusal,
    refusals,
)
from exconn.actors.order_query import OrderQuery
from exconn.actors.timers import Timers
from exconn.actors.user_stream import UserStreamConnection
from exconn.logs import configure
from exconn.messages import (
    AccountRoute,
    BookReset,
    ConnectionInit,
    ConnectionStarted,
    EventBatch,
    GetStatus,
    SetRoute,
    StreamDemand,
    SubscriptionError,
    SupervisorInit,
    UserStreamInit,
)
from exconn.model.enums import Market
from exconn.topics import parse_topic
from exconn.transport.backoff import Backoff
from exconn.transport.lifecycle import ShardPlanner
from exconn.venues.driver import VenueDriver, driver_for, venue_rest_client

# A child that lived this long is healthy again: its next failure starts the backoff anew.
HEALTHY_AFTER_SECONDS = 30.0
# Order commands and queries held until the order actors first start (instruments loading).
MAX_EARLY_COMMANDS = 1000


class SupervisorStatus:
    """Reply to GetStatus: this exchange's connection actors (plain class: holds addresses)."""

    def __init__(
        self,
        exchange: str,
        connections: list[Any],
        restarts: int,
        pid: int,
        user_streams: list[Any] | None = None,
        order_query: Any = None,
        order_command: Any = None,
    ) -> None:
        self.order_query = order_query
        self.order_command = order_command
        self.pid = pid
        self.exchange = exchange
        self.connections = connections
        self.restarts = restarts
        self.user_streams = user_streams or []  # UserStreamConnection addresses


class _Child:
    def __init__(self, market: str, route: str, shard: int, name: str) -> None:
        self.market = market
        self.route = route  # USD-M "public" / "market"; "" for spot
        self.shard = shard
        self.name = name
        self.address: Any = None
        self.started_at = 0.0
        self.backoff = Backoff()


class _UserChild:
    """One private stream: the configured markets it carries (``VenueDriver.user_streams``)."""

    def __init__(self, markets: tuple[str, ...], name: str) -> None:
        self.markets = markets
        self.name = name
        self.address: Any = None
        self.started_at = 0.0
        self.backoff = Backoff()


class _OrderChild:
    """``OrderQuery`` or ``OrderCommand`` of this exchange."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.address: Any = None
        self.started_at = 0.0
        self.backoff = Backoff()


class ExchangeSupervisor(ActorTypeDispatcher):
    def __init__(self) -> None:
        super().__init__()
        self.init: SupervisorInit | None = None
        self.driver: VenueDriver = driver_for("binance")  # replaced by SupervisorInit's
        self.instruments: dict[str, list[Any]] = {}  # market -> instruments
        self.rate_limits: dict[str, tuple[tuple[str, str, int, int], ...]] = {}
        self.demands: dict[str, tuple[Any, ...]] = {}  # topic -> subscribers
        self.pending: list[StreamDemand] = []  # demands waiting for instruments
        self.children: dict[str, _Child] = {}  # _key(market, route, shard) -> connection
        # (market, route) -> which connection carries which topic (one stream per topic)
        self.planners: dict[tuple[str, str], ShardPlanner] = {}
        # account kind (orders, fills, ...) -> subscribers; any -> the private streams run
        self.account_demands: dict[str, tuple[Any, ...]] = {}
        self.user_children: dict[str, _UserChild] = {}  # name -> private stream
        self.route_seq = 0  # version of account_demands (AccountRoute.seq)
        self.order_query = _OrderChild("order-query")
        self.order_command = _OrderChild("order-command")
        self.order_started = False  # the order actors were started once
        self.parent: Any = None  # the root: told where the OrderCommand is (OrderEntryAt)
        self.query_ready = False  # the first OrderQuery answered its init
        self.early_commands: list[RoutedCommand | RoutedQuery] = []
        self.restarts = 0
        self.timers = Timers(self)
        self.load_backoff = Backoff()
        self.exiting = False
        self.log = logger

    def receiveMsg_SupervisorInit(self, msg: SupervisorInit, sender: Any) -> None:
        tie_to_parent()
        self.parent = sender
        configure(msg.log_level)
        self.init = msg
        self.driver = driver_for(msg.exchange)
        self.log = logger.bind(exchange=msg.exchange)
        self._load_instruments()

    def _load_instruments(self) -> None:
        assert self.init is not None
        cfg = self.init.config
        for market in cfg.markets:
            if market in self.instruments:
                continue
            try:
                self.instruments[market] = self._fetch_instruments(market)
            except errors.ExconnError as exc:
                delay = self.load_backoff.next_delay()
                self.log.warning(
                    "loading {} instruments failed: {}; retry in {:.1f} s", market, exc, delay
                )
                self.timers.ensure("load", delay)
                return
        self.log.info("instruments loaded: {}", {m: len(v) for m, v in self.instruments.items()})
        pending, self.pending = self.pending, []
        for demand in pending:
            self._on_demand(demand)
        self._start_order_actors()
        self._sync_user_streams()

    def _fetch_instruments(self, market: str) -> list[Any]:
        assert self.init is not None
        venue_urls = self.init.config.urls_for(market)
        rest = venue_rest_client(
            self.init.exchange,
            market,
            venue_urls.rest,
            budget_dir=self.init.config.rest_budget_dir,
        )
        try:
            catalog = self.driver.load_catalog(Market(market), rest.get)
        finally:
            rest.close()
        # The venue's own limits seed every REST client this exchange's actors create.
        self.rate_limits[market] = catalog.rate_limits
        return catalog.instruments

    def receiveMsg_StreamDemand(self, msg: StreamDemand, sender: Any) -> None:
        self._on_demand(msg)

    def _on_demand(self, msg: StreamDemand) -> None:
        if self.init is None:
            # Router and root are different senders: a demand can overtake our init message.
            self.pending.append(msg)
            return
        if parse_topic(msg.topic).is_account:
            self._on_account_demand(msg)
            return
        market = parse_topic(msg.topic).market
        if market not in self.init.config.markets:
            for sub in msg.subscribers:
                self.send(
                    sub,
                    SubscriptionError(
                        topic=msg.topic,
                        reason=f"{self.init.exchange} market {market!r} is not configured",
                    ),
                )
            return
        if market not in self.instruments:
            self.pending.append(msg)
            return
        kind = parse_topic(msg.topic).kind
        try:
            # A kind this market has no stream for (mark on spot) is refused here, before a
            # shard slot or a connection actor is spent on it.
            self.driver.stream_for(kind, "", Market(market))
        except ValueError as exc:
            for sub in msg.subscribers:
                self.send(sub, SubscriptionError(topic=msg.topic, reason=str(exc)))
            return
        route = self.driver.route_for(Market(market), kind)
        planner = self._planner(market, route)
        if msg.subscribers:
            self.demands[msg.topic] = msg.subscribers
            shard: int | None = planner.assign(msg.topic)
        else:
            self.demands.pop(msg.topic, None)
            shard = planner.release(msg.topic)
            if shard is None:
                return  # never opened
        assert shard is not None
        child = self._child(market, route, shard)
        if child.address is not None:
            self.send(child.address, SetRoute(topic=msg.topic, subscribers=msg.subscribers))

    # -- private streams (account topics) ----------------------------------------------------------
    def _on_account_demand(self, msg: StreamDemand) -> None:
        assert self.init is not None
        kind = parse_topic(msg.topic).kind
        if self.init.config.credentials is None:
            for sub in msg.subscribers:
                self.send(sub, SubscriptionError(topic=msg.topic, reason=self._no_keys()))
            return
        if msg.subscribers:
            self.account_demands[kind] = msg.subscribers
        else:
            self.account_demands.pop(kind, None)
        self.route_seq += 1
        if self.order_query.address is not None:
            self.send(self.order_query.address, self._account_route())
        self._sync_user_streams()

    def _account_route(self) -> AccountRoute:
        return AccountRoute(routes=dict(self.account_demands), seq=self.route_seq)

    def _no_keys(self) -> str:
        assert self.init is not None
        return (
            f"{self.init.exchange} has no credentials: account topics need "
            "ExchangeConfig.credentials (Config.from_env: EXCONN_<EXCHANGE>_API_KEY)"
        )

    def _sync_user_streams(self) -> None:
        """The first account subscriber starts one private stream per group of markets; the
        last one stops them; every change re-sends the routes."""
        if self.init is None or self.init.config.credentials is None:
            return
        if not self.account_demands:
            for child in self.user_children.values():
                if child.address is not None:
                    self.send(child.address, ActorExitRequest())
            self.user_children.clear()  # their ChildActorExited is no failure now
            return
        if not self.query_ready:
            # The streams feed the OrderQuery: they start once it has done its start-up
            # reconcile, so their first subscription (which asks it to reconcile again) is
            # served at once, with every subscription made meanwhile in place.
            return
        route = self._account_route()
        for markets in self.driver.user_streams(self.init.config.markets):
            if any(m not in self.instruments for m in markets):
                return  # started once the instruments are loaded
            name = f"{'+'.join(markets)}-user"
            child = self.user_children.get(name)
            if child is None:
                child = self.user_children[name] = _UserChild(tuple(markets), name)
                self._start_user_child(child)
            elif child.address is not None:
                self.send(child.address, route)

    def _start_user_child(self, child: _UserChild) -> None:
        assert self.init is not None
        cfg = self.init.config
        try:
            private_url = cfg.private_url_for(child.markets[0])
            rest_url = cfg.urls_for(child.markets[0]).rest
        except errors.ConfigError as exc:
            for kind, subs in self.account_demands.items():
                for sub in subs:
                    self.send(
                        sub,
                        SubscriptionError(topic=f"{kind}.{self.init.exchange}", reason=str(exc)),
                    )
            return
        child.address = self.createActor(UserStreamConnection)
        child.started_at = time.monotonic()
        self.send(child.address, self._account_route())
        if self.order_query.address is not None:
            self.send(child.address, SetQueryActor(self.order_query.address))
        self.send(
            child.address,
            UserStreamInit(
                exchange=self.init.exchange,
                markets=child.markets,
                name=child.name,
                private_url=private_url,
                rest_url=rest_url,
                instruments=tuple(i for m in child.markets for i in self.instruments[m]),
                credentials=cfg.credentials,
                log_level=self.init.log_level,
                backoff_initial_s=cfg.ws.backoff_initial_s,
                backoff_max_s=cfg.ws.backoff_max_s,
                ack_timeout_s=cfg.ws.auth_timeout_s,
                rest_budget_dir=cfg.rest_budget_dir,
                heartbeat_s=cfg.ws.private_heartbeat_s,
                silence_s=cfg.ws.private_silence_s,
            ),
        )

    # -- order path -----------------------------------------------------------------------------
    def _start_order_actors(self) -> None:
        """Once every market's instruments are loaded: the query first (the command and the
        private streams are told its address), then the command; queued commands follow."""
        if self.init is None or self.order_started:
            return
        if self.init.config.credentials is not None:
            if any(m not in self.instruments for m in self.init.config.markets):
                return
            self.order_started = True
            try:
                self._start_query()
                self._start_command()
            except errors.ConfigError as exc:
                self.log.error("order actors cannot start: {}", exc)
                self.query_ready = True  # the streams then publish straight to subscribers
        early, self.early_commands = self.early_commands, []
        for routed in early:
            if isinstance(routed, RoutedQuery):
                self._on_query(routed)
            else:
                self._on_command(routed)

    def _order_setup(self) -> dict[str, Any]:
        assert self.init is not None
        cfg = self.init.config
        return {
            "exchange": self.init.exchange,
            "markets": tuple(cfg.markets),
            "rest_urls": {m: cfg.urls_for(m).rest for m in cfg.markets},
            "credentials": cfg.credentials,
            "instruments": tuple(i for m in cfg.markets for i in self.instruments[m]),
            "rest_budget_dir": cfg.rest_budget_dir,
            "log_level": self.init.log_level,
        }

    def _start_query(self) -> None:
        slot = self.order_query
        slot.address = self.createActor(OrderQuery)
        slot.started_at = time.monotonic()
        # Routes first: the start-up reconcile already publishes to the account subscribers.
        self.send(slot.address, self._account_route())
        self.send(slot.address, OrderQueryInit(**self._order_setup()))
        tell = SetQueryActor(slot.address)
        if self.order_command.address is not None:
            self.send(self.order_command.address, tell)
        for uchild in self.user_children.values():
            if uchild.address is not None:
                self.send(uchild.address, tell)

    def _start_command(self) -> None:
        slot = self.order_command
        slot.address = self.createActor(OrderCommand)
        slot.started_at = time.monotonic()
        self.send(
            slot.address,
            OrderCommandInit(
                query=self.order_query.address,
                order_ws_urls=self.init.config.order_ws_urls() if self.init else {},
                **self._order_setup(),
            ),
        )

    def receiveMsg_RoutedCommand(self, msg: RoutedCommand, sender: Any) -> None:
        self._on_command(msg)

    def _on_command(self, msg: RoutedCommand) -> None:
        if self.order_command.address is not None:
            self.send(self.order_command.address, msg)
            return
        has_keys = self.init is None or self.init.config.credentials is not None
        if has_keys and not self.order_started and len(self.early_commands) < MAX_EARLY_COMMANDS:
            self.early_commands.append(msg)  # sent once the instruments are loaded
            return
        if not has_keys:
            reason, text = "ConfigError", self._no_keys().replace("account topics", "orders")
        else:
            reason, text = "ExchangeDown", "the order actor is restarting: nothing was sent"
        for reply in refusals(msg.command, reason, text):
            self.send(msg.reply_to, reply)

    def receiveMsg_RoutedQuery(self, msg: RoutedQuery, sender: Any) -> None:
        self._on_query(msg)

    def _on_query(self, msg: RoutedQuery) -> None:
        # Thespian delivers one sender's messages in order: a query sent after the query
        # actor's init is answered from its read model once the start-up reconcile is done.
        if self.order_query.address is not None:
            self.send(self.order_query.address, msg)
            return
        has_keys = self.init is None or self.init.config.credentials is not None
        if has_keys and not self.order_started and len(self.early_commands) < MAX_EARLY_COMMANDS:
            self.early_commands.append(msg)  # asked once the instruments are loaded
            return
        exchange = self.init.exchange if self.init is not None else None
        if not has_keys:
            reason, text = "ConfigError", self._no_keys().replace("account topics", "orders")
        else:
            reason, text = "ExchangeDown", "the order query actor is restarting: ask again"
        self.send(msg.reply_to, query_refusal(exchange, msg.query, reason, text))

    def receiveMsg_OrderActorStarted(self, msg: OrderActorStarted, sender: Any) -> None:
        self.log.info("{} started (pid {})", msg.name, msg.pid)
        if sender == self.order_command.address and self.parent is not None and self.init:
            self.send(self.parent, OrderEntryAt(self.init.exchange, sender))
        if sender == self.order_query.address and not self.query_ready:
            # Its start-up reconcile is done: the private streams may start now (see
            # _sync_user_streams).
            self.query_ready = True
            self._sync_user_streams()

    def _restart_order_child(self, slot: _OrderChild) -> None:
        if slot.address is not None or self.exiting:
            return
        if slot is self.order_query:
            self._start_query()  # it reconciles on start
        else:
            self._start_command()
            # Whatever the dead command had sent and not yet told the query is at the venue
            # only: reconcile (the report goes to the log; the ReconcileDone here is ignored).
            if self.order_query.address is not None:
                self.send(self.order_query.address, Reconcile())

    def _planner(self, market: str, route: str) -> ShardPlanner:
        planner = self.planners.get((market, route))
        if planner is None:
            assert self.init is not None
            cap = self.init.config.ws.max_streams_per_connection or self.driver.max_streams(
                Market(market)
            )
            planner = self.planners[(market, route)] = ShardPlanner(cap)
        return planner

    def _child(self, market: str, route: str, shard: int) -> _Child:
        key = _key(market, route, shard)
        child = self.children.get(key)
        if child is None:
            name = f"{market}-{route}-md-{shard}" if route else f"{market}-md-{shard}"
            child = _Child(market, route, shard, name)
            self.children[key] = child
            self._start_child(child)
        return child

    def _topics_of(self, child: _Child) -> list[str]:
        planner = self.planners.get((child.market, child.route))
        return planner.keys_of(child.shard) if planner is not None else []

    def _start_child(self, child: _Child) -> None:
        assert self.init is not None
        venue_urls = self.init.config.urls_for(child.market)
        child.address = self.createActor(MarketDataConnection)
        child.started_at = time.monotonic()
        self.send(
            child.address,
            ConnectionSetup(
                init=ConnectionInit(
                    exchange=self.init.exchange,
                    market=child.market,
                    name=child.name,
                    ws_url=self.driver.routed_base(venue_urls.ws, child.route),
                    rest_url=venue_urls.rest,
                    instruments=tuple(self.instruments[child.market]),
                    depth_limit=self.init.config.depth_limit,
                    log_level=self.init.log_level,
                    rate_limits=self.rate_limits.get(child.market, ()),
                    rest_budget_dir=self.init.config.rest_budget_dir,
                ),
                settings=self.init.config.ws,
            ),
        )
        # Reference-counted subscriptions survive a restart: replay this child's topics.
        for topic in self._topics_of(child):
            subscribers = self.demands.get(topic)
            if subscribers:
                self.send(child.address, SetRoute(topic=topic, subscribers=subscribers))

    def receiveMsg_ConnectionStarted(self, msg: ConnectionStarted, sender: Any) -> None:
        self.log.info("{} started (pid {})", msg.name, msg.pid)

    def receiveMsg_ActorExitRequest(self, msg: ActorExitRequest, sender: Any) -> None:
        # The system is shutting down: children exiting now are not failures to restart.
        self.exiting = True

    def receiveMsg_ChildActorExited(self, msg: ChildActorExited, sender: Any) -> None:
        if self.exiting:
            return
        for slot in (self.order_query, self.order_command):
            if slot.address is None or slot.address != msg.childAddress:
                continue
            slot.address = None
            if slot is self.order_command and self.parent is not None and self.init:
                self.send(self.parent, OrderEntryAt(self.init.exchange, None))
            self.restarts += 1
            if time.monotonic() - slot.started_at > HEALTHY_AFTER_SECONDS:
                slot.backoff.reset()
            delay = slot.backoff.next_delay()
            self.log.warning("{} exited; restarting in {:.1f} s", slot.name, delay)
            self.timers.start(f"orestart:{slot.name}", delay)
            return
        for uchild in self.user_children.values():
            if uchild.address is None or uchild.address != msg.childAddress:
                continue
            uchild.address = None
            self.restarts += 1
            if time.monotonic() - uchild.started_at > HEALTHY_AFTER_SECONDS:
                uchild.backoff.reset()
            delay = uchild.backoff.next_delay()
            self.log.warning("{} exited; restarting in {:.1f} s", uchild.name, delay)
            self.timers.start(f"urestart:{uchild.name}", delay)
            return
        for child in self.children.values():
            # A child failing in __init__ can be reported twice: only the current address counts.
            if child.address is None or child.address != msg.childAddress:
                continue
            child.address = None
            self.restarts += 1
            if time.monotonic() - child.started_at > HEALTHY_AFTER_SECONDS:
                child.backoff.reset()
            delay = child.backoff.next_delay()
            self.log.warning("{} died; restarting in {:.1f} s", child.name, delay)
            self._reset_books(child, f"{child.name} restarting")
            self.timers.start(f"restart:{_key(child.market, child.route, child.shard)}", delay)

    def _reset_books(self, child: _Child, reason: str) -> None:
        assert self.init is not None
        for topic in self._topics_of(child):
            t = parse_topic(topic)
            if t.kind == "book":
                event = BookReset(
                    exchange=self.init.exchange, market=t.market, symbol=t.symbol, reason=reason
                )
                for sub in self.demands.get(topic, ()):
                    self.send(sub, EventBatch.of([event]))

    def receiveMsg_WakeupMessage(self, msg: WakeupMessage, sender: Any) -> None:
        purpose = self.timers.fire(msg.payload)
        if purpose == "load":
            self._load_instruments()
        elif purpose is not None and purpose.startswith("restart:"):
            child = self.children.get(purpose.split(":", 1)[1])
            if child is not None and child.address is None:
                self._start_child(child)
        elif purpose == f"orestart:{self.order_query.name}":
            self._restart_order_child(self.order_query)
        elif purpose == f"orestart:{self.order_command.name}":
            self._restart_order_child(self.order_command)
        elif purpose is not None and purpose.startswith("urestart:"):
            uchild = self.user_children.get(purpose.split(":", 1)[1])
            if uchild is not None and uchild.address is None:
                self._start_user_child(uchild)

    def receiveMsg_GetStatus(self, msg: GetStatus, sender: Any) -> None:
        # A restarted supervisor can be asked before its SupervisorInit arrives: it then has
        # no children yet, which is the truth.
        self.send(
            sender,
            SupervisorStatus(
                exchange=self.init.exchange if self.init is not None else "",
                connections=[c.address for c in self.children.values() if c.address is not None],
                restarts=self.restarts,
                pid=os.getpid(),
                user_streams=[
                    c.address for c in self.user_children.values() if c.address is not None
                ],
                order_query=self.order_query.address,
                order_command=self.order_command.address,
            ),
        )


def _key(market: str, route: str, shard: int) -> str:
    return f"{market}:{route}:{shard}"
