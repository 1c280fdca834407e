"""OrderCommand: the write side of the order path (DESIGN §5), one per exchange.

For each command: validate against the instrument (``OrderRejected`` with reason
``InvalidOrder`` before anything is sent), assign or check the client order id, record the
intent (``IntentJournal``: one client id, one order; a send in flight or unknown is never
repeated), tell ``OrderQuery`` (``Submitted``), submit over REST (``RestClient``: order entry is
never retried), answer the sender ``OrderAccepted`` / ``OrderRejected`` / ``OrderOutcomeUnknown``
and tell ``OrderQuery`` the answer (``CommandReply``).

An unknown placement is resolved by querying its client id on a timer (backoff from
``resolve_initial_s`` doubling to ``resolve_max_s``, ``resolve_attempts`` queries). "Not found"
counts only once the venue would refuse the request if it still arrived (``NOT_FOUND_FINAL_S``
after the send, past the receive window). The resolution goes to the engine that sent the
order as ``OrderAccepted`` (the order exists) or ``OrderRejected`` (reason ``OrderNotFound``:
it was never placed; the same intent may be sent again). Until then a re-send of the intent
is refused (``OrderRejected`` reason ``OutcomeUnknown``), and after acceptance too
(reason ``InvalidOrder``). If the queries run out the intent stays unknown (never re-sent) and
the engine is told again with ``OrderOutcomeUnknown``.

With ``order_ws_urls`` (``ExchangeConfig(order_entry="ws")``) place, cancel and, on Bybit,
amend go over the venue's order WebSocket (``exconn.transport.ws_request``: Binance spot's
WebSocket API, Bybit's ``/v5/trade``), with the same semantics: a timeout or a socket lost
after the send is unknown, answers are classified by the same tables. A command without a
WebSocket form (cancel-all; amend on Binance) goes over REST, and so does one whose socket
cannot be opened (nothing was sent then).

``PlaceOrders`` / ``CancelOrders`` go in venue batches where the venue has them (Bybit
``create-batch`` / ``cancel-batch``, over REST; ``batch_limit`` of the venue's order entry),
every order journalled before its batch is sent; each order gets its own reply, and a batch
request that fails as a whole leaves each of its orders unknown, resolved by query one by
one. Binance sends them one by one (no spot batch place; see its ``batch_limit``).

Under a system (``rest_budget_dir`` set) the intent journal is durable
(``exconn.orders.journal_store``: each intent's state is written on every change, IN_FLIGHT
before the send, the others once the handler has sent its replies: the engine's ack waits
for no write but the one that must precede the send). A restarted OrderCommand reads it
back: an intent that was in flight or unknown stays refused for a re-send and is resolved
by query again. The engine that asked is
not known to the new process (Thespian addresses are not written to the journal: an ``ask``
endpoint is gone with its ask anyway), so that resolution goes to ``OrderQuery``, which
publishes the order's state on ``orders.<exchange>`` (and answers ``GetOrder``), and to the log.
"""

from __future__ import annotations

import itertools
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from loguru import logger
from thespian.actors import Actor, ActorExitRequest, WakeupMessage

from exconn import errors
from exconn.actors.lifeline import tie_to_parent
from exconn.actors.order_messages import (
    CommandReply,
    GetOrderActorInfo,
    OrderActorInfo,
    OrderActorStarted,
    OrderCommandInit,
    RoutedCommand,
    SetQueryActor,
    Submitted,
)
from exconn.actors.order_query import ANY, NOT_FOUND_FINAL_S, VenueOrders
from exconn.actors.timers import Timers
from exconn.logs import configure
from exconn.messages import (
    AmendOrder,
    CancelAll,
    CancelOrder,
    CancelOrders,
    OrderAccepted,
    OrderOutcomeUnknown,
    OrderRejected,
    OrderReply,
    PlaceOrder,
    PlaceOrders,
)
from exconn.orders.batches import batches
from exconn.orders.command import (
    Intent,
    IntentJournal,
    IntentState,
    ReplyContext,
    assign_client_order_id,
    outcome_of_error,
    validate_place,
)
from exconn.orders.journal_store import IntentRecord, JournalStore, intents_to_keep, store_dir
from exconn.transport.ws_request import AnswerLost, RequestNotSent, WsRequestSession

