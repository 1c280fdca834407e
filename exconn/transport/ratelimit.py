"""Rolling-window pacing for messages a venue limits per connection (not a burst bucket)."""

from __future__ import annotations

from collections import deque


class RollingWindow:
    """At most ``limit`` events in any ``window`` seconds.

    ``delay(now)`` says how long to wait before the next event may go; ``record(now)`` notes
    that one went. Binance closes a market-data connection on more than 5 incoming messages per
    second, so exconn paces with a limit below it.
    """

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.window = window
        self._sent: deque[float] = deque()

    def delay(self, now: float) -> float:
        sent = self._sent
        while sent and now - sent[0] >= self.window:
            sent.popleft()
        if len(sent) < self.limit:
            return 0.0
        return self.window - (now - sent[0])

    def record(self, now: float) -> None:
        self._sent.append(now)
