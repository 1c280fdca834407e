"""Reconciliation after an outage: the missed fills exactly once, the REST picture as the end."""

from __future__ import annotations

from decimal import Decimal

from exconn.messages import BalanceUpdate, Fill, OrderUpdate
from exconn.model.enums import OrderStatus
from exconn.orders.read_model import ReadModel
from exconn.orders.reconcile import (
    FillQuery,
    RestPicture,
    fill_queries,
    orders_to_query,
    reconcile,
)
from tests.unit.test_read_model import SYM, at, bal, fill, place, pos, upd

S = OrderStatus
D = Decimal


def _before_outage() -> ReadModel:
    m = ReadModel("binance")
    m.apply_order_update(upd(S.NEW, "0", 0))
    m.apply_order_update(upd(S.PARTIALLY_FILLED, "1", 10))
    m.apply_fill(fill(500, 10))
    m.apply_order_update(upd(S.NEW, "0", 0, client_order_id="c-2", exchange_order_id="102"))
    m.apply_balance(bal("1000", 10))
    m.apply_balance(bal("5", 10, asset="BNB"))
    m.apply_position(pos("1", 10))
    return m


def test_outage_emits_the_missed_fills_once_and_ends_at_the_rest_picture() -> None:
    m = _before_outage()
    # the stream is down; the venue meanwhile: order 101 filled (fills 501, 502), 102 still
    # open, USDT spent, BNB gone, the position closed.
    assert fill_queries(m) == [FillQuery("spot", SYM, 501, at(10))]
    open_102 = upd(S.NEW, "0", 0, client_order_id="c-2", exchange_order_id="102")
    to_query = orders_to_query(m, [open_102], [("spot", None)])
    assert [(r.client_order_id, r.status) for r in to_query] == [("c-1", S.PARTIALLY_FILLED)]

    filled_101 = upd(S.FILLED, "3", 30, client_order_id=None)  # GET order row
    rest_fills = (fill(500, 10, client_order_id=None), fill(501, 20), fill(502, 30))
    picture = RestPicture(
        as_of=at(40),
        open_orders=(open_102,),
        open_orders_scope=(("spot", None),),
        orders=(filled_101,),
        fills=rest_fills,
        balances=(bal("940", 35),),
        balance_markets=("spot",),
        positions=(),
        position_scope=(("linear", None),),
    )
    events, report = reconcile(m, picture)

    missed = [e for e in events if isinstance(e, Fill)]
    assert [f.trade_id for f in missed] == ["501", "502"]
    orders = [e for e in events if isinstance(e, OrderUpdate)]
    assert [(o.exchange_order_id, o.status) for o in orders] == [("101", S.FILLED)]
    assert orders[0].client_order_id == "c-1"  # enriched from what the stream said
    assert report.missed_fills == 2 and report.orders_changed == 1
    assert report.fills_checked == 3 and report.open_orders_checked == 1
    assert report.unresolved == ()
    assert report.zeroed == (("spot", "BNB"),)
    assert report.flattened == (("linear", "BTC/USDT", "both"),)
    assert report.changed

    # the end state is the REST picture
    assert m.order("spot", "c-1").status is S.FILLED  # type: ignore[union-attr]
    assert m.order("spot", "c-1").filled_qty == D("3")  # type: ignore[union-attr]
    assert [o.exchange_order_id for o in m.open_orders()] == ["102"]
    assert sorted(f.trade_id for f in m.fills()) == ["500", "501", "502"]
    assert m.balance("spot", "USDT").total == D("940")  # type: ignore[union-attr]
    assert m.balance("spot", "BNB").total == 0  # type: ignore[union-attr]
    assert m.position("linear", "BTC/USDT").qty == 0  # type: ignore[union-attr]
    assert fill_queries(m)[0].from_id == 503

    # the same picture again (a second reconnect): nothing new
    again, report2 = reconcile(m, picture)
    assert again == [] and not report2.changed and report2.missed_fills == 0


def test_vanished_order_is_reported_not_guessed() -> None:
    m = _before_outage()
    _events, report = reconcile(
        m, RestPicture(as_of=at(40), open_orders=(), open_orders_scope=(("spot", SYM),))
    )
    assert sorted(r.exchange_order_id for r in report.unresolved) == ["101", "102"]
    assert {o.status for o in m.open_orders()} == {S.NEW, S.PARTIALLY_FILLED}


def test_unknown_orders_are_queried_and_resolved() -> None:
    m = ReadModel("binance")
    m.record_submitted(place(), "c-1", at(0))
    m.mark("spot", "c-1", S.UNKNOWN)
    m.record_submitted(place(), "c-2", at(0))
    m.mark("spot", "c-2", S.UNKNOWN)
    refs = orders_to_query(m, [], [])
    assert sorted(r.client_order_id or "" for r in refs) == ["c-1", "c-2"]

    picture = RestPicture(
        as_of=at(50),
        orders=(upd(S.NEW, "0", 5),),  # c-1 reached the venue
        not_found=(("spot", "c-2"),),  # c-2 never did
    )
    events, report = reconcile(m, picture)
    assert [(e.client_order_id, e.status) for e in events] == [  # type: ignore[union-attr]
        ("c-1", S.NEW),
        ("c-2", S.REJECTED),
    ]
    assert report.resolved == ("c-1", "c-2") and report.unresolved == ()


def test_rest_older_than_the_stream_is_ignored() -> None:
    m = _before_outage()
    m.apply_order_update(upd(S.FILLED, "3", 30))  # the resumed stream was faster
    stale = upd(S.PARTIALLY_FILLED, "2", 20)
    events, report = reconcile(m, RestPicture(as_of=at(25), orders=(stale,)))
    assert events == [] and report.ignored == 1
    assert m.order("spot", "c-1").status is S.FILLED  # type: ignore[union-attr]


def test_delta_only_balance_is_not_a_snapshot() -> None:
    m = _before_outage()
    delta = BalanceUpdate(exchange="binance", market="spot", asset="USDT", ts=at(50), delta=D(1))
    events, _ = reconcile(m, RestPicture(as_of=at(50), balances=(delta,)))
    assert events == [delta]
    assert m.balance("spot", "USDT").total == D("1000")  # type: ignore[union-attr]
