"""Binance's book-sync rules (../shared/reference/binance.md §7), plugged into
``exconn.book.sync.BookSync``.

Spot (§7.1): drop ``u <= lastUpdateId``; a diff continues the book when ``U <= book_id + 1``
(normally ``U == prev u + 1``; an overlap is harmless because quantities are absolute).
The docs tell clients to refetch when ``lastUpdateId < U`` of the first buffered diff; we refetch
only when ``lastUpdateId < U - 1``, because ``lastUpdateId == U - 1`` is a valid bridge (the next
diff starts exactly after the snapshot) and refetching it would loop while the market is quiet.

USD-M (§7.2): drop ``u < lastUpdateId``; the first applied diff must have
``U <= lastUpdateId <= u``; afterwards ``pu`` must equal the previous diff's ``u``.
"""

from __future__ import annotations

from exconn.venues.binance.wire import DepthUpdate, PriceLevel


class SpotSyncRules:
    def first_id(self, diff: DepthUpdate) -> int:
        return diff.U

    def last_id(self, diff: DepthUpdate) -> int:
        return diff.u

    def bids(self, diff: DepthUpdate) -> list[PriceLevel]:
        return diff.b

    def asks(self, diff: DepthUpdate) -> list[PriceLevel]:
        return diff.a

    def snapshot_too_old(self, snapshot_id: int, first_buffered: DepthUpdate) -> bool:
        return snapshot_id < first_buffered.U - 1

    def is_stale(self, diff: DepthUpdate, book_id: int, first: bool) -> bool:
        return diff.u <= book_id

    def continues(self, diff: DepthUpdate, book_id: int, first: bool) -> bool:
        return diff.U <= book_id + 1


class UsdmSyncRules(SpotSyncRules):
    def snapshot_too_old(self, snapshot_id: int, first_buffered: DepthUpdate) -> bool:
        return snapshot_id < first_buffered.U

    def is_stale(self, diff: DepthUpdate, book_id: int, first: bool) -> bool:
        return diff.u < book_id if first else diff.u <= book_id

    def continues(self, diff: DepthUpdate, book_id: int, first: bool) -> bool:
        if first:
            return diff.U <= book_id <= diff.u
        return diff.pu == book_id


SPOT_RULES = SpotSyncRules()
USDM_RULES = UsdmSyncRules()