RESOLVE = "resolve:"
MAX_EARLY_COMMANDS = 1000
_COMMANDS = (PlaceOrder, PlaceOrders, CancelOrder, CancelOrders, AmendOrder, CancelAll)
_request_ids = itertools.count(1)


def _request_id() -> str:
    # WebSocket request ids: unique per process (counter) and across restarts (random).
    return f"ex{os.getpid():x}-{next(_request_ids):x}-{secrets.token_hex(4)}"


@dataclass
class Pending:
    """An unknown placement being resolved by query."""

    order: PlaceOrder
    reply_to: Any  # None: resumed after a restart, the asker is not known
    sent_at: float  # monotonic
    attempts: int = 0
    delay: float = 0.0


@dataclass(frozen=True)
class _AcceptedReply:
    """A ``CommandReply`` for OrderQuery whose order row is read from the venue's answer only
    once the engine has its reply (see ``_flush_query``)."""

    reply: OrderReply
    market: str
    symbol: str
    body: Any


@dataclass(frozen=True)
class _Ready:
    """A placement checked and journalled as in flight, ready to be sent."""

    ctx: ReplyContext
    order: PlaceOrder
    instrument: Any
    request: Any


def _rejected(ctx: ReplyContext, exc: errors.ExconnError) -> OrderRejected:
    return OrderRejected(
        exchange=ctx.exchange,
        market=ctx.market,
        symbol=ctx.symbol,
        action=ctx.action,
        client_order_id=ctx.client_order_id,
        code=exc.code,
        message=str(exc),
        reason=type(exc).__name__,
    )


