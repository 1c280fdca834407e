"""Exchange simulator: real wire protocols over real sockets on 127.0.0.1, for tests.

Written from the protocol reference only; it must never import the client side
(exconn.venues, transport, actors, model, book) so one misreading cannot hide on both
sides of a test.
"""

from exconn.sim.binance_usdm_sim import BinanceUsdmSim
from exconn.sim.bybit_sim import BybitSim
from exconn.sim.spot_sim import BinanceSpotSim
from exconn.sim.standalone import run_standalone
from exconn.sim.symbols import DEFAULT_SYMBOLS, SimSymbol

__all__ = [
    "DEFAULT_SYMBOLS",
    "BinanceSpotSim",
    "BinanceUsdmSim",
    "BybitSim",
    "SimSymbol",
    "run_standalone",
]
