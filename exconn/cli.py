"""The ``exconn`` command: ``exconn demo`` and ``exconn sim``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="exconn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the simulator and print books and trades")
    demo.add_argument("--seconds", type=float, default=10.0, help="how long to run (default 10)")
    demo.add_argument(
        "--symbols",
        default="BTC/USDT,ETH/USDT",
        help="comma-separated symbols (default BTC/USDT,ETH/USDT)",
    )
    demo.add_argument("--seed", type=int, default=7, help="simulator seed")
    sub.add_parser(
        "sim", help="serve the exchange simulator (arguments: exconn sim --help)", add_help=False
    )
    if argv and argv[0] == "sim":
        from exconn.sim import run_standalone

        return run_standalone(argv[1:])
    args = parser.parse_args(argv)
    if args.command == "demo":
        from exconn.demo import run

        symbols = tuple(s.strip() for s in args.symbols.split(",") if s.strip())
        return run(seconds=args.seconds, symbols=symbols, seed=args.seed)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
