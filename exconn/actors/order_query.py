"""OrderQuery: the read side of the order path (DESIGN §5). Holds one exchange's ``ReadModel``,
applies private-stream events and what ``OrderCommand`` tells it, answers queries, and
reconciles by REST on start and on ``Reconcile``; everything the model publishes goes to the
subscribers given in its init as ``OrderEvents``.

Under a system (``rest_budget_dir`` set) every fill it published is also written to a durable
journal (``exconn.orders.journal_store``: after handing it to delivery, so a crash in between
can repeat a fill, never lose one). A restarted OrderQuery reads them back into its read model
before its start-up reconcile: the "fills since" cursors continue and only fills no
subscriber got are published.

``VenueOrders`` (also used by ``OrderCommand``) is the venue I/O both actors share: signed
REST clients per market, the order-entry module, the query of one order by client id and the
REST picture a reconcile merges (``exconn.orders.reconcile``).
"""

from __future__ import annotations

import importlib
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from loguru import logger
from thespian.actors import Actor, ActorExitRequest

from exconn import errors
from exconn.actors.lifeline import tie_to_parent
from exconn.actors.order_messages import (
    BalancesView,
    CommandReply,
    FillsView,
    GetBalances,
    GetFills,
    GetOpenOrders,
    GetOrder,
    GetOrderActorInfo,
    GetPositions,
    OrderActorInfo,
    OrderActorStarted,
    OrderEvents,
    OrderQueryInit,
    OrdersView,
    OrderView,
    PositionsView,
    Reconcile,
    ReconcileDone,
    RoutedQuery,
    Submitted,
    UserEvents,
)
from exconn.actors.tracked_send import TrackedSender
from exconn.actors.user_stream import route_events
from exconn.delivery import Delivery
from exconn.logs import configure
from exconn.messages import (
    AccountRoute,
    BalanceUpdate,
    Fill,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderUpdate,
    PositionUpdate,
)
from exconn.model.enums import Market, OrderStatus
from exconn.model.instruments import Instrument
from exconn.orders.journal_store import JournalStore, fills_to_keep, store_dir
from exconn.orders.read_model import ReadModel
from exconn.orders.reconcile import FillQuery, RestPicture, fill_queries, orders_to_query, reconcile
from exconn.outbox import Outbox, Route, routes_of
from exconn.transport.rest import RestClient
from exconn.venues.driver import driver_for, venue_rest_client

ANY: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Any)
# A query by client id that answers "not found" proves the order was never placed only once
# the venue would refuse the request if it still arrived: after the receive window (5 s on
# both venues, exconn's signers) and a margin.
NOT_FOUND_FINAL_S = 6.0
MAX_PAGES = 20  # Bybit cursor pages per list
PAGE = 50


def _utc_now() -> datetime:
    return datetime.now(UTC)


