"""Event batches to subscribers under ``exconn.delivery`` flow control.

Flow control needs to know when a batch has left: Thespian's public ``Actor.send`` says
nothing, but its transport reports every transmit's end to the ``TransmitIntent``'s
``onSuccess`` / ``onError`` callbacks. This module, and no other, builds such intents and hands
them to ``self._myRef._send_intent`` (what ``Actor.send`` does through ``actor_send``). On error
it still calls ``actor_send_fail``, so a dead subscriber's batches become dead letters as with
``send``. If those internals are missing (another Thespian version, ``simpleSystemBase``), it
falls back to plain ``send`` without flow control and says so once.

When a transmit ends: the multiprocTCPBase transport marks a batch sent when the receiving
process acknowledges it, and a process only reads (and acknowledges) between two runs of its
actor's handler, so the batches in flight follow the subscriber's handler pace. Completion
callbacks run in the actor's own thread: from its transport loop between handler runs, from a
poll (``_Internals.poll``, the one other internal used), or re-entrantly from inside a send
(a send that hits Thespian's queue limit runs the transport loop until the queue drains, and
a dropped transmit fails at once). The connection actor's hot-path worker thread
(``exconn.actors.fresh_stack``) never sends. ``Delivery`` is therefore used from one thread,
and is consistent before every send, so a callback that sends from inside a send is safe;
what a completion releases during a poll is sent after the poll. A callback on any other
thread is counted (``foreign_callbacks``) and logged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from loguru import logger

from exconn.delivery import Delivery
from exconn.messages import EventBatch
from exconn.outbox import Outbox

_UNRESOLVED = object()
# Transport passes per poll. Thespian's TCP transport moves a transmit whose data is out to
# "waiting for the acknowledgement" in one pass and reads the 21-byte acknowledgement in two
# (a 20-byte header read, then the rest); the pass that completes it starts the next transmit
# to that subscriber, and a fourth moves that one on to waiting. Each pass is one select that
# waits 1 µs at most.
POLL_PASSES = 4


class TrackedSender:
    """Publishes an actor's outboxes; one per actor."""

    def __init__(self, actor: Any, delivery: Delivery, log: Any = logger) -> None:
        self.actor = actor
        self.delivery = delivery
        self.log = log
        self._internals: Any = _UNRESOLVED  # resolved on first use: _myRef is set after init
        self._thread = 0  # the actor thread, where every send and callback must happen
        self.completions = 0
        self.foreign_callbacks = 0  # callbacks seen on another thread: must stay 0
        self._slow: set[str] = set()  # subscribers already reported as slow
        # Batches released by completions during a poll, sent once the poll is over.
        self._deferred: list[tuple[str, Any, EventBatch]] | None = None

    @property
    def flow_control(self) -> bool:
        """False if Thespian's internals were missing and batches go out with plain send."""
        return self._resolve() is not None

    def publish(self, out: Outbox) -> None:
        internals = self._resolve()
        if internals is None:
            for address, batch in out.drain():
                self.actor.send(address, batch)
            return
        self._thread = threading.get_ident()
        stamp = out.received_ns
        delivery = self.delivery
        polled = False
        for key, address, events in out.take():
            if not polled and delivery.at_limit(key):
                # Acknowledgements may be waiting unread: see _Internals.poll.
                polled = True
                self._poll(internals)
            if delivery.offer(key, events, stamp):
                self._send(internals, key, address, EventBatch.of(events, stamp))
            elif key not in self._slow and delivery.conflated_for(key):
                self._slow.add(key)
                self.log.bind(subscriber=key).info(
                    "subscriber slower than the feed: its book updates are conflated"
                )

    def _poll(self, internals: _Internals) -> None:
        # A send from inside a transport pass could start a nested transport run (Thespian's
        # own drain when its queue is full) that replaces the pass's timer: send afterwards.
        self._deferred = []
        try:
            internals.poll()
        except Exception:
            internals.transport = None  # completions still come between handler runs
            self.log.exception("polling Thespian's transport failed; polling switched off")
        finally:
            deferred, self._deferred = self._deferred, None
        for key, address, batch in deferred:
            self._send(internals, key, address, batch)

    def _send(self, internals: _Internals, key: str, address: Any, batch: EventBatch) -> None:
        ok = partial(self._on_sent, internals, key, address)
        failed = partial(self._on_failed, internals, key, address)
        internals.send_intent(internals.intent(address, batch, onSuccess=ok, onError=failed))

    def _on_sent(self, internals: _Internals, key: str, address: Any, *_: Any) -> None:
        self._completed(internals, key, address)

    def _on_failed(
        self, internals: _Internals, key: str, address: Any, result: Any, intent: Any
    ) -> None:
        try:
            internals.send_fail(result, intent)  # dead letters, as for Actor.send
        finally:
            self._completed(internals, key, address)

    def _completed(self, internals: _Internals, key: str, address: Any) -> None:
        # Thespian swallows a callback's exception into its own log: report it here.
        try:
            self.completions += 1
            if threading.get_ident() != self._thread:
                self.foreign_callbacks += 1
                if self.foreign_callbacks == 1:
                    self.log.error("transmit completion on a foreign thread")
            nxt = self.delivery.completed(key)
            if nxt is not None:
                events, stamp = nxt
                batch = EventBatch.of(events, stamp)
                if self._deferred is not None:
                    self._deferred.append((key, address, batch))
                else:
                    self._send(internals, key, address, batch)
        except Exception:
            self.log.bind(subscriber=key).exception("sending held events failed")

    def _resolve(self) -> _Internals | None:
        if self._internals is _UNRESOLVED:
            self._internals = _Internals.of(self.actor)
            if self._internals is None:
                self.log.warning(
                    "Thespian transmit internals not available: sending to subscribers "
                    "without flow control (a slow subscriber can block or lose batches)"
                )
        internals: _Internals | None = self._internals
        return internals


