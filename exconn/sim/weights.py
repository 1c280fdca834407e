"""Request-weight accounting for the X-MBX-USED-WEIGHT-1M header (reported, not enforced)."""

from collections.abc import Callable, Mapping

WEIGHTS = {"/api/v3/ping": 1, "/api/v3/time": 1, "/api/v3/exchangeInfo": 20}
DEPTH_PATH = "/api/v3/depth"
DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000


def parse_depth_limit(raw: str | None) -> int | None:
    """The effective depth limit, or None when the parameter is malformed."""
    if raw is None:
        return DEPTH_DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        return None
    return min(int(raw), DEPTH_MAX_LIMIT)  # Binance truncates larger limits to 5000


def request_weight(path: str, query: Mapping[str, str]) -> int:
    if path == DEPTH_PATH:
        return depth_weight(parse_depth_limit(query.get("limit")) or DEPTH_DEFAULT_LIMIT)
    return WEIGHTS.get(path, 1)


def depth_weight(limit: int) -> int:
    if limit <= 100:
        return 5
    if limit <= 500:
        return 25
    if limit <= 1000:
        return 50
    return 250


class WeightCounter:
    """Weight used in the current wall-clock minute; Binance buckets reset at :00."""

    def __init__(self, clock_ms: Callable[[], int]) -> None:
        self._clock_ms = clock_ms
        self._minute = -1
        self._used = 0

    def charge(self, weight: int) -> int:
        minute = self._clock_ms() // 60_000
        if minute != self._minute:
            self._minute, self._used = minute, 0
        self._used += weight
        return self._used