class VenueOrders:
    """Signed REST access to one exchange's markets for the order actors (blocking calls,
    made from the actor's handler: one exchange's order traffic is serialised anyway)."""

    def __init__(
        self,
        exchange: str,
        markets: tuple[str, ...],
        rest_urls: dict[str, str],
        credentials: Any,
        instruments: tuple[Instrument, ...],
        budget_dir: str | None,
        timeout: float,
    ) -> None:
        if exchange not in ("binance", "bybit"):
            raise errors.ConfigError(f"no order support for exchange {exchange!r}")
        self.exchange = exchange
        self.markets = tuple(str(Market(m)) for m in markets)
        self.driver = driver_for(exchange)
        self.entry: Any = importlib.import_module(f"exconn.venues.{exchange}.order_entry")
        self.parse: Any = importlib.import_module(f"exconn.venues.{exchange}.orders_parse")
        self.endpoints: Any = importlib.import_module(f"exconn.venues.{exchange}.endpoints")
        self.wire: Any = importlib.import_module(f"exconn.venues.{exchange}.wire")
        creds = credentials.open() if hasattr(credentials, "open") else credentials
        signer = self.endpoints.RestSigner(creds) if creds is not None else None
        self.rest: dict[str, RestClient] = {}
        for market in self.markets:
            self.rest[market] = venue_rest_client(
                exchange,
                market,
                rest_urls[market],
                signer=signer,
                budget_dir=budget_dir,
                timeout=timeout,
            )
        self.instruments: dict[tuple[str, str], Instrument] = {}
        self.by_venue: dict[tuple[str, str], str] = {}
        for inst in instruments:
            key = (str(inst.market), inst.symbol)
            self.instruments[key] = inst
            self.by_venue[(str(inst.market), inst.venue_symbol)] = inst.symbol
        self.requests = 0

    def close(self) -> None:
        for client in self.rest.values():
            client.close()

    def instrument(self, market: str, symbol: str) -> Instrument | None:
        return self.instruments.get((str(market), symbol))

    def call(self, market: str, request: Any, decoder: msgspec.json.Decoder[Any] = ANY) -> Any:
        self.requests += 1
        return self.rest[str(market)].call(request, decoder)

    def _symbol_of(self, market: str) -> Any:
        return lambda venue_symbol: self.by_venue.get((market, venue_symbol))

    def _bybit_symbol_of(self, market: Market, venue_symbol: str) -> str | None:
        return self.by_venue.get((str(market), venue_symbol))

    # ------------------------------------------------------------------ order replies
    def order_of_reply(self, market: str, symbol: str, body: Any) -> OrderUpdate | None:
        """The full order state a placement/cancel reply carries (Binance RESULT), else None."""
        if self.exchange != "binance" or not isinstance(body, dict) or "status" not in body:
            return None
        try:
            if Market(market) is Market.SPOT:
                wire = msgspec.convert(body, self.wire.SpotOrderResult)
            else:
                wire = msgspec.convert(body, self.wire.UsdmOrder)
            return self.parse.parse_rest_order(wire, market, symbol)
        except (msgspec.ValidationError, ValueError, KeyError):
            return None

    # ------------------------------------------------------------------ one order
    def query_order(
        self,
        market: str,
        symbol: str,
        client_order_id: str | None,
        exchange_order_id: str | None = None,
    ) -> OrderUpdate | None:
        """The venue's state of one order; None when the venue says it does not exist.
        Raises ExconnError when the venue could not be asked."""
        inst = self.instrument(market, symbol)
        if inst is None:
            raise errors.UnknownSymbol(f"{symbol} is not among the order actors' instruments")
        if self.exchange == "binance":
            table = self.endpoints.endpoints(Market(market))
            params = {"symbol": inst.venue_symbol}
            if client_order_id:
                params["origClientOrderId"] = client_order_id
            else:
                params["orderId"] = str(exchange_order_id)
            ep = table["query_order"]
            decoder = (
                msgspec.json.Decoder(self.wire.SpotOrder)
                if Market(market) is Market.SPOT
                else msgspec.json.Decoder(self.wire.UsdmOrder)
            )
            self.requests += 1
            try:
                wire = self.rest[market].signed_request(
                    ep.method, ep.path, params, decoder, is_order=False
                )
            except errors.OrderNotFound:
                return None
            return self.parse.parse_rest_order(wire, market, symbol)
        category = "spot" if Market(market) is Market.SPOT else "linear"
        ep = self.endpoints
        decoder = msgspec.json.Decoder(self.wire.Envelope[self.wire.OrdersResult])
        ids = {"order_link_id": client_order_id} if client_order_id else {}
        if not client_order_id:
            ids = {"order_id": exchange_order_id}
        attempts = (
            ep.open_orders(category, symbol=inst.venue_symbol, **ids),
            ep.open_orders(category, symbol=inst.venue_symbol, open_only=1, **ids),
            ep.order_history(category, symbol=inst.venue_symbol, **ids),
        )
        for request in attempts:
            env = self.call(market, request, decoder)
            rows = self.parse.parse_rest_orders(env.result, self._bybit_symbol_of, Market(market))
            if rows:
                return rows[0]
        return None

    # ------------------------------------------------------------------ reconcile
    def picture(self, model: ReadModel) -> RestPicture:
        """Everything a reconcile needs, asked in the two steps ``exconn.orders.reconcile``
        describes. Raises ExconnError if a list could not be read (nothing is merged then)."""
        open_orders: list[OrderUpdate] = []
        scope: list[tuple[str, str | None]] = []
        balances: list[BalanceUpdate] = []
        balance_markets: list[str] = []
        positions: list[PositionUpdate] = []
        position_scope: list[tuple[str, str | None]] = []
        for market in self.markets:
            open_orders += self._open_orders(market)
            scope.append((market, None))
            got, complete = self._balances(market)
            balances += got
            balance_markets += complete
            if Market(market) is Market.LINEAR:
                positions += self._positions(market)
                position_scope.append((market, None))
        symbols = [(str(i.market), i.symbol) for i in self.instruments.values()]
        fills: list[Fill] = []
        for query in fill_queries(model, symbols):
            if query.market in self.markets and self.instrument(query.market, query.symbol):
                fills += self._fills(query)
        orders: list[OrderUpdate] = []
        not_found: list[tuple[str, str]] = []
        now = _utc_now()
        for ref in orders_to_query(model, open_orders, scope):
            if ref.market not in self.markets:
                continue
            row = self.query_order(
                ref.market, ref.symbol, ref.client_order_id, ref.exchange_order_id or None
            )
            if row is not None:
                orders.append(row)
                continue
            held = model.order(ref.market, ref.client_order_id) if ref.client_order_id else None
            if (
                held is not None
                and ref.client_order_id
                and now - held.ts >= timedelta(seconds=NOT_FOUND_FINAL_S)
            ):
                not_found.append((ref.market, ref.client_order_id))
        return RestPicture(
            as_of=now,
            open_orders=tuple(open_orders),
            open_orders_scope=tuple(scope),
            orders=tuple(orders),
            not_found=tuple(not_found),
            fills=tuple(fills),
            balances=tuple(balances),
            balance_markets=tuple(dict.fromkeys(balance_markets)),
            positions=tuple(positions),
            position_scope=tuple(position_scope),
        )

    def _signed_get(self, market: str, name: str, params: dict[str, str], decoder: Any) -> Any:
        ep = self.endpoints.endpoints(Market(market))[name]
        self.requests += 1
        return self.rest[market].signed_request(ep.method, ep.path, params, decoder, is_order=False)

    def _open_orders(self, market: str) -> list[OrderUpdate]:
        if self.exchange == "binance":
            row = self.wire.SpotOrder if Market(market) is Market.SPOT else self.wire.UsdmOrder
            rows = self._signed_get(market, "open_orders", {}, msgspec.json.Decoder(list[row]))
            return self.parse.parse_rest_orders(rows, market, self._symbol_of(market))
        category = "spot" if Market(market) is Market.SPOT else "linear"
        settles = [None] if category == "spot" else self._settle_coins(market)
        out: list[OrderUpdate] = []
        for settle in settles:
            out += self._bybit_pages(
                market,
                lambda cursor, s=settle: self.endpoints.open_orders(
                    category, settle_coin=s, limit=PAGE, cursor=cursor
                ),
                self.wire.OrdersResult,
                lambda result: self.parse.parse_rest_orders(
                    result, self._bybit_symbol_of, Market(market)
                ),
            )
        return out

    def _settle_coins(self, market: str) -> list[str]:
        return sorted(
            {
                str(i.settle)
                for i in self.instruments.values()
                if str(i.market) == market and i.settle
            }
        )

    def _bybit_pages(self, market: str, build: Any, result_type: Any, parse: Any) -> list[Any]:
        decoder = msgspec.json.Decoder(self.wire.Envelope[result_type])
        out: list[Any] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            env = self.call(market, build(cursor), decoder)
            out += parse(env.result)
            cursor = getattr(env.result, "nextPageCursor", None)
            if not cursor:
                break
        return out

    def _fills(self, query: FillQuery) -> list[Fill]:
        inst = self.instrument(query.market, query.symbol)
        assert inst is not None
        if self.exchange == "binance":
            spot = Market(query.market) is Market.SPOT
            params = {"symbol": inst.venue_symbol, "limit": "1000"}
            if query.from_id is not None:
                params["fromId"] = str(query.from_id)
            row = self.wire.SpotMyTrade if spot else self.wire.UsdmUserTrade
            name = "my_trades" if spot else "user_trades"
            rows = self._signed_get(query.market, name, params, msgspec.json.Decoder(list[row]))
            return self.parse.parse_rest_fills(rows, query.market, self._symbol_of(query.market))
        category = "spot" if Market(query.market) is Market.SPOT else "linear"
        start = None if query.start_time is None else int(query.start_time.timestamp() * 1000)
        settle = inst.settle

        def parse(result: Any) -> list[Fill]:
            return self.parse.parse_rest_fills(
                result, self._bybit_symbol_of, Market(query.market), lambda _m, _s: settle
            )

        return self._bybit_pages(
            query.market,
            lambda cursor: self.endpoints.executions(
                category, symbol=inst.venue_symbol, start_time=start, limit=PAGE, cursor=cursor
            ),
            self.wire.ExecutionsResult,
            parse,
        )

    def _balances(self, market: str) -> tuple[list[BalanceUpdate], list[str]]:
        if self.exchange == "binance":
            if Market(market) is Market.SPOT:
                wire = self._signed_get(
                    market,
                    "account",
                    {"omitZeroBalances": "true"},
                    msgspec.json.Decoder(self.wire.SpotAccount),
                )
            else:
                wire = self._signed_get(
                    market, "balance", {}, msgspec.json.Decoder(list[self.wire.UsdmBalance])
                )
            now_ms = time.time_ns() // 1_000_000
            return self.parse.parse_rest_balances(wire, now_ms), [market]
        if market != self.markets[0]:
            return [], []  # one unified wallet for every category
        decoder = msgspec.json.Decoder(self.wire.Envelope[self.wire.WalletBalanceResult])
        env = self.call(market, self.endpoints.wallet_balance(), decoder)
        now_ms = env.time or time.time_ns() // 1_000_000
        got = self.parse.parse_rest_balances(env.result, now_ms)
        return got, sorted({b.market for b in got})

    def _positions(self, market: str) -> list[PositionUpdate]:
        if self.exchange == "binance":
            rows = self._signed_get(
                market, "position_risk", {}, msgspec.json.Decoder(list[self.wire.PositionRisk])
            )
            now_ms = time.time_ns() // 1_000_000
            return self.parse.parse_rest_positions(rows, self._symbol_of(market), now_ms)
        out: list[PositionUpdate] = []
        now_ms = time.time_ns() // 1_000_000
        for settle in self._settle_coins(market):
            out += self._bybit_pages(
                market,
                lambda cursor, s=settle: self.endpoints.positions(
                    "linear", settle_coin=s, limit=PAGE, cursor=cursor
                ),
                self.wire.PositionsResult,
                lambda result: self.parse.parse_rest_positions(
                    result, self._bybit_symbol_of, now_ms, Market(market)
                ),
            )
        return out


