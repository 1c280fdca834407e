"""Rate limiting: rolling-window pacing per connection, and request budgets per host.

``RollingWindow`` paces messages a venue limits per connection (WebSocket control frames).
``WeightLimiter`` keeps REST traffic inside the venue's budgets, reserving before a request is
sent and correcting from the usage headers of every response:

- Binance: fixed windows aligned to the server's epoch (request weight per IP, order count,
  raw requests), read from ``exchangeInfo.rateLimits``, usage in ``X-MBX-USED-WEIGHT-1M``...;
- Bybit: rolling windows (600 requests per 5 s per IP; per endpoint and UID, e.g. 10 orders
  per second), usage in ``X-Bapi-Limit`` / ``-Status`` / ``-Reset-Timestamp``.

A request names what it spends in a ``Cost``; a venue describes its limits as ``Limit`` rows
and its headers as ``Usage`` readings (``exconn.venues.<venue>.endpoints``).

One budget per host, shared by every process of an exconn system
-----------------------------------------------------------------
Every exconn actor is its own process and builds its own REST client, but the venue counts per
IP (and per UID): many processes that each keep inside the limit can still overflow it
together, e.g. 200 depth snapshots of weight 50 fetched at once by several connection actors.
Headers only correct a process *after* its answer, too late for a simultaneous burst.

So the limiter's state (counts per window and the stops after a 429/418/403) lives in a
``BudgetStore``. ``LocalBudget`` keeps it in the process (the default, and what unit tests
use). ``SharedBudget`` keeps it in a small file mapped into every process (``mmap``) and
serialises each read-modify-write with ``fcntl.flock``: one file per host in a directory that
``exconn.start`` creates per actor system (on ``/dev/shm`` where there is one, so it never
touches a disk) and removes at shutdown; its path travels in ``ExchangeConfig`` and
``ConnectionInit`` to every ``RestClient``. Chosen over a budget actor (a message hop costs
more than the request's whole bookkeeping and would serialise every REST call through one
process) and over ``multiprocessing.shared_memory`` (needs a creator that outlives the users
and a resource tracker; Thespian forks actors from different parents). The mechanism is the
standard library's; the state is msgpack (msgspec, already a dependency). The lock is held
for microseconds (decode, decide, encode a few hundred bytes: about 10 us per request measured
here), never across a request or a wait. A process that dies holding the lock releases it
(flock goes with the file). A stop written by one process (a 429 seen by a market-data shard)
refuses requests in all of them until the deadline. Per-account budgets (Bybit's per-UID
limits) are keyed by a fingerprint of the API key, never the key.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import re
import struct
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import msgspec
from loguru import logger


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
# Limits, costs and usage readings: the vocabulary venues describe themselves in.

REQUEST_WEIGHT = "REQUEST_WEIGHT"
ORDERS = "ORDERS"
RAW_REQUESTS = "RAW_REQUESTS"

# A rolling window is counted in this many slots; one more slot than the window is summed, so
# the count covers any window ending now (conservative by one slot).
ROLLING_SLOTS = 10


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit as the venue declares it.

    ``kind`` names what is counted (Binance ``REQUEST_WEIGHT``, ``ORDERS``, ``RAW_REQUESTS``;
    a Bybit endpoint's own budget); ``suffix`` is how a usage header names the interval
    (``1M``, ``10S``). ``rolling``: the window ends now (Bybit) instead of being a fixed,
    epoch-aligned bucket (Binance). ``per_account``: counted per API key (Bybit's per-UID
    limits) rather than per IP.
    """

    kind: str
    interval_ms: int
    limit: int
    suffix: str = ""
    rolling: bool = False
    per_account: bool = False

    def __post_init__(self) -> None:
        if self.interval_ms <= 0 or self.limit <= 0:
            raise ValueError(f"bad limit {self.kind} {self.limit}/{self.interval_ms} ms")

    @property
    def slot_ms(self) -> int:
        return max(1, self.interval_ms // ROLLING_SLOTS) if self.rolling else self.interval_ms


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request spends: request weight, orders it places, one raw request, and units
    of any venue-specific budget it draws on (``extra``: the limit with its default value, so
    a limiter meeting it for the first time can start counting it)."""

    weight: int = 1
    orders: int = 0
    raw: int = 1
    extra: tuple[tuple[Limit, int], ...] = ()

    def of(self, kind: str) -> int:
        if kind == REQUEST_WEIGHT:
            return self.weight
        if kind == ORDERS:
            return self.orders
        if kind == RAW_REQUESTS:
            return self.raw
        for limit, units in self.extra:
            if limit.kind == kind:
                return units
        return 0

    @property
    def kinds(self) -> tuple[str, ...]:
        """The venue-specific budgets this request draws on."""
        return tuple(limit.kind for limit, units in self.extra if units > 0)


NO_COST = Cost(weight=0, raw=0)


@dataclass(frozen=True, slots=True)
class Usage:
    """What a response says has been used of a limit.

    ``suffix`` picks one interval of the kind (Binance ``1M``), None means every limit of the
    kind; ``limit`` is the venue's current value for it when the response says (Bybit
    ``X-Bapi-Limit``), which replaces the configured one (accounts can have higher limits).
    """

    kind: str
    used: int
    suffix: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class StopRule:
    """What a refusing answer means for the host: stop ``seconds``; ``status`` decides the
    error (429 rate limited, 418/403 banned); ``orders_only`` for an account's order limit."""

    seconds: float
    status: int
    orders_only: bool = False


