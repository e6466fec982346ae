"""Computing a racing line: one entry point for both methods (used by ``racing raceline`` and by the race
assembly, :func:`racing.assembly.resolve_line`). casadi (the minimum-time OCP) is imported only by that method."""
from __future__ import annotations

import math

from racing.config import ConfigError
from racing.raceline.mincurv import min_curvature_line
from racing.raceline.mintime import min_time_lap

#: the most grid intervals a line may have (a finer --spacing is refused: memory and solve time)
MAX_INTERVALS = 20000


def check_options(track, params, spacing=None, margin=None, time_limit=600.0, max_iter=3000) -> None:
    """ConfigError (exit 2 on the command line) naming the option and the range it must lie in, for a grid
    ``spacing`` [m], safety ``margin`` [m], IPOPT ``time_limit`` [s] or ``max_iter`` that cannot give a line on
    ``track`` for the car ``params`` (None: the default, always valid)."""
    def number(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    lo, hi = track.length / MAX_INTERVALS, track.length / 8.0
    if spacing is not None and not (number(spacing) and lo <= spacing <= hi):
        raise ConfigError(f"--spacing {spacing!r}: grid spacing of track {track.name} ({track.length:.2f} m long); "
                          f"expected {lo:.3g} .. {hi:.3g} m (8 to {MAX_INTERVALS} grid intervals)")
    if margin is not None:
        room = float((track.w_left + track.w_right).min()) - params.width
        if not (number(margin) and margin >= 0):
            raise ConfigError(f"--margin {margin!r}: safety margin between the car's side and the track edge; "
                              f"expected a number >= 0 m")
        if room > 0 and 2.0 * margin >= room:
            raise ConfigError(f"--margin {margin!r}: no room left for car {params.name} ({params.width:.3f} m wide) "
                              f"on track {track.name} (narrowest {room + params.width:.3f} m); expected a margin "
                              f"below {room / 2:.3f} m")
    if not (number(time_limit) and time_limit > 0):
        raise ConfigError(f"--time-limit {time_limit!r}: IPOPT wall-time limit; expected a number > 0 s")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ConfigError(f"--max-iter {max_iter!r}: IPOPT iteration limit; expected an integer >= 1")


def compute(track, params, method: str, spacing=None, margin=None, time_limit=600.0, max_iter=3000,
            verbose=False) -> tuple[object, dict]:
    """Compute a line. Returns (Raceline, summary dict with the metadata written beside it).

    Raises
    ------
    ConfigError : an option outside its range (:func:`check_options`)
    RacelineError : the line cannot be computed (track too narrow for the car, solver failure)
    """
    check_options(track, params, spacing, margin, time_limit, max_iter)
    if method == "mincurv":
        r = min_curvature_line(track, params, spacing=spacing, margin=margin)
        info = {"lap_time_s": r.lap_time, "status": r.status, "solve_time_s": r.solve_time,
                "qp_iterations": r.qp_iterations, "spacing_m": r.spacing, "margin_m": r.margin}
        return r.raceline, info

    r = min_time_lap(track, params, spacing=spacing, margin=margin, time_limit=time_limit, max_iter=max_iter,
                     verbose=verbose)
    info = {"lap_time_s": r.lap_time, "status": r.status, "solve_time_s": r.solve_time,
            "qss_lap_time_s": r.qss_lap_time, "iterations": r.iterations, "ipopt_time_s": r.ipopt_time,
            "spacing_m": r.spacing, "margin_m": r.margin,
            "max_violation": max(v for k, v in r.violations.items() if k != "defect"),
            "max_defect": r.violations["defect"]}
    return r.raceline, info


__all__ = ["MAX_INTERVALS", "check_options", "compute"]