class OrderQuery(Actor):
    def __init__(self) -> None:
        super().__init__()
        tie_to_parent()
        self.init: OrderQueryInit | None = None
        self.model: ReadModel | None = None
        self.venue: VenueOrders | None = None
        self.subscribers: list[Any] = []
        # Account topics (kind -> subscribers, from the supervisor's AccountRoute): what the
        # read model publishes goes to them, so each fill reaches them once whatever its source.
        self.routes: dict[str, tuple[Route, ...]] = {}
        self.route_seq = -1
        self.reconciles = 0
        self.fill_store: JournalStore[Fill] | None = None
        self.log = logger
        self.sender = TrackedSender(self, Delivery())

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            self.log.exception("order query: unexpected error handling {}", type(message))

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, RoutedQuery):
            # An engine's query through the root: answer the asker, not the supervisor.
            message, sender = message.query, message.reply_to
        if isinstance(message, OrderQueryInit):
            self._on_init(message, sender)
        elif isinstance(message, ActorExitRequest):
            if self.venue is not None:
                self.venue.close()
            if self.fill_store is not None:
                self.fill_store.close()
        elif isinstance(message, AccountRoute):
            # From the supervisor and (ahead of their events) from the private streams.
            if message.seq >= self.route_seq:
                self.route_seq = message.seq
                self.routes = {k: routes_of(v) for k, v in message.routes.items()}
        elif self.model is None:
            return  # nothing before the init
        elif isinstance(message, UserEvents):
            self._publish(self.model.apply_all(message.events))
        elif isinstance(message, Submitted):
            order = message.order
            self.model.record_submitted(order, order.client_order_id, _utc_now())
        elif isinstance(message, CommandReply):
            self._on_command_reply(message)
        elif isinstance(message, Reconcile):
            self.send(sender, self._reconcile("asked"))
        elif isinstance(message, GetOrder | GetOpenOrders | GetFills | GetBalances | GetPositions):
            self.send(sender, self._answer(message))
        elif isinstance(message, GetOrderActorInfo):
            self.send(sender, self._info())

    def _on_init(self, msg: OrderQueryInit, sender: Any) -> None:
        tie_to_parent()
        configure(msg.log_level)
        self.log = logger.bind(exchange=msg.exchange, actor="order-query")
        self.sender.log = self.log
        self.init = msg
        self.model = ReadModel(msg.exchange)
        self.subscribers = list(msg.subscribers)
        self._restore_fills(msg)
        try:
            self.venue = VenueOrders(
                msg.exchange,
                msg.markets,
                msg.rest_urls,
                msg.credentials,
                msg.instruments,
                msg.rest_budget_dir,
                msg.rest_timeout_s,
            )
        except errors.ExconnError as exc:
            self.log.error("order query: cannot start: {}", exc)
        if self.venue is not None and msg.reconcile_on_start:
            done = self._reconcile("start")
            if done.error:
                self.log.warning("order query: start-up reconcile failed: {}", done.error)
        self.send(sender, OrderActorStarted(name=f"order-query.{msg.exchange}", pid=os.getpid()))

    def _restore_fills(self, msg: OrderQueryInit) -> None:
        """The fills published before a restart, back into the read model (published again
        to nobody): they are what the start-up reconcile must not emit a second time."""
        directory = store_dir(msg.rest_budget_dir)
        if directory is None:
            return
        self.fill_store = JournalStore(directory / f"fills-{msg.exchange}.jsonl", Fill)
        fills = self.fill_store.load()
        assert self.model is not None
        for fill in fills:
            if fill.exchange == msg.exchange:
                self.model.apply_fill(fill)
        if fills or self.fill_store.torn or self.fill_store.bad:
            self.log.info(
                "order query: {} published fills restored from the journal ({} torn, {} bad lines)",
                len(fills),
                self.fill_store.torn,
                self.fill_store.bad,
            )

    def _record_published(self, events: list[Any]) -> None:
        store = self.fill_store
        if store is None:
            return
        store.append_many(e for e in events if isinstance(e, Fill))
        if store.needs_compaction and self.model is not None:
            store.compact(fills_to_keep(self.model.fills()))

    # ------------------------------------------------------------------ command side input
    def _on_command_reply(self, msg: CommandReply) -> None:
        model = self.model
        assert model is not None
        reply = msg.reply
        events: list[Any] = []
        cid = reply.client_order_id
        if msg.order is not None:
            events += model.apply_order_update(msg.order)
        elif msg.resolved_exists is False and cid:
            events += model.resolve_not_found(reply.market, cid)
        elif isinstance(reply, OrderAccepted) and cid and reply.exchange_order_id:
            if reply.action == "place":
                events += model.apply_ack(reply.market, reply.symbol, cid, reply.exchange_order_id)
            elif reply.action == "cancel":
                model.mark(reply.market, cid, OrderStatus.PENDING_CANCEL)
        elif isinstance(reply, OrderOutcomeUnknown) and cid and reply.action == "place":
            model.mark(reply.market, cid, OrderStatus.UNKNOWN)
        elif isinstance(reply, OrderRejected) and cid and reply.action == "place":
            view = model.order(reply.market, cid)
            if view is not None and view.status is OrderStatus.PENDING_NEW:
                rejected = msgspec.structs.replace(
                    view, status=OrderStatus.REJECTED, reject_reason=reply.message, ts=_utc_now()
                )
                events += model.apply_order_update(rejected)
        self._publish(events)

    # ------------------------------------------------------------------ reconcile
    def _reconcile(self, why: str) -> ReconcileDone:
        assert self.model is not None
        exchange = self.model.exchange
        if self.venue is None:
            return ReconcileDone(exchange, error="no REST access (see the start-up error)")
        try:
            picture = self.venue.picture(self.model)
        except errors.ExconnError as exc:
            self.log.warning("order query: reconcile failed: {}", exc)
            return ReconcileDone(exchange, error=str(exc))
        events, report = reconcile(self.model, picture)
        self.reconciles += 1
        self._publish(events)
        # Rare (start, restart of an order actor, reconnect of a private stream): INFO.
        self.log.info(
            "order query: reconcile ({}): {} order updates, {} missed fills, {} balances, "
            "{} positions published; {} unknown resolved, {} unresolved",
            why,
            report.orders_changed,
            report.missed_fills,
            report.balances_changed,
            report.positions_changed,
            len(report.resolved),
            len(report.unresolved),
        )
        return ReconcileDone(exchange, report=report, published=len(events))

    def _publish(self, events: list[Any]) -> None:
        if not events or self.model is None:
            return
        batch = OrderEvents(self.model.exchange, tuple(events))
        for sub in self.subscribers:
            self.send(sub, batch)
        if self.routes:
            out = Outbox()
            route_events(events, self.routes, out)
            if out:
                self.sender.publish(out)
        self._record_published(events)

    # ------------------------------------------------------------------ queries
    def _answer(self, q: Any) -> Any:
        model = self.model
        assert model is not None
        if isinstance(q, GetOrder):
            return OrderView(self._find(q))
        if isinstance(q, GetOpenOrders):
            return OrdersView(tuple(model.open_orders(q.market, q.symbol)))
        if isinstance(q, GetFills):
            return FillsView(tuple(model.fills(q.market, q.symbol)))
        if isinstance(q, GetBalances):
            return BalancesView(tuple(model.balances(q.market)))
        return PositionsView(tuple(model.positions(q.market, q.symbol)))

    def _find(self, q: GetOrder) -> OrderUpdate | None:
        assert self.model is not None
        for order in self.model.orders(q.market, q.symbol):
            if q.client_order_id is not None and order.client_order_id == q.client_order_id:
                return order
            if q.exchange_order_id is not None and order.exchange_order_id == q.exchange_order_id:
                return order
        return None

    def _info(self) -> OrderActorInfo:
        exchange = self.model.exchange if self.model is not None else ""
        return OrderActorInfo(
            name=f"order-query.{exchange}",
            pid=os.getpid(),
            exchange=exchange,
            reconciles=self.reconciles,
            rest_requests=0 if self.venue is None else self.venue.requests,
        )
