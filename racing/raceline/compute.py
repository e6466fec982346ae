"""Computing a racing line: one entry point for both methods (used by ``racing raceline`` and by the race
assembly, :func:`racing.assembly.resolve_line`). casadi (the minimum-time OCP) is imported only by that method."""
from __future__ import annotations

from racing.raceline.mincurv import min_curvature_line


def compute(track, params, method: str, spacing=None, margin=None, time_limit=600.0, max_iter=3000,
            verbose=False) -> tuple[object, dict]:
    """Compute a line. Returns (Raceline, summary dict with the metadata written beside it)."""
    if method == "mincurv":
        r = min_curvature_line(track, params, spacing=spacing, margin=margin)
        info = {"lap_time_s": r.lap_time, "status": r.status, "solve_time_s": r.solve_time,
                "qp_iterations": r.qp_iterations, "spacing_m": r.spacing, "margin_m": r.margin}
        return r.raceline, info
    from racing.raceline.mintime import min_time_lap

    r = min_time_lap(track, params, spacing=spacing, margin=margin, time_limit=time_limit, max_iter=max_iter,
                     verbose=verbose)
    info = {"lap_time_s": r.lap_time, "status": r.status, "solve_time_s": r.solve_time,
            "qss_lap_time_s": r.qss_lap_time, "iterations": r.iterations, "ipopt_time_s": r.ipopt_time,
            "spacing_m": r.spacing, "margin_m": r.margin,
            "max_violation": max(v for k, v in r.violations.items() if k != "defect"),
            "max_defect": r.violations["defect"]}
    return r.raceline, info


__all__ = ["compute"]
