"""A REST session (httpx) per venue host: keep-alive, timeouts, signing, clock offset, request
budgets, a circuit breaker, and typed errors.

One ``RestClient`` per host. What a request goes through, in order:

1. the host's stop (after a 429/418/403: refused at once) and the request budget:
   ``WeightLimiter`` is asked before anything is sent and the call waits (bounded by
   ``max_wait``) for budget, and for an endpoint stopped by its rate-limit code (Bybit 10006)
   until the venue's reset. With ``budget_dir`` the budget and the stops are
   shared by every process of the exconn system (``exconn.transport.ratelimit``);
2. for signed requests, the clock offset is refreshed when stale, and the venue's signer adds
   the timestamp *after* any budget wait, then the signature over the exact query or body
   bytes that are sent (the request is built once, already signed: parsing a URL is most of
   httpx's own cost per request);
3. ``BreakerTransport`` (pybreaker) refuses to send while the host's breaker is open;
4. a response event hook feeds the venue's usage headers back into the limiter and turns the
   venue's refusing statuses (429/418 on Binance, 403/429 on Bybit) into a host-wide stop;
   ``note_answer`` does the same for an answer that came another way (the venue's order
   WebSocket: same IP and account budgets), from the ``AnswerFeedback`` its venue reads;
5. the answer is checked for a failure code, in an error status or in a 200 body (Bybit's
   ``retCode``), and mapped to exconn's typed errors by the venue.

Retry policy: a clock-skew code (Binance -1021, Bybit 10002) on a read resyncs the clock and
retries once; nothing else is retried here. An order (``is_order``) is never retried: a timeout
after sending, a 5xx, a 408 or one of the venue's unknown-outcome codes (Binance -1006/-1007,
Bybit 10000/10016) raises ``OutcomeUnknown`` carrying its client order id, and a clock-skew
code raises ``ClockSkew`` (the order was rejected; the clock is resynced for the next attempt).

Every venue rule (costs, limits, usage headers, stops, codes, error bodies, where parameters
travel, signing) comes from a ``RestVenue`` and a ``Signer``
(``exconn.venues.binance.endpoints``, ``exconn.venues.bybit.endpoints``); this module knows no
venue by name.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
import msgspec
from loguru import logger

from exconn import errors
from exconn.transport.breaker import BreakerOpen, BreakerTransport, HostBreaker
from exconn.transport.clock import ClockOffset
from exconn.transport.ratelimit import (
    NO_COST,
    Cost,
    Limit,
    SharedBudget,
    Stop,
    StopRule,
    Usage,
    WeightLimiter,
    limit_from_binance,
    retry_after_header,
)

T = TypeVar("T")

# (status, code, message, endpoint=..., retry_after=...) -> the venue's typed error
ErrorMapper = Callable[..., errors.ExconnError]
Params = Mapping[str, Any] | Sequence[tuple[str, Any]]

CLOCK_SAMPLES = 3  # per sync: the min-RTT one dominates, the median guards against outliers
MAX_BUDGET_WAITS = 64  # bound on wait-then-ask rounds for one request
# A rate-limit code without a usable reset time stops that endpoint this long.
DEFAULT_CODE_STOP_S = 1.0
_COST = "exconn.cost"  # request extension carrying the request's cost to the response hook


class RestVenue(Protocol):
    """A venue's REST rules, as the transport applies them."""

    time_path: str
    # Codes that mean "the order may exist": never retry, resolve by client id.
    unknown_outcome_codes: frozenset[int]
    # Codes that mean "timestamp outside the receive window": resync the clock.
    clock_skew_codes: frozenset[int]
    # Body codes that mean "this endpoint's budget is spent" (Bybit 10006): stop it.
    rate_limit_codes: frozenset[int]
    # Body codes that mean "nothing to change": success (Bybit 110025/110026/110043).
    not_modified_codes: frozenset[int]
    # HTTP statuses after which the venue wants the host left alone (``stop_after``).
    stop_statuses: frozenset[int]
    # Methods whose parameters travel as a JSON body (Bybit POST); others as the query.
    json_body_methods: frozenset[str]

    def limits(self) -> tuple[Limit, ...]:
        """The limits to keep until the venue's own have been read."""
        ...

    def server_time(self, body: bytes) -> int:
        """Server time (ms) from the body of ``GET time_path``."""
        ...

    def cost(self, method: str, path: str, params: Mapping[str, Any]) -> Cost: ...

    def usage(self, headers: Mapping[str, str], cost: Cost) -> Iterable[Usage]:
        """What the usage headers of an answer to a request of ``cost`` say."""
        ...

    def stop_after(
        self, status: int, code: int | None, retry_after: float | None
    ) -> StopRule | None:
        """How long a ``stop_statuses`` answer stops the host (None: not at all)."""
        ...

    def retry_after(self, headers: Mapping[str, str], server_now_ms: float) -> float | None:
        """Seconds the answer asks us to wait, if it says."""
        ...

    def error_fields(self, content: bytes) -> tuple[int | None, str | None]:
        """(code, message) of an error body; (None, None) when it has neither."""
        ...

    def body_error(self, content: bytes) -> tuple[int, str | None] | None:
        """(code, message) when a 2xx body reports a failure, else None."""
        ...

    def error_for(
        self,
        status: int,
        code: int | None,
        message: str | None,
        *,
        endpoint: str,
        retry_after: float | None = None,
    ) -> errors.ExconnError: ...

    def client_order_id(self, params: Mapping[str, Any]) -> str | None: ...

    def requires_client_order_id(self, method: str, path: str) -> bool:
        """Order entry that creates an order: refused without a client id, since an unknown
        outcome could then not be resolved."""
        ...


