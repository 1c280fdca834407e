"""Venue state of the Bybit V5 simulator: markets, ledgers, feeds, connections, faults,
flood.

Only touched from the server's event-loop thread (the facade marshals calls onto it), so
no locks. Public data and private events come from the same engine batches: the engines'
listeners run in order market mirror -> ledger -> this core, so when a user's fill is
reported the ledger has already settled it.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
from loguru import logger

from exconn.sim.accounts import FeeRates, Instrument, Ledger
from exconn.sim.auth import KeyRegistry
from exconn.sim.bybit_account_view import position_json, usd_units_price, wallet_json
from exconn.sim.bybit_book import SymbolFeed
from exconn.sim.bybit_conn import BybitConnection
from exconn.sim.bybit_flood import BybitFloodPlan
from exconn.sim.bybit_orders import Execution, UserOrder, new_execution
from exconn.sim.bybit_tape import INTERVAL_MS, Tape, TapeTrade
from exconn.sim.bybit_wire import CATEGORIES, Wire, deterministic_uuid
from exconn.sim.connection import OutFlood
from exconn.sim.core_common import close_all, market_spec, skewed, wall_ms
from exconn.sim.fault_registry import FaultKind, FaultRegistry
from exconn.sim.limits import BybitLimiter
from exconn.sim.market import Book, Interval, Market
from exconn.sim.matching import Batch, OrderEvent, Reason, Side
from exconn.sim.symbols import SimSymbol

VENUE = "bybit"
DEFAULT_LEVERAGE = 10
SPOT_FEES = FeeRates(Decimal("0.001"), Decimal("0.001"))  # Bybit spot VIP 0
LINEAR_FEES = FeeRates(Decimal("0.0002"), Decimal("0.00055"))  # Bybit derivatives VIP 0
_encode = msgspec.json.Encoder().encode


class BybitCore:
    def __init__(
        self,
        symbols: dict[str, list[SimSymbol]],
        seed: int,
        levels: int,
        on_connections: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.seed = seed
        self.levels = levels
        self.symbols = {cat: {s.symbol: s for s in symbols.get(cat, [])} for cat in CATEGORIES}
        self.wires: dict[tuple[str, str], Wire] = {}
        self.markets: dict[str, Market] = {}
        self.feeds: dict[tuple[str, str], SymbolFeed] = {}
        self.tapes: dict[tuple[str, str], Tape] = {}
        # (category, symbol, interval) -> start of the bar last pushed: the bar is pushed
        # once more with confirm:true when the next one begins, as Bybit does.
        self.kline_bars: dict[tuple[str, str, str], int] = {}
        self.ledgers: dict[str, Ledger] = {}
        for index, cat in enumerate(CATEGORIES):
            syms = list(self.symbols[cat].values())
            specs = [market_spec(s) for s in syms]
            # A distinct seed per category, so spot and linear books differ but both repeat.
            market = Market(specs, levels, seed * 10 + index)
            self.markets[cat] = market
            linear = cat == "linear"
            self.ledgers[cat] = Ledger(
                market.engines(),
                [Instrument.from_symbol(s, linear) for s in syms],
                DEFAULT_LEVERAGE,
            )
            for s in syms:
                key = (cat, s.symbol)
                self.wires[key] = Wire(cat, s)
                self.feeds[key] = SymbolFeed(cat, s.symbol, seed, market.get(s.symbol).book)
                self.tapes[key] = Tape(self.wires[key], s.mid_ticks)
                market.get(s.symbol).engine.subscribe(self._listener(cat, s.symbol))
        self.keys = KeyRegistry()
        self.limiter = BybitLimiter()
        self.faults = FaultRegistry()
        self.stats: Counter[str] = Counter()
        self.paused = False
        self.connections: dict[int, BybitConnection] = {}
        self._next_conn = 1
        self._on_connections = on_connections
        self.orders: dict[str, UserOrder] = {}  # by orderId
        self._by_engine: dict[tuple[str, str, int], UserOrder] = {}
        self._pending: UserOrder | None = None
        self._ticker_sent: dict[tuple[int, str], dict[str, str]] = {}
        self._pos_seq = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_realised: dict[tuple[str, str], int] = {}
        self._flood_prep: tuple[str, str] | None = None
        self._flood_pending: BybitFloodPlan | None = None
        self._flood_running: BybitFloodPlan | None = None
        self._flood_done: dict[tuple[str, str], BybitFloodPlan] = {}

    # ------------------------------------------------------------------ clock
    def now(self) -> int:
        return skewed(self.faults, VENUE, wall_ms())

    # ----------------------------------------------------------------- market
    @property
    def frozen(self) -> bool:
        """True while a flood is being prepared, waits for its client, or is being sent."""
        return bool(self._flood_prep or self._flood_pending or self._flood_running)

    def tick(self) -> None:
        self.apply_connection_faults()
        if not self.paused and not self.frozen:
            self.step(1)

    def step(self, n: int) -> None:
        if self.frozen:
            raise RuntimeError("the market is frozen while a flood is prepared or running")
        for _ in range(n):
            now = wall_ms()
            for cat, market in self.markets.items():
                for interval in market.step(now):
                    self._publish(cat, interval)
        self.apply_connection_faults()

    def book(self, cat: str, symbol: str):  # -> Book
        return self.markets[cat].get(symbol).book

    def mid(self, cat: str, symbol: str) -> int:
        book = self.book(cat, symbol)
        if book.bids and book.asks:
            return (book.best_bid() + book.best_ask()) // 2
        return self.tapes[(cat, symbol)].last_price

    def _publish(self, cat: str, interval: Interval) -> None:
        symbol, now = interval.symbol, interval.time_ms
        key = (cat, symbol)
        tape, wire = self.tapes[key], self.wires[key]
        seq = self.book(cat, symbol).update_id
        if interval.trades:
            data = []
            for t in interval.trades:
                taker_buy = not t.buyer_is_maker
                direction = tape.tick_direction(t.price)
                tape.add(
                    TapeTrade(t.trade_id, t.time_ms, t.price, t.qty, taker_buy, seq, direction)
                )
                item: dict[str, Any] = {
                    "T": t.time_ms,
                    "s": symbol,
                    "S": "Buy" if taker_buy else "Sell",
                    "v": wire.qty(t.qty),
                    "p": wire.price(t.price),
                }
                if cat == "linear":
                    item["L"] = direction
                item.update(
                    {
                        "i": self.trade_id(cat, symbol, t.trade_id),
                        "BT": False,
                        "RPI": False,
                        "seq": seq,
                    }
                )
                data.append(item)
            self.stats["trades"] += len(data)
            topic = f"publicTrade.{symbol}"
            self.deliver(
                cat,
                topic,
                {"topic": topic, "type": "snapshot", "ts": wall_ms(), "data": data},
                symbol,
            )
        self._publish_depth(cat, symbol, now)
        self._publish_tickers(cat, symbol)
        self._publish_klines(cat, symbol)

    def _publish_depth(self, cat: str, symbol: str, now: int) -> None:
        """Move every depth view to the book's current top levels, pushing what changed."""
        key = (cat, symbol)
        wire, seq = self.wires[key], self.book(cat, symbol).update_id
        for depth, delta in self.feeds[key].advance(self.book(cat, symbol)).items():
            self.stats["depth_events"] += 1
            topic = f"orderbook.{depth}.{symbol}"
            kind = "snapshot" if depth == 1 else "delta"
            view = self.feeds[key].views[depth]
            bids, asks = view.levels() if depth == 1 else (delta.bids, delta.asks)
            msg = {
                "topic": topic,
                "type": kind,
                "ts": wall_ms(),
                "data": {
                    "s": symbol,
                    "b": wire.levels(bids),
                    "a": wire.levels(asks),
                    "u": delta.u,
                    "seq": seq,
                },
                "cts": now,
            }
            self.deliver(cat, topic, msg, symbol, skippable=kind == "delta")

    def trade_id(self, cat: str, symbol: str, trade_id: int) -> str:
        if cat == "spot":
            return str(2_200_000_000_000_000_000 + trade_id)
        return deterministic_uuid("trade", symbol, trade_id)

    def ticker(self, cat: str, symbol: str) -> dict[str, Any]:
        wire, book = self.wires[(cat, symbol)], self.book(cat, symbol)
        now = wall_ms()
        stats = self.tapes[(cat, symbol)].day_stats(now)
        bid = max(book.bids) if book.bids else None
        ask = min(book.asks) if book.asks else None
        top = {
            "bid1Price": wire.price(bid) if bid else "",
            "bid1Size": wire.qty(book.bids[bid]) if bid else "",
            "ask1Price": wire.price(ask) if ask else "",
            "ask1Size": wire.qty(book.asks[ask]) if ask else "",
        }
        mark = wire.price(self.mid(cat, symbol))
        if cat == "spot":
            return {"symbol": symbol, **top, **stats, "usdIndexPrice": mark}
        period = 8 * 3_600_000
        return {
            "symbol": symbol,
            "tickDirection": "ZeroPlusTick",
            **stats,
            **top,
            "prevPrice1h": stats["prevPrice24h"],
            "markPrice": mark,
            "indexPrice": mark,
            "openInterest": "0",
            "openInterestValue": "0",
            "fundingRate": "0.0001",
            "nextFundingTime": str((now // period + 1) * period),
            "fundingIntervalHour": "8",
            "fundingCap": "0.005",
            "predictedDeliveryPrice": "",
            "basisRate": "",
            "basis": "",
            "deliveryFeeRate": "",
            "deliveryTime": "0",
            "preOpenPrice": "",
            "preQty": "",
            "curPreListingPhase": "",
            "basisRateYear": "",
        }

    def ticker_message(
        self, cat: str, symbol: str, conn: BybitConnection | None
    ) -> dict[str, Any] | None:
        """Spot: a snapshot each time. Linear: snapshot first, then only changed fields."""
        data = self.ticker(cat, symbol)
        if cat == "linear":
            tape = self.tapes[(cat, symbol)]
            if tape.trades:
                data["tickDirection"] = tape.trades[-1].direction
        topic = f"tickers.{symbol}"
        msg: dict[str, Any] = {
            "topic": topic,
            "type": "snapshot",
            "data": data,
            "cs": self.book(cat, symbol).update_id,
            "ts": wall_ms(),
        }
        if cat == "linear" and conn is not None:
            prev = self._ticker_sent.get((conn.id, symbol))
            self._ticker_sent[(conn.id, symbol)] = dict(data)
            if prev is not None:
                changed = {k: v for k, v in data.items() if prev.get(k) != v}
                if not changed:
                    return None
                msg["type"] = "delta"
                msg["data"] = {"symbol": symbol, **changed}
        return msg

    def _publish_tickers(self, cat: str, symbol: str) -> None:
        topic = f"tickers.{symbol}"
        for conn in self._subscribers(cat, topic):
            msg = self.ticker_message(cat, symbol, conn)
            if msg is not None:
                self._send_to(conn, msg, symbol)

    def _publish_klines(self, cat: str, symbol: str) -> None:
        tape, now = self.tapes[(cat, symbol)], wall_ms()
        for interval in INTERVAL_MS:
            topic = f"kline.{interval}.{symbol}"
            conns = self._subscribers(cat, topic)
            if not conns:
                continue
            candle = tape.current_candle(interval, now)
            data = [tape.candle_json(candle, interval, False, now)]
            last = self.kline_bars.get((cat, symbol, interval))
            if last is not None and last != candle.start:
                bar_end = last + INTERVAL_MS[interval] - 1
                bars = tape.candles(interval, last, bar_end)
                closed = next((c for c in bars if c.start == last), None)
                if closed is not None:
                    data.insert(0, tape.candle_json(closed, interval, True, now))
            self.kline_bars[(cat, symbol, interval)] = candle.start
            msg = {"topic": topic, "data": data, "ts": now, "type": "snapshot"}
            for conn in conns:
                self._send_to(conn, msg, symbol)

    # ------------------------------------------------------------ connections
    def open_connection(self, conn: BybitConnection) -> None:
        self.connections[conn.id] = conn
        conn.start_writer()
        self.stats["connections_opened"] += 1
        self._on_connections(len(self.connections))

    def next_conn_id(self) -> int:
        self._next_conn += 1
        return self._next_conn - 1

    async def close_connection(self, conn: BybitConnection) -> None:
        if self.connections.pop(conn.id, None) is not None:
            self._on_connections(len(self.connections))
            await conn.stop_writer()

    async def close_all(self) -> None:
        await close_all(self.connections, self.close_connection)

    def stalled(self, conn: BybitConnection) -> bool:
        return (
            self.faults.active(FaultKind.STALL, wall_ms(), venue=VENUE, connection=conn.id)
            is not None
        )

    def _subscribers(self, channel: str, topic: str) -> list[BybitConnection]:
        return [c for c in self.connections.values() if c.channel == channel and topic in c.topics]

    def deliver(
        self,
        channel: str,
        topic: str,
        msg: dict[str, Any],
        symbol: str | None,
        skippable: bool = False,
    ) -> None:
        data: bytes | None = None
        for conn in self._subscribers(channel, topic):
            if skippable and self.faults.take(
                FaultKind.SKIP_SEQUENCE, wall_ms(), venue=VENUE, connection=conn.id, symbol=symbol
            ):
                self.stats["depth_events_skipped"] += 1
                continue
            data = data or _encode(msg)
            self._send_raw(conn, data, symbol)

    def _send_to(self, conn: BybitConnection, msg: dict[str, Any], symbol: str | None) -> None:
        self._send_raw(conn, _encode(msg), symbol)

    def send_reply(self, conn: BybitConnection, msg: dict[str, Any]) -> None:
        if not conn.send(_encode(msg)):
            conn.abort()

    def _send_raw(self, conn: BybitConnection, data: bytes, symbol: str | None) -> None:
        if self.faults.take(
            FaultKind.MALFORMED, wall_ms(), venue=VENUE, connection=conn.id, symbol=symbol
        ):
            conn.malformed_pending += 1
        if not conn.send(data):
            self.stats["slow_consumers_dropped"] += 1
            conn.abort()

    def apply_connection_faults(self) -> None:
        now = wall_ms()
        for conn in list(self.connections.values()):
            if self.faults.take(FaultKind.DROP, now, venue=VENUE, connection=conn.id):
                self.stats["connections_dropped"] += 1
                conn.abort()
            elif self.faults.take(FaultKind.EXPIRE_SESSION, now, venue=VENUE, connection=conn.id):
                # Private: the session lapses. Public: the server ends the socket as its idle
                # or max-active-time cut does (bybit.md §6), cleanly, with a close frame.
                self.stats["sessions_expired"] += 1
                conn.authed_account = None
                task = asyncio.get_running_loop().create_task(conn.close(1000, b"session expired"))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ flood
    def begin_flood(self, cat: str, symbol: str, depth: int) -> tuple[Book, int]:
        """Freeze the market; hand out a copy of the book the flood starts from and the
        `u` of its depth view. Changes not yet pushed (user orders since the last step)
        are pushed first, so the view is the book's top."""
        if self.frozen:
            raise RuntimeError("a flood is already prepared or running")
        self._publish_depth(cat, symbol, wall_ms())
        self._flood_prep = (cat, symbol)
        return self.book(cat, symbol).copy(), self.feeds[(cat, symbol)].views[depth].u

    def install_flood(self, plan: BybitFloodPlan | None) -> None:
        """Arm the prepared plan (None abandons the preparation)."""
        self._flood_prep = None
        self._flood_pending = plan
        if plan is not None:
            self._flood_done[(plan.category, plan.symbol)] = plan

    def flood_plan(self, cat: str, symbol: str) -> BybitFloodPlan:
        plan = self._flood_done.get((cat, symbol))
        if plan is None:
            raise KeyError(f"no flood prepared for {cat} {symbol!r}")
        return plan

    def maybe_start_flood(self, conn: BybitConnection, topics: list[str]) -> None:
        """After a subscribe's ack and snapshot: the armed flood goes to this connection if
        it just subscribed the flood's topic."""
        plan = self._flood_pending
        if plan is None or conn.channel != plan.category or plan.topic not in topics:
            return
        self._flood_pending, self._flood_running = None, plan
        logger.debug("sim bybit: flooding connection {} with {} deltas", conn.id, plan.n_messages)
        item = OutFlood(
            plan.chunks, plan.n_messages, lambda completed: self._finish_flood(plan, completed)
        )
        if not conn.send(item):
            self._finish_flood(plan, False)

    def _finish_flood(self, plan: BybitFloodPlan, completed: bool) -> None:
        # The ids are spent whether or not the client got them all: adopt the final state.
        key = (plan.category, plan.symbol)
        self.markets[plan.category].get(plan.symbol).replace_book(plan.final_book.copy())
        view = self.feeds[key].views[plan.depth]
        view.u, view.bids, view.asks = plan.final_u, dict(plan.final_bids), dict(plan.final_asks)
        self._flood_running = None
        self.stats["floods_completed" if completed else "floods_aborted"] += 1
        if completed:
            self.stats["flood_events_sent"] += plan.n_messages

    # ------------------------------------------------------------- accounts
    def add_account(
        self,
        account_id: str,
        spot_balances: dict[str, Decimal],
        linear_wallet: dict[str, Decimal],
    ) -> None:
        self.ledgers["spot"].open_account(account_id, balances=spot_balances, fees=SPOT_FEES)
        self.ledgers["linear"].open_account(account_id, wallets=linear_wallet, fees=LINEAR_FEES)

    def wallet(self, account_id: str, coins: list[str] | None) -> dict[str, Any]:
        def last_units(coin: str) -> int | None:
            for quote in ("USDT", "USDC"):
                key = ("spot", coin + quote)
                if key in self.tapes:
                    return self.wires[key].price_units(self.tapes[key].last_price)
            return None

        return wallet_json(
            self.ledgers["spot"],
            self.ledgers["linear"],
            account_id,
            usd_units_price(last_units),
            coins,
        )

    def position(self, account_id: str, symbol: str, ws: bool) -> dict[str, Any]:
        wire = self.wires[("linear", symbol)]
        self._pos_seq += 1
        return position_json(
            self.ledgers["linear"],
            account_id,
            wire,
            self.mid("linear", symbol),
            ws,
            self._pos_seq,
            wall_ms(),
        )

    # ------------------------------------------------------- private events
    def register_pending(self, order: UserOrder | None) -> None:
        """The order about to be submitted, so its first engine event finds its metadata."""
        self._pending = order

    def user_order(self, cat: str, symbol: str, engine_id: int) -> UserOrder | None:
        return self._by_engine.get((cat, symbol, engine_id))

    def _listener(self, cat: str, symbol: str):  # -> Callable[[Batch], None]
        def on_batch(batch: Batch) -> None:
            try:
                self._on_batch(cat, symbol, batch)
            except Exception:
                logger.exception("sim bybit: private event failed")
                raise

        return on_batch

    def _on_batch(self, cat: str, symbol: str, batch: Batch) -> None:
        touched: dict[str, list[dict[str, Any]]] = {}
        executions: dict[str, list[dict[str, Any]]] = {}
        for event in batch.order_events:
            order = self._order_for(cat, symbol, event)
            if order is None:
                continue
            order.apply(event)
            if event.fill is not None:
                ex = self._execution(order, event)
                order.executions.append(ex)
                order.fee += ex.fee
                order.fee_coin = ex.fee_coin
                order.closed_pnl += ex.pnl
                executions.setdefault(order.account, []).append(
                    order.execution_json(ex, True, self.mid(cat, symbol))
                )
            # Each event's own state: New, then PartiallyFilled, then Filled, in one message.
            touched.setdefault(order.account, []).append(order.json())
        for account, orders in touched.items():
            self._push_private(account, "order", cat, orders)
            if account in executions:
                self._push_private(account, "execution", cat, executions[account])
            if cat == "linear":
                self._push_private(account, "position", cat, [self.position(account, symbol, True)])
            self._push_private(account, "wallet", None, [self.wallet(account, None)])

    def _order_for(self, cat: str, symbol: str, event: OrderEvent) -> UserOrder | None:
        key = (cat, symbol, event.order.order_id)
        order = self._by_engine.get(key)
        if order is not None:
            return order
        pending = self._pending
        if (
            pending is None
            or pending.engine_id != event.order.order_id
            or pending.wire.symbol != symbol
            or pending.wire.category != cat
        ):
            return None
        if event.order.status.value == "REJECTED" and event.reason is not Reason.WOULD_TAKE:
            return None  # refused synchronously: the REST answer carries the error
        self._by_engine[key] = pending
        self.orders[pending.order_id] = pending
        self._pending = None
        return pending

    def _execution(self, order: UserOrder, event: OrderEvent) -> Execution:
        fill = event.fill
        assert fill is not None
        ledger = self.ledgers[order.wire.category]
        fees = ledger.account(order.account).fees
        rate = fees.maker if fill.is_maker else fees.taker
        closed = pnl = 0
        if order.wire.category == "linear":
            # The ledger has settled this fill already: work back from the position after it.
            key = (order.account, order.wire.symbol)
            pos = ledger.account(order.account).position(order.wire.symbol)
            pnl = pos.realised - self._last_realised.get(key, 0)
            self._last_realised[key] = pos.realised
            signed = fill.qty if order.side is Side.BUY else -fill.qty
            before = pos.size - signed
            if before and (before > 0) != (signed > 0):
                closed = min(fill.qty, abs(before))
        return new_execution(order, event, str(rate.normalize()), closed, pnl)

    def _push_private(
        self, account: str, topic: str, cat: str | None, data: list[dict[str, Any]]
    ) -> None:
        now = wall_ms()
        times = 1
        if topic == "execution" and data:
            symbol = data[0].get("symbol")
            if self.faults.take(FaultKind.DUPLICATE_FILL, now, venue=VENUE, symbol=symbol):
                self.stats["fills_duplicated"] += 1
                times = 2  # the same push again: same execIds, as a venue replay would be
        for conn in list(self.connections.values()):
            if conn.channel != "private" or conn.authed_account != account:
                continue
            for name in (topic, f"{topic}.{cat}" if cat else None):
                if name is not None and name in conn.topics:
                    msg = {
                        "id": deterministic_uuid("push", conn.id, now, self.stats["pushes"]),
                        "topic": name,
                        "creationTime": now,
                        "data": data,
                    }
                    self.stats["pushes"] += 1
                    for _ in range(times):
                        self._send_to(conn, msg, None)
