"""Binance spot trading: accounts, orders and the user-data events they produce.

One instance per simulator, touched only from its event loop. Orders go through the
`Ledger` into the same matching engines the market agents trade in, and every batch the
engines emit (a user's own order, or an agent's taker order filling a user's resting one)
comes back through `_on_batch`, which keeps the order records, the trade log and the
user-data events in step with the book. REST and the WebSocket API call the same methods
and differ only in how they wrap the answer.
"""

import random
import string
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from exconn.sim import binance_spot_format as F
from exconn.sim import binance_spot_reply as R
from exconn.sim.accounts import Account, FeeRates, Instrument, Ledger
from exconn.sim.auth import DEFAULT_PERMISSIONS, KeyRegistry
from exconn.sim.binance_spot_keys import ApiKeys, make_keys
from exconn.sim.binance_spot_orders import (
    client_id_param,
    decimal_param,
    int_param,
    parse_new_order,
)
from exconn.sim.binance_spot_reply import ApiError, Reply, bad_request, mandatory
from exconn.sim.fixed import fmt_units, to_units
from exconn.sim.market import Market
from exconn.sim.matching import (
    AmendRejected,
    Batch,
    ExecType,
    Fill,
    OrderBook,
    OrderNotFound,
    OrderStatus,
    Reason,
)
from exconn.sim.symbols import SimSymbol

UserSink = Callable[[str, dict[str, Any]], None]  # (account id, event)
_ID_CHARS = string.ascii_letters + string.digits
MAX_TRADES_KEPT = 10_000  # per account; myTrades serves the newest
_DAY_MS = 24 * 3600 * 1000  # allOrders: the widest startTime–endTime window


