"""Racing lines and the minimum-lap-time reference.

* :func:`min_curvature_line` (:mod:`racing.raceline.mincurv`): a QP over lateral offsets within the
  track widths (minus half the car width and a safety margin) that minimises the squared curvature,
  then the quasi-steady-state (QSS) speed profile of :mod:`racing.geometry.speed_profile`.
* :func:`min_time_lap` (:mod:`racing.raceline.mintime`): the minimum-lap-time optimal control problem
  in curvilinear coordinates with the dynamic single-track model of :mod:`racing.models.dynamic`,
  solved with casadi + IPOPT and warm-started from the minimum-curvature line.
* :mod:`racing.raceline.cache`: where computed lines live (beside the project's tracks, or in
  ``~/.cache/racing/racelines``) and :func:`reference_for` (the cached min-time lap time [s]).

Heavy dependencies (casadi) are imported only by the solvers, so ``reference_for`` is cheap.
"""
from __future__ import annotations


class RacelineError(ValueError):
    """A racing line could not be computed (track too narrow, solver failure). The message names the
    track, the position s [m] where relevant, and the solver status (also in ``status``, or None)."""

    def __init__(self, message: str, status: str | None = None):
        super().__init__(message)
        self.status = status


from .cache import (  # noqa: E402
    cache_path,
    cached_raceline,
    read_metadata,
    reference_for,
    reference_lap,
    save_raceline,
    with_cached_raceline,
)
from .mincurv import min_curvature_line  # noqa: E402
from .mintime import min_time_lap  # noqa: E402 (casadi is imported by the solve, not here)


__all__ = [
    "RacelineError",
    "cache_path",
    "cached_raceline",
    "min_curvature_line",
    "min_time_lap",
    "read_metadata",
    "reference_for",
    "reference_lap",
    "save_raceline",
    "with_cached_raceline",
]