class OrderCommand(Actor):
    def __init__(self) -> None:
        super().__init__()
        tie_to_parent()
        self.init: OrderCommandInit | None = None
        self.venue: VenueOrders | None = None
        self.journal = IntentJournal()
        self.intent_store: JournalStore[IntentRecord] | None = None
        self.pending: dict[str, Pending] = {}
        self.early: list[tuple[Any, Any]] = []  # commands that came before the init
        # Order entry over the venue's WebSocket (``order_ws_urls``), one session per market.
        self.ws_sessions: dict[str, WsRequestSession] = {}
        self.ws_entry: Any = None
        self.query: Any = None
        self.to_query: list[Any] = []
        # Intent records whose write waits until the handler's replies are sent (_persist).
        self.unwritten: list[IntentRecord] = []
        self.timers: Any = None
        self.log = logger

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            self.log.exception("order command: unexpected error handling {}", type(message))
        finally:
            self._flush_query()

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, RoutedCommand):
            # Routed through the root and the supervisor: answer the engine that asked.
            message, sender = message.command, message.reply_to
        # Thespian can hand a new actor the supervisor's first commands before its init
        # (seen: the commands it queued while the instruments loaded): they wait for it.
        early = self.init is None and isinstance(message, _COMMANDS)
        if early and len(self.early) < MAX_EARLY_COMMANDS:
            self.early.append((message, sender))
            return
        if isinstance(message, OrderCommandInit):
            self._on_init(message, sender)
            early, self.early = self.early, []
            for command, reply_to in early:
                self._dispatch(command, reply_to)
        elif isinstance(message, ActorExitRequest):
            if self.venue is not None:
                self.venue.close()
            for session in self.ws_sessions.values():
                session.close()
            if self.intent_store is not None:
                self.intent_store.close()
        elif isinstance(message, WakeupMessage):
            self._on_wakeup(message.payload)
        elif isinstance(message, SetQueryActor):
            self.query = message.query
        elif isinstance(message, GetOrderActorInfo):
            self.send(sender, self._info())
        elif isinstance(message, PlaceOrder):
            self.send(sender, self._place(message, sender))
        elif isinstance(message, PlaceOrders):
            for reply in self._place_many(message.orders, sender):
                self.send(sender, reply)
        elif isinstance(message, CancelOrder | AmendOrder | CancelAll):
            self.send(sender, self._other(message))
        elif isinstance(message, CancelOrders):
            for reply in self._cancel_many(message.orders):
                self.send(sender, reply)

    def _on_init(self, msg: OrderCommandInit, sender: Any) -> None:
        tie_to_parent()
        configure(msg.log_level)
        self.log = logger.bind(exchange=msg.exchange, actor="order-command")
        self.init = msg
        self.query = msg.query
        self.timers = Timers(self)
        self.venue = VenueOrders(
            msg.exchange,
            msg.markets,
            msg.rest_urls,
            msg.credentials,
            msg.instruments,
            msg.rest_budget_dir,
            msg.rest_timeout_s,
        )
        self._open_ws_entry(msg)
        self._restore_intents(msg)
        self.send(sender, OrderActorStarted(name=f"order-command.{msg.exchange}", pid=os.getpid()))

    # ------------------------------------------------------------------ durable journal
    def _restore_intents(self, msg: OrderCommandInit) -> None:
        """The intent journal of the previous process, if any; unresolved intents are
        resolved by query again (see the module doc for where the answer goes)."""
        directory = store_dir(msg.rest_budget_dir)
        if directory is None:
            return
        store: JournalStore[IntentRecord] = JournalStore(
            directory / f"intents-{msg.exchange}.jsonl", IntentRecord
        )
        records = intents_to_keep(store.load())
        journal = IntentJournal(listener=self._persist)
        now_wall, now_mono = time.time(), time.monotonic()
        for rec in records:
            try:
                intent = journal.restore(
                    rec.order,
                    IntentState(rec.state),
                    attempts=rec.attempts,
                    exchange_order_id=rec.exchange_order_id,
                    sent_at=rec.sent_at,
                )
            except ValueError as exc:
                self.log.warning("order command: journal record skipped: {}", exc)
                continue
            if intent.state is IntentState.UNKNOWN:
                age = max(now_wall - (rec.sent_at or now_wall), 0.0)
                pending = Pending(rec.order, None, now_mono - age, delay=msg.resolve_initial_s)
                self.pending[intent.client_order_id] = pending
                self.timers.start(RESOLVE + intent.client_order_id, pending.delay)
        self.journal, self.intent_store = journal, store
        if records or store.torn or store.bad:
            self.log.info(
                "order command: {} intents restored from the journal, {} to resolve by query "
                "({} torn, {} bad lines)",
                len(records),
                len(self.pending),
                store.torn,
                store.bad,
            )

    def _persist(self, intent: Intent) -> None:
        store = self.intent_store
        if store is None or intent.order is None:
            return
        self.unwritten.append(_record_of(intent))
        if intent.state is IntentState.IN_FLIGHT:
            # Written before the send (with anything still waiting, in order).
            self._write_intents()
        # Any other change (an answer, a resolution) is written once the handler has sent
        # its replies (``_flush_query``): a process killed before that finds the intent in
        # flight, hence unknown, and resolves it by query; never sent again blindly.

    def _write_intents(self) -> None:
        store, records, self.unwritten = self.intent_store, self.unwritten, []
        if store is None or not records:
            return
        store.append_many(records)
        if store.needs_compaction:
            store.compact(intents_to_keep(_record_of(i) for i in self.journal if i.order))

    def _tell_query(self, message: Any) -> None:
        # Held until the handler has sent its replies: a send to another process costs
        # about 0.2 ms here, and the engine waiting on its ack comes first. The read model
        # merges these with the stream in any order (it may see the stream first anyway).
        if self.query is not None:
            self.to_query.append(message)

    def _flush_query(self) -> None:
        """After the handler's replies: the intent records still to write, then what
        OrderQuery is to be told."""
        self._write_intents()
        told, self.to_query = self.to_query, []
        if self.query is not None:
            for message in told:
                if isinstance(message, _AcceptedReply):
                    message = self._accepted_reply(message)
                self.send(self.query, message)

    def _accepted_reply(self, accepted: _AcceptedReply) -> CommandReply:
        order_row = None
        if self.venue is not None:
            try:
                order_row = self.venue.order_of_reply(
                    accepted.market, accepted.symbol, accepted.body
                )
            except Exception:  # the reply itself still reaches the read model
                self.log.exception("order command: order row of a reply not readable")
        return CommandReply(accepted.reply, order=order_row)

    # ------------------------------------------------------------------ placement
    def _place(self, order: PlaceOrder, sender: Any) -> OrderReply:
        ready = self._prepare_place(order)
        if not isinstance(ready, _Ready):
            return ready
        reply, body = self._submit(ready.ctx, ready.request, ready.order, ready.instrument)
        return self._placed(ready, reply, body, sender)

    def _prepare_place(self, order: PlaceOrder) -> _Ready | OrderReply:
        """Checked, given its client id, and journalled as in flight; or the refusal."""
        ctx = ReplyContext(
            exchange=str(order.exchange),
            market=str(order.market),
            symbol=order.symbol,
            action="place",
            client_order_id=order.client_order_id,
        )
        venue = self.venue
        if venue is None or self.init is None:
            return _rejected(ctx, errors.ConfigError("order command not initialised"))
        try:
            if order.exchange != venue.exchange or str(order.market) not in venue.markets:
                raise errors.InvalidOrder(
                    f"this order command trades {venue.exchange} {', '.join(venue.markets)}, "
                    f"not {order.exchange} {order.market}"
                )
            instrument = venue.instrument(str(order.market), order.symbol)
            if instrument is None:
                raise errors.InvalidOrder(f"{order.symbol}: not among the instruments given")
            order = assign_client_order_id(order, self.init.client_id_prefix)
            ctx = msgspec.structs.replace(ctx, client_order_id=order.client_order_id)
            validate_place(order, instrument)
            request = venue.entry.place_request(order, instrument)
            cid = str(order.client_order_id)
            self.journal.record(order)
            self.journal.begin_send(ctx.exchange, ctx.market, cid)
        except errors.ExconnError as exc:
            return _rejected(ctx, exc)
        self._tell_query(Submitted(order))
        return _Ready(ctx, order, instrument, request)

    def _placed(self, ready: _Ready, reply: OrderReply, body: Any, sender: Any) -> OrderReply:
        """Settle the intent with the venue's answer; an unknown one is resolved by query."""
        assert self.venue is not None and self.init is not None
        ctx, order, cid = ready.ctx, ready.order, str(ready.order.client_order_id)
        self.journal.settle(reply)
        if isinstance(reply, OrderAccepted):
            self._tell_query(_AcceptedReply(reply, ctx.market, ctx.symbol, body))
        else:
            self._tell_query(CommandReply(reply))
        if isinstance(reply, OrderOutcomeUnknown):
            self.log.warning("order {}: outcome unknown ({}); resolving by query", cid, reply.known)
            pending = Pending(order, sender, time.monotonic(), delay=self.init.resolve_initial_s)
            self.pending[cid] = pending
            self.timers.start(RESOLVE + cid, pending.delay)
        return reply

    def _submit(
        self, ctx: ReplyContext, request: Any, cmd: Any = None, instrument: Any = None
    ) -> tuple[OrderReply, Any]:
        """Send one command: over the market's order WebSocket when configured and the
        command has a WebSocket form, else (or when that socket cannot be opened: nothing
        was sent then) over REST. The answer is classified the same way on both."""
        assert self.venue is not None
        session = self.ws_sessions.get(ctx.market)
        if (
            session is not None
            and instrument is not None
            and self.ws_entry.supports(ctx.market, ctx.action)
        ):
            sent = self._submit_ws(session, ctx, request, cmd, instrument)
            if sent is not None:
                return sent
        try:
            body = self.venue.call(ctx.market, request, ANY)
        except Exception as exc:  # every failure is classified; unknown is the safe side
            return outcome_of_error(exc, ctx), None
        return self.venue.entry.parse_reply(body, ctx), body

    # ------------------------------------------------------------------ WebSocket entry
    def _open_ws_entry(self, msg: OrderCommandInit) -> None:
        if not msg.order_ws_urls or self.venue is None:
            return
        creds = msg.credentials.open() if hasattr(msg.credentials, "open") else msg.credentials
        self.ws_entry = self.venue.entry.WsEntry(creds)
        for market, url in msg.order_ws_urls.items():
            if market in self.venue.markets:
                self.ws_sessions[market] = WsRequestSession(
                    url,
                    self.ws_entry,
                    timeout_s=msg.rest_timeout_s,
                    connect_timeout_s=msg.rest_timeout_s,
                )
        self.log.info("order entry over WebSocket for {}", ", ".join(sorted(self.ws_sessions)))

    def _ws_timestamp(self, market: str) -> int:
        """The venue's clock (the REST client's offset, synced when stale)."""
        assert self.venue is not None
        rest = self.venue.rest[market]
        now_ms = time.time() * 1000
        if rest.clock.needs_sync(now_ms, rest.resync_interval * 1000):
            rest.sync_clock()
        return rest.clock.timestamp_ms(time.time() * 1000)

    def _submit_ws(
        self,
        session: WsRequestSession,
        ctx: ReplyContext,
        request: Any,
        cmd: Any,
        instrument: Any,
    ) -> tuple[OrderReply, Any] | None:
        """The reply over the WebSocket; None when nothing was sent (REST takes over)."""
        assert self.venue is not None
        try:
            # The venue counts WebSocket orders against the same budgets as REST ones.
            release = self.venue.rest[ctx.market].reserve(request)
        except errors.ExconnError as exc:  # refused before sending, as over REST
            return outcome_of_error(exc, ctx), None
        req_id = _request_id()
        try:
            frame = self.ws_entry.build(
                ctx.action,
                cmd,
                instrument,
                req_id=req_id,
                timestamp_ms=self._ws_timestamp(ctx.market),
            )
            answer = session.request(req_id, frame)
        except (RequestNotSent, errors.ExconnError) as exc:
            release()  # REST draws it again
            self.log.warning("order websocket unavailable, sending over REST: {}", exc)
            return None
        except AnswerLost as exc:
            lost = errors.OutcomeUnknown(
                f"sent over the order WebSocket; {exc}",
                exchange=ctx.exchange,
                market=ctx.market,
                client_order_id=ctx.client_order_id,
            )
            return outcome_of_error(lost, ctx), None
        self._note_ws_answer(ctx.market, request, answer)
        reply = self.venue.entry.parse_reply(answer, ctx)
        if isinstance(reply, OrderRejected) and reply.reason == "ClockSkew":
            self.venue.rest[ctx.market].clock.invalidate()  # resynced before the next one
        return reply, self.ws_entry.result_of(answer)

    def _note_ws_answer(self, market: str, request: Any, answer: Any) -> None:
        """What the venue said over the WebSocket about the budgets it shares with REST
        (usage, a 429/418, Bybit's 10006) reaches the REST client's limiter: REST traffic
        stops after a WebSocket 429 as after an HTTP one, instead of risking a ban."""
        assert self.venue is not None
        rest = self.venue.rest[market]
        try:
            feedback = self.ws_entry.feedback(answer, rest.clock.server_time_ms(time.time() * 1000))
            rest.note_answer(request, feedback)
        except Exception:  # the order's reply matters more than the budget's bookkeeping
            self.log.exception("order websocket: answer not applied to the request budget")

    # ------------------------------------------------------------------ other commands
    def _other(self, cmd: CancelOrder | AmendOrder | CancelAll) -> OrderReply:
        action = {CancelOrder: "cancel", AmendOrder: "amend", CancelAll: "cancel_all"}[type(cmd)]
        symbol = cmd.symbol or ""
        ctx = ReplyContext(
            exchange=str(cmd.exchange),
            market=str(cmd.market),
            symbol=symbol,
            action=action,
            client_order_id=getattr(cmd, "client_order_id", None),
        )
        venue = self.venue
        if venue is None:
            return _rejected(ctx, errors.ConfigError("order command not initialised"))
        try:
            if cmd.exchange != venue.exchange or str(cmd.market) not in venue.markets:
                raise errors.InvalidOrder(
                    f"this order command trades {venue.exchange} {', '.join(venue.markets)}"
                )
            instrument = venue.instrument(str(cmd.market), symbol) if cmd.symbol else None
            if cmd.symbol and instrument is None:
                raise errors.InvalidOrder(f"{symbol}: not among the instruments given")
            if isinstance(cmd, CancelOrder):
                request = venue.entry.cancel_request(cmd, instrument)
            elif isinstance(cmd, AmendOrder):
                request = venue.entry.amend_request(cmd, instrument)
            else:
                request = venue.entry.cancel_all_request(cmd, instrument)
        except errors.ExconnError as exc:
            return _rejected(ctx, exc)
        reply, body = self._submit(ctx, request, cmd, instrument)
        if isinstance(reply, OrderAccepted) and action != "cancel_all":
            self._tell_query(_AcceptedReply(reply, ctx.market, symbol, body))
        else:
            self._tell_query(CommandReply(reply))
        return reply

    # ------------------------------------------------------------------ batches
    def _batch_limit(self, market: str, action: str) -> int | None:
        venue = self.venue
        if venue is None or market not in venue.markets:
            return None
        limit: int | None = venue.entry.batch_limit(market, action)
        return limit

    def _place_many(self, orders: tuple[PlaceOrder, ...], sender: Any) -> list[OrderReply]:
        """``PlaceOrders``: every order checked and journalled first, then sent in venue
        batches (one market, up to the venue's limit, each) where the venue has them, else
        one by one. The replies follow the orders' order."""
        replies: list[OrderReply | None] = [None] * len(orders)
        ready: list[tuple[int, _Ready]] = []
        for i, order in enumerate(orders):
            if self._batch_limit(str(order.market), "place") is None:
                continue  # sent one by one below, in its turn
            prepared = self._prepare_place(order)
            if isinstance(prepared, _Ready):
                ready.append((i, prepared))
            else:
                replies[i] = prepared
        for market, chunk in batches(
            ready, lambda item: item[1].ctx.market, lambda m: self._batch_limit(m, "place") or 1
        ):
            answers = self._submit_batch(
                market,
                "place",
                [r.order for _, r in chunk],
                [r.instrument for _, r in chunk],
                [r.ctx for _, r in chunk],
            )
            for (i, r), (reply, body) in zip(chunk, answers, strict=True):
                replies[i] = self._placed(r, reply, body, sender)
        return [
            reply if reply is not None else self._place(order, sender)
            for order, reply in zip(orders, replies, strict=True)
        ]

    def _cancel_many(self, cmds: tuple[CancelOrder, ...]) -> list[OrderReply]:
        """``CancelOrders``: in venue batches where the venue has them, else one by one."""
        replies: list[OrderReply | None] = [None] * len(cmds)
        ready: list[tuple[int, CancelOrder, Any, ReplyContext]] = []
        venue = self.venue
        for i, cmd in enumerate(cmds):
            if venue is None or self._batch_limit(str(cmd.market), "cancel") is None:
                continue
            ctx = ReplyContext(
                exchange=str(cmd.exchange),
                market=str(cmd.market),
                symbol=cmd.symbol,
                action="cancel",
                client_order_id=cmd.client_order_id,
            )
            try:
                if cmd.exchange != venue.exchange:
                    raise errors.InvalidOrder(f"this order command trades {venue.exchange}")
                instrument = venue.instrument(str(cmd.market), cmd.symbol)
                if instrument is None:
                    raise errors.InvalidOrder(f"{cmd.symbol}: not among the instruments given")
                venue.entry.cancel_request(cmd, instrument)  # the checks of a single cancel
            except errors.ExconnError as exc:
                replies[i] = _rejected(ctx, exc)
                continue
            ready.append((i, cmd, instrument, ctx))
        for market, chunk in batches(
            ready, lambda item: item[3].market, lambda m: self._batch_limit(m, "cancel") or 1
        ):
            answers = self._submit_batch(
                market,
                "cancel",
                [c for _, c, _, _ in chunk],
                [inst for _, _, inst, _ in chunk],
                [ctx for _, _, _, ctx in chunk],
            )
            for (i, _, _, _), (reply, _body) in zip(chunk, answers, strict=True):
                self._tell_query(CommandReply(reply))
                replies[i] = reply
        return [
            reply if reply is not None else self._other(cmd)
            for cmd, reply in zip(cmds, replies, strict=True)
        ]

    def _submit_batch(
        self,
        market: str,
        action: str,
        cmds: list[Any],
        instruments: list[Any],
        ctxs: list[ReplyContext],
    ) -> list[tuple[OrderReply, Any]]:
        """One batch request over REST; a failure of the request as a whole (timeout, lost
        connection, 5xx) makes every order in it unknown, a refusal refuses every one."""
        assert self.venue is not None
        entry = self.venue.entry
        try:
            if action == "place":
                request = entry.place_batch_request(cmds, instruments)
            else:
                request = entry.cancel_batch_request(cmds, instruments)
        except errors.ExconnError as exc:  # nothing was sent
            return [(_rejected(ctx, exc), None) for ctx in ctxs]
        try:
            body = self.venue.call(market, request, ANY)
        except Exception as exc:  # the whole batch shares the request's fate
            return [(outcome_of_error(exc, ctx), None) for ctx in ctxs]
        replies = entry.parse_batch_reply(body, ctxs)
        return [(reply, None) for reply in replies]

    # ------------------------------------------------------------------ resolution
    def _on_wakeup(self, payload: Any) -> None:
        purpose = self.timers.fire(payload) if self.timers is not None else None
        if purpose is None or not purpose.startswith(RESOLVE):
            return
        cid = purpose[len(RESOLVE) :]
        pending = self.pending.get(cid)
        if pending is None or self.venue is None or self.init is None:
            return
        pending.attempts += 1
        order = pending.order
        market = str(order.market)
        try:
            row = self.venue.query_order(market, order.symbol, cid)
        except errors.ExconnError as exc:
            self.log.warning("order {}: resolve query failed: {}", cid, exc)
            row, failed = None, True
        else:
            failed = False
        if row is not None:
            self._resolved(cid, pending, row)
            return
        final = not failed and time.monotonic() - pending.sent_at >= NOT_FOUND_FINAL_S
        if final:
            self._not_found(cid, pending)
            return
        if pending.attempts >= self.init.resolve_attempts:
            del self.pending[cid]
            self.log.error(
                "order {}: outcome still unknown after {} queries", cid, pending.attempts
            )
            self._reply(
                pending,
                OrderOutcomeUnknown(
                    exchange=str(order.exchange),
                    market=market,
                    symbol=order.symbol,
                    action="place",
                    client_order_id=cid,
                    known=f"still unknown after {pending.attempts} queries by client order id; "
                    "it will not be sent again",
                ),
            )
            return
        pending.delay = min(pending.delay * 2, self.init.resolve_max_s)
        # Not before "not found" could count, when that is what is left to wait for.
        wait = pending.delay
        if not failed:
            left = NOT_FOUND_FINAL_S - (time.monotonic() - pending.sent_at)
            wait = max(min(wait, left), 0.0)
        self.timers.start(RESOLVE + cid, wait)

    def _resolved(self, cid: str, pending: Pending, row: Any) -> None:
        order = pending.order
        del self.pending[cid]
        self.journal.resolve(
            str(order.exchange),
            str(order.market),
            cid,
            exists=True,
            exchange_order_id=row.exchange_order_id or None,
        )
        reply = OrderAccepted(
            exchange=str(order.exchange),
            market=str(order.market),
            symbol=order.symbol,
            action="place",
            client_order_id=cid,
            exchange_order_id=row.exchange_order_id or None,
            status=row.status,
            venue_status=row.venue_status,
            ts=row.ts,
        )
        self.log.info("order {}: resolved by query: it exists ({})", cid, row.status)
        self._tell_query(CommandReply(reply, resolved_exists=True, order=row))
        self._reply(pending, reply)

    def _not_found(self, cid: str, pending: Pending) -> None:
        order = pending.order
        del self.pending[cid]
        self.journal.resolve(str(order.exchange), str(order.market), cid, exists=False)
        reply = OrderRejected(
            exchange=str(order.exchange),
            market=str(order.market),
            symbol=order.symbol,
            action="place",
            client_order_id=cid,
            code=None,
            message="resolved by query: the venue holds no order under this client order id",
            reason="OrderNotFound",
        )
        self.log.info("order {}: resolved by query: never placed", cid)
        self._tell_query(CommandReply(reply, resolved_exists=False))
        self._reply(pending, reply)

    def _reply(self, pending: Pending, reply: OrderReply) -> None:
        if pending.reply_to is not None:
            self.send(pending.reply_to, reply)

    def _info(self) -> OrderActorInfo:
        exchange = self.venue.exchange if self.venue is not None else ""
        return OrderActorInfo(
            name=f"order-command.{exchange}",
            pid=os.getpid(),
            exchange=exchange,
            unresolved=tuple(i.client_order_id for i in self.journal.unresolved()),
            rest_requests=0 if self.venue is None else self.venue.requests,
        )


def _record_of(intent: Intent) -> IntentRecord:
    assert intent.order is not None
    return IntentRecord(
        order=intent.order,
        state=str(intent.state),
        attempts=intent.attempts,
        exchange_order_id=intent.exchange_order_id,
        sent_at=intent.sent_at,
    )
