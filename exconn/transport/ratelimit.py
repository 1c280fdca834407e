"""Rate limiting: rolling-window pacing per connection, and request budgets per host.

``RollingWindow`` paces messages a venue limits per connection (WebSocket control frames).
``WeightLimiter`` keeps REST traffic inside the venue's fixed-window budgets (request weight,
order count, raw requests), reserving before a request is sent and correcting from the usage
headers of every response.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


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


# ------------------------------------------------------------------------------------------
# Request budgets as Binance counts them: fixed buckets aligned to the server's epoch.


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit as the venue declares it (Binance ``exchangeInfo.rateLimits``).

    ``kind`` is the venue's limiter name (``REQUEST_WEIGHT``, ``ORDERS``, ``RAW_REQUESTS``);
    ``suffix`` is how its usage header names the interval (``1M``, ``10S``, ``1D``).
    """

    kind: str
    interval_ms: int
    limit: int
    suffix: str

    def __post_init__(self) -> None:
        if self.interval_ms <= 0 or self.limit <= 0:
            raise ValueError(f"bad limit {self.kind} {self.limit}/{self.interval_ms} ms")


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request spends: request weight, orders it places, and one raw request."""

    weight: int = 1
    orders: int = 0
    raw: int = 1

    def of(self, kind: str) -> int:
        if kind == ORDERS:
            return self.orders
        if kind == RAW_REQUESTS:
            return self.raw
        return self.weight


REQUEST_WEIGHT = "REQUEST_WEIGHT"
ORDERS = "ORDERS"
RAW_REQUESTS = "RAW_REQUESTS"


@dataclass(frozen=True, slots=True)
class Stop:
    """No traffic until ``until_ms`` (server time) because the venue said so."""

    until_ms: float
    status: int  # 429 or 418
    orders_only: bool  # an account order-count 429 stops orders, not reads

    def remaining_s(self, now_ms: float) -> float:
        return max(0.0, (self.until_ms - now_ms) / 1000)


_SEVERITY = {429: 1, 418: 2}


class WeightLimiter:
    """Budgets per fixed, epoch-aligned window, reserved before a request is sent.

    Pure bookkeeping: every call takes ``now_ms`` (the estimated *server* time, since the
    venue's windows reset at its :00, not ours); nothing sleeps or locks. The caller holds a
    lock when several threads share one limiter.

    - ``try_reserve(cost, now)`` charges the cost and returns 0, or charges nothing and returns
      how many ms to wait before asking again.
    - A request reserved within ``guard_ms`` of a window boundary may reach the venue on either
      side of it (clock error, latency), so it is charged to both windows: a burst that
      straddles :00 can then not overflow the new window.
    - ``observe(headers, now)`` corrects from the venue's usage headers; the higher count wins
      (other processes on the same IP spend the same budget; our own refunds are not trusted).
    - ``stop(...)`` after a 429/418 refuses everything (or orders) until the deadline.
    - ``headroom`` keeps a fraction of each limit unused: weight spent elsewhere on the same IP
      (a WebSocket API session, another process) shows up only in the next header.
    """

    def __init__(
        self,
        limits: Iterable[Limit],
        *,
        header_prefixes: Mapping[str, str] | None = None,
        guard_ms: float = 250.0,
        headroom: float = 0.9,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.guard_ms = guard_ms
        self.headroom = headroom
        # lower-case header prefix -> limit kind, e.g. "x-mbx-used-weight-" -> REQUEST_WEIGHT
        self.header_prefixes = {k.lower(): v for k, v in (header_prefixes or {}).items()}
        self._limits: tuple[Limit, ...] = ()
        self._counts: dict[Limit, dict[int, int]] = {}
        self._stops: dict[str, Stop] = {}
        self.configure(limits)

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    def configure(self, limits: Iterable[Limit]) -> None:
        """Replace the limits (e.g. once exchangeInfo is read), keeping counts of known ones."""
        new = tuple(limits)
        self._counts = {lim: self._counts.get(lim, {}) for lim in new}
        self._limits = new

    def budget(self, limit: Limit) -> int:
        return max(1, int(limit.limit * self.headroom))

    def used(self, limit: Limit, now_ms: float) -> int:
        return self._counts.get(limit, {}).get(int(now_ms // limit.interval_ms), 0)

    def stopped(self, now_ms: float, *, is_order: bool) -> Stop | None:
        """The stop in force for this kind of request, if any (the host-wide one first)."""
        for key in ("host", "orders") if is_order else ("host",):
            stop = self._stops.get(key)
            if stop is None:
                continue
            if now_ms >= stop.until_ms:
                del self._stops[key]
                continue
            return stop
        return None

    def stop(self, until_ms: float, status: int, *, orders_only: bool = False) -> None:
        """Refuse requests (or only orders) until ``until_ms``; a later deadline wins."""
        key = "orders" if orders_only else "host"
        old = self._stops.get(key)
        if old is not None:
            # A ban (418) outranks a 429 whichever came last; the later deadline wins.
            if _SEVERITY.get(old.status, 0) > _SEVERITY.get(status, 0):
                status = old.status
            until_ms = max(until_ms, old.until_ms)
        self._stops[key] = Stop(until_ms, status, orders_only)

    def _buckets(self, limit: Limit, now_ms: float) -> set[int]:
        width = limit.interval_ms
        return {int((now_ms - self.guard_ms) // width), int((now_ms + self.guard_ms) // width)}

    def try_reserve(self, cost: Cost, now_ms: float) -> float:
        """Charge ``cost`` and return 0.0, or return the ms to wait (nothing charged).

        A cost larger than a whole budget is let through once its window is empty: refusing
        it forever would be worse, and the venue accepts it unless the window has usage.
        """
        wait = 0.0
        charges: list[tuple[Limit, int, int]] = []
        for limit in self._limits:
            amount = cost.of(limit.kind)
            if amount <= 0:
                continue
            budget = self.budget(limit)
            counts = self._counts[limit]
            for bucket in self._buckets(limit, now_ms):
                used = counts.get(bucket, 0)
                if used + amount > budget and used > 0:
                    # Free once that bucket has ended and is outside the guard band.
                    wait = max(wait, (bucket + 1) * limit.interval_ms + self.guard_ms - now_ms)
                else:
                    charges.append((limit, bucket, amount))
        if wait > 0:
            return wait
        for limit, bucket, amount in charges:
            counts = self._counts[limit]
            counts[bucket] = counts.get(bucket, 0) + amount
            self._forget(counts, bucket)
        return 0.0

    def release(self, cost: Cost, now_ms: float) -> None:
        """Give back a reservation for a request that was never sent."""
        for limit in self._limits:
            amount = cost.of(limit.kind)
            counts = self._counts[limit]
            for bucket in self._buckets(limit, now_ms):
                if bucket in counts:
                    counts[bucket] = max(0, counts[bucket] - amount)

    def observe(self, headers: Mapping[str, str], now_ms: float) -> None:
        """Correct counts from usage headers (``X-MBX-USED-WEIGHT-1M: 123``).

        The header counts the bucket the venue processed the request in; it is applied to the
        bucket of ``now_ms`` (the response's arrival). When the two differ, the old bucket's
        count lands in the new one: conservative, never over the limit.
        """
        if not self.header_prefixes:
            return
        for name, value in headers.items():
            lname = name.lower()
            for prefix, kind in self.header_prefixes.items():
                if not lname.startswith(prefix):
                    continue
                suffix = lname[len(prefix) :].upper()
                try:
                    count = int(value)
                except ValueError:
                    break
                for limit in self._limits:
                    if limit.kind == kind and limit.suffix == suffix:
                        counts = self._counts[limit]
                        bucket = int(now_ms // limit.interval_ms)
                        if count > counts.get(bucket, 0):
                            counts[bucket] = count
                            self._forget(counts, bucket)
                break

    @staticmethod
    def _forget(counts: dict[int, int], current: int) -> None:
        # Only the current and neighbouring buckets matter; keep the dict from growing.
        if len(counts) > 4:
            for old in [b for b in counts if b < current - 1]:
                del counts[old]


_INTERVAL_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}


def limit_from_binance(kind: str, interval: str, interval_num: int, limit: int) -> Limit:
    """A ``Limit`` from one ``exchangeInfo.rateLimits`` entry (``1 MINUTE`` -> suffix ``1M``)."""
    try:
        width = _INTERVAL_MS[interval.upper()]
    except KeyError:
        raise ValueError(f"unknown rate-limit interval {interval!r}") from None
    return Limit(kind, width * interval_num, limit, f"{interval_num}{interval[0].upper()}")
