"""Rate limits as Binance and Bybit enforce them, with the headers they report.

Pure bookkeeping: every call takes `now_ms`, nothing sleeps or reads a clock, and one
instance belongs to one simulated exchange (its event loop), so there are no locks.

Binance (binance.md §3, §6):
* REQUEST_WEIGHT per IP and RAW_REQUESTS per IP, ORDERS per account; fixed buckets aligned to
  the epoch (a minute resets at :00, a day at 00:00 UTC, 10 s at :00, :10, …).
* A request that takes an IP counter past its limit gets 429 / -1003 and Retry-After = whole
  seconds until that bucket resets. Rejected requests still count: their weight is spent
  (the header keeps climbing past the limit, as on Binance).
* The docs say only that continuing after 429s leads to a 418 ban which "scales from 2
  minutes to 3 days for repeat offenders". Chosen here: once an IP has had a 429, the next
  `requests_before_ban` requests it sends before Retry-After has passed are answered 418
  and start a ban; ban n of an IP lasts `BAN_STEPS_S[n]` (2 min, 10 min, 30 min, 1 h, 3 h,
  12 h, 1 day, then 3 days for every further ban). The count of bans is forgotten after
  `ban_memory_ms` (1 day) without one. Requests during a ban are not counted and do not
  extend it.
* ORDERS over the limit: 429 / -1015 with Retry-After; the rejected order is not counted.
  Order-limit 429s never lead to an IP ban (that limit is per account, bans are per IP).
* WebSocket: at most 5 incoming messages in any 1000 ms (10 on USD-M; ping, pong and text
  frames all count), else close 1008; and a connection lifetime cap (24 h, a setting).

Bybit (bybit.md §3):
* Per UID and endpoint, a rolling 1 s window (`X-Bapi-Limit`, `X-Bapi-Limit-Status` =
  remaining, `X-Bapi-Limit-Reset-Timestamp` = now, or when the next unit frees up once
  exceeded); over the limit -> retCode 10006 "Too many visits!" with HTTP 200.
* Per IP, 600 requests in any 5 s (rolling) -> HTTP 403 "access too frequent" and every
  request from that IP is refused for 10 minutes (the docs: "wait for at least 10 minutes.
  The ban will be lifted automatically").
"""

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from exconn.sim import errors as E

SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

Interval = Literal["SECOND", "MINUTE", "HOUR", "DAY"]
LimitType = Literal["REQUEST_WEIGHT", "ORDERS", "RAW_REQUESTS"]
_INTERVAL_MS: dict[str, int] = {
    "SECOND": SECOND_MS,
    "MINUTE": MINUTE_MS,
    "HOUR": HOUR_MS,
    "DAY": DAY_MS,
}

BAN_STEPS_S: tuple[int, ...] = (
    120,
    600,
    1800,
    3600,
    3 * 3600,
    12 * 3600,
    24 * 3600,
    3 * 24 * 3600,
)

WS_CLOSE_POLICY_VIOLATION = 1008
SPOT_WS_MESSAGES_PER_S = 5
USDM_WS_MESSAGES_PER_S = 10
WS_MAX_LIFETIME_MS = DAY_MS


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One entry of exchangeInfo.rateLimits."""

    kind: LimitType
    interval: Interval
    interval_num: int
    limit: int

    @property
    def window_ms(self) -> int:
        return _INTERVAL_MS[self.interval] * self.interval_num

    @property
    def suffix(self) -> str:
        return f"{self.interval_num}{self.interval[0]}"  # 1M, 10S, 1D

    @property
    def per(self) -> str:
        """How the -1003 / -1015 messages name the interval, e.g. "1 MINUTE"."""
        return f"{self.interval_num} {self.interval}"

    def as_json(self) -> dict[str, Any]:
        return {
            "rateLimitType": self.kind,
            "interval": self.interval,
            "intervalNum": self.interval_num,
            "limit": self.limit,
        }


SPOT_LIMITS: tuple[RateLimit, ...] = (
    RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 6000),
    RateLimit("ORDERS", "SECOND", 10, 50),
    RateLimit("ORDERS", "DAY", 1, 160_000),
    RateLimit("RAW_REQUESTS", "MINUTE", 5, 300_000),
)
USDM_LIMITS: tuple[RateLimit, ...] = (
    RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 2400),
    RateLimit("ORDERS", "SECOND", 10, 300),
    RateLimit("ORDERS", "MINUTE", 1, 1200),
)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A request refused by a limiter: what to answer with."""

    http_status: int
    code: int  # Binance code or Bybit retCode; 0 for Bybit's bare 403
    msg: str
    body: bytes
    retry_after_s: int | None = None  # Binance Retry-After header (seconds)
    retry_after_ms: int | None = None  # epoch ms: Binance WS API `error.data.retryAfter`
    content_type: str = "application/json"

    def ws_response(self, request_id: Any, server_time_ms: int) -> dict[str, Any]:
        """Binance WebSocket API error response for this rejection."""
        data = None
        if self.retry_after_ms is not None:
            data = {"serverTime": server_time_ms, "retryAfter": self.retry_after_ms}
        return E.binance_ws_error(request_id, self.http_status, self.code, self.msg, data)


