"""The two venue folders expose the same driver interface (issue 5): the actors drive either
venue through ``exconn.venues.driver`` and never import a venue package."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import msgspec
import pytest

import exconn.venues as venues_pkg
from exconn.model.enums import Market
from exconn.venues.driver import VenueDriver, driver_for

VENUES = ("binance", "bybit")
ROOT = Path(venues_pkg.__file__).parent
ACTORS = Path(venues_pkg.__file__).parent.parent / "actors"


def _interface() -> dict[str, Any]:
    members = {
        name: getattr(VenueDriver, name)
        for name in dir(VenueDriver)
        if not name.startswith("_") and callable(getattr(VenueDriver, name))
    }
    assert members, "VenueDriver declares no methods"
    return members


def test_both_venue_folders_carry_the_same_files() -> None:
    files = {v: sorted(p.name for p in (ROOT / v).glob("*.py")) for v in VENUES}
    assert files["binance"] == files["bybit"]
    assert "driver.py" in files["binance"]


@pytest.mark.parametrize("exchange", VENUES)
def test_driver_implements_every_method_with_the_same_signature(exchange: str) -> None:
    driver = driver_for(exchange)
    assert driver.exchange == exchange
    for name, declared in _interface().items():
        impl = getattr(driver, name, None)
        assert callable(impl), f"{exchange} driver lacks {name}"
        want = list(inspect.signature(declared).parameters)[1:]  # drop self
        got = list(inspect.signature(impl).parameters)
        assert got == want, f"{exchange}.{name}{got} != VenueDriver.{name}{want}"
    for attr in ("ping_interval_s", "streams_in_url"):
        assert hasattr(driver, attr), f"{exchange} driver lacks {attr}"


@pytest.mark.parametrize("exchange", VENUES)
def test_stream_handlers_share_the_surface_the_connection_actor_uses(exchange: str) -> None:
    handler = driver_for(exchange).stream_handler(Market.SPOT, [])
    for name in (
        "set_route",
        "on_frames",
        "begin_candidate",
        "drop_candidate",
        "ready_to_promote",
        "promote",
        "on_disconnect",
        "held_symbols",
        "expire_held",
        "symbols_needing_snapshot",
        "on_snapshot",
        "backfills",
        "on_backfill",
        "control_frames",
    ):
        assert callable(getattr(handler, name, None)), f"{exchange} handler lacks {name}"
    for counter in ("malformed", "resyncs", "streams"):
        assert hasattr(handler, counter), f"{exchange} handler lacks {counter}"


@pytest.mark.parametrize("exchange", VENUES)
def test_control_frames_take_one_neutral_action_name(exchange: str) -> None:
    driver = driver_for(exchange)
    handler = driver.stream_handler(Market.SPOT, [])
    stream = driver.stream_for("trades", "BTCUSDT", Market.SPOT)
    for action in ("subscribe", "unsubscribe"):
        frames = driver.control_frames(handler, action, [stream], 7)
        assert len(frames) == 1
        body = msgspec.json.decode(frames[0])
        assert stream in str(body) and action in str(body).lower()


def test_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="no driver"):
        driver_for("kraken")


def test_actors_import_no_venue_package() -> None:
    """Venue knowledge reaches the actors only through the driver."""
    offenders = [
        p.name
        for p in ACTORS.glob("*.py")
        if "exconn.venues.binance" in p.read_text() or "exconn.venues.bybit" in p.read_text()
    ]
    assert offenders == []


def test_bybit_catalog_follows_pages() -> None:
    """Linear lists more symbols than one page holds: every page is read, bounded."""
    pages = [
        b'{"retCode":0,"retMsg":"OK","result":{"category":"linear","nextPageCursor":"p2","list":[%s]},"time":1}',
        b'{"retCode":0,"retMsg":"OK","result":{"category":"linear","nextPageCursor":"","list":[%s]},"time":1}',
    ]
    inst = (
        b'{"symbol":"%s","contractType":"LinearPerpetual","status":"Trading","baseCoin":"%s",'
        b'"quoteCoin":"USDT","settleCoin":"USDT","priceFilter":{"tickSize":"0.10"},'
        b'"lotSizeFilter":{"qtyStep":"0.001","minOrderQty":"0.001","maxOrderQty":"100",'
        b'"minNotionalValue":"5"}}'
    )
    bodies = [pages[0] % (inst % (b"BTCUSDT", b"BTC")), pages[1] % (inst % (b"ETHUSDT", b"ETH"))]
    cursors: list[str | None] = []

    def get(path: str, params: dict[str, str], decoder: Any) -> Any:
        cursors.append(params.get("cursor"))
        return decoder.decode(bodies[len(cursors) - 1])

    catalog = driver_for("bybit").load_catalog(Market.LINEAR, get)
    assert [i.symbol for i in catalog.instruments] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert cursors == [None, "p2"]
