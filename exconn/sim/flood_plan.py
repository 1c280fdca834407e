"""Turns a flood of diffs into pre-encoded frame chunks, raw and combined."""

import random
from collections.abc import Iterable
from dataclasses import dataclass

from exconn.sim.flood import iter_flood
from exconn.sim.market import Book
from exconn.sim.wire import SymbolWire, combined
from exconn.sim.wsframes import ChunkBuilder, rewrap, text_frame


@dataclass(frozen=True, slots=True)
class FloodPlan:
    symbol: str
    stream: str  # the combined chunks carry this name: "<symbol>@depth@100ms"
    start_id: int
    n_updates: int
    raw_chunks: list[bytes]
    combined_chunks: list[bytes]
    final_book: Book

    def chunks_for(self, is_combined: bool, stream: str) -> Iterable[bytes]:
        if not is_combined:
            return self.raw_chunks
        if stream == self.stream:
            return self.combined_chunks
        # Rare ("<symbol>@depth"): re-wrap lazily instead of holding a third copy.
        return rewrap(self.raw_chunks, lambda payload: combined(stream, payload))


def build_flood(
    wire: SymbolWire,
    book: Book,
    n_updates: int,
    levels_per_update: int,
    levels: int,
    min_qty_steps: int,
    max_qty_steps: int,
    seed: int,
    time_ms: int,
) -> FloodPlan:
    """Encode the flood; `book` is consumed and becomes the plan's final book."""
    stream = f"{wire.symbol.lower()}@depth@100ms"
    start_id = book.update_id
    rng = random.Random(f"{seed}/{wire.symbol}/flood/{start_id}")
    raw, wrapped = ChunkBuilder(), ChunkBuilder()
    diffs = iter_flood(
        book, n_updates, levels_per_update, levels, min_qty_steps, max_qty_steps, rng
    )
    for diff in diffs:
        payload = wire.depth_update(diff, time_ms)
        raw.add(text_frame(payload))
        wrapped.add(text_frame(combined(stream, payload)))
    return FloodPlan(
        symbol=wire.symbol,
        stream=stream,
        start_id=start_id,
        n_updates=n_updates,
        raw_chunks=raw.finish(),
        combined_chunks=wrapped.finish(),
        final_book=book,
    )
