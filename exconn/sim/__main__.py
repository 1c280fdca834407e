import sys

from exconn.sim.standalone import run_standalone

sys.exit(run_standalone())
