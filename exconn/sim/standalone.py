"""`python -m exconn.sim` / `exconn sim`: run a simulator in the foreground until a signal."""

import argparse
import signal
import sys
import threading
from types import FrameType

from exconn.sim.spot_sim import BinanceSpotSim


def _flood_arg(value: str) -> tuple[str, int]:
    symbol, sep, count = value.partition(":")
    if not sep or not symbol or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError("expected SYMBOL:N, e.g. BTCUSDT:100000")
    return symbol.upper(), int(count)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exconn.sim", description="Binance spot exchange simulator"
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: ephemeral)")
    parser.add_argument("--seed", type=int, default=1, help="market random seed")
    parser.add_argument(
        "--flood", type=_flood_arg, metavar="SYMBOL:N",
        help="pause the market and flood the first depth subscriber with N updates",
    )
    return parser


def _banner(sim: BinanceSpotSim, flood: tuple[str, int] | None) -> str:
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
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"  {name:<{width}}  {value}" for name, value in rows)


def run_standalone(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with BinanceSpotSim(seed=args.seed, port=args.port) as sim:
            if args.flood is not None:
                symbol, count = args.flood
                sim.pause()
                sim.prepare_flood(symbol, count)
            print("exconn Binance spot simulator", flush=True)
            print(_banner(sim, args.flood), flush=True)
            print(f"READY {sim.rest_url} {sim.ws_url}", flush=True)
            stop.wait()  # signal handlers run in this (main) thread and set the event
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.stdout.flush()
