"""Clock offset to a venue's server time, estimated from time-endpoint samples (pure).

One sample is a request to the venue's time endpoint: sent at local time ``t_send``, answered
``rtt`` later with ``server_ms``. The server read its clock somewhere inside the round trip, so
the true offset lies in ``server_ms - t_send - [0, rtt]``; the midpoint estimate
``server_ms - (t_send + rtt/2)`` is off by at most ``rtt/2``. Hence:

- samples with the smallest round trip are the most precise and are preferred;
- several good samples are smoothed by their median (one delayed reply cannot drag it);
- a new sample whose interval does not overlap an old one (beyond the drift allowance) means
  a clock stepped (NTP jump, venue skew): the old, inconsistent samples are dropped, so the
  estimate follows a step at once instead of averaging across it;
- samples older than ``max_age_ms`` are dropped, so slow drift is tracked too.

Timestamps sent to the venue are the estimate minus its uncertainty, so they are never ahead
of the server (Binance rejects a timestamp >= serverTime + 1000 ms whatever the recvWindow).
Nothing here reads a clock: the caller passes local times in ms.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    local_ms: float  # local time the request was sent
    rtt_ms: float
    offset_ms: float  # midpoint estimate: server - (send + rtt/2)

    def consistent(self, other: Sample, drift_ppm: float) -> bool:
        """Can both samples be true at once (intervals overlap, allowing for drift)?"""
        allowance = abs(self.local_ms - other.local_ms) * drift_ppm / 1e6
        spread = (self.rtt_ms + other.rtt_ms) / 2 + allowance + 1.0  # +1 ms: ms-granular server
        return abs(self.offset_ms - other.offset_ms) <= spread


class ClockOffset:
    """Estimate of ``server_time - local_time`` in ms."""

    def __init__(
        self,
        *,
        max_samples: int = 8,
        max_age_ms: float = 600_000.0,
        drift_ppm: float = 200.0,
        good_rtt_factor: float = 2.0,
    ) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be >= 1")
        self.max_samples = max_samples
        self.max_age_ms = max_age_ms
        self.drift_ppm = drift_ppm
        self.good_rtt_factor = good_rtt_factor
        self._samples: list[Sample] = []
        self._offset = 0.0
        self._uncertainty = 0.0
        self.last_sample_ms: float | None = None

    @property
    def synced(self) -> bool:
        return bool(self._samples)

    @property
    def offset_ms(self) -> float:
        return self._offset

    @property
    def uncertainty_ms(self) -> float:
        """Half the best round trip: how far the true offset can be from ``offset_ms``."""
        return self._uncertainty

    @property
    def samples(self) -> tuple[Sample, ...]:
        return tuple(self._samples)

    def add_sample(self, t_send_ms: float, rtt_ms: float, server_ms: float) -> float:
        """Add one time-endpoint sample; return the new offset estimate."""
        rtt_ms = max(0.0, rtt_ms)
        new = Sample(t_send_ms, rtt_ms, server_ms - (t_send_ms + rtt_ms / 2))
        kept = [
            s
            for s in self._samples
            if t_send_ms - s.local_ms <= self.max_age_ms and s.consistent(new, self.drift_ppm)
        ]
        kept.append(new)
        self._samples = kept[-self.max_samples :]
        self.last_sample_ms = t_send_ms
        self._recompute()
        return self._offset

    def invalidate(self) -> None:
        """Forget every sample (the venue said our timestamp was wrong): resync before use."""
        self._samples = []
        self.last_sample_ms = None

    def needs_sync(self, local_ms: float, interval_ms: float) -> bool:
        return self.last_sample_ms is None or local_ms - self.last_sample_ms >= interval_ms

    def server_time_ms(self, local_ms: float) -> float:
        return local_ms + self._offset

    def timestamp_ms(self, local_ms: float) -> int:
        """A request timestamp that is not ahead of the server's clock."""
        return int(local_ms + self._offset - self._uncertainty)

    def _recompute(self) -> None:
        best = min(s.rtt_ms for s in self._samples)
        good = sorted(
            s.offset_ms for s in self._samples if s.rtt_ms <= best * self.good_rtt_factor + 1.0
        )
        mid = len(good) // 2
        self._offset = good[mid] if len(good) % 2 else (good[mid - 1] + good[mid]) / 2
        self._uncertainty = best / 2
