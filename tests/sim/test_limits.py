"""exconn.sim.limits: counters, headers, bucket resets, 429 -> 418 escalation, WebSocket
message and lifetime limits, Bybit per-UID and per-IP limits. Time is injected throughout."""

from __future__ import annotations

import json

import pytest

from exconn.sim import errors as E
from exconn.sim.limits import (
    BAN_STEPS_S,
    DAY_MS,
    MINUTE_MS,
    USDM_LIMITS,
    BinanceLimiter,
    BybitLimiter,
    RateLimit,
    Rejection,
    WsConnectionLimits,
)

T0 = 1_700_000_040_000  # 1_700_000_040_000 % 60_000 == 0: the start of a minute
IP = "127.0.0.1"
ACCOUNT = "acct-1"

assert T0 % MINUTE_MS == 0


def small(weight: int = 10, orders_10s: int = 3, orders_day: int = 100) -> BinanceLimiter:
    return BinanceLimiter(
        (
            RateLimit("REQUEST_WEIGHT", "MINUTE", 1, weight),
            RateLimit("ORDERS", "SECOND", 10, orders_10s),
            RateLimit("ORDERS", "DAY", 1, orders_day),
        )
    )


def rejected(result: tuple[dict[str, str], Rejection | None]) -> Rejection:
    assert result[1] is not None, result
    return result[1]


# --------------------------------------------------------------------------- Binance weight


def test_weight_header_counts_across_requests_and_ips() -> None:
    lim = BinanceLimiter()
    assert lim.charge(IP, None, 5, False, T0) == ({"X-MBX-USED-WEIGHT-1M": "5"}, None)
    assert lim.charge(IP, None, 20, False, T0 + 1)[0] == {"X-MBX-USED-WEIGHT-1M": "25"}
    assert lim.charge("10.0.0.2", None, 1, False, T0 + 2)[0] == {"X-MBX-USED-WEIGHT-1M": "1"}
    assert lim.headers(IP, None, T0 + 3) == {"X-MBX-USED-WEIGHT-1M": "25"}


def test_weight_bucket_resets_at_the_minute_boundary() -> None:
    lim = BinanceLimiter()
    lim.charge(IP, None, 7, False, T0 + 59_999)
    assert lim.headers(IP, None, T0 + 59_999)["X-MBX-USED-WEIGHT-1M"] == "7"
    assert lim.headers(IP, None, T0 + 60_000)["X-MBX-USED-WEIGHT-1M"] == "0"
    assert lim.charge(IP, None, 2, False, T0 + 60_000)[0]["X-MBX-USED-WEIGHT-1M"] == "2"


def test_429_at_the_limit_with_retry_after_to_the_minute_end() -> None:
    lim = small()
    assert lim.charge(IP, None, 6, False, T0 + 10_000)[1] is None
    assert lim.charge(IP, None, 4, False, T0 + 10_000)[1] is None  # exactly the limit: fine
    headers, r = lim.charge(IP, None, 1, False, T0 + 15_500)
    assert r is not None and (r.http_status, r.code) == (429, -1003)
    assert r.msg == E.BINANCE_TOO_MANY_REQUESTS_WEIGHT % (10, "1 MINUTE")
    assert json.loads(r.body) == {"code": -1003, "msg": r.msg}
    assert r.retry_after_s == 45  # ceil(44.5 s) until :00
    assert r.retry_after_ms == T0 + MINUTE_MS
    # The refused request's weight still counts, as on Binance.
    assert headers == {"X-MBX-USED-WEIGHT-1M": "11", "Retry-After": "45"}


@pytest.mark.parametrize(("at", "retry"), [(59_000, 1), (59_001, 1), (58_999, 2), (1, 60)])
def test_retry_after_rounds_up(at: int, retry: int) -> None:
    lim = small(weight=1)
    lim.charge(IP, None, 1, False, T0 + at)
    assert rejected(lim.charge(IP, None, 1, False, T0 + at)).retry_after_s == retry