@dataclass(frozen=True, slots=True)
class Stop:
    """No traffic until ``until_ms`` (server time) because the venue said so."""

    until_ms: float
    status: int  # 429, 418 or 403
    orders_only: bool  # an account order-count 429 stops orders, not reads
    kind: str | None = None  # one endpoint's budget (Bybit 10006); None: the host or orders

    def remaining_s(self, now_ms: float) -> float:
        return max(0.0, (self.until_ms - now_ms) / 1000)


# A ban outranks a 429 whichever came last.
_SEVERITY = {429: 1, 418: 2, 403: 2}


def prefixed_usage(headers: Mapping[str, str], prefixes: Mapping[str, str]) -> list[Usage]:
    """Usage from headers named prefix + interval suffix (``X-MBX-USED-WEIGHT-1M: 123``);
    ``prefixes`` maps a lower- or mixed-case prefix to the limit kind it counts."""
    lowered = {p.lower(): kind for p, kind in prefixes.items()}
    out: list[Usage] = []
    for name, value in headers.items():
        lname = name.lower()
        for prefix, kind in lowered.items():
            if not lname.startswith(prefix):
                continue
            try:
                count = int(value)
            except ValueError:
                break
            out.append(Usage(kind, count, suffix=lname[len(prefix) :].upper()))
            break
    return out


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header, if present and numeric."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------
# Where the counts live: in the process, or in a file every process of the system maps.


