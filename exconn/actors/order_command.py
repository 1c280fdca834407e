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
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

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
from exconn.orders.command import (
    IntentJournal,
    ReplyContext,
    assign_client_order_id,
    outcome_of_error,
    validate_place,
)

RESOLVE = "resolve:"


@dataclass
class Pending:
    """An unknown placement being resolved by query."""

    order: PlaceOrder
    reply_to: Any
    sent_at: float  # monotonic
    attempts: int = 0
    delay: float = 0.0


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
        self.pending: dict[str, Pending] = {}
        self.query: Any = None
        self.timers: Any = None
        self.log = logger

    def receiveMessage(self, message: Any, sender: Any) -> None:
        try:
            self._dispatch(message, sender)
        except Exception:
            self.log.exception("order command: unexpected error handling {}", type(message))

    def _dispatch(self, message: Any, sender: Any) -> None:
        if isinstance(message, RoutedCommand):
            # Routed through the root and the supervisor: answer the engine that asked.
            message, sender = message.command, message.reply_to
        if isinstance(message, OrderCommandInit):
            self._on_init(message, sender)
        elif isinstance(message, ActorExitRequest):
            if self.venue is not None:
                self.venue.close()
        elif isinstance(message, WakeupMessage):
            self._on_wakeup(message.payload)
        elif isinstance(message, SetQueryActor):
            self.query = message.query
        elif isinstance(message, GetOrderActorInfo):
            self.send(sender, self._info())
        elif isinstance(message, PlaceOrder):
            self.send(sender, self._place(message, sender))
        elif isinstance(message, PlaceOrders):
            for order in message.orders:
                self.send(sender, self._place(order, sender))
        elif isinstance(message, CancelOrder | AmendOrder | CancelAll):
            self.send(sender, self._other(message))
        elif isinstance(message, CancelOrders):
            for cmd in message.orders:
                self.send(sender, self._other(cmd))

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
        self.send(sender, OrderActorStarted(name=f"order-command.{msg.exchange}", pid=os.getpid()))

    def _tell_query(self, message: Any) -> None:
        if self.query is not None:
            self.send(self.query, message)

    # ------------------------------------------------------------------ placement
    def _place(self, order: PlaceOrder, sender: Any) -> OrderReply:
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
            ctx = ReplyContext(**{**_fields(ctx), "client_order_id": order.client_order_id})
            validate_place(order, instrument)
            request = venue.entry.place_request(order, instrument)
            cid = str(order.client_order_id)
            self.journal.record(order)
            self.journal.begin_send(ctx.exchange, ctx.market, cid)
        except errors.ExconnError as exc:
            return _rejected(ctx, exc)
        self._tell_query(Submitted(order))
        reply, body = self._submit(ctx, request)
        self.journal.settle(reply)
        order_row = None
        if isinstance(reply, OrderAccepted):
            order_row = venue.order_of_reply(ctx.market, ctx.symbol, body)
        self._tell_query(CommandReply(reply, order=order_row))
        if isinstance(reply, OrderOutcomeUnknown):
            self.log.warning("order {}: outcome unknown ({}); resolving by query", cid, reply.known)
            pending = Pending(order, sender, time.monotonic(), delay=self.init.resolve_initial_s)
            self.pending[cid] = pending
            self.timers.start(RESOLVE + cid, pending.delay)
        return reply

    def _submit(self, ctx: ReplyContext, request: Any) -> tuple[OrderReply, Any]:
        assert self.venue is not None
        try:
            body = self.venue.call(ctx.market, request, ANY)
        except Exception as exc:  # every failure is classified; unknown is the safe side
            return outcome_of_error(exc, ctx), None
        return self.venue.entry.parse_reply(body, ctx), body

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
        reply, body = self._submit(ctx, request)
        order_row = None
        if isinstance(reply, OrderAccepted) and action != "cancel_all":
            order_row = venue.order_of_reply(ctx.market, symbol, body)
        self._tell_query(CommandReply(reply, order=order_row))
        return reply

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
            self.send(
                pending.reply_to,
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
        self.send(pending.reply_to, reply)

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


def _fields(ctx: ReplyContext) -> dict[str, Any]:
    return {
        "exchange": ctx.exchange,
        "market": ctx.market,
        "symbol": ctx.symbol,
        "action": ctx.action,
        "client_order_id": ctx.client_order_id,
    }