def test_continuing_after_429_gets_a_418_ban() -> None:
    lim = small(weight=1)
    lim.charge(IP, None, 1, False, T0)
    assert rejected(lim.charge(IP, None, 1, False, T0 + 1000)).http_status == 429
    headers, r = lim.charge(IP, None, 1, False, T0 + 2000)
    assert r is not None and (r.http_status, r.code) == (418, -1003)
    until = T0 + 2000 + 120_000
    assert r.msg == E.BINANCE_IP_BANNED % until
    assert r.retry_after_s == 120 and r.retry_after_ms == until
    assert headers["Retry-After"] == "120"
    assert lim.banned_until(IP, T0 + 2000) == until
    # During the ban: 418 counting down, nothing added to the weight, ban not extended.
    r2 = rejected(lim.charge(IP, None, 1, False, T0 + 62_000))
    assert (r2.http_status, r2.retry_after_s) == (418, 60)
    assert lim.headers(IP, None, T0 + 62_000)["X-MBX-USED-WEIGHT-1M"] == "0"
    assert lim.charge(IP, None, 1, False, until)[1] is None
    assert lim.banned_until(IP, until) is None


def test_bans_escalate_from_2_minutes_to_3_days_and_stay_there() -> None:
    lim = small(weight=1)
    now = T0
    seen = []
    for _ in range(len(BAN_STEPS_S) + 2):
        now = (now // MINUTE_MS + 1) * MINUTE_MS  # a fresh minute
        lim.charge(IP, None, 1, False, now)
        assert rejected(lim.charge(IP, None, 1, False, now)).http_status == 429
        ban = rejected(lim.charge(IP, None, 1, False, now))
        seen.append(ban.retry_after_s)
        assert ban.retry_after_ms is not None
        now = ban.retry_after_ms
    assert seen[0] == 120 and seen[-1] == seen[-2] == 3 * 24 * 3600
    assert seen == [*BAN_STEPS_S, BAN_STEPS_S[-1], BAN_STEPS_S[-1]]


def test_ban_history_is_forgotten_after_a_clean_day() -> None:
    lim = small(weight=1)

    def offend(now: int) -> int:
        lim.charge(IP, None, 1, False, now)
        lim.charge(IP, None, 1, False, now)
        r = rejected(lim.charge(IP, None, 1, False, now))
        assert r.retry_after_s is not None
        return r.retry_after_s

    assert offend(T0) == 120
    assert offend(T0 + 10 * MINUTE_MS) == 600
    assert offend(T0 + 10 * MINUTE_MS + 600_000 + DAY_MS + MINUTE_MS) == 120


def test_requests_before_ban_is_a_setting() -> None:
    lim = BinanceLimiter((RateLimit("REQUEST_WEIGHT", "MINUTE", 1, 1),), requests_before_ban=3)
    lim.charge(IP, None, 1, False, T0)
    statuses = [rejected(lim.charge(IP, None, 1, False, T0 + i)).http_status for i in range(4)]
    assert statuses == [429, 429, 429, 418]


def test_raw_requests_limit() -> None:
    lim = BinanceLimiter((RateLimit("RAW_REQUESTS", "MINUTE", 5, 3),))
    start = (T0 // (5 * MINUTE_MS) + 1) * 5 * MINUTE_MS  # buckets align to 5-minute marks
    for i in range(3):
        assert lim.charge(IP, None, 0, False, start + i)[1] is None
    r = rejected(lim.charge(IP, None, 0, False, start + 3))
    assert (r.http_status, r.code) == (429, -1003) and "per 5 MINUTE" in r.msg
    assert r.retry_after_s == 300 and r.retry_after_ms == start + 5 * MINUTE_MS


# --------------------------------------------------------------------------- Binance orders


def test_order_count_headers_and_10s_reset() -> None:
    lim = small(orders_10s=3)
    for n in (1, 2, 3):
        headers, r = lim.charge(IP, ACCOUNT, 1, True, T0 + 100 * n)
        assert r is None
        assert headers == {
            "X-MBX-USED-WEIGHT-1M": str(n),
            "X-MBX-ORDER-COUNT-10S": str(n),
            "X-MBX-ORDER-COUNT-1D": str(n),
        }
    headers, r = lim.charge(IP, ACCOUNT, 1, True, T0 + 9_999)
    assert r is not None and (r.http_status, r.code) == (429, -1015)
    assert r.msg == "Too many new orders; current limit is 3 orders per 10 SECOND."
    assert r.retry_after_s == 1 and headers["Retry-After"] == "1"
    assert "X-MBX-ORDER-COUNT-10S" not in headers  # not sent on a rejection
    # Order limits are per account and never lead to an IP ban.
    assert lim.charge(IP, None, 1, False, T0 + 9_999)[1] is None
    assert lim.charge(IP, "acct-2", 1, True, T0 + 9_999)[1] is None
    headers, r = lim.charge(IP, ACCOUNT, 1, True, T0 + 10_000)
    assert r is None and headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert headers["X-MBX-ORDER-COUNT-1D"] == "4"


def test_daily_order_limit_resets_at_utc_midnight() -> None:
    lim = small(orders_10s=100, orders_day=2)
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    lim.charge(IP, ACCOUNT, 0, True, midnight - 20_000)
    lim.charge(IP, ACCOUNT, 0, True, midnight - 15_000)
    r = rejected(lim.charge(IP, ACCOUNT, 0, True, midnight - 1000))
    assert r.msg.endswith("per 1 DAY.") and r.retry_after_ms == midnight
    assert lim.charge(IP, ACCOUNT, 0, True, midnight)[1] is None


def test_usdm_headers_and_batch_orders() -> None:
    lim = BinanceLimiter(USDM_LIMITS)
    headers, r = lim.charge(IP, ACCOUNT, 0, True, T0, orders=5)
    assert r is None
    assert headers == {
        "X-MBX-USED-WEIGHT-1M": "0",
        "X-MBX-ORDER-COUNT-10S": "5",
        "X-MBX-ORDER-COUNT-1M": "5",
    }


def test_weight_added_after_the_fact_and_ws_api_rate_limits() -> None:
    lim = BinanceLimiter()
    lim.charge(IP, ACCOUNT, 0, True, T0)
    lim.add_weight(IP, 1, T0)  # the order failed: spot charges its weight after all
    assert lim.rate_limits(IP, ACCOUNT, T0) == [
        {
            "rateLimitType": "REQUEST_WEIGHT",
            "interval": "MINUTE",
            "intervalNum": 1,
            "limit": 6000,
            "count": 1,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "SECOND",
            "intervalNum": 10,
            "limit": 50,
            "count": 1,
        },
        {
            "rateLimitType": "ORDERS",
            "interval": "DAY",
            "intervalNum": 1,
            "limit": 160000,
            "count": 1,
        },
        {
            "rateLimitType": "RAW_REQUESTS",
            "interval": "MINUTE",
            "intervalNum": 5,
            "limit": 300000,
            "count": 1,
        },
    ]
    assert [x["rateLimitType"] for x in lim.rate_limits(IP, None, T0)] == [
        "REQUEST_WEIGHT",
        "RAW_REQUESTS",
    ]


def test_ws_api_ban_response_matches_the_documented_example() -> None:
    lim = small(weight=1)
    lim.charge(IP, None, 1, False, T0)
    lim.charge(IP, None, 1, False, T0)
    ban = rejected(lim.charge(IP, None, 1, False, T0 + 5))
    response = ban.ws_response("fc93", T0 + 5)
    assert response == {
        "id": "fc93",
        "status": 418,
        "error": {
            "code": -1003,
            "msg": ban.msg,
            "data": {"serverTime": T0 + 5, "retryAfter": T0 + 5 + 120_000},
        },
    }


# --------------------------------------------------------------------------- WebSocket


def test_ws_five_messages_per_rolling_second_then_1008() -> None:
    conn = WsConnectionLimits(T0)
    assert all(conn.incoming(T0 + i * 200) for i in range(5))  # 0, 200, …, 800
    assert conn.incoming(T0 + 1000)  # the message at T0 has just left the window
    assert not conn.incoming(T0 + 1100)  # 200..1100 holds six


def test_ws_burst_and_usdm_limit() -> None:
    spot = WsConnectionLimits(T0)
    assert [spot.incoming(T0) for _ in range(6)] == [True] * 5 + [False]
    usdm = WsConnectionLimits(T0, max_per_second=10)
    assert [usdm.incoming(T0 + 5) for _ in range(11)] == [True] * 10 + [False]


def test_ws_connection_lifetime_cap_is_a_setting() -> None:
    conn = WsConnectionLimits(T0)
    assert conn.expires_at_ms == T0 + DAY_MS
    assert not conn.expired(T0 + DAY_MS - 1) and conn.expired(T0 + DAY_MS)
    short = WsConnectionLimits(T0, max_lifetime_ms=500)
    assert not short.expired(T0 + 499) and short.expired(T0 + 500)


# --------------------------------------------------------------------------- Bybit


def test_bybit_headers_count_down_then_10006() -> None:
    lim = BybitLimiter()
    for i in range(10):
        headers, r, admitted = lim.charge(IP, "uid", "/v5/order/create", T0 + i, category="linear")
        assert r is None and admitted == 1
        assert headers == {
            "X-Bapi-Limit": "10",
            "X-Bapi-Limit-Status": str(9 - i),
            "X-Bapi-Limit-Reset-Timestamp": str(T0 + i),
        }
    headers, r, admitted = lim.charge(IP, "uid", "/v5/order/create", T0 + 500, category="linear")
    assert r is not None and admitted == 0
    assert (r.http_status, r.code, r.msg) == (200, 10006, "Too many visits!")
    body = json.loads(r.body)
    assert body == {
        "retCode": 10006,
        "retMsg": "Too many visits!",
        "result": {},
        "retExtInfo": {},
        "time": T0 + 500,
    }
    assert headers == {
        "X-Bapi-Limit": "10",
        "X-Bapi-Limit-Status": "0",
        "X-Bapi-Limit-Reset-Timestamp": str(T0 + 1000),
    }
    # Rolling window: the first request leaves it exactly 1000 ms later.
    assert lim.charge(IP, "uid", "/v5/order/create", T0 + 999, category="linear")[1]
    assert lim.charge(IP, "uid", "/v5/order/create", T0 + 1000, category="linear")[1] is None


def test_bybit_limits_are_per_uid_endpoint_and_category() -> None:
    lim = BybitLimiter()
    for _ in range(10):
        lim.charge(IP, "uid", "/v5/order/create", T0, category="linear")
    assert lim.charge(IP, "uid", "/v5/order/create", T0, category="linear")[1]
    assert lim.charge(IP, "uid2", "/v5/order/create", T0, category="linear")[1] is None
    assert lim.charge(IP, "uid", "/v5/order/cancel", T0, category="linear")[1] is None
    spot = lim.charge(IP, "uid", "/v5/order/create", T0, category="spot")
    assert spot.rejection is None and spot.headers["X-Bapi-Limit"] == "20"
    assert lim.limit_for("/v5/order/cancel-all", "option") == 1
    assert lim.limit_for("/v5/account/fee-rate", "linear") == 5
    assert lim.limit_for("/v5/account/info", None) == 10  # unlisted: the default


def test_bybit_batch_beyond_the_limit_admits_part() -> None:
    lim = BybitLimiter()
    path = "/v5/order/create-batch"
    assert lim.charge(IP, "uid", path, T0, category="linear", units=7).admitted == 7
    headers, r, admitted = lim.charge(IP, "uid", path, T0 + 10, category="linear", units=7)
    assert r is None and admitted == 3
    assert headers["X-Bapi-Limit-Status"] == "0"
    assert headers["X-Bapi-Limit-Reset-Timestamp"] == str(T0 + 1000)


def test_bybit_public_requests_only_count_for_the_ip() -> None:
    lim = BybitLimiter()
    assert lim.charge(IP, None, "/v5/market/time", T0) == ({}, None, 1)


def test_bybit_ip_limit_403_for_10_minutes() -> None:
    lim = BybitLimiter()
    for i in range(600):
        assert lim.charge_ip(IP, T0 + i) is None
    r = lim.charge_ip(IP, T0 + 4999)
    assert r is not None and r.http_status == 403 and r.body == b"access too frequent"
    assert lim.ip_banned_until(IP, T0 + 4999) == T0 + 4999 + 600_000
    # Everything from that IP is refused for the whole ban, even with a quiet window.
    assert lim.charge(IP, "uid", "/v5/order/realtime", T0 + 60_000).rejection == r
    assert lim.charge_ip("10.9.9.9", T0 + 60_000) is None
    assert lim.charge_ip(IP, T0 + 4999 + 600_000) is None


def test_bybit_ip_window_is_rolling() -> None:
    lim = BybitLimiter(ip_limit=3, ip_window_ms=5000)
    for t in (0, 1000, 2000):
        assert lim.charge_ip(IP, T0 + t) is None
    assert lim.charge_ip(IP, T0 + 5000) is None  # the request at T0 has left the window
    assert lim.charge_ip(IP, T0 + 5001) is not None


def test_the_new_modules_import_nothing_from_the_client_side() -> None:
    import ast
    from pathlib import Path

    import exconn.sim

    forbidden = (
        "exconn.venues",
        "exconn.transport",
        "exconn.actors",
        "exconn.model",
        "exconn.book",
    )
    root = Path(exconn.sim.__file__).parent
    for name in ("auth.py", "limits.py", "errors.py"):
        for node in ast.walk(ast.parse((root / name).read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                assert not module.startswith(forbidden), f"{name} imports {module}"
