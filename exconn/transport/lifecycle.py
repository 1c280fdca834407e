"""Pure helpers for a market-data socket's life: the per-stream liveness watchdog, control
pacing that counts every frame the venue counts, and stream sharding across connections.

The connection actor and the supervisor only wire these to timers and sockets; the decisions
live here so unit tests drive them with a fake clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from exconn.transport.ratelimit import RollingWindow


@dataclass
class Verdict:
    """What the watchdog asks for: streams to subscribe again, or a new socket."""

    resubscribe: list[str] = field(default_factory=list)
    replace: bool = False


class Liveness:
    """Per-stream watchdog. A watched stream silent for longer than ``silence_s`` is
    resubscribed once; still silent ``silence_s`` after that, the socket is replaced (the
    server may keep a socket open while a stream on it has died).

    ``last_seen`` is written directly by the frame handler (stream name -> time) so the hot
    path costs one dict store per frame.
    """

    def __init__(
        self, silence_s: float, now: float, cadence: Callable[[str], float | None]
    ) -> None:
        self.silence_s = silence_s
        self.cadence = cadence  # stream -> expected max interval (None: not watched)
        self.last_seen: dict[str, float] = {}
        self._watched: dict[str, float] = {}  # stream -> silence allowed
        self._since: dict[str, float] = {}  # stream -> when it started being watched
        self._resubscribed: dict[str, float] = {}
        self._now = now

    def watch(self, streams: Iterable[str], now: float) -> None:
        """The set of streams on the socket now; new ones get a full silence period."""
        wanted: dict[str, float] = {}
        for s in streams:
            cadence = self.cadence(s)
            if cadence is not None:
                wanted[s] = max(self.silence_s, cadence)
        for s in wanted.keys() - self._watched.keys():
            self._since[s] = now
        for s in self._watched.keys() - wanted.keys():
            self._since.pop(s, None)
            self._resubscribed.pop(s, None)
        self._watched = wanted

    def check(self, now: float) -> Verdict:
        verdict = Verdict()
        for stream, allowed in self._watched.items():
            last = max(self.last_seen.get(stream, 0.0), self._since.get(stream, now))
            resub = self._resubscribed.get(stream)
            if resub is not None and last >= resub:
                del self._resubscribed[stream]  # it spoke again after the resubscription
                resub = None
            if now - last <= allowed:
                continue
            if resub is None:
                self._resubscribed[stream] = now
                verdict.resubscribe.append(stream)
            elif now - resub > allowed:
                verdict.replace = True
        return verdict


class ControlPacer:
    """Rolling-window pacing of what the client sends on one socket.

    Binance counts every incoming frame (pings, pongs and JSON control messages) against 5 per
    second per connection. Pongs must go out at once, so they are recorded but never delayed;
    control messages wait until fewer than ``limit`` frames of any kind went out in the last
    ``window`` seconds, which keeps the total strictly below the venue's limit as long as at
    most ``venue_limit - limit`` pongs arrive in one second (servers ping every 20 s or more).
    """

    def __init__(self, limit: int, window: float = 1.0) -> None:
        self.window = RollingWindow(limit, window)

    def delay(self, now: float) -> float:
        return self.window.delay(now)

    def record(self, now: float, count: int = 1) -> None:
        for _ in range(count):
            self.window.record(now)


class ShardPlanner:
    """Assigns streams (one per topic) to connections of at most ``capacity`` streams.

    Sticky: a stream stays on its connection until released (moving it would need an
    unsubscribe, a subscribe and a resync). A new stream goes to the lowest-numbered
    connection with room, so connections fill up in order and the count stays minimal.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self.shard_of: dict[str, int] = {}
        self.load: dict[int, int] = {}

    def assign(self, key: str) -> int:
        shard = self.shard_of.get(key)
        if shard is not None:
            return shard
        shard = 0
        while self.load.get(shard, 0) >= self.capacity:
            shard += 1  # bounded: at most one more than the shards in use
        self.shard_of[key] = shard
        self.load[shard] = self.load.get(shard, 0) + 1
        return shard

    def release(self, key: str) -> int | None:
        shard = self.shard_of.pop(key, None)
        if shard is not None:
            self.load[shard] -= 1
        return shard

    def keys_of(self, shard: int) -> list[str]:
        return [k for k, s in self.shard_of.items() if s == shard]