class _Buckets:
    """Counters in fixed epoch-aligned buckets of one width, by key."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._counts: dict[str, tuple[int, int]] = {}

    def used(self, key: str, now_ms: int) -> int:
        bucket, count = self._counts.get(key, (-1, 0))
        return count if bucket == now_ms // self.window_ms else 0

    def add(self, key: str, amount: int, now_ms: int) -> int:
        count = self.used(key, now_ms) + amount
        self._counts[key] = (now_ms // self.window_ms, count)
        return count

    def reset_at(self, now_ms: int) -> int:
        return (now_ms // self.window_ms + 1) * self.window_ms


def _seconds_until(then_ms: int, now_ms: int) -> int:
    return max(1, math.ceil((then_ms - now_ms) / 1000))


@dataclass(slots=True)
class _IpState:
    limited_until: int = 0  # end of the bucket that produced the last 429
    limit_hit: RateLimit | None = None
    strikes: int = 0  # requests sent while limited
    banned_until: int = 0
    bans: int = 0
    last_ban_end: int = 0


class BinanceLimiter:
    def __init__(
        self,
        limits: Iterable[RateLimit] = SPOT_LIMITS,
        *,
        ban_steps_s: Iterable[int] = BAN_STEPS_S,
        requests_before_ban: int = 1,
        ban_memory_ms: int = DAY_MS,
    ) -> None:
        self.limits = tuple(limits)
        self.ban_steps_s = tuple(ban_steps_s)
        if not self.ban_steps_s or requests_before_ban < 1:
            raise ValueError("need at least one ban step and requests_before_ban >= 1")
        self.requests_before_ban = requests_before_ban
        self.ban_memory_ms = ban_memory_ms
        self._buckets = {lim: _Buckets(lim.window_ms) for lim in self.limits}
        self._ips: dict[str, _IpState] = {}

    def _of(self, kind: LimitType) -> list[RateLimit]:
        return [lim for lim in self.limits if lim.kind == kind]

    def charge(
        self,
        ip: str,
        account: str | None,
        weight: int,
        is_order: bool,
        now_ms: int,
        orders: int = 1,
    ) -> tuple[dict[str, str], Rejection | None]:
        """Count one request; `orders` (with is_order) is how many orders it places.
        Returns the headers for the response and, if refused, what to answer instead."""
        state = self._ips.setdefault(ip, _IpState())
        if state.banned_until > now_ms:
            return self._with_retry(self.headers(ip, None, now_ms), self._banned(state, now_ms))
        if state.limited_until > now_ms:
            state.strikes += 1
            if state.strikes >= self.requests_before_ban:
                rejection: Rejection | None = self._ban(state, now_ms)
            else:
                self.add_weight(ip, weight, now_ms)
                rejection = self._limited(state.limited_until, state.limit_hit, now_ms)
            return self._with_retry(self.headers(ip, None, now_ms), rejection)
        rejection = self._charge_ip(ip, weight, now_ms, state)
        if rejection is None and is_order:
            if account is None:
                raise ValueError("an order needs the account it is placed for")
            rejection = self._charge_orders(account, orders, now_ms)
            if rejection is None:
                return self.headers(ip, account, now_ms), None
        return self._with_retry(self.headers(ip, None, now_ms), rejection)

    def add_weight(self, ip: str, weight: int, now_ms: int) -> None:
        """Weight known only afterwards (spot orders cost weight only when they fail)."""
        for lim in self._of("REQUEST_WEIGHT"):
            self._buckets[lim].add(ip, weight, now_ms)

    def headers(self, ip: str, account: str | None, now_ms: int) -> dict[str, str]:
        """X-MBX-USED-WEIGHT-* always; X-MBX-ORDER-COUNT-* when `account` is given (Binance
        sends them on successful order responses)."""
        out = {
            f"X-MBX-USED-WEIGHT-{lim.suffix}": str(self._buckets[lim].used(ip, now_ms))
            for lim in self._of("REQUEST_WEIGHT")
        }
        if account is not None:
            for lim in self._of("ORDERS"):
                out[f"X-MBX-ORDER-COUNT-{lim.suffix}"] = str(
                    self._buckets[lim].used(account, now_ms)
                )
        return out

    def rate_limits(self, ip: str, account: str | None, now_ms: int) -> list[dict[str, Any]]:
        """The WebSocket API `rateLimits` array (orders only with an account)."""
        out = []
        for lim in self.limits:
            if lim.kind == "ORDERS" and account is None:
                continue
            key = account if lim.kind == "ORDERS" else ip
            assert key is not None
            out.append(lim.as_json() | {"count": self._buckets[lim].used(key, now_ms)})
        return out

    def banned_until(self, ip: str, now_ms: int) -> int | None:
        state = self._ips.get(ip)
        return state.banned_until if state and state.banned_until > now_ms else None

    def _charge_ip(self, ip: str, weight: int, now_ms: int, state: _IpState) -> Rejection | None:
        over: RateLimit | None = None
        for lim in self.limits:
            if lim.kind == "ORDERS":
                continue
            used = self._buckets[lim].add(ip, weight if lim.kind == "REQUEST_WEIGHT" else 1, now_ms)
            if used > lim.limit and over is None:
                over = lim
        if over is None:
            return None
        reset = self._buckets[over].reset_at(now_ms)
        state.limited_until, state.limit_hit, state.strikes = reset, over, 0
        return self._limited(reset, over, now_ms)

    @staticmethod
    def _limited(reset: int, over: RateLimit | None, now_ms: int) -> Rejection:
        assert over is not None
        msg = E.BINANCE_TOO_MANY_REQUESTS_WEIGHT % (over.limit, over.per)
        return Rejection(
            429, -1003, msg, E.binance_body(-1003, msg), _seconds_until(reset, now_ms), reset
        )

    def _charge_orders(self, account: str, orders: int, now_ms: int) -> Rejection | None:
        for lim in self._of("ORDERS"):
            if self._buckets[lim].used(account, now_ms) + orders > lim.limit:
                reset = self._buckets[lim].reset_at(now_ms)
                msg = E.BINANCE_TOO_MANY_ORDERS % (lim.limit, lim.per)
                return Rejection(
                    429,
                    -1015,
                    msg,
                    E.binance_body(-1015, msg),
                    _seconds_until(reset, now_ms),
                    reset,
                )
        for lim in self._of("ORDERS"):
            self._buckets[lim].add(account, orders, now_ms)
        return None

    def _ban(self, state: _IpState, now_ms: int) -> Rejection:
        if state.bans and now_ms - state.last_ban_end > self.ban_memory_ms:
            state.bans = 0
        step = self.ban_steps_s[min(state.bans, len(self.ban_steps_s) - 1)]
        state.bans += 1
        state.banned_until = state.last_ban_end = now_ms + step * 1000
        state.limited_until, state.strikes = 0, 0
        return self._banned(state, now_ms)

    def _banned(self, state: _IpState, now_ms: int) -> Rejection:
        msg = E.BINANCE_IP_BANNED % state.banned_until
        return Rejection(
            418,
            -1003,
            msg,
            E.binance_body(-1003, msg),
            _seconds_until(state.banned_until, now_ms),
            state.banned_until,
        )

    @staticmethod
    def _with_retry(
        headers: dict[str, str], rejection: Rejection | None
    ) -> tuple[dict[str, str], Rejection | None]:
        if rejection is not None and rejection.retry_after_s is not None:
            headers["Retry-After"] = str(rejection.retry_after_s)
        return headers, rejection


class WsConnectionLimits:
    """One Binance WebSocket connection: incoming-message rate and lifetime cap.

    `incoming()` for every frame the client sends (text, ping, pong); False means the limit
    is broken and the server closes with 1008. The window is rolling, the stricter reading
    of "5 messages per second": a client that passes here passes a fixed-second counter too.
    """

    def __init__(
        self,
        opened_ms: int,
        *,
        max_per_second: int = SPOT_WS_MESSAGES_PER_S,
        max_lifetime_ms: int = WS_MAX_LIFETIME_MS,
    ) -> None:
        self.opened_ms = opened_ms
        self.max_per_second = max_per_second
        self.max_lifetime_ms = max_lifetime_ms
        self._recent: deque[int] = deque()

    def incoming(self, now_ms: int) -> bool:
        while self._recent and self._recent[0] <= now_ms - SECOND_MS:
            self._recent.popleft()
        self._recent.append(now_ms)
        return len(self._recent) <= self.max_per_second

    @property
    def expires_at_ms(self) -> int:
        return self.opened_ms + self.max_lifetime_ms

    def expired(self, now_ms: int) -> bool:
        return now_ms >= self.expires_at_ms


# --------------------------------------------------------------------------- Bybit

# Default per-UID limits (requests/s) from the V5 rate-limit table, by (path, category);
# category None = the same for every category.
BYBIT_UID_LIMITS: dict[tuple[str, str | None], int] = {
    **{
        (p, c): n
        for p in ("/v5/order/create", "/v5/order/cancel")
        for c, n in (("linear", 10), ("inverse", 10), ("option", 10), ("spot", 20))
    },
    **{("/v5/order/amend", c): 10 for c in ("linear", "inverse", "option", "spot")},
    **{
        ("/v5/order/cancel-all", c): n
        for c, n in (("linear", 10), ("inverse", 10), ("option", 1), ("spot", 20))
    },
    **{
        (p, c): n
        for p in ("/v5/order/create-batch", "/v5/order/amend-batch", "/v5/order/cancel-batch")
        for c, n in (("linear", 10), ("inverse", 10), ("option", 10), ("spot", 20))
    },
    ("/v5/order/realtime", None): 50,
    ("/v5/order/history", None): 50,
    ("/v5/execution/list", None): 50,
    ("/v5/position/list", None): 50,
    ("/v5/position/set-leverage", None): 10,
    ("/v5/position/switch-mode", None): 10,
    ("/v5/account/wallet-balance", None): 50,
    ("/v5/account/fee-rate", None): 5,
}
# Private endpoints missing from the table: the docs give no number; 10/s is the lowest
# common trading limit, so a client that stays under it is safe either way.
BYBIT_DEFAULT_UID_LIMIT = 10
BYBIT_IP_LIMIT = 600
BYBIT_IP_WINDOW_MS = 5 * SECOND_MS
BYBIT_IP_BAN_MS = 10 * MINUTE_MS


class BybitCharge(NamedTuple):
    headers: dict[str, str]
    rejection: Rejection | None
    admitted: int  # units (orders of a batch) that fit; the rest of a batch fail


class _Rolling:
    """Units spent in a rolling window, one deque of (time, units) per key."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._log: dict[Any, deque[tuple[int, int]]] = {}

    def _live(self, key: Any, now_ms: int) -> deque[tuple[int, int]]:
        log = self._log.setdefault(key, deque())
        while log and log[0][0] <= now_ms - self.window_ms:
            log.popleft()
        return log

    def used(self, key: Any, now_ms: int) -> int:
        return sum(units for _, units in self._live(key, now_ms))

    def add(self, key: Any, units: int, now_ms: int) -> None:
        if units:
            self._live(key, now_ms).append((now_ms, units))

    def free_at(self, key: Any, needed: int, limit: int, now_ms: int) -> int:
        """When `needed` more units will fit."""
        log = self._live(key, now_ms)
        excess = sum(units for _, units in log) + needed - limit
        for t, units in log:
            excess -= units
            if excess <= 0:
                return t + self.window_ms
        return now_ms