class SpotTrading:
    def __init__(
        self,
        symbols: Mapping[str, SimSymbol],
        market: Market,
        seed: int,
        clock: Callable[[], int],
    ) -> None:
        self.symbols = symbols
        self.market = market
        self.seed = seed
        self.clock = clock
        self.keys = KeyRegistry()
        self.accounts: list[ApiKeys] = []
        self.instruments = {s: Instrument.from_symbol(sym) for s, sym in symbols.items()}
        engines = market.engines()
        self.ledger = Ledger(engines, self.instruments.values())
        self.records: dict[tuple[str, int], F.OrderRecord] = {}
        self._by_client: dict[tuple[str, str, str], int] = {}  # (account, symbol, cid)
        self._trades: dict[str, list[dict[str, Any]]] = {}
        self._exec_ids: dict[str, int] = dict.fromkeys(symbols, 0)
        self._rng = random.Random(f"{seed}/client-order-ids")
        self._pending: tuple[str, int] | None = None  # (type name, quote units) of a submit
        self.sink: UserSink = lambda account, event: None
        for engine in engines.values():
            self._subscribe(engine)

    def _subscribe(self, engine: OrderBook) -> None:
        engine.subscribe(self._on_batch)

    # ---------------------------------------------------------------- accounts
    def add_account(
        self,
        balances: Mapping[str, Decimal],
        permissions: frozenset[str] = DEFAULT_PERMISSIONS,
        fees: FeeRates | None = None,
    ) -> ApiKeys:
        keys = make_keys(self.keys, self.seed, len(self.accounts), permissions)
        self.ledger.open_account(keys.account, balances, fees=fees)
        self.accounts.append(keys)
        return keys

    def uid(self, account: str) -> int:
        return next(k.uid for k in self.accounts if k.account == account)

    def deposit(self, account: str, asset: str, amount: Decimal) -> None:
        """Credit (or debit) a balance as a transfer would: balanceUpdate, then the position."""
        self.ledger.deposit(account, asset, amount)
        now = self.clock()
        self.sink(
            account,
            {
                "e": "balanceUpdate",
                "E": now,
                "a": asset,
                "d": fmt_units(abs(to_units(amount)))
                if amount >= 0
                else "-" + fmt_units(abs(to_units(amount))),
                "T": now,
            },
        )
        self._position(account, {asset}, now)

    def balances(self, account: str) -> dict[str, tuple[Decimal, Decimal]]:
        acc = self.ledger.account(account)
        return {
            asset: (Decimal(fmt_units(b.free)), Decimal(fmt_units(b.locked)))
            for asset, b in acc.balances.items()
        }

    def _position(self, account: str, assets: set[str], now: int) -> None:
        acc = self.ledger.account(account)
        self.sink(
            account,
            {
                "e": "outboundAccountPosition",
                "E": now,
                "u": now,
                "B": [
                    {
                        "a": a,
                        "f": fmt_units(acc.balance(a).free),
                        "l": fmt_units(acc.balance(a).locked),
                    }
                    for a in sorted(assets)
                ],
            },
        )

    def account_info(self, account: str, omit_zero: bool) -> dict[str, Any]:
        acc: Account = self.ledger.account(account)
        maker, taker = acc.fees.maker, acc.fees.taker
        balances = [
            {"asset": a, "free": fmt_units(b.free), "locked": fmt_units(b.locked)}
            for a, b in sorted(acc.balances.items())
            if not (omit_zero and b.total == 0)
        ]
        return {
            "makerCommission": int(maker * 10_000),
            "takerCommission": int(taker * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt_units(to_units(maker)),
                "taker": fmt_units(to_units(taker)),
                "buyer": F.ZERO,
                "seller": F.ZERO,
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": self.clock(),
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": self.uid(account),
        }

    # ------------------------------------------------------------------ orders
    def _symbol(self, params: Mapping[str, str]) -> SimSymbol:
        name = params.get("symbol") or ""
        if not name:
            raise mandatory("symbol")
        sym = self.symbols.get(name)
        if sym is None:
            raise bad_request(-1121, R.INVALID_SYMBOL)
        return sym

    def new_client_id(self) -> str:
        return "".join(self._rng.choice(_ID_CHARS) for _ in range(22))

    def _reference_price(self, symbol: str) -> Decimal:
        engine = self.market.get(symbol).engine
        bid, ask = engine.best_bid(), engine.best_ask()
        ticks = (bid + ask) // 2 if bid and ask else (bid or ask or 0)
        return ticks * self.symbols[symbol].tick_size

    def validate(self, account: str, params: Mapping[str, str]) -> Any:
        sym = self._symbol(params)
        return parse_new_order(
            params, sym, account, self.new_client_id(), self._reference_price(sym.symbol)
        )

    def place(self, account: str, params: Mapping[str, str]) -> Reply:
        order = self.validate(account, params)
        cid = order.request.client_id
        open_id = self._by_client.get((account, order.symbol, cid))
        if open_id is not None and self.records[(order.symbol, open_id)].state.status.is_open:
            raise bad_request(-2010, R.DUPLICATE_ORDER)
        quote = params.get("quoteOrderQty")
        self._pending = (order.type_name, to_units(Decimal(quote)) if quote else 0)
        now = self.clock()
        try:
            batch = self.ledger.submit(order.symbol, order.request, now)
        finally:
            self._pending = None
        assert batch.order is not None
        key = (order.symbol, batch.order.order_id)
        if batch.order.status is OrderStatus.REJECTED:
            self.records.pop(key, None)  # Binance keeps no trace of a rejected order
            raise self._rejection(batch)
        rec = self.records[key]
        fills = self._fills(batch, batch.order.order_id)
        return Reply(F.order_response(rec, order.resp_type, now, fills), placed=True)

    @staticmethod
    def _fills(batch: Batch, order_id: int) -> list[Fill]:
        return [
            e.fill
            for e in batch.order_events
            if e.fill is not None and e.order.order_id == order_id
        ]

    @staticmethod
    def _rejection(batch: Batch) -> ApiError:
        reason = next(
            (e.reason for e in batch.order_events if e.exec_type is ExecType.REJECTED),
            Reason.INVALID,
        )
        if reason is Reason.INSUFFICIENT_BALANCE:
            return bad_request(-2010, R.INSUFFICIENT_BALANCE)
        if reason is Reason.WOULD_TAKE:
            return bad_request(-2010, R.WOULD_TAKE)
        return bad_request(-1013, "Invalid quantity.")

    def test_order(self, account: str, params: Mapping[str, str]) -> Reply:
        self.validate(account, params)
        if params.get("computeCommissionRates") != "true":
            return Reply({})
        fees = self.ledger.account(account).fees
        std = {"maker": fmt_units(to_units(fees.maker)), "taker": fmt_units(to_units(fees.taker))}
        zero = {"maker": F.ZERO, "taker": F.ZERO}
        return Reply(
            {
                "standardCommissionForOrder": std,
                "specialCommissionForOrder": zero,
                "taxCommissionForOrder": zero,
                "discount": {
                    "enabledForAccount": False,
                    "enabledForSymbol": False,
                    "discountAsset": "BNB",
                    "discount": F.ZERO,
                },
            }
        )

    def _find(
        self,
        account: str,
        params: Mapping[str, str],
        id_name: str = "orderId",
        cid_name: str = "origClientOrderId",
        missing: tuple[int, str] = (-2013, R.NO_SUCH_ORDER),
    ) -> F.OrderRecord:
        sym = self._symbol(params)
        order_id = int_param(params, id_name)
        cid = client_id_param(params, cid_name)
        if order_id is None and cid is None:
            raise bad_request(
                -1102, f"Param '{cid_name}' or '{id_name}' must be sent, but both were empty/null!"
            )
        if order_id is None:
            order_id = self._by_client.get((account, sym.symbol, cid or ""))
        rec = None if order_id is None else self.records.get((sym.symbol, order_id))
        if (
            rec is None
            or rec.state.account != account
            or (cid is not None and rec.client_id != cid)
        ):
            raise bad_request(*missing)
        return rec

    def query(self, account: str, params: Mapping[str, str]) -> Reply:
        return Reply(F.query_order(self._find(account, params)))

    def cancel(self, account: str, params: Mapping[str, str], id_prefix: str = "") -> Reply:
        rec = self._find(
            account,
            params,
            id_prefix + ("orderId" if not id_prefix else "OrderId"),
            "cancelOrigClientOrderId" if id_prefix else "origClientOrderId",
            (-2011, R.UNKNOWN_ORDER),
        )
        new_id_name = "cancelNewClientOrderId" if id_prefix else "newClientOrderId"
        return Reply(self._cancel(rec, client_id_param(params, new_id_name)))

    def _cancel(self, rec: F.OrderRecord, cancel_cid: str | None) -> dict[str, Any]:
        if not rec.state.status.is_open:
            raise bad_request(-2011, R.UNKNOWN_ORDER)
        now = self.clock()
        rec.cancel_client_id = cancel_cid or self.new_client_id()
        try:
            self.ledger.cancel(rec.symbol, rec.state.account, rec.state.order_id, now)
        except OrderNotFound:
            raise bad_request(-2011, R.UNKNOWN_ORDER) from None
        finally:
            cancel_id, rec.cancel_client_id = rec.cancel_client_id, ""
        return F.cancel_response(rec, cancel_id, now)

    def open_orders(self, account: str, symbol: str | None) -> list[F.OrderRecord]:
        return sorted(
            (
                r
                for r in self.records.values()
                if r.state.account == account
                and r.state.status.is_open
                and (symbol is None or r.symbol == symbol)
            ),
            key=lambda r: (r.symbol, r.state.order_id),
        )

    def all_orders(self, account: str, params: Mapping[str, str]) -> Reply:
        """GET /api/v3/allOrders (binance.md §4): every order of one symbol the venue kept,
        open or not, oldest first. With `orderId` (orders >= it) or `startTime` the window
        starts there; otherwise the most recent `limit` (default 500, max 1000)."""
        sym = self._symbol(params)
        order_id = int_param(params, "orderId")
        start = int_param(params, "startTime")
        end = int_param(params, "endTime")
        if start is not None and end is not None and end - start > _DAY_MS:
            raise bad_request(-1127, R.MORE_THAN_24H)
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = sorted(
            (
                r
                for r in self.records.values()
                if r.state.account == account
                and r.symbol == sym.symbol
                and (order_id is None or r.state.order_id >= order_id)
                and (start is None or r.state.created_ms >= start)
                and (end is None or r.state.created_ms <= end)
            ),
            key=lambda r: r.state.order_id,
        )
        kept = rows[:limit] if order_id is not None or start is not None else rows[-limit:]
        return Reply([F.query_order(r) for r in kept])

    def cancel_all(self, account: str, params: Mapping[str, str]) -> Reply:
        sym = self._symbol(params)
        recs = self.open_orders(account, sym.symbol)
        if not recs:
            raise bad_request(-2011, R.UNKNOWN_ORDER)
        return Reply([self._cancel(r, None) for r in recs])

    def cancel_replace(self, account: str, params: Mapping[str, str]) -> Reply:
        mode = params.get("cancelReplaceMode") or ""
        if not mode:
            raise mandatory("cancelReplaceMode")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise bad_request(
                -1100, R.ILLEGAL_NUMBER % ("cancelReplaceMode", "^(STOP_ON_FAILURE|ALLOW_FAILURE)$")
            )
        self.validate(account, params)  # malformed new-order parameters fail before anything
        cancel: dict[str, Any] | ApiError
        try:
            cancel = self.cancel(account, params, id_prefix="cancel").body
        except ApiError as err:
            cancel = err
        if isinstance(cancel, ApiError) and mode == "STOP_ON_FAILURE":
            raise ApiError(
                400,
                -2022,
                R.CANCEL_REPLACE_FAILED,
                {
                    "cancelResult": "FAILURE",
                    "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": cancel.body(),
                    "newOrderResponse": None,
                },
            )
        new: dict[str, Any] | ApiError
        try:
            new = self.place(account, params).body
        except ApiError as err:
            new = err
        data = {
            "cancelResult": "FAILURE" if isinstance(cancel, ApiError) else "SUCCESS",
            "newOrderResult": "FAILURE" if isinstance(new, ApiError) else "SUCCESS",
            "cancelResponse": cancel.body() if isinstance(cancel, ApiError) else cancel,
            "newOrderResponse": new.body() if isinstance(new, ApiError) else new,
        }
        if isinstance(cancel, ApiError) and isinstance(new, ApiError):
            raise ApiError(400, -2022, R.CANCEL_REPLACE_FAILED, data)
        if isinstance(cancel, ApiError) or isinstance(new, ApiError):
            raise ApiError(409, -2021, R.CANCEL_REPLACE_PARTIAL, data)
        return Reply(data, placed=True)

    def amend_keep_priority(self, account: str, params: Mapping[str, str]) -> Reply:
        rec = self._find(account, params, missing=(-2011, R.UNKNOWN_ORDER))
        new_qty = decimal_param(params, "newQty")
        if new_qty is None:
            raise mandatory("newQty")
        sym = self.symbols[rec.symbol]
        if new_qty <= 0 or new_qty % sym.step_size:
            raise bad_request(-1013, "Filter failure: LOT_SIZE")
        steps = int(new_qty / sym.step_size)
        if steps >= rec.state.qty:
            raise bad_request(-2038, R.AMEND_INCREASE)
        if not rec.state.status.is_open:
            raise bad_request(-2011, R.UNKNOWN_ORDER)
        new_cid = client_id_param(params, "newClientOrderId")
        orig = rec.client_id
        if new_cid is not None and new_cid != orig:
            rec.prev_client_id, rec.client_id = orig, new_cid
            self._by_client[(account, rec.symbol, new_cid)] = rec.state.order_id
        now = self.clock()
        try:
            self.ledger.amend(rec.symbol, account, rec.state.order_id, now, qty=steps)
        except (AmendRejected, OrderNotFound) as exc:
            raise bad_request(-2011, R.UNKNOWN_ORDER) from exc
        return Reply(F.amend_response(rec, orig, now, self._exec_ids[rec.symbol]))

    def my_trades(self, account: str, params: Mapping[str, str]) -> Reply:
        sym = self._symbol(params)
        order_id = int_param(params, "orderId")
        from_id = int_param(params, "fromId")
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = [
            t
            for t in self._trades.get(account, [])
            if t["symbol"] == sym.symbol
            and (order_id is None or t["orderId"] == order_id)
            and (from_id is None or t["id"] >= from_id)
        ]
        return Reply(rows[:limit] if from_id is not None else rows[-limit:])

    # ------------------------------------------------------------ book events
    def _on_batch(self, batch: Batch) -> None:
        touched: dict[str, set[str]] = {}
        inst = self.instruments[batch.symbol]
        for event in batch.order_events:
            state = event.order
            if state.account not in self.ledger.accounts:
                continue  # the market agents
            key = (batch.symbol, state.order_id)
            rec = self.records.get(key)
            if rec is None:
                type_name, quote_units = self._pending or ("LIMIT", 0)
                rec = self.records[key] = F.OrderRecord(
                    batch.symbol, type_name, state, inst, state.client_id, quote_units
                )
                self._by_client[(state.account, batch.symbol, state.client_id)] = state.order_id
            rec.state = state
            if event.exec_type is ExecType.REJECTED:
                continue  # refused before the engine: Binance sends no executionReport
            self._exec_ids[batch.symbol] += 1
            self.sink(
                state.account,
                F.execution_report(rec, event, self._exec_ids[batch.symbol], batch.time_ms),
            )
            if event.fill is not None:
                log = self._trades.setdefault(state.account, [])
                log.append(F.my_trade(rec, event.fill, event.time_ms))
                del log[:-MAX_TRADES_KEPT]
            touched.setdefault(state.account, set()).update((inst.base, inst.quote))
        for account, assets in touched.items():
            self._position(account, assets, batch.time_ms)
