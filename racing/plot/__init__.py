"""Plotting: the only place that imports matplotlib (with the non-interactive Agg backend).

Each module turns a result object into figures: :mod:`racing.plot.race` (SimResult),
:mod:`racing.plot.mppi` (MPPI samples, lap animation), :mod:`racing.plot.sysid` (fits).
"""