class BybitLimiter:
    def __init__(
        self,
        uid_limits: Mapping[tuple[str, str | None], int] | None = None,
        *,
        default_uid_limit: int = BYBIT_DEFAULT_UID_LIMIT,
        ip_limit: int = BYBIT_IP_LIMIT,
        ip_window_ms: int = BYBIT_IP_WINDOW_MS,
        ip_ban_ms: int = BYBIT_IP_BAN_MS,
        uid_window_ms: int = SECOND_MS,
    ) -> None:
        self.uid_limits = dict(BYBIT_UID_LIMITS if uid_limits is None else uid_limits)
        self.default_uid_limit = default_uid_limit
        self.ip_limit = ip_limit
        self.ip_ban_ms = ip_ban_ms
        self._ip = _Rolling(ip_window_ms)
        self._uid = _Rolling(uid_window_ms)
        self._ip_banned_until: dict[str, int] = {}

    def limit_for(self, path: str, category: str | None) -> int:
        return self.uid_limits.get(
            (path, category), self.uid_limits.get((path, None), self.default_uid_limit)
        )

    def charge(
        self,
        ip: str,
        uid: str | None,
        path: str,
        now_ms: int,
        *,
        category: str | None = None,
        units: int = 1,
    ) -> BybitCharge:
        """Count one request. `uid` None = public endpoint (IP limit only, no headers).
        `units` = orders in a batch request (linear/spot/inverse count per order)."""
        ip_rejection = self.charge_ip(ip, now_ms)
        if ip_rejection is not None:
            return BybitCharge({}, ip_rejection, 0)
        if uid is None:
            return BybitCharge({}, None, units)
        limit = self.limit_for(path, category)
        key = (uid, path, category)
        room = max(0, limit - self._uid.used(key, now_ms))
        admitted = min(units, room)
        self._uid.add(key, admitted, now_ms)
        headers = {"X-Bapi-Limit": str(limit)}
        headers["X-Bapi-Limit-Status"] = str(room - admitted)
        if admitted < units:
            # The next unit frees when the oldest one in the window leaves it.
            reset = self._uid.free_at(key, 1, limit, now_ms)
            headers["X-Bapi-Limit-Reset-Timestamp"] = str(reset)
            if admitted == 0:
                body = E.bybit_body(10006, E.BYBIT_TOO_MANY_VISITS, now_ms)
                return BybitCharge(headers, Rejection(200, 10006, E.BYBIT_TOO_MANY_VISITS, body), 0)
            return BybitCharge(headers, None, admitted)
        headers["X-Bapi-Limit-Reset-Timestamp"] = str(now_ms)
        return BybitCharge(headers, None, admitted)

    def charge_ip(self, ip: str, now_ms: int) -> Rejection | None:
        banned_until = self._ip_banned_until.get(ip, 0)
        if banned_until > now_ms:
            return self._forbidden()
        self._ip.add(ip, 1, now_ms)
        if self._ip.used(ip, now_ms) > self.ip_limit:
            self._ip_banned_until[ip] = now_ms + self.ip_ban_ms
            return self._forbidden()
        return None

    def ip_banned_until(self, ip: str, now_ms: int) -> int | None:
        until = self._ip_banned_until.get(ip, 0)
        return until if until > now_ms else None

    @staticmethod
    def _forbidden() -> Rejection:
        return Rejection(
            403,
            0,
            E.BYBIT_IP_LIMITED_BODY.decode(),
            E.BYBIT_IP_LIMITED_BODY,
            content_type="text/plain",
        )
