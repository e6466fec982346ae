"""iLQR: gradient-based receding-horizon control (box-constrained DDP) with casadi derivatives.
``make_controller("ilqr", track, params)``.

* :mod:`.config`      settings (frozen dataclass, strict YAML)
* :mod:`.derivatives` casadi derivatives of the one-source model and smooth racing cost (compiled C or VM)
* :mod:`.solver`      backward pass (numba), line search, regularisation
* :mod:`.problem`     the racing problem: forward pass on the compiled model and the exact cost
* :mod:`.controller`  receding horizon: warm start, iteration budget, fallback, commands
"""
from __future__ import annotations

from racing import config as cfg
from racing.control.base import register
from racing.control.ilqr.config import ILQRConfig, config_for
from racing.control.ilqr.controller import ILQRController


@register("ilqr", "iLQR (box-constrained DDP) on the smooth racing cost, casadi derivatives", config_for=config_for)
def make_ilqr(track, params, config_path=None, threads: int | None = None, **options) -> ILQRController:
    """Build iLQR with ``config_path`` (default: settings derived from the car, see
    :func:`~racing.control.ilqr.config.config_for`) and overrides; the car's cached minimum-time line is
    attached as for MPPI (:func:`racing.raceline.attach_cached`), else (``compute_raceline``) its
    minimum-curvature line, computed and cached when needed. ``threads`` is accepted for a uniform
    interface (iLQR runs on one thread)."""
    from racing.raceline import attach_cached

    if options.pop("residual", None) is not None:
        raise ValueError("iLQR does not take a residual network yet (the semi-parametric model has no casadi form); "
                         "race a residual with --controller mppi")
    conf, source = config_for(params, config_path)
    if options:
        conf = cfg.replace_from(conf, options, source="ilqr options")
        source += f" + overrides {sorted(options)}"
    track, raceline = attach_cached(track, params, conf.use_raceline,
                                    compute="mincurv" if conf.compute_raceline else None)
    if conf.raceline_frame and track.raceline is not None:
        from racing.geometry.path import raceline_track

        track = raceline_track(track)
    ctrl = ILQRController(track, params, conf, config_source=source)
    ctrl.raceline_record = raceline
    return ctrl


__all__ = ["ILQRConfig", "ILQRController", "make_ilqr"]
