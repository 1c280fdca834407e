"""Messages of the order actors (``OrderCommand``, ``OrderQuery``): their init, the events the
query side accepts, the queries it answers and its reports.

Credentials never travel in a message in clear: ``OrderCommandInit.credentials`` and
``OrderQueryInit.credentials`` are ``exconn.config.SealedCredentials`` (Fernet ciphertext; the
sealing key reaches the actor processes through their environment, ``EXCONN_SEAL_KEY``, set
by ``exconn.start`` or a test before the actor system starts), opened in the actor's own
process only.
"""

from __future__ import annotations

from typing import Any

import msgspec

# The public queries and their answers live in ``exconn.messages`` (engines send them through
# the root, see ``RoutedQuery``); re-exported here for the order actors and older imports.
from exconn.messages import BalancesView as BalancesView
from exconn.messages import FillsView as FillsView
from exconn.messages import GetBalances as GetBalances
from exconn.messages import GetFills as GetFills
from exconn.messages import GetOpenOrders as GetOpenOrders
from exconn.messages import GetOrder as GetOrder
from exconn.messages import GetPositions as GetPositions
from exconn.messages import OrderRejected, QueryRejected
from exconn.messages import OrdersView as OrdersView
from exconn.messages import OrderView as OrderView
from exconn.messages import PositionsView as PositionsView

# thespian ActorAddress: not a msgspec type, pickled by Thespian with the message.
ActorRef = Any


class OrderCommandInit(msgspec.Struct, frozen=True, kw_only=True):
    """Starts an ``OrderCommand`` for one exchange. ``rest_urls``: market -> REST base URL;
    ``instruments``: the ``exconn.model.instruments.Instrument`` of every market (orders for
    anything else are refused before sending); ``query``: the ``OrderQuery`` to tell about
    submissions and acknowledgements (None: nobody)."""

    exchange: str
    markets: tuple[str, ...]
    rest_urls: dict[str, str]
    credentials: Any  # exconn.config.SealedCredentials
    instruments: tuple[Any, ...]
    query: ActorRef = None
    rest_budget_dir: str | None = None
    log_level: str = "INFO"
    client_id_prefix: str = "ex"
    # Resolving an unknown outcome by query: first after this, then doubling, this many times.
    resolve_initial_s: float = 0.2
    resolve_max_s: float = 10.0
    resolve_attempts: int = 8
    rest_timeout_s: float = 10.0
    # Market -> order-entry WebSocket URL (``ExchangeConfig.order_ws_urls``); markets not in
    # it send orders over REST.
    order_ws_urls: dict[str, str] = msgspec.field(default_factory=dict)


class OrderQueryInit(msgspec.Struct, frozen=True, kw_only=True):
    """Starts an ``OrderQuery`` for one exchange; it reconciles by REST at once.
    ``subscribers``: actors that receive every event the read model publishes (as
    ``OrderEvents``)."""

    exchange: str
    markets: tuple[str, ...]
    rest_urls: dict[str, str]
    credentials: Any  # exconn.config.SealedCredentials
    instruments: tuple[Any, ...]
    subscribers: tuple[ActorRef, ...] = ()
    rest_budget_dir: str | None = None
    log_level: str = "INFO"
    reconcile_on_start: bool = True
    rest_timeout_s: float = 10.0


class OrderActorStarted(msgspec.Struct, frozen=True):
    """Answer to an init: the actor's process id (for supervision and tests)."""

    name: str
    pid: int


class SetQueryActor(msgspec.Struct, frozen=True):
    """Tells ``OrderCommand`` the (new) ``OrderQuery`` after a restart."""

    query: ActorRef


# -------------------------------------------------------------------------- query side: input
class UserEvents(msgspec.Struct, frozen=True):
    """Private-stream events for ``OrderQuery``: ``OrderUpdate``, ``Fill``, ``BalanceUpdate``,
    ``PositionUpdate`` in the order the stream carried them."""

    events: tuple[Any, ...]


class Submitted(msgspec.Struct, frozen=True):
    """``OrderCommand`` -> ``OrderQuery``: ``order`` is about to be sent under its client id."""

    order: Any  # exconn.messages.PlaceOrder carrying its client_order_id


