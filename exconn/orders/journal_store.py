"""Durable order-path state (DESIGN §5): an append-only file of msgspec JSON lines that an order
actor writes as it goes and reads back when it is restarted, so a restart forgets neither
which fills subscribers already got nor which placements are still unknown.

One file per actor and exchange, in a directory of the actor system's own (``store_dir``:
under the system's ``rest_budget_dir``, named after the system's sealing key so two systems
sharing one budget directory never share a journal). No directory (an actor started on its
own, as in unit tests): nothing is written and the actor keeps its memory-only behaviour.

File rules:
- ``append`` writes one line and flushes it to the OS: it survives the writing process being
  killed (SIGKILL included), not a crash of the machine (no fsync: the directory lives in
  memory, /dev/shm, and is removed with the system anyway).
- ``load`` never raises on bad content: a torn last line (the writer was killed mid-write) is
  cut off, any other line that does not decode is skipped; both are counted (``torn``,
  ``bad``) and logged. An I/O error while writing is logged once; the actor goes on with
  what it holds in memory.
- Bounded: past ``max_records`` appended lines the owner rewrites the file with what it still
  needs (``compact``: a temporary file renamed over the old one, so a crash leaves one or the
  other whole).

What each actor records, and when:

- ``OrderQuery`` records every ``Fill`` it published, *after* handing it to delivery. A crash
  between the two publishes that fill again after the restart (a duplicate); the other order
  would lose it if the crash came after the record and before the send, and a missed fill is
  worse than a repeated one. A ``Fill`` carries its trade id (``Fill.key``), so a subscriber
  that must never count a fill twice de-duplicates by it. On restart the fills are applied to
  the new read model before the start-up reconcile: the "fills since" cursors continue where
  they were and only never-published fills are emitted. Compaction keeps, per instrument, the
  newest ``KEEP_FILLS_PER_INSTRUMENT`` fills (the cursor and the overlap a time-based "since"
  query returns again).
- ``OrderCommand`` records an ``IntentRecord`` (the order, its state, the wall time of the
  send) on every change of an intent, the IN_FLIGHT one *before* the order is sent, the
  others (the answer, a resolution) once it has replied to the engine, several in one write;
  the last record of a client id is its state. Killed before such a write, the intent reads
  back as IN_FLIGHT: unknown, hence resolved by query again, never re-sent. On restart,
  IN_FLIGHT and UNKNOWN intents are UNKNOWN (the send may have reached the venue): a re-send
  is refused and they are resolved by query again. Compaction keeps every unresolved intent
  and the newest ``KEEP_DECIDED_INTENTS`` decided ones (a re-send of an accepted id stays
  refused for those).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import msgspec
from loguru import logger

from exconn.config import SEAL_KEY_ENV
from exconn.messages import Fill, PlaceOrder

__all__ = [
    "DEFAULT_MAX_RECORDS",
    "KEEP_DECIDED_INTENTS",
    "KEEP_FILLS_PER_INSTRUMENT",
    "IntentRecord",
    "JournalStore",
    "fills_to_keep",
    "intents_to_keep",
    "store_dir",
]

R = TypeVar("R")

DEFAULT_MAX_RECORDS = 20_000
KEEP_FILLS_PER_INSTRUMENT = 500
KEEP_DECIDED_INTENTS = 5_000
_UNRESOLVED = ("in_flight", "unknown")


class IntentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One intent's state (``exconn.orders.command.IntentState`` value) after a change.
    ``sent_at``: wall-clock seconds of the last send (None: never sent)."""

    order: PlaceOrder
    state: str
    attempts: int = 0
    exchange_order_id: str | None = None
    sent_at: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (str(self.order.exchange), str(self.order.market), str(self.order.client_order_id))


def store_dir(base: str | None) -> Path | None:
    """This actor system's journal directory under ``base`` (created, owner-only), or None
    without a base. The name comes from a hash of the system's sealing key (inherited by every
    process of the system, new for every system) and reveals nothing of it."""
    if not base:
        return None
    seal = os.environ.get(SEAL_KEY_ENV, "")
    tag = hashlib.blake2b(seal.encode(), digest_size=6, person=b"exconn-jrnl").hexdigest()
    path = Path(base) / f"orders-{tag}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


