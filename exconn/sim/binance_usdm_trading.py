"""USD-M accounts: orders through the shared ledger, listenKeys, and user-stream events.

The ledger (exconn.sim.accounts) sits on the same matching engines the market agents trade
in, so a user's fills, the public trades and the depth diffs are one history. This class
listens to the engines after the ledger (it settles first), keeps every user order it has
seen (closed ones stay queryable), and turns each batch into ORDER_TRADE_UPDATE and
ACCOUNT_UPDATE events for the account's listenKey.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from exconn.sim.accounts import FeeRates, Instrument, Ledger, LedgerError, Position
from exconn.sim.binance_usdm_orders import (
    DUPLICATE_CLIENT_ID,
    NO_NEED_TO_MODIFY,
    NO_SUCH_ORDER,
    UNKNOWN_ORDER,
    ApiError,
    below_min_notional,
    parse_order,
    rejection,
)
from exconn.sim.binance_usdm_symbols import ContractFormat
from exconn.sim.binance_usdm_user import (
    account_position,
    account_update,
    order_body,
    order_trade_update,
    position_risk,
    signed_units,
    user_trade,
)
from exconn.sim.matching import (
    AmendRejected,
    Batch,
    ExecType,
    OrderBook,
    OrderNotFound,
    OrderState,
    OrderStatus,
    OrderType,
    PositionSide,
    Side,
)
from exconn.sim.symbols import SimSymbol

USDM_FEES = FeeRates(maker=Decimal("0.0002"), taker=Decimal("0.0005"))
LISTEN_KEY_VALIDITY_MS = 60 * 60 * 1000
SETTLE = "USDT"
MAX_TRADES_KEPT = 10_000  # per account; userTrades serves from these
USER_TRADES_WINDOW_MS = 7 * 24 * 3600 * 1000  # userTrades: default and widest time window

UserSink = Callable[[str, dict[str, Any]], None]  # (account, event)


@dataclass(slots=True)
class ListenKey:
    key: str
    account: str
    expires_ms: int


class Trading:
    def __init__(
        self,
        symbols: dict[str, SimSymbol],
        fmts: dict[str, ContractFormat],
        engines: dict[str, OrderBook],
        mark: Callable[[str], int],
        now_ms: Callable[[], int],
        sink: UserSink,
        seed: int,
        listen_key_validity_ms: int = LISTEN_KEY_VALIDITY_MS,
    ) -> None:
        self.symbols = symbols
        self.fmts = fmts
        self.ledger = Ledger(
            engines, [Instrument.from_symbol(s, linear=True) for s in symbols.values()]
        )
        self._mark = mark
        self._now = now_ms
        self._sink = sink
        self._rng = random.Random(f"{seed}/usdm/ids")
        self.listen_key_validity_ms = listen_key_validity_ms
        self.orders: dict[tuple[str, int], OrderState] = {}
        self._open_cids: dict[tuple[str, str, str], int] = {}
        self._shadow: dict[tuple[str, str, PositionSide], Position] = {}
        self.position_times: dict[tuple[str, str, PositionSide], int] = {}
        self.listen_keys: dict[str, ListenKey] = {}
        self._trades: dict[str, list[dict[str, Any]]] = {}  # account -> userTrades rows
        self._cid_counter = 0
        for symbol, book in engines.items():
            book.subscribe(lambda batch, s=symbol: self._on_batch(s, batch))

    # ---------------------------------------------------------------- accounts
    def open_account(self, account: str, wallet: Decimal, hedge_mode: bool) -> None:
        self.ledger.open_account(
            account, wallets={SETTLE: wallet}, fees=USDM_FEES, hedge_mode=hedge_mode
        )

    def is_user(self, account: str) -> bool:
        return account in self.ledger.accounts

    # ------------------------------------------------------------------ orders
    def place(self, account: str, symbol: str, params: dict[str, str]) -> dict[str, Any] | ApiError:
        sym, fmt = self.symbols[symbol], self.fmts[symbol]
        hedge = self.ledger.account(account).hedge_mode
        self._cid_counter += 1
        auto = f"sim{self._rng.getrandbits(64):016x}"
        request = parse_order(account, sym, fmt, params, hedge, auto)
        if isinstance(request, ApiError):
            return request
        if (account, symbol, request.client_id) in self._open_cids:
            return DUPLICATE_CLIENT_ID
        price = request.price if request.price is not None else self._mark(symbol)
        closing = request.reduce_only or (
            hedge and (request.position_side is PositionSide.LONG) == (request.side is Side.SELL)
        )
        if not closing and below_min_notional(sym, fmt, price, request.qty):
            return ApiError(
                -4164,
                f"Order's notional must be no smaller than {sym.min_notional} "
                "(unless you choose reduce only).",
            )
        batch = self.ledger.submit(symbol, request, self._now())
        assert batch.order is not None
        if batch.order.status is OrderStatus.REJECTED:
            reason = next(e.reason for e in batch.order_events if e.exec_type is ExecType.REJECTED)
            return rejection(reason)
        return order_body(fmt, batch.order)

    def find(self, account: str, symbol: str, params: dict[str, str]) -> OrderState | ApiError:
        raw_id, cid = params.get("orderId"), params.get("origClientOrderId")
        if not raw_id and not cid:
            return ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
        if raw_id:
            if not raw_id.isascii() or not raw_id.isdigit():
                return ApiError(-1100, "Illegal characters found in parameter 'orderId'.")
            state = self.orders.get((symbol, int(raw_id)))
        else:
            matches = [
                o
                for (s, _), o in self.orders.items()
                if s == symbol and o.client_id == cid and o.account == account
            ]
            open_first = sorted(matches, key=lambda o: (o.status.is_open, o.order_id))
            state = open_first[-1] if open_first else None
        if state is None or state.account != account:
            return NO_SUCH_ORDER
        return state

    def cancel(
        self, account: str, symbol: str, params: dict[str, str]
    ) -> dict[str, Any] | ApiError:
        found = self.find(account, symbol, params)
        if isinstance(found, ApiError):
            return UNKNOWN_ORDER if found is NO_SUCH_ORDER else found
        try:
            batch = self.ledger.cancel(symbol, account, found.order_id, self._now())
        except (OrderNotFound, LedgerError):
            return UNKNOWN_ORDER
        assert batch.order is not None
        return order_body(self.fmts[symbol], batch.order)

    def cancel_all(self, account: str, symbol: str) -> None:
        self.ledger.cancel_all(symbol, account, self._now())

    def amend(self, account: str, symbol: str, params: dict[str, str]) -> dict[str, Any] | ApiError:
        fmt = self.fmts[symbol]
        for name in ("side", "quantity", "price"):
            if not params.get(name):
                return ApiError(
                    -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
        found = self.find(account, symbol, params)
        if isinstance(found, ApiError):
            return found
        qty, price = fmt.parse_qty(params["quantity"]), fmt.parse_price(params["price"])
        if qty is None or price is None:
            return ApiError(-1111, "Precision is over the maximum defined for this asset.")
        if params["side"] != found.side.value:
            return ApiError(-4111, "Order side does not match.")  # wording UNCONFIRMED
        if not found.status.is_open:
            return ApiError(-2013, "Order does not exist.")
        if found.type is not OrderType.LIMIT:
            return ApiError(-4000, "Invalid order status.")
        if qty == found.qty and price == found.price:
            return NO_NEED_TO_MODIFY
        try:
            batch = self.ledger.amend(symbol, account, found.order_id, self._now(), qty, price)
        except OrderNotFound:
            return NO_SUCH_ORDER
        except AmendRejected as exc:
            return rejection(exc.reason)
        assert batch.order is not None
        return order_body(fmt, batch.order)

    def open_orders(self, account: str, symbol: str | None) -> list[dict[str, Any]]:
        names = [symbol] if symbol else list(self.symbols)
        return [
            order_body(self.fmts[s], o)
            for s in names
            for o in self.ledger.books[s].open_orders(account)
        ]

    def user_trades(
        self, account: str, symbol: str, params: dict[str, str]
    ) -> list[dict[str, Any]] | ApiError:
        """``GET /fapi/v1/userTrades``: the account's fills of ``symbol``, oldest first.
        ``fromId``: from that trade id on (not with a time range); otherwise the newest
        ``limit`` of the window ``startTime``..``endTime`` (at most 7 days; without either,
        the last 7 days); ``orderId``: that order's only."""
        numbers: dict[str, int | None] = {}
        for name in ("orderId", "startTime", "endTime", "fromId", "limit"):
            raw = params.get(name)
            if raw is not None and (not raw.isascii() or not raw.isdigit()):
                return ApiError(-1100, f"Illegal characters found in parameter '{name}'.")
            numbers[name] = int(raw) if raw is not None else None
        start, end, from_id = numbers["startTime"], numbers["endTime"], numbers["fromId"]
        order_id = numbers["orderId"]
        limit = min(max(numbers["limit"] or 500, 1), 1000)
        if from_id is not None and (start is not None or end is not None):
            # binance.md: fromId cannot be sent with startTime or endTime (code UNCONFIRMED)
            return ApiError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None and end - start > USER_TRADES_WINDOW_MS:
            return ApiError(-1127, "More than 7 days between startTime and endTime.")
        rows = [
            t
            for t in self._trades.get(account, [])
            if t["symbol"] == symbol and (order_id is None or t["orderId"] == order_id)
        ]
        if from_id is not None:
            return [t for t in rows if t["id"] >= from_id][:limit]
        if start is None and end is None:
            end = self._now()
        if start is None:
            assert end is not None
            start = end - USER_TRADES_WINDOW_MS
        if end is None:
            end = start + USER_TRADES_WINDOW_MS
        return [t for t in rows if start <= t["time"] <= end][-limit:]

    # --------------------------------------------------------------- positions
    def positions(self, account: str, symbol: str | None, only_open: bool) -> list[dict[str, Any]]:
        acct = self.ledger.account(account)
        sides = (PositionSide.LONG, PositionSide.SHORT) if acct.hedge_mode else (PositionSide.BOTH,)
        out = []
        for s in [symbol] if symbol else list(self.symbols):
            for ps in sides:
                pos = acct.positions.get((s, ps), Position())
                if only_open and not pos.size:
                    continue
                out.append(
                    position_risk(
                        self.fmts[s],
                        pos,
                        ps.value,
                        self.ledger.leverage(acct, s),
                        self._mark(s),
                        self.position_times.get((account, s, ps), 0),
                    )
                )
        return out

    def set_leverage(self, account: str, symbol: str, leverage: int) -> dict[str, Any] | ApiError:
        try:
            self.ledger.set_leverage(account, symbol, leverage)
        except LedgerError:
            return ApiError(-4028, f"Leverage {leverage} is not valid")
        return {"leverage": leverage, "maxNotionalValue": "1000000", "symbol": symbol}

    def set_dual(self, account: str, dual: bool) -> dict[str, Any] | ApiError:
        acct = self.ledger.account(account)
        if acct.hedge_mode == dual:
            return ApiError(-4059, "No need to change position side.")
        try:
            self.ledger.set_hedge_mode(account, dual)
        except LedgerError as exc:
            if "orders" in str(exc):
                return ApiError(
                    -4067, "Position side cannot be changed if there exists open orders."
                )
            return ApiError(-4068, "Position side cannot be changed if there exists position.")
        return {"code": 200, "msg": "success"}

    def balance(self, account: str) -> list[dict[str, Any]]:
        wallet = self.ledger.account(account).wallets.get(SETTLE, 0)
        available = self.ledger.available(account, SETTLE)
        return [
            {
                "accountAlias": "SgsR",
                "asset": SETTLE,
                "balance": signed_units(wallet),
                "crossWalletBalance": signed_units(wallet),
                "crossUnPnl": "0.00000000",
                "availableBalance": signed_units(available),
                "maxWithdrawAmount": signed_units(max(available, 0)),
                "marginAvailable": True,
                "updateTime": self._now(),
            }
        ]

    # ------------------------------------------------------------- listen keys
    def listen_key_for(self, account: str) -> ListenKey | None:
        return next((k for k in self.listen_keys.values() if k.account == account), None)

    def create_listen_key(self, account: str) -> str:
        existing = self.listen_key_for(account)
        if existing is not None:  # POST on an account with a key returns it, extended
            existing.expires_ms = self._now() + self.listen_key_validity_ms
            return existing.key
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        key = "".join(self._rng.choice(alphabet) for _ in range(64))
        self.listen_keys[key] = ListenKey(key, account, self._now() + self.listen_key_validity_ms)
        return key

    def keepalive(self, account: str) -> str | None:
        existing = self.listen_key_for(account)
        if existing is None:
            return None
        existing.expires_ms = self._now() + self.listen_key_validity_ms
        return existing.key

    def close_listen_key(self, account: str) -> bool:
        existing = self.listen_key_for(account)
        if existing is None:
            return False
        del self.listen_keys[existing.key]
        return True

    def expire_due(self, now_ms: int) -> list[ListenKey]:
        due = [k for k in self.listen_keys.values() if k.expires_ms <= now_ms]
        for k in due:
            del self.listen_keys[k.key]
        return due

    def expire_now(self, key: str) -> ListenKey | None:
        return self.listen_keys.pop(key, None)

    # ------------------------------------------------------------------ events
    def _on_batch(self, symbol: str, batch: Batch) -> None:
        fmt = self.fmts[symbol]
        now = self._now()
        touched: dict[str, list[PositionSide]] = {}
        updates: list[tuple[str, dict[str, Any]]] = []
        for event in batch.order_events:
            o = event.order
            if not self.is_user(o.account) or event.exec_type is ExecType.REJECTED:
                continue
            self.orders[(symbol, o.order_id)] = o
            cid_key = (o.account, symbol, o.client_id)
            if o.status.is_open:
                self._open_cids[cid_key] = o.order_id
            elif self._open_cids.get(cid_key) == o.order_id:
                del self._open_cids[cid_key]
            realised = 0
            if event.fill is not None:
                pkey = (o.account, symbol, o.position_side)
                shadow = self._shadow.setdefault(pkey, Position())
                realised = fmt.notional_units(
                    shadow.trade(o.side, event.fill.qty, event.fill.price)
                )
                self.position_times[pkey] = batch.time_ms
                log = self._trades.setdefault(o.account, [])
                log.append(user_trade(fmt, o, event.fill, realised, batch.time_ms))
                del log[:-MAX_TRADES_KEPT]
                sides = touched.setdefault(o.account, [])
                if o.position_side not in sides:
                    sides.append(o.position_side)
            bids, asks = self._open_notional(o.account, symbol)
            updates.append(
                (
                    o.account,
                    order_trade_update(
                        fmt,
                        o,
                        event.exec_type,
                        event.reason,
                        event.fill,
                        realised,
                        bids,
                        asks,
                        now,
                        batch.time_ms,
                    ),
                )
            )
        for account, payload in updates:
            self._sink(account, payload)
        for account, sides in touched.items():
            acct = self.ledger.account(account)
            mark = self._mark(symbol)
            positions = [
                account_position(fmt, acct.position(symbol, ps), ps.value, mark) for ps in sides
            ]
            self._sink(
                account,
                account_update(
                    SETTLE, acct.wallets.get(SETTLE, 0), positions, "ORDER", now, batch.time_ms
                ),
            )

    def _open_notional(self, account: str, symbol: str) -> tuple[int, int]:
        bids = asks = 0
        for o in self.ledger.books[symbol].open_orders(account):
            notional = (o.price or 0) * o.leaves
            if o.side is Side.BUY:
                bids += notional
            else:
                asks += notional
        return bids, asks