@dataclass(frozen=True, slots=True)
class AnswerFeedback:
    """What a venue's answer to a request sent another way than HTTP (its order WebSocket)
    says about the request budget, in the terms of an HTTP answer to the same request:
    ``status`` (the HTTP status it stands for: Binance's WS API ``status``; 429 for Bybit's
    WebSocket back-off codes, else 200), the failure ``code``, usage ``headers`` as
    ``RestVenue.usage`` reads them, and ``retry_after`` (seconds) where the answer says.
    Built by the venue's ``WsEntry.feedback``; applied by ``RestClient.note_answer``."""

    status: int = 200
    code: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None


class Signer(Protocol):
    def sign(self, query: str, body: str, timestamp_ms: int) -> tuple[str, dict[str, str]]: ...


class PreparedRequest(Protocol):
    """A request built by a venue's endpoint builders (``exconn.venues.bybit.endpoints``)."""

    method: str
    path: str
    params: Mapping[str, Any]
    signed: bool
    is_order: bool


def encode_query(params: Iterable[tuple[str, str]]) -> str:
    """``k=v&...`` in the given order, every byte outside ``A-Za-z0-9-._~`` percent-encoded:
    httpx leaves such a query byte for byte as it is, so what is signed is what is sent."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)


def account_fingerprint(api_key: str) -> str:
    """Names an account's per-UID budgets in shared state without writing its key there."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


class _NoCookies(http.cookiejar.CookieJar):
    """The venues authenticate by key, never by cookie: none is kept or sent (a cookie set by
    a venue or a proxy would otherwise ride on every later request), and the cookie jar's
    per-request work is skipped."""

    def add_cookie_header(self, request: Any) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None