class CommandReply(msgspec.Struct, frozen=True):
    """``OrderCommand`` -> ``OrderQuery``: what a command's submission answered
    (``OrderAccepted`` / ``OrderRejected`` / ``OrderOutcomeUnknown``), or a resolution of an
    unknown outcome (``resolved_exists`` True/False, ``order`` the venue's row if any)."""

    reply: Any
    resolved_exists: bool | None = None
    order: Any = None  # exconn.messages.OrderUpdate from a query by client id


class Reconcile(msgspec.Struct, frozen=True):
    """Ask ``OrderQuery`` to reconcile by REST now; answered with ``ReconcileDone``."""


# -------------------------------------------------------------------------- query side: queries
class GetOrderActorInfo(msgspec.Struct, frozen=True):
    """Either order actor answers with ``OrderActorInfo``."""


# -------------------------------------------------------------------------- answers
class OrderEvents(msgspec.Struct, frozen=True):
    """``OrderQuery`` -> subscribers: what the read model published, in order."""

    exchange: str
    events: tuple[Any, ...]


class ReconcileDone(msgspec.Struct, frozen=True):
    """A reconcile's result: ``report`` (``exconn.orders.reconcile.ReconcileReport``) or
    ``error`` (text of the failure; the read model is unchanged by the failed part)."""

    exchange: str
    report: Any = None
    error: str | None = None
    published: int = 0


class OrderActorInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    pid: int
    exchange: str
    unresolved: tuple[str, ...] = ()  # client ids whose outcome is still unknown (command)
    reconciles: int = 0  # reconciles done (query)
    rest_requests: int = 0  # REST calls this actor made


# -------------------------------------------------------------------------- routing in the tree
class RoutedCommand(msgspec.Struct, frozen=True):
    """Root -> ExchangeSupervisor -> ``OrderCommand``: an engine's order command
    (``exconn.messages.OrderCommandMessage``) and the address its replies go to. Thespian has
    no forward that keeps the original sender, so the asker travels in the message;
    ``OrderCommand`` answers ``reply_to`` exactly as if it had been asked directly."""

    command: Any
    reply_to: ActorRef
    # Came back once as a dead letter (its OrderCommand had died) and was handed on: a second
    # time it is refused, so a stale address cannot bounce it around.
    returned: bool = False


class OrderEntryAt(msgspec.Struct, frozen=True):
    """ExchangeSupervisor -> Root: where the exchange's ``OrderCommand`` now is (``None``
    while it is restarting). The root then sends ``RoutedCommand`` straight there: one
    process hop fewer on the engine's order path (about 0.5 ms of the place-to-ack time)."""

    exchange: str
    address: ActorRef | None


class RoutedQuery(msgspec.Struct, frozen=True):
    """Root -> ExchangeSupervisor -> ``OrderQuery``: an engine's order query
    (``exconn.messages.OrderQueryMessage``) and the address its answer goes to, the sibling of
    ``RoutedCommand``: ``OrderQuery`` answers ``reply_to`` as if it had been asked directly."""

    query: Any
    reply_to: ActorRef


def query_refusal(exchange: str | None, query: Any, reason: str, message: str) -> QueryRejected:
    """The answer to a query nobody can serve (see ``QueryRejected``)."""
    return QueryRejected(exchange=exchange or "", query=query, reason=reason, message=message)


_ACTIONS = {"PlaceOrder": "place", "AmendOrder": "amend", "CancelOrder": "cancel"}


def refusals(command: Any, reason: str, message: str) -> list[Any]:
    """``OrderRejected`` for every order of ``command`` that was not sent anywhere (no order
    actor to take it): nothing reached the venue, the engine may send it again."""
    items = getattr(command, "orders", None)
    out: list[Any] = []
    for cmd in items if items is not None else (command,):
        out.append(
            OrderRejected(
                exchange=str(getattr(cmd, "exchange", "")),
                market=str(getattr(cmd, "market", "")),
                symbol=getattr(cmd, "symbol", None) or "",
                action=_ACTIONS.get(type(cmd).__name__, "cancel_all"),
                client_order_id=getattr(cmd, "client_order_id", None),
                code=None,
                message=message,
                reason=reason,
            )
        )
    return out
