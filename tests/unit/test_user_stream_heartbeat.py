"""The private stream's heartbeat watchdog (exconn.transport.heartbeat), with a fake clock."""

from __future__ import annotations

import pytest

from exconn.config import WsSettings
from exconn.errors import ConfigError
from exconn.transport.heartbeat import Beat, Heartbeat


def test_a_quiet_socket_that_answers_every_heartbeat_lives_for_hours() -> None:
    hb = Heartbeat(20.0, 30.0, now=0.0)
    pings = 0
    now = 0.0
    for _ in range(10_000):  # bounded: ~55 hours of 20 s steps
        now += hb.next_check(now)
        beat = hb.check(now)
        assert beat is not Beat.DEAD
        if beat is Beat.PING:
            pings += 1
            hb.heard(now + 0.05)  # the pong, 50 ms later; no data at all in between
    assert pings >= 9_000


def test_nothing_heard_for_the_timeout_is_dead_even_though_pings_went_out() -> None:
    hb = Heartbeat(20.0, 30.0, now=0.0)
    assert hb.next_check(0.0) == 20.0
    assert hb.check(20.0) is Beat.PING  # sent, never answered (a stalled path)
    assert hb.next_check(20.0) == 10.0  # the silence runs out before the next ping is due
    assert hb.check(29.999) is Beat.WAIT
    assert hb.check(30.0) is Beat.DEAD
    assert hb.silent_for(30.0) == 30.0


def test_any_frame_counts_as_an_answer_and_pushes_the_deadline() -> None:
    hb = Heartbeat(20.0, 30.0, now=0.0)
    hb.heard(25.0)  # an event, not a pong
    assert hb.check(30.0) is Beat.PING  # the ping is due at 20 s whatever arrived
    assert hb.check(49.0) is Beat.WAIT
    assert hb.check(55.0) is Beat.DEAD  # 30 s after the event, whatever else is due
    hb.heard(10.0)  # a late report of an older frame never moves the deadline back
    assert hb.last_heard == 25.0


def test_a_ping_is_due_once_per_interval() -> None:
    hb = Heartbeat(1.0, 3.0, now=100.0)
    assert hb.check(100.5) is Beat.WAIT
    assert hb.check(101.0) is Beat.PING
    assert hb.check(101.2) is Beat.WAIT  # taken as sent: not again at once
    assert hb.next_check(101.2) == pytest.approx(0.8)
    hb.heard(101.3)
    assert hb.check(102.0) is Beat.PING


def test_the_timeout_must_leave_room_for_an_answer() -> None:
    with pytest.raises(ValueError):
        Heartbeat(20.0, 20.0, now=0.0)
    with pytest.raises(ValueError):
        Heartbeat(0.0, 5.0, now=0.0)
    with pytest.raises(ConfigError):
        WsSettings(private_heartbeat_s=30.0, private_silence_s=30.0)
    defaults = WsSettings()
    assert defaults.private_heartbeat_s < defaults.private_silence_s
