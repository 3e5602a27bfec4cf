"""``python -m tandem.sim SCENARIOS --report DIR``: the same as ``tandem eval``."""

from tandem.sim.cli import app

app(prog_name="python -m tandem.sim")