class RestClient:
    def __init__(
        self,
        base_url: str,
        *,
        exchange: str,
        error_for: ErrorMapper | None = None,
        error_decoder: msgspec.json.Decoder[Any] | None = None,
        timeout: float = 10.0,
        venue: RestVenue | None = None,
        signer: Signer | None = None,
        limiter: WeightLimiter | None = None,
        clock: ClockOffset | None = None,
        breaker: HostBreaker | None = None,
        budget_dir: str | None = None,
        max_wait: float = 30.0,
        resync_interval: float = 120.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``error_for`` / ``error_decoder`` override the venue's error mapping and error-body
        decoding (``error_decoder`` decodes to an object with ``code`` and ``msg``);
        ``budget_dir`` shares the request budget with every process using the same directory
        (one file per host)."""
        self.exchange = exchange
        self.venue = venue
        self._error_for: ErrorMapper = error_for or (
            venue.error_for if venue is not None else _generic_error_for(exchange)
        )
        self._error_decoder = error_decoder
        self._signer = signer
        self.clock = clock or ClockOffset()
        url = httpx.URL(base_url)
        host = url.host or base_url
        port = url.port or (443 if url.scheme == "https" else 80)
        self._budget = SharedBudget.for_host(budget_dir, f"{host}:{port}") if budget_dir else None
        self._account = _account(signer)
        if limiter is None and venue is not None:
            limiter = self._new_limiter(venue.limits())
        self.limiter = limiter
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
            cookies=_NoCookies(),
            transport=BreakerTransport(inner, self.breaker),
            event_hooks={"response": [self._on_response]},
        )
        # Requests are built with absolute URLs (parsed once, not once more to merge them
        # with the base); joined as httpx joins them: base path + the path without its "/".
        base = str(self._client.base_url)
        self._base_url = base if base.endswith("/") else base + "/"

    def _new_limiter(self, limits: Iterable[Limit]) -> WeightLimiter:
        return WeightLimiter(limits, store=self._budget, account=self._account)

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
        items = _items(params)
        response, cost = self._send(
            method, path, items, signed=False, is_order=False, headers=api_key_headers
        )
        return self._result(response, cost, method, path, items, decoder, is_order=False)

    def call(self, request: PreparedRequest, decoder: msgspec.json.Decoder[T]) -> T:
        """A request built by a venue's endpoint builders, signed if it says so."""
        if request.signed:
            return self.signed_request(
                request.method, request.path, request.params, decoder, is_order=request.is_order
            )
        return self.request(request.method, request.path, request.params, decoder)

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
        endpoint = f"{method} {path}"
        if self._signer is None:
            raise errors.ConfigError(
                f"{endpoint} needs API credentials", exchange=self.exchange, endpoint=endpoint
            )
        items = _items(params)
        venue = self.venue
        needs_id = venue.requires_client_order_id(method, path) if venue else method == "POST"
        if is_order and needs_id and self._client_order_id(items) is None:
            raise errors.InvalidOrder(
                f"{endpoint}: an order needs a client order id so that an unknown outcome "
                "can be resolved by a query; assign one before sending",
                exchange=self.exchange,
                endpoint=endpoint,
            )
        for attempt in range(2):
            self._ensure_clock()
            response, cost = self._send(method, path, items, signed=True, is_order=is_order)
            try:
                return self._result(response, cost, method, path, items, decoder, is_order=is_order)
            except errors.ClockSkew:
                self.stats["clock_skew_rejections"] += 1
                self._resync_after_skew()
                if is_order or attempt:
                    raise
                self.stats["retries"] += 1
                logger.debug("{}: clock skew, clock resynced, retrying once", endpoint)
        raise AssertionError("unreachable")  # pragma: no cover

    def reserve(self, request: PreparedRequest) -> Callable[[], None]:
        """Draw ``request``'s cost from this client's budget, waiting or refusing exactly as
        sending it would, for the same command sent another way (a venue's order WebSocket
        shares the REST order and weight budgets). Returns the release to call when it was
        not sent after all."""
        items = _items(request.params)
        cost = self._cost(request.method, request.path, items)
        reserved_at = self._reserve(f"{request.method} {request.path}", cost, request.is_order)

        def release() -> None:
            if self.limiter is not None:
                with self._lock:
                    self.limiter.release(cost, reserved_at)

        return release

    def note_answer(self, request: PreparedRequest, feedback: AnswerFeedback) -> None:
        """Apply the venue's answer to ``request`` sent another way (its order WebSocket) as
        an HTTP answer of the same request would be applied: usage to the limiter, a
        refusing status to a host (or orders) stop, a rate-limit code to a stop of the
        budgets the request draws on. The request's own reply is not this method's concern."""
        endpoint = f"{request.method} {request.path}"
        cost = self._cost(request.method, request.path, _items(request.params))
        if self.limiter is not None and cost.extra:
            # An answer to a request this client has not reserved must still find the
            # budgets it names (usage and stops per endpoint and UID).
            with self._lock:
                self.limiter.learn(cost)
        self._observe(
            feedback.headers,
            cost,
            feedback.status,
            feedback.code,
            feedback.retry_after,
            where=f"{endpoint} (order WebSocket)",
        )
        venue, code = self.venue, feedback.code
        if venue is None or code is None or code not in venue.rate_limit_codes:
            return
        if feedback.status in venue.stop_statuses:
            return  # the stop above already covers it
        self.stats[str(code)] += 1
        retry_after = feedback.retry_after
        if retry_after is None:
            retry_after = self._retry_after_in(feedback.headers)
        self._stop_budgets(endpoint, cost, code, retry_after)

    def seed_limits(self, rate_limits: Iterable[Limit | tuple[str, str, int, int]]) -> None:
        """Replace the limits with the venue's own: ``Limit`` rows, or Binance
        ``exchangeInfo.rateLimits`` as tuples (see ``endpoints.rate_limits``)."""
        limits = [
            entry if isinstance(entry, Limit) else limit_from_binance(*entry)
            for entry in rate_limits
        ]
        if self.limiter is None:
            self.limiter = self._new_limiter(limits)
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
            response, _, t_send, rtt = self._send_timed("GET", path, [], False, False, None)
            if response.status_code >= 400:
                raise self._error(response, f"GET {path}")
            try:
                server = self.venue.server_time(response.content)
            except (msgspec.DecodeError, KeyError, ValueError, TypeError) as exc:
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
        if self._budget is not None:
            self._budget.close()

    # ---------------------------------------------------------------------------- internals
    def _now_ms(self) -> float:
        return self._wall() * 1000

    def _server_now_ms(self) -> float:
        return self.clock.server_time_ms(self._now_ms())

    def _timestamp_ms(self) -> int:
        with self._lock:
            return self.clock.timestamp_ms(self._now_ms())

    def _client_order_id(self, items: Sequence[tuple[str, Any]]) -> str | None:
        if self.venue is None:
            return None
        return self.venue.client_order_id(dict(items))

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

    def _cost(self, method: str, path: str, items: Sequence[tuple[str, Any]]) -> Cost:
        if self.venue is None:
            return Cost()
        return self.venue.cost(method, path, dict(items))

    def _reserve(self, endpoint: str, cost: Cost, is_order: bool) -> float:
        """Wait for budget; returns the server time the reservation was made at."""
        limiter = self.limiter
        waited = 0.0
        for _ in range(MAX_BUDGET_WAITS):
            with self._lock:
                now = self._server_now_ms()
                if limiter is None:
                    return now
                stop, wait_ms = limiter.reserve(cost, now, is_order=is_order)
                if stop is not None:
                    remaining = stop.remaining_s(now)
                    # A host stop (429/418/403) is the caller's to handle: continuing risks a
                    # ban. One endpoint's budget (Bybit 10006) frees at its reset, usually
                    # within a second: wait for it like for any budget.
                    if stop.kind is None or waited + remaining > self.max_wait:
                        self.stats["refused_stopped"] += 1
                        raise self._stop_error(endpoint, stop, remaining)
                    wait_ms = remaining * 1000 + 1
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

    def _stop_error(self, endpoint: str, stop: Stop, remaining: float) -> errors.ExconnError:
        common: dict[str, Any] = {
            "exchange": self.exchange,
            "endpoint": endpoint,
            "retry_after": remaining,
        }
        if stop.status == 418:
            what = "the exchange banned this IP"
            return errors.Banned(
                f"{endpoint}: not sent, {what} for {remaining:.1f} s more", **common
            )
        if stop.status == 403:
            what = "the exchange refused this IP (HTTP 403, IP rate limit)"
            return errors.Banned(
                f"{endpoint}: not sent, {what} for {remaining:.1f} s more", **common
            )
        if stop.kind is not None:
            what = "this endpoint's rate limit was hit"
        elif stop.orders_only:
            what = "the order rate limit was hit"
        else:
            what = f"traffic stopped after a {stop.status}"
        return errors.RateLimited(f"{endpoint}: not sent, {what}; {remaining:.1f} s more", **common)

    def _send(
        self,
        method: str,
        path: str,
        items: Sequence[tuple[str, Any]],
        *,
        signed: bool,
        is_order: bool,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[httpx.Response, Cost]:
        response, cost, _, _ = self._send_timed(method, path, items, signed, is_order, headers)
        return response, cost

    def _build(
        self,
        method: str,
        path: str,
        items: Sequence[tuple[str, Any]],
        headers: Mapping[str, str] | None,
        signed: bool,
    ) -> httpx.Request:
        """The request as it is sent; signed (timestamp now, after any budget wait) over the
        exact query or body bytes it carries."""
        venue = self.venue
        content: bytes | None = None
        merged = dict(headers) if headers else {}
        if venue is not None and method in venue.json_body_methods:
            content = _encode_json(dict(items))
            query = ""
            merged["Content-Type"] = "application/json"
        else:
            query = encode_query((k, _text(v)) for k, v in items)
        if signed and self._signer is not None:
            body = content.decode("utf-8") if content is not None else ""
            query, signature_headers = self._signer.sign(query, body, self._timestamp_ms())
            merged.update(signature_headers)
        url = self._base_url + path.lstrip("/")
        if query:
            url = f"{url}?{query}"
        return self._client.build_request(method, url, content=content, headers=merged or None)

    def _send_timed(
        self,
        method: str,
        path: str,
        items: Sequence[tuple[str, Any]],
        signed: bool,
        is_order: bool,
        headers: Mapping[str, str] | None,
    ) -> tuple[httpx.Response, Cost, float, float]:
        """(response, cost, local send time ms, round trip ms)."""
        endpoint = f"{method} {path}"
        cost = self._cost(method, path, items)
        reserved_at = self._reserve(endpoint, cost, is_order)
        request = self._build(method, path, items, headers, signed)
        request.extensions[_COST] = cost
        t_send = self._now_ms()
        m_send = self._monotonic()
        try:
            self.stats["sent"] += 1
            response = self._client.send(request)
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
            raise self._transport_error(exc, endpoint, items, is_order) from exc
        return response, cost, t_send, (self._monotonic() - m_send) * 1000

    def _transport_error(
        self,
        exc: httpx.TransportError,
        endpoint: str,
        items: Sequence[tuple[str, Any]],
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
                client_order_id=self._client_order_id(items),
            )
        what = "not sent" if not_sent else "no answer"
        return errors.ExchangeDown(
            f"{endpoint}: {kind} ({what}); retry later",
            exchange=self.exchange,
            endpoint=endpoint,
        )

    def _on_response(self, response: httpx.Response) -> None:
        """Event hook on every response: usage headers -> limiter; refusing statuses -> host
        stop (shared with every process using the same budget)."""
        status = response.status_code
        venue = self.venue
        code: int | None = None
        if self.limiter is not None and venue is not None and status in venue.stop_statuses:
            response.read()
            code = self._error_fields(response.content)[0]
        self._observe(
            response.headers,
            response.request.extensions.get(_COST, NO_COST),
            status,
            code,
            retry_after_header(response.headers),
            where=response.request.url.path,
        )

    def _observe(
        self,
        headers: Mapping[str, str],
        cost: Cost,
        status: int,
        code: int | None,
        retry_after: float | None,
        *,
        where: str,
    ) -> None:
        """An answer's usage -> limiter; a refusing status -> host (or orders) stop, logged."""
        if status >= 400:
            self.stats[str(status)] += 1
        limiter, venue = self.limiter, self.venue
        if limiter is None:
            return
        rule: StopRule | None = None
        if venue is not None and status in venue.stop_statuses:
            rule = venue.stop_after(status, code, retry_after)
        with self._lock:
            now = self._server_now_ms()
            if venue is not None:
                limiter.observe_usage(venue.usage(headers, cost), now)
            else:
                limiter.observe(headers, now)
            if rule is not None:
                limiter.stop(now + rule.seconds * 1000, rule.status, orders_only=rule.orders_only)
        if rule is not None:
            logger.warning(
                "{} {}: HTTP {} (code {}), {} stopped for {:g} s",
                self.exchange,
                where,
                status,
                code,
                "orders" if rule.orders_only else "all traffic to the host",
                rule.seconds,
            )

    def _error_fields(self, content: bytes) -> tuple[int | None, str | None]:
        if self._error_decoder is not None:
            try:
                body = self._error_decoder.decode(content)
            except msgspec.DecodeError:
                return None, None
            code, message = getattr(body, "code", None), getattr(body, "msg", None)
            return (code if isinstance(code, int) else None), message
        if self.venue is not None:
            return self.venue.error_fields(content)
        return None, None

    def _retry_after_in(self, headers: Mapping[str, str]) -> float | None:
        if self.venue is not None:
            with self._lock:
                now = self._server_now_ms()
            return self.venue.retry_after(headers, now)
        return retry_after_header(headers)

    def _result(
        self,
        response: httpx.Response,
        cost: Cost,
        method: str,
        path: str,
        items: Sequence[tuple[str, Any]],
        decoder: msgspec.json.Decoder[T],
        *,
        is_order: bool,
    ) -> T:
        endpoint = f"{method} {path}"
        if response.status_code >= 400:
            raise self._classify(self._error(response, endpoint), response, items, is_order)
        venue = self.venue
        failure = venue.body_error(response.content) if venue is not None else None
        if failure is not None and venue is not None:
            code, message = failure
            if code in venue.not_modified_codes:
                # Idempotent settings call (leverage, position or margin mode already so).
                self.stats["not_modified"] += 1
                logger.debug("{}: code {} ({}): already so, success", endpoint, code, message)
            else:
                self.stats[str(code)] += 1
                retry_after = self._retry_after_in(response.headers)
                if code in venue.rate_limit_codes:
                    retry_after = self._stop_budgets(endpoint, cost, code, retry_after)
                err = self._error_for(
                    response.status_code, code, message, endpoint=endpoint, retry_after=retry_after
                )
                raise self._classify(err, response, items, is_order)
        try:
            return decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise errors.MalformedMessage(
                f"{endpoint}: unexpected response body ({exc})",
                exchange=self.exchange,
                endpoint=endpoint,
                raw_excerpt=response.text[:200],
            ) from exc

    def _stop_budgets(
        self, endpoint: str, cost: Cost, code: int, retry_after: float | None
    ) -> float:
        """A rate-limit code: stop the budgets this request draws on (or the host, when it
        names none) until the venue's reset time; returns the seconds stopped."""
        seconds = retry_after if retry_after is not None and retry_after > 0 else None
        seconds = DEFAULT_CODE_STOP_S if seconds is None else seconds
        if self.limiter is not None:
            with self._lock:
                until = self._server_now_ms() + seconds * 1000
                if cost.kinds:
                    for kind in cost.kinds:
                        self.limiter.stop(until, 429, kind=kind)
                else:
                    self.limiter.stop(until, 429)
        logger.warning(
            "{} {}: rate-limit code {}, {} stopped for {:g} s",
            self.exchange,
            endpoint,
            code,
            "its budget" if cost.kinds else "all traffic to the host",
            seconds,
        )
        return seconds

    def _classify(
        self,
        err: errors.ExconnError,
        response: httpx.Response,
        items: Sequence[tuple[str, Any]],
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
                client_order_id=self._client_order_id(items),
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
        code, message = self._error_fields(response.content)
        if code is None and message is None:
            message = response.text[:200] or None
        return self._error_for(
            response.status_code,
            code,
            message,
            endpoint=endpoint,
            retry_after=self._retry_after_in(response.headers),
        )


def _items(params: Params) -> list[tuple[str, Any]]:
    items = params.items() if isinstance(params, Mapping) else params
    out = []
    for key, value in items:
        if isinstance(value, float):
            # Prices and quantities are Decimal: a float would send a rounded binary value.
            raise TypeError(f"parameter {key!r} is a float; pass a Decimal or a str")
        out.append((str(key), format(value, "f") if isinstance(value, Decimal) else value))
    return out


def _text(value: Any) -> str:
    """A query value: strings as they are, booleans as JSON spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


_encode_json = msgspec.json.Encoder().encode


def _account(signer: Signer | None) -> str:
    credentials = getattr(signer, "credentials", None)
    api_key = getattr(credentials, "api_key", None)
    return account_fingerprint(api_key) if isinstance(api_key, str) else ""


def _generic_error_for(exchange: str) -> ErrorMapper:
    def error_for(
        status: int,
        code: int | None,
        message: str | None,
        *,
        endpoint: str,
        retry_after: float | None = None,
    ) -> errors.ExconnError:
        common: dict[str, Any] = {
            "exchange": exchange,
            "code": code,
            "venue_message": message,
            "endpoint": endpoint,
        }
        if status == 429:
            return errors.RateLimited(retry_after=retry_after, **common)
        if status >= 500:
            return errors.ExchangeDown(**common)
        return errors.ExchangeError(**common)

    return error_for
