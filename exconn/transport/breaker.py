"""A circuit breaker per host (pybreaker) as an httpx transport wrapper.

Every request to the host goes through ``BreakerTransport``: 5xx answers, 408s and transport
failures (timeouts, refused or reset connections) count as failures; ``fail_max`` of them in a
row open the breaker, and while it is open requests fail with ``BreakerOpen`` *before anything
is sent*. After ``reset_timeout`` seconds one trial request is let through (half-open): success
closes the breaker, failure opens it again.

A failing answer is still returned to the caller (its body says what happened, and for an
order a 5xx means "outcome unknown", not "not sent"); only the breaker's bookkeeping sees it as
a failure.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pybreaker


class BreakerOpen(Exception):
    """The host's breaker is open: the request was not sent."""

    def __init__(self, host: str, retry_after: float) -> None:
        super().__init__(f"circuit breaker for {host} is open; retry after {retry_after:.1f} s")
        self.host = host
        self.retry_after = retry_after


class _FailedAnswer(Exception):
    """Carries a 5xx/408 response through pybreaker so it counts as a failure."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def is_failure_status(status: int) -> bool:
    return status >= 500 or status == 408


class HostBreaker:
    """pybreaker's breaker for one host, with its (in-memory) state storage exposed."""

    def __init__(self, host: str, *, fail_max: int = 5, reset_timeout: float = 30.0) -> None:
        self.host = host
        self.storage = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            state_storage=self.storage,
            name=host,
        )

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (open turns half-open on the next call)."""
        return str(self.breaker.current_state)

    def retry_after(self) -> float:
        opened = self.storage.opened_at
        if opened is None:
            return 0.0
        until = opened + timedelta(seconds=self.breaker.reset_timeout)
        return max(0.0, (until - datetime.now(UTC)).total_seconds())


class BreakerTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, breaker: HostBreaker) -> None:
        self._inner = inner
        self._breaker = breaker

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        def attempt() -> httpx.Response:
            response = self._inner.handle_request(request)
            if is_failure_status(response.status_code):
                response.read()  # the stream is closed once the exception leaves this call
                raise _FailedAnswer(response)
            return response

        try:
            return self._breaker.breaker.call(attempt)
        except _FailedAnswer as failed:
            return failed.response
        except pybreaker.CircuitBreakerError as exc:
            # pybreaker raises this both when it refuses (nothing sent) and when the failure
            # that just happened opened it; only the latter has the failure as context.
            cause = exc.__context__
            if isinstance(cause, _FailedAnswer):
                return cause.response
            if isinstance(cause, httpx.TransportError):
                raise cause from None
            raise BreakerOpen(self._breaker.host, self._breaker.retry_after()) from None

    def close(self) -> None:
        self._inner.close()