class _Counter(msgspec.Struct, array_like=True):
    """Units per slot of one limit; ``keep`` slots before the current one are still needed."""

    slot_ms: int
    keep: int
    slots: dict[int, int] = msgspec.field(default_factory=dict)

    def prune(self, now_ms: float) -> None:
        oldest = int(now_ms // self.slot_ms) - self.keep
        for slot in [s for s in self.slots if s < oldest or self.slots[s] <= 0]:
            del self.slots[slot]


class BudgetState(msgspec.Struct, array_like=True):
    """Counts per limit key and the stops in force: everything a limiter shares."""

    counts: dict[str, _Counter] = msgspec.field(default_factory=dict)
    stops: dict[str, Stop] = msgspec.field(default_factory=dict)

    def counter(self, key: str, limit: Limit) -> _Counter:
        found = self.counts.get(key)
        if found is None or found.slot_ms != limit.slot_ms:
            # A fixed window needs the neighbour bucket (guard band), a rolling one its span.
            keep = ROLLING_SLOTS + 1 if limit.rolling else 1
            found = self.counts[key] = _Counter(limit.slot_ms, keep)
        return found

    def prune(self, now_ms: float) -> None:
        for key in list(self.counts):
            counter = self.counts[key]
            counter.prune(now_ms)
            if not counter.slots:
                del self.counts[key]
        for key in [k for k, stop in self.stops.items() if stop.until_ms <= now_ms]:
            del self.stops[key]


class BudgetStore(Protocol):
    """Holds a limiter's ``BudgetState``; ``session`` gives exclusive use of it."""

    shared: bool

    def session(self) -> contextlib.AbstractContextManager[BudgetState]: ...


class LocalBudget:
    """The state in this process only (the caller serialises access, as for any limiter)."""

    shared = False

    def __init__(self) -> None:
        self._state = BudgetState()

    @contextlib.contextmanager
    def session(self) -> Iterator[BudgetState]:
        yield self._state


_encode_state = msgspec.msgpack.Encoder().encode
_decode_state = msgspec.msgpack.Decoder(BudgetState).decode
_HOST_FILE = re.compile(r"[^A-Za-z0-9._-]")


class SharedBudget:
    """The state in a file mapped by every process that opens it (see the module docstring).

    Layout: 8-byte magic, 4-byte payload length, then the msgpack of a ``BudgetState`` (a few
    hundred bytes per host; a few kB with Bybit's per-endpoint budgets of several accounts).
    Each process (re)opens it after a fork, since flock locks belong to an open file, and a
    forked child sharing its parent's would not exclude it. If the file cannot be opened, the
    process counts alone (logged once) rather than failing its requests.
    """

    shared = True
    MAGIC = b"EXCBUDG1"
    HEADER = struct.Struct("<8sI")
    SIZE = 1 << 16

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # flock does not exclude threads sharing one open file
        self._pid: int | None = None
        self._fd = -1
        self._map: mmap.mmap | None = None
        # Used only while the file cannot be opened: counting alone beats failing requests.
        self._fallback: BudgetState | None = None

    @classmethod
    def for_host(cls, directory: str | os.PathLike[str], host: str) -> SharedBudget:
        """The budget file of ``host`` (``name:port``) in the system's budget directory."""
        return cls(Path(directory) / f"{_HOST_FILE.sub('_', host)}.budget")

    def _open(self) -> mmap.mmap:
        if self._pid == os.getpid() and self._map is not None:
            return self._map
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < self.SIZE:
                    # Allocated, not sparse: a write to a page tmpfs cannot back is a SIGBUS.
                    os.posix_fallocate(fd, 0, self.SIZE)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            mapped = mmap.mmap(fd, self.SIZE)
        except BaseException:
            os.close(fd)
            raise
        # A forked child must not close its parent's descriptor: only drop the reference.
        self._fd, self._map, self._pid = fd, mapped, os.getpid()
        return mapped

    @contextlib.contextmanager
    def session(self) -> Iterator[BudgetState]:
        with self._lock:
            try:
                mapped = self._open()
            except OSError as exc:
                if self._fallback is None:
                    logger.warning(
                        "shared REST budget {} unusable ({}); this process counts alone",
                        self.path,
                        exc,
                    )
                    self._fallback = BudgetState()
                yield self._fallback
                return
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                state = self._load(mapped)
                yield state
                self._save(mapped, state)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _load(self, mapped: mmap.mmap) -> BudgetState:
        magic, length = self.HEADER.unpack_from(mapped, 0)
        if magic != self.MAGIC or length == 0:
            return BudgetState()  # a new file (all zeros)
        try:
            return _decode_state(mapped[self.HEADER.size : self.HEADER.size + length])
        except msgspec.DecodeError:
            # Only a process killed mid-write leaves this; counts restart, headers correct them.
            logger.warning("shared REST budget {} unreadable; starting it afresh", self.path)
            return BudgetState()

    def _save(self, mapped: mmap.mmap, state: BudgetState) -> None:
        payload = _encode_state(state)
        if len(payload) > self.SIZE - self.HEADER.size:
            # Not reached with pruned counts; if it were, keep the stops at least.
            logger.warning("shared REST budget {} overfull; counts dropped", self.path)
            payload = _encode_state(BudgetState(stops=state.stops))
        end = self.HEADER.size + len(payload)
        mapped[self.HEADER.size : end] = payload
        self.HEADER.pack_into(mapped, 0, self.MAGIC, len(payload))

    def close(self) -> None:
        with self._lock:
            if self._map is not None and self._pid == os.getpid():
                self._map.close()
                os.close(self._fd)
            self._map, self._fd, self._pid = None, -1, None

    def __repr__(self) -> str:
        return f"SharedBudget({str(self.path)!r})"


# ------------------------------------------------------------------------------------------
# The limiter.


class WeightLimiter:
    """Budgets per window, reserved before a request is sent.

    Pure bookkeeping: every call takes ``now_ms`` (the estimated *server* time, since the
    venue's windows reset at its :00, not ours); nothing sleeps. The caller holds a lock when
    several threads share one limiter; the store serialises processes (``SharedBudget``).

    - ``try_reserve(cost, now)`` charges the cost and returns 0, or charges nothing and returns
      how many ms to wait before asking again.
    - Fixed windows: a request reserved within ``guard_ms`` of a window boundary may reach the
      venue on either side of it (clock error, latency), so it is charged to both windows: a
      burst that straddles :00 can then not overflow the new window. Rolling windows: the sum
      over the window plus one slot.
    - ``observe_usage(usages, now)`` corrects from the venue's usage headers; the higher count
      wins (other processes on the same IP spend the same budget; our own refunds are not
      trusted). ``observe(headers, now)`` does the same for ``header_prefixes`` headers.
    - ``stop(...)`` after a 429/418/403 refuses everything (or orders, or one endpoint's
      budget) until the deadline.
    - ``headroom`` keeps a fraction of each limit unused: weight spent elsewhere on the same IP
      (another system, a market-data socket's connects) shows up only in the next header.
      exconn's own order WebSocket answers are fed in as they come (``RestClient.note_answer``).
    """

    def __init__(
        self,
        limits: Iterable[Limit],
        *,
        header_prefixes: Mapping[str, str] | None = None,
        guard_ms: float = 250.0,
        headroom: float = 0.9,
        store: BudgetStore | None = None,
        account: str = "",
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.guard_ms = guard_ms
        self.headroom = headroom
        # header prefix -> limit kind, e.g. "X-MBX-USED-WEIGHT-" -> REQUEST_WEIGHT
        self.header_prefixes = dict(header_prefixes or {})
        self.store: BudgetStore = store if store is not None else LocalBudget()
        # Whose per-account limits these are (a fingerprint of the API key, never the key).
        self.account = account
        self._limits: tuple[Limit, ...] = ()
        self.configure(limits)

    @property
    def limits(self) -> tuple[Limit, ...]:
        return self._limits

    def configure(self, limits: Iterable[Limit]) -> None:
        """Replace the limits (e.g. once exchangeInfo is read). Counts are kept by kind and
        interval, so a limit that only changes its value keeps what was spent."""
        self._limits = tuple(limits)

    def budget(self, limit: Limit) -> int:
        return max(1, int(limit.limit * self.headroom))

    def _key(self, limit: Limit) -> str:
        shape = "r" if limit.rolling else "f"
        key = f"{limit.kind}|{limit.interval_ms}{shape}"
        return f"{self.account}|{key}" if limit.per_account else key

    def _stop_key(self, kind: str) -> str:
        per_account = any(lim.per_account for lim in self._limits if lim.kind == kind)
        return f"kind:{self.account}|{kind}" if per_account else f"kind:{kind}"

    def learn(self, cost: Cost) -> None:
        """Start counting the venue-specific limits a request names, if new to us."""
        known = {lim.kind for lim in self._limits}
        new = [limit for limit, _ in cost.extra if limit.kind not in known]
        if new:
            self._limits = (*self._limits, *new)

    # -------------------------------------------------------------------------- counting
    def used(self, limit: Limit, now_ms: float) -> int:
        with self.store.session() as state:
            counter = state.counts.get(self._key(limit))
            if counter is None:
                return 0
            return sum(counter.slots.get(s, 0) for s in self._window(limit, now_ms))

    def _window(self, limit: Limit, now_ms: float) -> range:
        current = int(now_ms // limit.slot_ms)
        first = current - ROLLING_SLOTS if limit.rolling else current
        return range(first, current + 1)

    def _buckets(self, limit: Limit, now_ms: float) -> set[int]:
        width = limit.interval_ms
        return {int((now_ms - self.guard_ms) // width), int((now_ms + self.guard_ms) // width)}

    def _check(
        self, limit: Limit, counter: _Counter, amount: int, now_ms: float
    ) -> tuple[float, list[int]]:
        """(ms to wait, slots to charge) for ``amount`` more units of ``limit``."""
        budget = self.budget(limit)
        slots = counter.slots
        if not limit.rolling:
            wait, charge = 0.0, []
            for bucket in self._buckets(limit, now_ms):
                used = slots.get(bucket, 0)
                if used + amount > budget and used > 0:
                    # Free once that bucket has ended and is outside the guard band.
                    wait = max(wait, (bucket + 1) * limit.interval_ms + self.guard_ms - now_ms)
                else:
                    charge.append(bucket)
            return wait, charge
        window = self._window(limit, now_ms)
        live = [(s, slots.get(s, 0)) for s in window]
        used = sum(n for _, n in live)
        if used == 0 or used + amount <= budget:
            return 0.0, [window[-1]]
        # Wait until enough of the oldest slots have left the window.
        for slot, units in live:
            used -= units
            if used == 0 or used + amount <= budget:
                return (slot + ROLLING_SLOTS + 1) * limit.slot_ms - now_ms, []
        raise AssertionError("unreachable")  # pragma: no cover

    def try_reserve(self, cost: Cost, now_ms: float) -> float:
        """Charge ``cost`` and return 0.0, or return the ms to wait (nothing charged).

        A cost larger than a whole budget is let through once its window is empty: refusing
        it forever would be worse, and the venue accepts it unless the window has usage.
        """
        if cost.extra:
            self.learn(cost)
        with self.store.session() as state:
            return self._try_reserve(state, cost, now_ms)

    def reserve(self, cost: Cost, now_ms: float, *, is_order: bool) -> tuple[Stop | None, float]:
        """``stopped`` then, when nothing stops the request, ``try_reserve``, in one session
        of the store (one lock and one read and write of a shared budget instead of two):
        (the stop in force, 0.0) or (None, the ms to wait; 0.0 when charged)."""
        keys = self._stop_keys(is_order, cost)
        with self.store.session() as state:
            stop = self._stop_in(state, keys, now_ms)
            if stop is not None:
                return stop, 0.0
            return None, self._try_reserve(state, cost, now_ms)

    def _try_reserve(self, state: BudgetState, cost: Cost, now_ms: float) -> float:
        wait = 0.0
        charges: list[tuple[_Counter, list[int], int]] = []
        for limit in self._limits:
            amount = cost.of(limit.kind)
            if amount <= 0:
                continue
            counter = state.counter(self._key(limit), limit)
            limit_wait, slots = self._check(limit, counter, amount, now_ms)
            wait = max(wait, limit_wait)
            charges.append((counter, slots, amount))
        if wait > 0:
            return wait
        for counter, slots, amount in charges:
            for slot in slots:
                counter.slots[slot] = counter.slots.get(slot, 0) + amount
        state.prune(now_ms)
        return 0.0

    def release(self, cost: Cost, now_ms: float) -> None:
        """Give back a reservation for a request that was never sent."""
        with self.store.session() as state:
            for limit in self._limits:
                amount = cost.of(limit.kind)
                counter = state.counts.get(self._key(limit))
                if amount <= 0 or counter is None:
                    continue
                if limit.rolling:
                    slots: Iterable[int] = (int(now_ms // limit.slot_ms),)
                else:
                    slots = self._buckets(limit, now_ms)
                for slot in slots:
                    if slot in counter.slots:
                        counter.slots[slot] = max(0, counter.slots[slot] - amount)

    def observe(self, headers: Mapping[str, str], now_ms: float) -> None:
        """Correct counts from ``header_prefixes`` usage headers (``X-MBX-USED-WEIGHT-1M``)."""
        if self.header_prefixes:
            self.observe_usage(prefixed_usage(headers, self.header_prefixes), now_ms)

    def observe_usage(self, usages: Iterable[Usage], now_ms: float) -> None:
        """Correct counts upwards from what the venue says was used.

        A fixed window's count applies to the bucket of ``now_ms`` (the response's arrival);
        when the venue processed the request in the previous bucket, that count lands in the
        new one: conservative, never over the limit. A rolling window's shortfall is added to
        the current slot.
        """
        usages = list(usages)
        if not usages:
            return
        for usage in usages:
            if usage.limit is not None and usage.limit > 0:
                # Rebuilt only when the venue's value differs (Bybit repeats it on every answer).
                self._limits = tuple(
                    replace(lim, limit=usage.limit)
                    if lim.limit != usage.limit and self._matches(lim, usage)
                    else lim
                    for lim in self._limits
                )
        with self.store.session() as state:
            for usage in usages:
                for limit in self._limits:
                    if not self._matches(limit, usage):
                        continue
                    counter = state.counter(self._key(limit), limit)
                    window = self._window(limit, now_ms)
                    seen = sum(counter.slots.get(s, 0) for s in window)
                    if usage.used > seen:
                        current = window[-1]
                        counter.slots[current] = counter.slots.get(current, 0) + usage.used - seen
            state.prune(now_ms)

    @staticmethod
    def _matches(limit: Limit, usage: Usage) -> bool:
        return limit.kind == usage.kind and (usage.suffix is None or limit.suffix == usage.suffix)

    # -------------------------------------------------------------------------- stops
    def stopped(self, now_ms: float, *, is_order: bool, cost: Cost | None = None) -> Stop | None:
        """The stop in force for this request, if any: the host-wide one first, then the
        order-count one (orders only), then those of the budgets ``cost`` draws on."""
        keys = self._stop_keys(is_order, cost)
        with self.store.session() as state:
            return self._stop_in(state, keys, now_ms)

    def _stop_keys(self, is_order: bool, cost: Cost | None) -> list[str]:
        keys = ["host", "orders"] if is_order else ["host"]
        if cost is not None and cost.extra:
            self.learn(cost)  # another process may have stopped a budget new to this one
            keys.extend(self._stop_key(kind) for kind in cost.kinds)
        return keys

    @staticmethod
    def _stop_in(state: BudgetState, keys: list[str], now_ms: float) -> Stop | None:
        for key in keys:
            stop = state.stops.get(key)
            if stop is None:
                continue
            if now_ms >= stop.until_ms:
                del state.stops[key]
                continue
            return stop
        return None

    def stop(
        self, until_ms: float, status: int, *, orders_only: bool = False, kind: str | None = None
    ) -> None:
        """Refuse requests (all, only orders, or those drawing on ``kind``) until
        ``until_ms``; a later deadline wins, and a ban outranks a 429."""
        key = "orders" if orders_only else "host"
        if kind is not None:
            key = self._stop_key(kind)
        with self.store.session() as state:
            old = state.stops.get(key)
            if old is not None:
                if _SEVERITY.get(old.status, 0) > _SEVERITY.get(status, 0):
                    status = old.status
                until_ms = max(until_ms, old.until_ms)
            state.stops[key] = Stop(until_ms, status, orders_only, kind)


_INTERVAL_MS = {"SECOND": 1000, "MINUTE": 60_000, "HOUR": 3_600_000, "DAY": 86_400_000}


def limit_from_binance(kind: str, interval: str, interval_num: int, limit: int) -> Limit:
    """A ``Limit`` from one ``exchangeInfo.rateLimits`` entry (``1 MINUTE`` -> suffix ``1M``)."""
    try:
        width = _INTERVAL_MS[interval.upper()]
    except KeyError:
        raise ValueError(f"unknown rate-limit interval {interval!r}") from None
    return Limit(kind, width * interval_num, limit, f"{interval_num}{interval[0].upper()}")