class JournalStore(Generic[R]):
    """Append-only msgspec JSON lines of ``record_type`` at ``path`` (see the module doc)."""

    def __init__(
        self, path: str | Path, record_type: Any, *, max_records: int = DEFAULT_MAX_RECORDS
    ) -> None:
        self.path = Path(path)
        self.max_records = max_records
        self._limit = max_records
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(record_type)
        self._encoder = msgspec.json.Encoder()
        self._file: IO[bytes] | None = None
        self.count = 0  # lines in the file
        self.torn = 0  # torn last lines cut off by load
        self.bad = 0  # other lines that did not decode
        self.write_failed = False
        self.log = logger.bind(journal=self.path.name)

    # ------------------------------------------------------------------ reading
    def load(self) -> list[R]:
        """Every record in the file, oldest first; opens the file for appending."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        except OSError as exc:
            self.log.error("journal {}: cannot read ({}); starting empty", self.path, exc)
            data = b""
        records: list[R] = []
        complete, _, tail = data.rpartition(b"\n")
        if tail:
            # No newline after it: the writer died mid-line. Cut it off so the next append
            # does not glue onto it.
            self.torn += 1
            self.log.warning("journal {}: torn last line ({} bytes) dropped", self.path, len(tail))
            self._truncate(len(complete) + 1 if complete else 0)
        for line in complete.split(b"\n") if complete else ():
            if not line:
                continue
            try:
                records.append(self._decoder.decode(line))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                self.bad += 1
        if self.bad:
            self.log.warning("journal {}: {} undecodable lines skipped", self.path, self.bad)
        self.count = len(records) + self.bad
        self._limit = max(self.max_records, 2 * self.count)
        self._open()
        return records

    def _truncate(self, size: int) -> None:
        try:
            with self.path.open("r+b") as f:
                f.truncate(size)
        except OSError as exc:
            self.log.error("journal {}: cannot cut the torn line: {}", self.path, exc)

    # ------------------------------------------------------------------ writing
    def _open(self) -> None:
        if self._file is not None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._file = os.fdopen(fd, "ab")
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        if not self.write_failed:
            self.log.error("journal {}: cannot write ({}); state kept in memory", self.path, exc)
        self.write_failed = True

    def append(self, record: R) -> None:
        self.append_many((record,))

    def append_many(self, records: Iterable[R]) -> None:
        """Write ``records`` (one line each) and flush them to the OS."""
        self._open()
        if self._file is None:
            return
        lines = [self._encoder.encode(r) + b"\n" for r in records]
        if not lines:
            return
        try:
            self._file.write(b"".join(lines))
            self._file.flush()
        except OSError as exc:
            self._failed(exc)
            return
        self.count += len(lines)

    @property
    def needs_compaction(self) -> bool:
        return self.count > self._limit

    def compact(self, keep: Sequence[R]) -> None:
        """Replace the file's content by ``keep`` (atomically: a temporary file renamed)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with tmp.open("wb") as f:
                f.write(b"".join(self._encoder.encode(r) + b"\n" for r in keep))
                f.flush()
            self.close()
            os.replace(tmp, self.path)
        except OSError as exc:
            self._failed(exc)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        finally:
            self._open()
        self.log.info("journal {}: compacted {} lines to {}", self.path, self.count, len(keep))
        self.count = len(keep)
        # What must be kept can itself be large: do not compact again at every append.
        self._limit = max(self.max_records, 2 * len(keep))

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None


def fills_to_keep(
    fills: Iterable[Fill], per_instrument: int = KEEP_FILLS_PER_INSTRUMENT
) -> list[Fill]:
    """The newest ``per_instrument`` fills of each instrument (by time, then trade id), oldest
    first: enough to continue every "fills since" cursor and de-duplicate its overlap."""
    by_instrument: dict[tuple[str, str], list[Fill]] = {}
    for fill in fills:
        by_instrument.setdefault((fill.market, fill.symbol), []).append(fill)
    kept: list[Fill] = []
    for group in by_instrument.values():
        group.sort(key=_fill_order)
        kept += group[-per_instrument:]
    kept.sort(key=_fill_order)
    return kept


def _fill_order(fill: Fill) -> tuple[Any, ...]:
    tid = fill.trade_id
    return (fill.ts, int(tid) if tid.isdigit() else -1, tid)


def intents_to_keep(
    records: Iterable[IntentRecord], decided: int = KEEP_DECIDED_INTENTS
) -> list[IntentRecord]:
    """The last record of each intent: every unresolved one and the newest ``decided`` others,
    in the order they were last changed."""
    last: dict[tuple[str, str, str], IntentRecord] = {}
    for record in records:
        last.pop(record.key, None)  # re-insert: dict order is the order of the last change
        last[record.key] = record
    done = [r for r in last.values() if r.state not in _UNRESOLVED]
    keep_done = {r.key for r in done[-decided:]} if decided > 0 else set()
    return [r for r in last.values() if r.state in _UNRESOLVED or r.key in keep_done]