class _Internals:
    """The Thespian internals this module uses, checked once."""

    __slots__ = ("_polling", "intent", "send_fail", "send_intent", "transmit_only", "transport")

    def __init__(
        self,
        intent: Callable[..., Any],
        send_intent: Callable[[Any], Any],
        send_fail: Callable[[Any, Any], Any],
        transport: Any,
        transmit_only: Any,
    ) -> None:
        self.intent = intent
        self.send_intent = send_intent
        self.send_fail = send_fail
        self.transport = transport  # None: no poll (completions come between handler runs)
        self.transmit_only = transmit_only
        self._polling = False

    def poll(self) -> None:
        """A few non-blocking passes of the transport's transmit side: read the
        acknowledgements that have arrived, start transmits waiting for their subscriber's
        socket, run the completion callbacks.

        Needed because Thespian hands a message an actor sends to itself to the handler
        before its next select: while the connection actor drains a flood (``DrainAgain``
        to itself after every full drain) no acknowledgement is read, every subscriber would
        look slow, and even a fast one would only get conflated updates. This is the
        transmit-only run Thespian performs itself when its transmit queue is full, bounded:
        the transport's run timer is swapped for one allowing a single select of 1 µs per
        pass, and watched descriptors are left out (a readable socket would queue a
        ``WatchMessage`` for every pass). Messages from other actors read meanwhile are
        queued for the handler as usual.
        """
        transport = self.transport
        if transport is None or self._polling or hasattr(transport, "_aborting_run"):
            return  # not while the actor exits: the pass would clear that flag
        self._polling = True
        run_time, watches = transport.run_time, transport._watches
        transport._watches = []
        try:
            for _ in range(POLL_PASSES):
                transport.run_time = _OnePass()
                left = transport._runWithExpiry(self.transmit_only)
                if type(left) is int and left == 0:
                    break  # no transmit left in the transport
        finally:
            transport.run_time, transport._watches = run_time, watches
            self._polling = False

    @classmethod
    def of(cls, actor: Any) -> _Internals | None:
        try:
            from thespian.system.transport import TransmitIntent
        except ImportError:
            return None
        ref = getattr(actor, "_myRef", None)
        send_intent = getattr(ref, "_send_intent", None)
        send_fail = getattr(ref, "actor_send_fail", None)
        if not callable(send_intent) or not callable(send_fail):
            return None
        try:  # the constructor still takes the callbacks (never scheduled)
            TransmitIntent(None, None, onSuccess=_ignore, onError=_ignore)
        except TypeError:
            return None
        transport = getattr(ref, "transport", None)
        try:
            from thespian.system.transport import TransmitOnly
        except ImportError:
            transport = TransmitOnly = None
        if not all(hasattr(transport, name) for name in ("_runWithExpiry", "run_time", "_watches")):
            transport = None
        return cls(TransmitIntent, send_intent, send_fail, transport, TransmitOnly)


class _OnePass:
    """Stands in for the transport's run timer (``ExpirationTimer`` and its views): not
    expired when the pass starts, then expired; the select in between waits 1 µs at most."""

    __slots__ = ("_checked",)

    def __init__(self) -> None:
        self._checked = False

    def view(self, curtime: Any = None) -> _OnePass:
        return self

    def expired(self) -> bool:
        checked, self._checked = self._checked, True
        return checked

    def remaining(self, forever: Any = None) -> timedelta:
        return _TICK

    def remainingSeconds(self, forever: Any = None) -> float:
        return _TICK.total_seconds()


_TICK = timedelta(microseconds=1)


def _ignore(*_: Any) -> None:
    return None
