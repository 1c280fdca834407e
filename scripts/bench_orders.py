"""Place-to-ack latency through the order actors, against a bare signed httpx request.

The simulator (Binance spot, or Bybit spot with ``--venue bybit``) runs in a process of its
own (``--sim-in-process``: a thread of this one) with its market paused. exconn is started
with the simulator's first account; every order is a small limit buy 10 % under the bid, so
it rests. For each of ``--orders`` rounds the script times, on the wall clock:

- an ask of ``PlaceOrder`` (``ex.system.ask``) to the exchange's OrderCommand, at the address
  the root gives (``ex.order_entry``: what an engine actor gets with ``GetOrderEntry``), or with
  ``--via root`` to the root, which hands it on: validation, intent journal, the signed
  request (exconn's RestClient, or with ``--entry ws`` the venue's order WebSocket) and the
  ``OrderAccepted`` back to the asker;
- a bare ``POST /api/v3/order`` (Bybit ``POST /v5/order/create``) with httpx (one kept-alive
  connection), signed with exconn's own signer, for a second account (the venues limit
  orders per account: the two never share a budget).

The two alternate (and which goes first alternates), so both see the same machine. Orders
are paced under the venue's order limit (Binance spot 50 per 10 s, Bybit spot 20 per s, of
which exconn's request budget uses 90 %): an unpaced run would measure the budget's waits,
not the path. Afterwards the venue's open orders and OrderQuery's open orders are compared
with the client ids acknowledged: nothing lost (an acknowledged id the venue or the read
model lacks), nothing duplicated (an id twice).

    .venv/bin/python scripts/bench_orders.py                 # 1,000 orders, about 4.5 minutes
    .venv/bin/python scripts/bench_orders.py --venue bybit   # about 2.5 minutes
    .venv/bin/python scripts/bench_orders.py --orders 200 --via root --entry rest

Defaults: the order entry (``--via entry``) and the venue's order WebSocket (``--entry ws``),
the fastest configuration exconn offers an engine; the others are one flag away.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import threading
import time
from collections import Counter
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any
from urllib.parse import urlencode

import httpx

import exconn
from exconn.actors.order_messages import GetOpenOrders, OrdersView
from exconn.actors.root import TreeStatus
from exconn.actors.supervisor import SupervisorStatus
from exconn.messages import GetStatus, OrderAccepted, PlaceOrder
from exconn.model.enums import Market, OrderSide, OrderType
from exconn.model.instruments import Instrument
from exconn.sim import BinanceSpotSim, BybitSim
from exconn.venues.binance import endpoints as binance_endpoints
from exconn.venues.binance.signing import encode_params as binance_encode
from exconn.venues.bybit import endpoints as bybit_endpoints
from exconn.venues.driver import driver_for, venue_rest_client
from exconn.venues.keys import Credentials

ASK_S = 30.0


@dataclass(frozen=True)
class VenueSpec:
    exchange: str
    market: Market
    symbol: str
    venue_symbol: str
    rate: float  # default rounds per second: under 90 % of the venue's order limit


VENUES = {
    # Binance spot: 50 orders per 10 s per account.
    "binance": VenueSpec("binance", Market.SPOT, "BTC/USDT", "BTCUSDT", 4.0),
    # Bybit spot: order/create 20 per s per UID.
    "bybit": VenueSpec("bybit", Market.SPOT, "BTC/USDT", "BTCUSDT", 8.0),
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def instrument(spec: VenueSpec, rest_url: str) -> Instrument:
    driver = driver_for(spec.exchange)
    rest = venue_rest_client(spec.exchange, spec.market, rest_url)
    try:
        catalog = driver.load_catalog(spec.market, rest.get)
    finally:
        rest.close()
    return next(i for i in catalog.instruments if i.symbol == spec.symbol)


def resting(inst: Instrument, bid: Decimal) -> tuple[Decimal, Decimal]:
    """(price, qty): 10 % under the bid, twice the minimum notional."""
    price = (bid * Decimal("0.9") / inst.tick_size).to_integral_value(ROUND_DOWN)
    price *= inst.tick_size
    qty = inst.min_qty
    if inst.min_notional is not None and qty * price < inst.min_notional * 2:
        steps = (inst.min_notional * 2 / price / inst.step_size).to_integral_value(ROUND_UP)
        qty = steps * inst.step_size
    return price, qty


def order_actors(ex: exconn.Exconn, exchange: str) -> SupervisorStatus | None:
    tree = ex.system.ask(ex.root, GetStatus(), 5)
    if not isinstance(tree, TreeStatus) or exchange not in tree.supervisors:
        return None
    sup = ex.system.ask(tree.supervisors[exchange], GetStatus(), 5)
    if isinstance(sup, SupervisorStatus) and sup.order_query and sup.order_command:
        return sup
    return None


class BinanceBare:
    """A signed POST /api/v3/order with nothing around it but httpx and exconn's signer."""

    def __init__(self, base_url: str, credentials: Credentials, symbol: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.signer = binance_endpoints.RestSigner(credentials)
        self.symbol = symbol

    def place(self, cid: str, price: Decimal, qty: Decimal) -> bool:
        query = binance_encode(
            [
                ("symbol", self.symbol),
                ("side", "BUY"),
                ("type", "LIMIT"),
                ("timeInForce", "GTC"),
                ("quantity", str(qty)),
                ("price", str(price)),
                ("newClientOrderId", cid),
                ("newOrderRespType", "RESULT"),  # as exconn asks
            ]
        )
        signed, headers = self.signer.sign(query, "", now_ms())
        return self.http.post(f"/api/v3/order?{signed}", headers=headers).status_code == 200

    def open_ids(self) -> list[str]:
        signed, headers = self.signer.sign(binance_encode([("symbol", self.symbol)]), "", now_ms())
        response = self.http.get(f"/api/v3/openOrders?{signed}", headers=headers)
        response.raise_for_status()
        return [row["clientOrderId"] for row in response.json()]

    def close(self) -> None:
        self.http.close()


class BybitBare:
    """A signed POST /v5/order/create (JSON body) with httpx and exconn's signer."""

    def __init__(self, base_url: str, credentials: Credentials, symbol: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=10)
        self.signer = bybit_endpoints.RestSigner(credentials)
        self.symbol = symbol

    def place(self, cid: str, price: Decimal, qty: Decimal) -> bool:
        body = json.dumps(
            {
                "category": "spot",
                "symbol": self.symbol,
                "side": "Buy",
                "orderType": "Limit",
                "qty": str(qty),
                "price": str(price),
                "timeInForce": "GTC",
                "orderLinkId": cid,
            },
            separators=(",", ":"),
        )
        _, headers = self.signer.sign("", body, now_ms())
        headers["Content-Type"] = "application/json"
        response = self.http.post("/v5/order/create", content=body, headers=headers)
        return response.status_code == 200 and response.json().get("retCode") == 0

    def open_ids(self) -> list[str]:
        ids: list[str] = []
        cursor = ""
        for _ in range(1000):  # 50 a page
            params = {"category": "spot", "symbol": self.symbol, "limit": "50"}
            if cursor:
                params["cursor"] = cursor
            query = urlencode(params)
            _, headers = self.signer.sign(query, "", now_ms())
            result = self.http.get(f"/v5/order/realtime?{query}", headers=headers).json()
            ids += [row["orderLinkId"] for row in result["result"]["list"]]
            cursor = result["result"].get("nextPageCursor") or ""
            if not cursor:
                break
        return ids

    def close(self) -> None:
        self.http.close()


def serve_sim(exchange: str, venue_symbol: str, conn: Any) -> None:
    """The simulator with its market paused and two funded accounts; tells ``conn`` where it
    is and who trades, then serves until ``conn`` says stop (or closes)."""
    with contextlib.ExitStack() as stack:
        if exchange == "binance":
            sim: Any = stack.enter_context(BinanceSpotSim(seed=9, depth_interval_ms=100))
            sim.pause()
            engine, other = sim.api_keys(0), sim.api_keys(1)
            for keys in (engine, other):
                sim.deposit(keys, "USDT", "100000000")
            _, bids, _ = sim.book(venue_symbol)
            keys_of = ((engine.hmac_key, engine.hmac_secret), (other.hmac_key, other.hmac_secret))
        else:
            sim = stack.enter_context(BybitSim(seed=9, depth_interval_ms=100))
            sim.pause()
            sim.step(1)  # publish a book to price from
            keys_of = (sim.api_keys()[0], sim.add_account("bench-bare"))
            _, bids, _ = sim.book("spot", venue_symbol)
        conn.send((sim.rest_url, sim.ws_url, keys_of, str(bids[0][0])))
        with contextlib.suppress(EOFError):
            conn.recv()


class Bench:
    """The simulator, two funded accounts (the engine's, the bare client's) and exconn."""

    def __init__(
        self, spec: VenueSpec, stack: contextlib.ExitStack, entry: str, sim_process: bool
    ) -> None:
        self.spec = spec
        if sim_process:
            # The venue is another machine in real life: here at least another process, so
            # that its work does not share this process's interpreter lock with the clients.
            ctx = multiprocessing.get_context("fork")
            here, there = ctx.Pipe()
            proc = ctx.Process(target=serve_sim, args=(spec.exchange, spec.venue_symbol, there))
            proc.start()
            stack.callback(proc.join, 30)
            stack.callback(here.send, "stop")
        else:
            here, there = multiprocessing.Pipe()
            thread = threading.Thread(
                target=serve_sim, args=(spec.exchange, spec.venue_symbol, there)
            )
            thread.start()
            stack.callback(thread.join, 30)
            stack.callback(here.send, "stop")
        if not here.poll(60):
            raise SystemExit("the simulator did not start in 60 s")
        rest_url, ws_url, (engine_keys, bare_keys), bid = here.recv()
        self.engine_creds = Credentials(engine_keys[0], secret=engine_keys[1])
        bare_creds = Credentials(bare_keys[0], secret=bare_keys[1])
        if spec.exchange == "binance":
            config = exconn.Config.for_sim(
                rest_url, ws_url, binance_keys=engine_keys, order_entry=entry, log_level="WARNING"
            )
            bare_cls: Any = BinanceBare
        else:
            config = exconn.Config.for_sim(
                None,
                None,
                bybit=(rest_url, ws_url),
                bybit_keys=engine_keys,
                bybit_markets=("spot",),
                order_entry=entry,
                log_level="WARNING",
            )
            bare_cls = BybitBare
        self.rest_url = rest_url
        self.inst = instrument(spec, rest_url)
        self.price, self.qty = resting(self.inst, Decimal(bid))
        self.bare = bare_cls(rest_url, bare_creds, spec.venue_symbol)
        stack.callback(self.bare.close)
        self.ex = exconn.start(config)
        stack.callback(self.ex.shutdown)

    def engine_open_ids(self) -> list[str]:
        """The engine account's open orders at the venue (read with a bare client)."""
        cls = type(self.bare)
        reader = cls(self.rest_url, self.engine_creds, self.spec.venue_symbol)
        try:
            ids: list[str] = reader.open_ids()
            return ids
        finally:
            reader.close()


def report(name: str, values_us: list[float]) -> None:
    cells = "  ".join(
        f"p{q * 100:g} {percentile(values_us, q) / 1000:6.3f} ms" for q in (0.5, 0.9, 0.99)
    )
    print(f"{name:<34}{cells}  (n={len(values_us)})")


def count_ids(ids: list[str], acked: list[str]) -> tuple[int, int]:
    """(lost, duplicated) client ids of ``acked`` in ``ids``."""
    seen = Counter(ids)
    wanted = set(acked)
    lost = sum(1 for cid in acked if seen[cid] == 0)
    duplicated = sum(n - 1 for cid, n in seen.items() if n > 1 and cid in wanted)
    return lost, duplicated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", choices=sorted(VENUES), default="binance")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument(
        "--rate", type=float, help="rounds per second (default: under the venue's order limit)"
    )
    parser.add_argument("--warmup", type=int, default=10, help="rounds not measured")
    parser.add_argument(
        "--entry",
        choices=("rest", "ws"),
        default="ws",
        help="exconn's order entry: REST, or the venue's order WebSocket (Binance spot WS API, "
        "Bybit /v5/trade); the bare client is always REST",
    )
    parser.add_argument(
        "--sim-in-process",
        action="store_true",
        help="run the simulator in this process (a thread) rather than its own process",
    )
    parser.add_argument(
        "--via",
        choices=("entry", "root"),
        default="entry",
        help="ask the OrderCommand at the address the root gives (ex.order_entry, an engine "
        "actor's GetOrderEntry), or ask the root, which hands the order on (one process hop "
        "more)",
    )
    args = parser.parse_args()
    spec = VENUES[args.venue]
    rate = args.rate or spec.rate
    through: list[float] = []
    bare: list[float] = []
    acked: list[str] = []
    bare_acked: list[str] = []
    other_replies: Counter[str] = Counter()
    with contextlib.ExitStack() as stack:
        bench = Bench(spec, stack, args.entry, not args.sim_in_process)
        ex = bench.ex
        deadline = time.monotonic() + 30
        # The order entry is known to the root once OrderCommand has started (its init done).
        while order_actors(ex, spec.exchange) is None or ex.order_entry(spec.exchange) is None:
            if time.monotonic() > deadline:
                raise SystemExit("the order actors did not start in 30 s")
            time.sleep(0.1)
        target = ex.order_entry(spec.exchange) if args.via == "entry" else ex.root
        next_at = time.monotonic()
        for i in range(args.warmup + args.orders):
            next_at += 1.0 / rate
            cid, bare_cid = f"bench-x-{i}", f"bench-b-{i}"
            place = PlaceOrder(
                spec.exchange, spec.market, spec.symbol, OrderSide.BUY, OrderType.LIMIT,
                bench.qty, bench.price, client_order_id=cid,
            )  # fmt: skip
            # The first request after the pause pays for waking the machine up (about 1 ms
            # here): who goes first alternates.
            if i % 2:
                t0 = time.perf_counter_ns()
                bare_ok = bench.bare.place(bare_cid, bench.price, bench.qty)
                t1 = time.perf_counter_ns()
                reply = ex.system.ask(target, place, ASK_S)
                t2 = time.perf_counter_ns()
                t_ask, t_bare = t2 - t1, t1 - t0
            else:
                t0 = time.perf_counter_ns()
                reply = ex.system.ask(target, place, ASK_S)
                t1 = time.perf_counter_ns()
                bare_ok = bench.bare.place(bare_cid, bench.price, bench.qty)
                t2 = time.perf_counter_ns()
                t_ask, t_bare = t1 - t0, t2 - t1
            if isinstance(reply, OrderAccepted):
                acked.append(cid)
            else:
                other_replies[type(reply).__name__] += 1
            if bare_ok:
                bare_acked.append(bare_cid)
            else:
                other_replies["bare: refused"] += 1
            if i >= args.warmup:
                through.append(t_ask / 1000)
                bare.append(t_bare / 1000)
            pause = next_at - time.monotonic()
            if pause > 0:
                time.sleep(pause)

        sup = order_actors(ex, spec.exchange)
        assert sup is not None
        view = ex.system.ask(sup.order_query, GetOpenOrders(spec.symbol, str(spec.market)), ASK_S)
        held = [o.client_order_id for o in view.orders] if isinstance(view, OrdersView) else []
        at_venue = bench.engine_open_ids()
        bare_at_venue = bench.bare.open_ids()

    print(
        f"{spec.exchange} {spec.market}: {args.orders} orders measured "
        f"(+{args.warmup} warm-up), {rate:g} rounds/s"
    )
    path = "OrderCommand" if args.via == "entry" else "the root"
    report(f"ask {path} ({args.entry}) -> ack", through)
    report("bare signed httpx POST", bare)
    diff = percentile(through, 0.5) - percentile(bare, 0.5)
    print(f"{'p50 difference':<34}{diff / 1000:.3f} ms (target <= 1.5 ms)")
    if other_replies:
        print(f"replies other than accepted: {dict(other_replies)}")
    lost, dup = count_ids(at_venue, acked)
    print(f"venue: {len(at_venue)} open orders; acked ids lost {lost}, duplicated {dup}")
    lost_q, dup_q = count_ids([c for c in held if c], acked)
    print(f"OrderQuery: {len(held)} open orders; acked ids lost {lost_q}, duplicated {dup_q}")
    lost_b, dup_b = count_ids(bare_at_venue, bare_acked)
    print(f"bare client: {len(bare_at_venue)} open orders; lost {lost_b}, duplicated {dup_b}")
    ok = not (lost or dup or lost_q or dup_q) and len(acked) == args.orders + args.warmup
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
