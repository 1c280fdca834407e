"""A REST session (httpx) per venue host: keep-alive, timeouts, typed errors.

This is the skeleton's public-endpoint client; signing, the weight limiter, clock offset and the
circuit breaker arrive with the Binance connectivity issue and hook in here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx
import msgspec

from exconn import errors

T = TypeVar("T")

# (status, code, message, endpoint=..., retry_after=...) -> the venue's typed error
ErrorMapper = Callable[..., errors.ExconnError]


class RestClient:
    def __init__(
        self,
        base_url: str,
        *,
        exchange: str,
        error_for: ErrorMapper,
        error_decoder: msgspec.json.Decoder[Any],
        timeout: float = 10.0,
    ) -> None:
        self.exchange = exchange
        self._error_for = error_for
        self._error_decoder = error_decoder
        self._client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": "exconn"},
        )

    def get(self, path: str, params: Mapping[str, str], decoder: msgspec.json.Decoder[T]) -> T:
        endpoint = f"GET {path}"
        try:
            response = self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise errors.ExchangeDown(
                f"{endpoint} timed out; retry later",
                exchange=self.exchange,
                endpoint=endpoint,
            ) from exc
        except httpx.TransportError as exc:
            raise errors.ExchangeDown(
                f"{endpoint} failed: {type(exc).__name__}",
                exchange=self.exchange,
                endpoint=endpoint,
            ) from exc
        if response.status_code >= 400:
            raise self._error(response, endpoint)
        try:
            return decoder.decode(response.content)
        except msgspec.DecodeError as exc:
            raise errors.MalformedMessage(
                f"{endpoint}: unexpected response body ({exc})",
                exchange=self.exchange,
                endpoint=endpoint,
                raw_excerpt=response.text[:200],
            ) from exc

    def close(self) -> None:
        self._client.close()

    def _error(self, response: httpx.Response, endpoint: str) -> errors.ExconnError:
        code: int | None = None
        message: str | None = None
        try:
            body = self._error_decoder.decode(response.content)
            code, message = body.code, body.msg
        except msgspec.DecodeError:
            message = response.text[:200] or None
        retry_after: float | None = None
        header = response.headers.get("Retry-After")
        if header is not None:
            try:
                retry_after = float(header)
            except ValueError:
                retry_after = None
        return self._error_for(
            response.status_code, code, message, endpoint=endpoint, retry_after=retry_after
        )
