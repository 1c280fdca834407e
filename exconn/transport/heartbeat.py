"""Liveness of a socket that may carry no data for hours (a private user-data stream), pure.

Silence alone proves nothing there: an account that does not trade gets no events. So the
client sends a heartbeat every ``interval_s`` that a live venue must answer (Bybit
``{"op":"ping"}`` -> ``{"op":"pong"}``; Binance a WebSocket ping frame -> a pong frame), and a
socket from which nothing at all arrived for ``timeout_s`` is dead: a stalled TCP path (a
stuck proxy, a half-open connection, a wedged server) answers nothing, while the socket still
looks open. Any frame counts as an answer, data or control, so a busy stream is never
suspected. ``timeout_s`` must exceed ``interval_s``, or a live but quiet socket would be
declared dead before its next heartbeat could be answered.

The public market-data watchdog (``exconn.transport.lifecycle.Liveness``) works the other way:
it knows how often each stream must speak and needs no heartbeat. The actor drives this with
one timer: ``check`` when it fires, re-armed with ``next_check``. Nothing here reads a clock.
"""

from __future__ import annotations

from enum import Enum


class Beat(Enum):
    WAIT = "wait"  # nothing to do before ``next_check``
    PING = "ping"  # send the heartbeat now
    DEAD = "dead"  # nothing heard for ``timeout_s``: close the socket and open another


class Heartbeat:
    def __init__(self, interval_s: float, timeout_s: float, now: float) -> None:
        if interval_s <= 0:
            raise ValueError("the heartbeat interval must be positive")
        if timeout_s <= interval_s:
            raise ValueError("the silence timeout must exceed the heartbeat interval")
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.last_heard = now  # the socket just opened: the handshake counts as heard
        self.last_ping = now

    def heard(self, now: float) -> None:
        """Something (any frame) arrived from the venue at ``now``."""
        self.last_heard = max(self.last_heard, now)

    def check(self, now: float) -> Beat:
        """What to do at ``now``; a ``PING`` is taken as sent."""
        if now - self.last_heard >= self.timeout_s:
            return Beat.DEAD
        if now - self.last_ping >= self.interval_s:
            self.last_ping = now
            return Beat.PING
        return Beat.WAIT

    def silent_for(self, now: float) -> float:
        return now - self.last_heard

    def next_check(self, now: float) -> float:
        """Seconds until the next heartbeat is due or the silence runs out, whichever is first."""
        due = min(self.last_ping + self.interval_s, self.last_heard + self.timeout_s)
        return max(0.0, due - now)
