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
from racing.geometry.path import raceline_track


def raceline_request(conf: ILQRConfig):
    """The line iLQR races with these settings: the car's cached minimum-time line, else (``compute_raceline``)
    its minimum-curvature line (computed and cached by the race assembly when missing)."""
    if not conf.use_raceline:
        return (), None
    return ("mintime",), ("mincurv" if conf.compute_raceline else None)


@register("ilqr", "iLQR (box-constrained DDP) on the smooth racing cost, casadi derivatives", config_for=config_for,
          raceline_request=raceline_request)
def make_ilqr(track, params, config_path=None, threads: int | None = None, **options) -> ILQRController:
    """Build iLQR with ``config_path`` (default: settings derived from the car, see
    :func:`~racing.control.ilqr.config.config_for`) and overrides, on the line of ``track`` (attached by the race
    assembly from :func:`raceline_request`; with ``raceline_frame`` the track is re-centred on it). It reads and
    writes nothing. ``threads`` is accepted for a uniform interface (iLQR runs on one thread)."""
    if options.pop("residual", None) is not None:
        raise ValueError("iLQR does not take a residual network yet (the semi-parametric model has no casadi form); "
                         "race a residual with --controller mppi")
    conf, source = config_for(params, config_path)
    if options:
        conf = cfg.replace_from(conf, options, source="ilqr options")
        source += f" + overrides {sorted(options)}"
    if conf.raceline_frame and track.raceline is not None:
        track = raceline_track(track)
    return ILQRController(track, params, conf, config_source=source)


__all__ = ["ILQRConfig", "ILQRController", "make_ilqr", "raceline_request"]
