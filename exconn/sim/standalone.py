"""`python -m exconn.sim` / `exconn sim`: serve the simulated venues in the foreground until a
signal: Binance spot, Binance USD-M and Bybit V5 (spot and linear), each on its own port."""

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from exconn.sim.binance_usdm_sim import BinanceUsdmSim
from exconn.sim.bybit_sim import BybitSim
from exconn.sim.spot_sim import BinanceSpotSim

VENUES = ("binance-spot", "binance-usdm", "bybit")
Row = tuple[str, str]


def _flood_arg(value: str) -> tuple[str, int]:
    symbol, sep, count = value.partition(":")
    if not sep or not symbol or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError("expected SYMBOL:N, e.g. BTCUSDT:100000")
    return symbol.upper(), int(count)


def _bybit_flood_arg(value: str) -> tuple[str, str, int]:
    category, sep, rest = value.partition(":")
    if not sep or category not in ("spot", "linear"):
        raise argparse.ArgumentTypeError("expected CATEGORY:SYMBOL:N, e.g. spot:BTCUSDT:100000")
    symbol, count = _flood_arg(rest)
    return category, symbol, count


def _venues_arg(value: str) -> tuple[str, ...]:
    chosen = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [v for v in chosen if v not in VENUES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"venues are a comma list of {', '.join(VENUES)}")
    return chosen


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exconn.sim",
        description="Exchange simulator: Binance spot, Binance USD-M and Bybit V5 on 127.0.0.1",
    )
    parser.add_argument(
        "--venues",
        type=_venues_arg,
        default=VENUES,
        metavar="LIST",
        help=f"comma list of venues to serve (default: {','.join(VENUES)})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="first TCP port; venues take consecutive ports in the order above "
        "(default: ephemeral ports)",
    )
    parser.add_argument("--seed", type=int, default=1, help="market random seed")
    parser.add_argument(
        "--flood",
        type=_flood_arg,
        metavar="SYMBOL:N",
        help="Binance spot: pause the market and flood the first depth subscriber with N updates",
    )
    parser.add_argument(
        "--bybit-flood",
        type=_bybit_flood_arg,
        metavar="CATEGORY:SYMBOL:N",
        help="Bybit: pause the market and flood the next subscriber of "
        "orderbook.200.SYMBOL on CATEGORY's channel with N updates",
    )
    return parser


def _spot_rows(sim: BinanceSpotSim, flood: tuple[str, int] | None) -> list[Row]:
    rows = [
        ("REST", f"{sim.rest_url}/api/v3/..."),
        ("WS raw", f"{sim.ws_url}/ws/<stream>  (or /ws, then SUBSCRIBE)"),
        ("WS combined", f"{sim.ws_url}/stream?streams=<s1>/<s2>"),
        ("WS API", f"{sim.ws_url}/ws-api/v3"),
        ("symbols", ", ".join(s.symbol for s in sim.symbols)),
    ]
    if flood is not None:
        rows.append(("flood", f"{flood[0]}: {flood[1]} updates for the first depth subscriber"))
    for keys in sim.accounts:
        rows.append((keys.account, f"HMAC key {keys.hmac_key} secret {keys.hmac_secret}"))
        rows.append(("", f"Ed25519 key {keys.ed25519_key} / RSA key {keys.rsa_key}"))
    return rows


def _usdm_rows(sim: BinanceUsdmSim) -> list[Row]:
    rows = [
        ("REST", f"{sim.rest_url}/fapi/v1/..."),
        ("WS public", f"{sim.ws_url}/public/stream?streams=<s>@depth/<s>@bookTicker"),
        ("WS market", f"{sim.ws_url}/market/stream?streams=<s>@aggTrade/<s>@markPrice"),
        ("WS private", f"{sim.ws_url}/private/ws?listenKey=<key>"),
        ("symbols", ", ".join(s.symbol for s in sim.symbols)),
    ]
    rows += [("HMAC key", f"{key} secret {secret}") for key, secret in sim.api_keys()]
    return rows


def _bybit_rows(sim: BybitSim, flood: tuple[str, str, int] | None) -> list[Row]:
    rows = [
        ("REST", f"{sim.rest_url}/v5/..."),
        ("WS public", f"{sim.ws_url}/v5/public/spot  and  {sim.ws_url}/v5/public/linear"),
        ("WS private", f"{sim.ws_url}/v5/private"),
    ]
    if flood is not None:
        category, symbol, count = flood
        rows.append(("flood", f"{category} orderbook.200.{symbol}: {count} updates"))
    rows += [("HMAC key", f"{key} secret {secret}") for key, secret in sim.api_keys()]
    return rows


def _table(title: str, rows: list[Row]) -> str:
    width = max(len(name) for name, _ in rows)
    return "\n".join([title, *(f"  {name:<{width}}  {value}" for name, value in rows)])


@contextlib.contextmanager
def _serve(args: argparse.Namespace) -> Iterator[list[str]]:
    """Start the chosen venues; yields the lines to print. Everything stops on exit."""
    with contextlib.ExitStack() as stack:
        port = args.port
        out: list[str] = []

        def next_port() -> int:
            nonlocal port
            chosen = port
            if port:
                port += 1
            return chosen

        starters: dict[str, Callable[[], None]] = {}

        def spot() -> None:
            sim: Any = stack.enter_context(BinanceSpotSim(seed=args.seed, port=next_port()))
            if args.flood is not None:
                sim.pause()
                sim.prepare_flood(*args.flood)
            out.append(_table("Binance spot", _spot_rows(sim, args.flood)))
            out.append(f"VENUE binance-spot {sim.rest_url} {sim.ws_url}")

        def usdm() -> None:
            sim: Any = stack.enter_context(BinanceUsdmSim(seed=args.seed, port=next_port()))
            out.append(_table("Binance USD-M", _usdm_rows(sim)))
            out.append(f"VENUE binance-usdm {sim.rest_url} {sim.ws_url}")

        def bybit() -> None:
            sim: Any = stack.enter_context(BybitSim(seed=args.seed, port=next_port()))
            if args.bybit_flood is not None:
                sim.pause()
                sim.prepare_flood(*args.bybit_flood)
            out.append(_table("Bybit V5 (spot, linear)", _bybit_rows(sim, args.bybit_flood)))
            out.append(f"VENUE bybit {sim.rest_url} {sim.ws_url}")

        starters.update({"binance-spot": spot, "binance-usdm": usdm, "bybit": bybit})
        for venue in VENUES:
            if venue in args.venues:
                starters[venue]()
        yield out


def run_standalone(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.flood is not None and "binance-spot" not in args.venues:
        _parser().error("--flood needs the binance-spot venue")
    if args.bybit_flood is not None and "bybit" not in args.venues:
        _parser().error("--bybit-flood needs the bybit venue")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with _serve(args) as lines:
            ready = [line for line in lines if line.startswith(("READY", "VENUE"))]
            print("exconn exchange simulator (127.0.0.1 only; test keys below)", flush=True)
            for line in lines:
                if not line.startswith(("READY", "VENUE")):
                    print(line, flush=True)
            for line in sorted(ready, key=lambda x: not x.startswith("READY")):
                print(line, flush=True)
            if not any(line.startswith("READY") for line in ready):
                print(
                    ready[0].replace("VENUE", "READY", 1).split(" ", 2)[0]
                    + " "
                    + ready[0].split(" ", 2)[2],
                    flush=True,
                )
            stop.wait()  # signal handlers run in this (main) thread and set the event
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.stdout.flush()
