"""The durable order-path journal: records survive a reload, a torn or corrupt line never
crashes the reader, the file stays bounded, and an intent journal read back refuses what
the one before the restart refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from exconn.config import SEAL_KEY_ENV
from exconn.errors import InvalidOrder, OutcomeUnknown
from exconn.messages import Fill, OrderAccepted, OrderOutcomeUnknown, PlaceOrder
from exconn.model.enums import Market, OrderSide, OrderType
from exconn.orders.command import Intent, IntentJournal, IntentState
from exconn.orders.journal_store import (
    IntentRecord,
    JournalStore,
    fills_to_keep,
    intents_to_keep,
    store_dir,
)
from exconn.orders.read_model import ReadModel

D = Decimal
T0 = datetime(2024, 8, 8, 12, 0, tzinfo=UTC)


def fill(trade_id: int, ms: int = 0, symbol: str = "BTC/USDT") -> Fill:
    return Fill(
        exchange="binance",
        market="spot",
        symbol=symbol,
        trade_id=str(trade_id),
        exchange_order_id="101",
        client_order_id="c-1",
        side=OrderSide.BUY,
        price=D("60000.10"),
        qty=D("0.001"),
        fee=D("0.0000001"),
        fee_asset="BTC",
        is_maker=False,
        ts=T0 + timedelta(milliseconds=ms),
    )


def order(cid: str = "c-1") -> PlaceOrder:
    return PlaceOrder(
        "binance", Market.SPOT, "BTC/USDT", OrderSide.BUY, OrderType.LIMIT,
        D("0.010"), D("60000.00"), client_order_id=cid,
    )  # fmt: skip


def intent(cid: str, state: str, sent_at: float | None = 1.0) -> IntentRecord:
    return IntentRecord(order=order(cid), state=state, attempts=1, sent_at=sent_at)


def test_records_survive_a_reload_exactly(tmp_path: Path) -> None:
    path = tmp_path / "fills.jsonl"
    store: JournalStore[Fill] = JournalStore(path, Fill)
    assert store.load() == []
    store.append(fill(1))
    store.append_many([fill(2, 5), fill(3, 9)])
    store.close()
    again: JournalStore[Fill] = JournalStore(path, Fill)
    got = again.load()
    assert got == [fill(1), fill(2, 5), fill(3, 9)]
    assert isinstance(got[0].price, Decimal) and got[0].ts.tzinfo is not None
    assert (again.count, again.torn, again.bad) == (3, 0, 0)


def test_a_torn_last_line_is_cut_off_and_the_next_append_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "fills.jsonl"
    store: JournalStore[Fill] = JournalStore(path, Fill)
    store.load()
    store.append_many([fill(1), fill(2)])
    store.close()
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines()[0][:37])  # killed in the middle of a line

    again: JournalStore[Fill] = JournalStore(path, Fill)
    assert again.load() == [fill(1), fill(2)]
    assert again.torn == 1 and again.bad == 0
    assert path.read_bytes() == whole
    again.append(fill(3))
    again.close()
    assert JournalStore(path, Fill).load() == [fill(1), fill(2), fill(3)]


def test_undecodable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "fills.jsonl"
    store: JournalStore[Fill] = JournalStore(path, Fill)
    store.load()
    store.append(fill(1))
    store.close()
    with path.open("ab") as f:
        f.write(b'not json at all\n{"type": "Fill", "qty": 1}\n\n')
    again: JournalStore[Fill] = JournalStore(path, Fill)
    again.load()
    again.append(fill(2))
    again.close()
    third: JournalStore[Fill] = JournalStore(path, Fill)
    assert third.load() == [fill(1), fill(2)]
    assert third.bad == 2 and third.torn == 0


def test_a_store_that_cannot_write_keeps_going(tmp_path: Path) -> None:
    store: JournalStore[Fill] = JournalStore(tmp_path / "missing" / "fills.jsonl", Fill)
    assert store.load() == []
    store.append(fill(1))  # no exception: the owner keeps its state in memory
    assert store.write_failed and store.count == 0


def test_compaction_bounds_the_file_to_what_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "fills.jsonl"
    store: JournalStore[Fill] = JournalStore(path, Fill, max_records=10)
    store.load()
    written = [fill(i, i) for i in range(11)]
    for f in written:
        store.append(f)
    assert store.needs_compaction
    store.compact(fills_to_keep(written, per_instrument=4))
    assert not store.needs_compaction and store.count == 4
    store.append(fill(11, 11))
    store.close()
    assert [f.trade_id for f in JournalStore(path, Fill).load()] == ["7", "8", "9", "10", "11"]
    assert not path.with_name(path.name + ".tmp").exists()


def test_fills_to_keep_keeps_the_newest_of_every_instrument() -> None:
    fills = [fill(i, i) for i in (5, 1, 3, 2, 4)] + [fill(100, 0, symbol="ETH/USDT")]
    kept = fills_to_keep(fills, per_instrument=2)
    assert {(f.symbol, f.trade_id) for f in kept} == {
        ("BTC/USDT", "4"),
        ("BTC/USDT", "5"),
        ("ETH/USDT", "100"),
    }


def test_restored_fills_continue_the_cursor_and_are_not_published_again(tmp_path: Path) -> None:
    path = tmp_path / "fills.jsonl"
    store: JournalStore[Fill] = JournalStore(path, Fill)
    store.load()
    first = ReadModel("binance")
    for f in (fill(1), fill(2, 5)):
        store.append_many(e for e in first.apply_fill(f) if isinstance(e, Fill))
    store.close()

    restarted = ReadModel("binance")
    for f in JournalStore(path, Fill).load():
        restarted.apply_fill(f)
    cursor = restarted.fill_cursor("spot", "BTC/USDT")
    assert cursor is not None and cursor.trade_id == "2"
    assert restarted.apply_fill(fill(2, 5)) == []
    assert restarted.apply_fill(fill(3, 9)) == [fill(3, 9)]


def test_intents_to_keep_keeps_the_last_state_every_unresolved_and_the_newest_decided() -> None:
    records = [
        intent("a", "in_flight"),
        intent("a", "unknown"),
        intent("b", "in_flight"),
        intent("b", "accepted"),
        intent("c", "in_flight"),
        intent("c", "rejected"),
        intent("d", "in_flight"),
    ]
    kept = intents_to_keep(records, decided=1)
    assert [(r.order.client_order_id, r.state) for r in kept] == [
        ("a", "unknown"),
        ("c", "rejected"),
        ("d", "in_flight"),
    ]
    assert len(intents_to_keep(records, decided=0)) == 2


def test_store_dir_is_per_system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert store_dir(None) is None
    monkeypatch.setenv(SEAL_KEY_ENV, "key-of-system-one")
    one = store_dir(str(tmp_path))
    assert one is not None and one.is_dir() and one.parent == tmp_path
    assert "key-of-system-one" not in str(one)
    assert store_dir(str(tmp_path)) == one  # a restarted actor of the same system
    monkeypatch.setenv(SEAL_KEY_ENV, "key-of-system-two")
    assert store_dir(str(tmp_path)) != one


def _durable(path: Path) -> tuple[IntentJournal, JournalStore[IntentRecord]]:
    """A journal written to ``path`` as OrderCommand does, restored from what is there."""
    store: JournalStore[IntentRecord] = JournalStore(path, IntentRecord)
    records = intents_to_keep(store.load())

    def persist(i: Intent) -> None:
        assert i.order is not None
        store.append(
            IntentRecord(
                order=i.order,
                state=str(i.state),
                attempts=i.attempts,
                exchange_order_id=i.exchange_order_id,
                sent_at=i.sent_at,
            )
        )

    journal = IntentJournal(listener=persist)
    for r in records:
        journal.restore(
            r.order,
            IntentState(r.state),
            attempts=r.attempts,
            exchange_order_id=r.exchange_order_id,
            sent_at=r.sent_at,
        )
    return journal, store


def _unknown(cid: str) -> OrderOutcomeUnknown:
    return OrderOutcomeUnknown(
        exchange="binance", market="spot", symbol="BTC/USDT", action="place",
        client_order_id=cid, known="timed out",
    )  # fmt: skip


def test_a_restored_intent_journal_refuses_what_the_old_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    journal, store = _durable(path)
    for cid in ("lost", "died-mid-send", "done"):
        journal.record(order(cid))
        journal.begin_send("binance", "spot", cid)
    journal.settle(_unknown("lost"))
    accepted = OrderAccepted(
        exchange="binance", market="spot", symbol="BTC/USDT", action="place",
        client_order_id="done", exchange_order_id="77",
    )  # fmt: skip
    journal.settle(accepted)
    store.close()  # the process dies; "died-mid-send" never got an answer

    restarted, store = _durable(path)
    assert sorted(i.client_order_id for i in restarted.unresolved()) == ["died-mid-send", "lost"]
    assert all(i.state is IntentState.UNKNOWN for i in restarted.unresolved())
    for cid in ("lost", "died-mid-send"):
        restarted.record(order(cid))  # the same intent again
        with pytest.raises(OutcomeUnknown):
            restarted.begin_send("binance", "spot", cid)
    with pytest.raises(InvalidOrder):
        restarted.begin_send("binance", "spot", "done")
    done = restarted.get("binance", "spot", "done")
    assert done is not None and done.exchange_order_id == "77"
    with pytest.raises(InvalidOrder):  # one client id, one order, across the restart too
        restarted.record(msgspec.structs.replace(order("lost"), qty=D("1")))

    # Resolved after the restart: that is written too.
    restarted.resolve("binance", "spot", "lost", exists=False)
    store.close()
    third, store = _durable(path)
    lost = third.get("binance", "spot", "lost")
    assert lost is not None and lost.state is IntentState.REJECTED
    third.begin_send("binance", "spot", "lost")  # never placed: it may be sent again
    store.close()
