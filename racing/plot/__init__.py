"""Plotting: the only place that imports matplotlib.

Each module turns a result object into figures: :mod:`racing.plot.race` (SimResult),
:mod:`racing.plot.mppi` (MPPI samples, lap animation), :mod:`racing.plot.sysid` (fits). Importing them leaves
matplotlib's backend alone (figures show inline in Jupyter); the command line writes files only and selects the
non-interactive Agg backend itself when there is no display (:func:`headless_backend_for_cli`).
"""
from __future__ import annotations

import os
import sys


def headless_backend_for_cli() -> bool:
    """For the command line: use matplotlib's Agg backend when there is no display (and the user chose no backend
    with ``MPLBACKEND``), by setting ``MPLBACKEND`` before matplotlib is imported. Returns True if it did."""
    if os.environ.get("MPLBACKEND"):
        return False
    has_display = sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or
                                                              os.environ.get("WAYLAND_DISPLAY"))
    if has_display:
        return False
    os.environ["MPLBACKEND"] = "Agg"
    return True
