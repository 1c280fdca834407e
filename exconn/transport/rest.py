"""A REST session (httpx) per venue host: keep-alive, timeouts, signing, clock offset, request
budgets, a circuit breaker, and typed errors.

One ``RestClient`` per host. What a request goes through, in order:

1. the host's stop (after a 429/418) and the request budget: ``WeightLimiter`` is asked
   before anything is sent and the call waits (bounded by ``max_wait``) for budget;
2. for signed requests, the clock offset is refreshed when stale, and ``SigningAuth`` (an
   ``httpx.Auth`` flow) adds ``timestamp`` *after* any wait, then the signature, last, over the
   exact query bytes that are sent;
3. ``BreakerTransport`` (pybreaker) refuses to send while the host's breaker is open;
4. a response event hook feeds every usage header back into the limiter and turns a 429/418
   into a host-wide stop until ``Retry-After``.

Retry policy: a -1021 (clock skew) on a read resyncs the clock and retries once; nothing else
is retried here. An order (``is_order``) is never retried: a timeout after sending, a 5xx,
a 408 or -1006/-1007 raises ``OutcomeUnknown`` carrying its client order id, and a -1021
raises ``ClockSkew`` (the order was rejected; the clock is resynced for the next attempt).

The venue's rules (weights, usage header names, codes, signing) come from a ``RestVenue`` and
a signer (``exconn.venues.binance.endpoints``); this module knows no venue by name.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
import msgspec
from loguru import logger

from exconn import errors
from exconn.transport.breaker import BreakerOpen, BreakerTransport, HostBreaker
from exconn.transport.clock import ClockOffset
from exconn.transport.ratelimit import Cost, Limit, WeightLimiter, limit_from_binance

T = TypeVar("T")

# (status, code, message, endpoint=..., retry_after=...) -> the venue's typed error
ErrorMapper = Callable[..., errors.ExconnError]
Params = Mapping[str, str] | Sequence[tuple[str, str]]

# Stop length when a 429/418 comes without a usable Retry-After (binance.md §3: bans start at
# 2 minutes; a 429 lasts at most until the minute window resets).
DEFAULT_429_STOP_S = 60.0
DEFAULT_418_STOP_S = 120.0
CLOCK_SAMPLES = 3  # per sync: the min-RTT one dominates, the median guards against outliers
MAX_BUDGET_WAITS = 64  # bound on wait-then-ask rounds for one request


class RestVenue(Protocol):
    """The venue rules the transport applies (``exconn.venues.binance.endpoints.RestVenue``)."""

    time_path: str
    default_limits: tuple[tuple[str, str, int, int], ...]
    usage_headers: Mapping[str, str]
    unknown_outcome_codes: frozenset[int]
    clock_skew_codes: frozenset[int]
    order_limit_codes: frozenset[int]

    def server_time(self, body: bytes) -> int: ...

    def cost(self, method: str, path: str, params: Mapping[str, str]) -> tuple[int, int]: ...

    def client_order_id(self, params: Mapping[str, str]) -> str | None: ...


class Signer(Protocol):
    def sign(self, query: str, body: str, timestamp_ms: int) -> tuple[str, dict[str, str]]: ...


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&...`` in the given order, every byte outside ``A-Za-z0-9-._~`` percent-encoded:
    httpx leaves such a query byte for byte as it is, so what is signed is what is sent."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


class SigningAuth(httpx.Auth):
    """httpx auth flow: timestamp + signature over the query exactly as it will be sent."""

    def __init__(self, signer: Signer, timestamp_ms: Callable[[], int]) -> None:
        self._signer = signer
        self._timestamp_ms = timestamp_ms

    def auth_flow(self, request: httpx.Request) -> Any:
        query = request.url.query.decode("ascii")
        body = request.content.decode("utf-8")
        signed, headers = self._signer.sign(query, body, self._timestamp_ms())
        request.url = request.url.copy_with(query=signed.encode("ascii"))
        request.headers.update(headers)
        yield request

    def __repr__(self) -> str:
        return "SigningAuth()"


class RestClient:
    def __init__(
        self,
        base_url: str,
        *,
        exchange: str,
        error_for: ErrorMapper,
        error_decoder: msgspec.json.Decoder[Any],
        timeout: float = 10.0,
        venue: RestVenue | None = None,
        signer: Signer | None = None,
        limiter: WeightLimiter | None = None,
        clock: ClockOffset | None = None,
        breaker: HostBreaker | None = None,
        max_wait: float = 30.0,
        resync_interval: float = 120.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.exchange = exchange
        self._error_for = error_for
        self._error_decoder = error_decoder
        self.venue = venue
        self._signer = signer
        self.clock = clock or ClockOffset()
        if limiter is None and venue is not None:
            limiter = WeightLimiter(
                [limit_from_binance(*lim) for lim in venue.default_limits],
                header_prefixes=venue.usage_headers,
            )
        self.limiter = limiter
        host = httpx.URL(base_url).host or base_url
        self.breaker = breaker or HostBreaker(host)
        self.max_wait = max_wait
        self.resync_interval = resync_interval
        self._wall = wall
        self._monotonic = monotonic
        self._sleep = sleep
        # One lock for the limiter and clock: RestClient may be shared by threads (httpx.Client
        # is thread-safe), the pure limiter and clock are not.
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        inner = transport or httpx.HTTPTransport()
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "exconn"},
            transport=BreakerTransport(inner, self.breaker),
            event_hooks={"response": [self._on_response]},
        )

    # ---------------------------------------------------------------------------- public
    def get(self, path: str, params: Params, decoder: msgspec.json.Decoder[T]) -> T:
        """An unsigned GET (public endpoints)."""
        return self.request("GET", path, params, decoder)

    def request(
        self,
        method: str,
        path: str,
        params: Params,
        decoder: msgspec.json.Decoder[T],
        *,
        api_key_headers: Mapping[str, str] | None = None,
    ) -> T:
        """An unsigned request; ``api_key_headers`` for keyed-but-unsigned endpoints."""
        pairs = _pairs(params)
        response = self._send(
            method, path, pairs, signed=False, is_order=False, headers=api_key_headers
        )
        return self._result(response, method, path, pairs, decoder, is_order=False)

    def signed_request(
        self,
        method: str,
        path: str,
        params: Params,
        decoder: msgspec.json.Decoder[T],
        *,
        is_order: bool,
    ) -> T:
        """A signed request. ``is_order`` marks order entry (place, cancel, amend): it is
        never retried, and any doubt about its fate raises ``OutcomeUnknown``."""
        if self._signer is None:
            raise errors.ConfigError(
                f"{method} {path} needs API credentials", exchange=self.exchange
            )
        pairs = _pairs(params)
        if is_order and method == "POST" and self._client_order_id(pairs) is None:
            # Without a client id an unknown outcome could not be resolved by a query.
            raise errors.InvalidOrder(
                f"{method} {path}: an order needs newClientOrderId so that an unknown outcome "
                "can be resolved; assign one before sending",
                exchange=self.exchange,
                endpoint=f"{method} {path}",
            )
        for attempt in range(2):
            self._ensure_clock()
            response = self._send(method, path, pairs, signed=True, is_order=is_order)
            try:
                return self._result(response, method, path, pairs, decoder, is_order=is_order)
            except errors.ClockSkew:
                self.stats["clock_skew_rejections"] += 1
                self._resync_after_skew()
                if is_order or attempt:
                    raise
                self.stats["retries"] += 1
                logger.debug("{} {}: -1021, clock resynced, retrying once", method, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def seed_limits(self, rate_limits: Iterable[tuple[str, str, int, int]]) -> None:
        """Replace the limits with the venue's (``exchangeInfo.rateLimits`` as tuples, see
        ``endpoints.rate_limits``)."""
        limits = [limit_from_binance(*entry) for entry in rate_limits]
        if self.limiter is None:
            prefixes = self.venue.usage_headers if self.venue is not None else None
            self.limiter = WeightLimiter(limits, header_prefixes=prefixes)
            return
        with self._lock:
            self.limiter.configure(limits)

    @property
    def limits(self) -> tuple[Limit, ...]:
        return () if self.limiter is None else self.limiter.limits

    def sync_clock(self, samples: int = CLOCK_SAMPLES) -> float:
        """Sample the venue's time endpoint; returns the offset estimate (ms)."""
        if self.venue is None:
            raise errors.ConfigError("clock sync needs a venue", exchange=self.exchange)
        path = self.venue.time_path
        for _ in range(samples):
            response, t_send, rtt = self._send_timed("GET", path, [], False, False, None)
            if response.status_code >= 400:
                raise self._error(response, f"GET {path}")
            try:
                server = self.venue.server_time(response.content)
            except (msgspec.DecodeError, KeyError) as exc:
                raise errors.MalformedMessage(
                    f"GET {path}: unexpected server time body",
                    exchange=self.exchange,
                    endpoint=f"GET {path}",
                    raw_excerpt=response.content,
                ) from exc
            with self._lock:
                self.clock.add_sample(t_send, rtt, server)
        self.stats["clock_syncs"] += 1
        logger.debug(
            "{} clock offset {:.1f} ms (+-{:.1f})",
            self.exchange,
            self.clock.offset_ms,
            self.clock.uncertainty_ms,
        )
        return self.clock.offset_ms

    def close(self) -> None:
        self._client.close()

    # ---------------------------------------------------------------------------- internals
    def _now_ms(self) -> float:
        return self._wall() * 1000

    def _server_now_ms(self) -> float:
        return self.clock.server_time_ms(self._now_ms())

    def _timestamp_ms(self) -> int:
        with self._lock:
            return self.clock.timestamp_ms(self._now_ms())

    def _client_order_id(self, pairs: Sequence[tuple[str, str]]) -> str | None:
        if self.venue is None:
            return None
        return self.venue.client_order_id(dict(pairs))

    def _ensure_clock(self) -> None:
        if self.venue is None:
            return
        with self._sync_lock:  # one sync at a time; the others find it fresh afterwards
            if self.clock.needs_sync(self._now_ms(), self.resync_interval * 1000):
                self.sync_clock()

    def _resync_after_skew(self) -> None:
        with self._lock:
            self.clock.invalidate()
        try:
            self._ensure_clock()
        except errors.ExconnError as exc:
            # The caller gets the ClockSkew; the next signed request tries the sync again.
            logger.debug("{} clock resync failed: {}", self.exchange, exc)

    def _cost(self, method: str, path: str, pairs: Sequence[tuple[str, str]]) -> Cost:
        if self.venue is None:
            return Cost()
        weight, orders = self.venue.cost(method, path, dict(pairs))
        return Cost(weight=weight, orders=orders)

    def _reserve(self, endpoint: str, cost: Cost, is_order: bool) -> float:
        """Wait for budget; returns the server time the reservation was made at."""
        limiter = self.limiter
        waited = 0.0
        for _ in range(MAX_BUDGET_WAITS):
            with self._lock:
                now = self._server_now_ms()
                if limiter is None:
                    return now
                stop = limiter.stopped(now, is_order=is_order)
                if stop is not None:
                    self.stats["refused_stopped"] += 1
                    raise self._stop_error(endpoint, stop.status, stop.remaining_s(now))
                wait_ms = limiter.try_reserve(cost, now)
            if wait_ms <= 0:
                return now
            if waited + wait_ms / 1000 > self.max_wait:
                self.stats["refused_budget"] += 1
                raise errors.RateLimited(
                    f"{endpoint}: request budget spent for {wait_ms / 1000:.1f} s more, more "
                    f"than the {self.max_wait:g} s this client may wait; not sent",
                    exchange=self.exchange,
                    endpoint=endpoint,
                    retry_after=wait_ms / 1000,
                )
            self.stats["budget_waits"] += 1
            self._sleep(wait_ms / 1000)
            waited += wait_ms / 1000
        raise errors.RateLimited(
            f"{endpoint}: no request budget after {MAX_BUDGET_WAITS} waits; not sent",
            exchange=self.exchange,
            endpoint=endpoint,
        )

    def _stop_error(self, endpoint: str, status: int, remaining: float) -> errors.ExconnError:
        if status == 418:
            return errors.Banned(
                f"{endpoint}: not sent, the exchange banned this IP for {remaining:.1f} s more",
                exchange=self.exchange,
                endpoint=endpoint,
                retry_after=remaining,
            )
        return errors.RateLimited(
            f"{endpoint}: not sent, traffic stopped after a 429 for {remaining:.1f} s more",
            exchange=self.exchange,
            endpoint=endpoint,
            retry_after=remaining,
        )

    def _send(
        self,
        method: str,
        path: str,
        pairs: Sequence[tuple[str, str]],
        *,
        signed: bool,
        is_order: bool,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self._send_timed(method, path, pairs, signed, is_order, headers)[0]

    def _send_timed(
        self,
        method: str,
        path: str,
        pairs: Sequence[tuple[str, str]],
        signed: bool,
        is_order: bool,
        headers: Mapping[str, str] | None,
    ) -> tuple[httpx.Response, float, float]:
        """(response, local send time ms, round trip ms)."""
        endpoint = f"{method} {path}"
        cost = self._cost(method, path, pairs)
        reserved_at = self._reserve(endpoint, cost, is_order)
        query = encode_query(pairs)
        url = f"{path}?{query}" if query else path
        request = self._client.build_request(method, url, headers=headers)
        auth = SigningAuth(self._signer, self._timestamp_ms) if signed and self._signer else None
        t_send = self._now_ms()
        m_send = self._monotonic()
        try:
            self.stats["sent"] += 1
            response = self._client.send(request, auth=auth)
        except BreakerOpen as exc:
            self.stats["sent"] -= 1
            self.stats["refused_breaker"] += 1
            if self.limiter is not None:
                with self._lock:
                    self.limiter.release(cost, reserved_at)
            raise errors.ExchangeDown(
                f"{endpoint}: not sent, circuit breaker open after repeated failures; "
                f"retry after {exc.retry_after:.1f} s",
                exchange=self.exchange,
                endpoint=endpoint,
            ) from None
        except httpx.TransportError as exc:
            raise self._transport_error(exc, endpoint, pairs, is_order) from exc
        return response, t_send, (self._monotonic() - m_send) * 1000

    def _transport_error(
        self,
        exc: httpx.TransportError,
        endpoint: str,
        pairs: Sequence[tuple[str, str]],
        is_order: bool,
    ) -> errors.ExconnError:
        # Connect and pool failures happen before a byte is written: nothing was sent.
        not_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
        if is_order and not not_sent:
            self.stats["outcome_unknown"] += 1
            return errors.OutcomeUnknown(
                f"{endpoint}: {kind} after sending; the order may exist: query it by its "
                "client order id, never re-send it under a new id",
                exchange=self.exchange,
                endpoint=endpoint,
                client_order_id=self._client_order_id(pairs),
            )
        what = "not sent" if not_sent else "no answer"
        return errors.ExchangeDown(
            f"{endpoint}: {kind} ({what}); retry later",
            exchange=self.exchange,
            endpoint=endpoint,
        )

    def _on_response(self, response: httpx.Response) -> None:
        """Event hook on every response: usage headers -> limiter; 429/418 -> host stop."""
        limiter = self.limiter
        status = response.status_code
        if status in (429, 418):
            self.stats[str(status)] += 1
        if limiter is None:
            return
        with self._lock:
            now = self._server_now_ms()
            limiter.observe(response.headers, now)
            if status not in (429, 418):
                return
            retry_after = _retry_after(response.headers.get("Retry-After"))
            if retry_after is None:
                retry_after = DEFAULT_418_STOP_S if status == 418 else DEFAULT_429_STOP_S
            response.read()
            code = self._error_code(response.content)
            orders_only = (
                status == 429 and self.venue is not None and code in self.venue.order_limit_codes
            )
            limiter.stop(now + retry_after * 1000, status, orders_only=orders_only)
        logger.warning(
            "{} {}: HTTP {} (code {}), {} stopped for {:g} s",
            self.exchange,
            response.request.url.path,
            status,
            code,
            "orders" if orders_only else "all traffic",
            retry_after,
        )

    def _error_code(self, content: bytes) -> int | None:
        try:
            code = self._error_decoder.decode(content).code
        except (msgspec.DecodeError, AttributeError):
            return None
        return code if isinstance(code, int) else None

    def _result(
        self,
        response: httpx.Response,
        method: str,
        path: str,
        pairs: Sequence[tuple[str, str]],
        decoder: msgspec.json.Decoder[T],
        *,
        is_order: bool,
    ) -> T:
        endpoint = f"{method} {path}"
        if response.status_code >= 400:
            raise self._classify(self._error(response, endpoint), response, pairs, is_order)
        try:
            return decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise errors.MalformedMessage(
                f"{endpoint}: unexpected response body ({exc})",
                exchange=self.exchange,
                endpoint=endpoint,
                raw_excerpt=response.text[:200],
            ) from exc

    def _classify(
        self,
        err: errors.ExconnError,
        response: httpx.Response,
        pairs: Sequence[tuple[str, str]],
        is_order: bool,
    ) -> errors.ExconnError:
        """Apply the transport's order and clock rules on top of the venue's error mapping."""
        venue = self.venue
        code = err.code if isinstance(err.code, int) else None
        status = response.status_code
        if venue is not None and code in venue.clock_skew_codes:
            if not isinstance(err, errors.ClockSkew):
                err = errors.ClockSkew(
                    exchange=err.exchange,
                    code=code,
                    venue_message=err.venue_message,
                    endpoint=err.endpoint,
                )
            return err
        unknown = status >= 500 or status == 408 or isinstance(err, errors.OutcomeUnknown)
        if venue is not None and code in venue.unknown_outcome_codes:
            unknown = True
        if is_order and unknown:
            self.stats["outcome_unknown"] += 1
            return errors.OutcomeUnknown(
                f"HTTP {status}: the order may exist; query it by its client order id, "
                "never re-send it under a new id",
                exchange=err.exchange,
                code=err.code,
                venue_message=err.venue_message,
                endpoint=err.endpoint,
                client_order_id=self._client_order_id(pairs),
            )
        if not is_order and isinstance(err, errors.OutcomeUnknown):
            # A read has no outcome to resolve: it simply failed on the venue's side.
            return errors.ExchangeDown(
                exchange=err.exchange,
                code=err.code,
                venue_message=err.venue_message,
                endpoint=err.endpoint,
            )
        return err

    def _error(self, response: httpx.Response, endpoint: str) -> errors.ExconnError:
        code: int | None = None
        message: str | None = None
        try:
            body = self._error_decoder.decode(response.content)
            code, message = body.code, body.msg
        except msgspec.DecodeError:
            message = response.text[:200] or None
        retry_after = _retry_after(response.headers.get("Retry-After"))
        return self._error_for(
            response.status_code, code, message, endpoint=endpoint, retry_after=retry_after
        )


def _pairs(params: Params) -> list[tuple[str, str]]:
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(k), str(v)) for k, v in items]


def _retry_after(header: str | None) -> float | None:
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None
