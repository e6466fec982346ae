"""MPPI: sampling-based MPC on numba (CPU). ``make_controller("mppi", track, params)``.

* :mod:`.config` settings (frozen dataclasses, per-car YAML next to this file)
* :mod:`.costs`  racing cost terms (code) + weights (config)
* :mod:`.step`   the pure step: numba kernels and a numpy reference
* :mod:`.controller` the thin stateful wrapper (warm start, timing, commands)
"""
from __future__ import annotations

from racing import config as cfg
from racing.control.base import register
from racing.control.mppi.config import CostWeights, MPPIConfig, load_config
from racing.control.mppi.controller import MPPI


@register("mppi", "sampling MPC (MPPI) on numba kernels, racing cost on the track (default)")
def make_mppi(track, params, config_path=None, **options) -> MPPI:
    """Build MPPI with ``config_path`` (default: ``<car>.yaml`` or ``default.yaml`` here) and overrides.

    With ``use_raceline`` and a track without a raceline, the car's cached minimum-time line (see
    :func:`racing.raceline.with_cached_raceline`; only a line computed for these very parameters and this
    track geometry) is attached to MPPI's own copy of the track; without one MPPI races on centre-line
    progress. The caller's track is not changed.

    ``residual``: path of residual network weights (``racing fit --residual``, loaded with
    :func:`racing.models.residual.load_residual`) or :class:`ResidualWeights`: the rollouts use the
    semi-parametric model (physics + MLP correction). Needs ``model: dynamic``; a bad file or a
    kinematic model is a ValueError.
    """
    residual = options.pop("residual", None)
    conf = load_config(config_path, car_name=getattr(params, "name", None))
    if options:
        conf = cfg.replace_from(conf, options, source="mppi options")
    if conf.use_raceline and track is not None and getattr(track, "raceline", None) is None:
        from racing.raceline import with_cached_raceline

        try:
            track = with_cached_raceline(track, params.name, methods=("mintime",), params=params)
        except Exception:  # noqa: BLE001 - a missing or damaged cache only means no raceline
            pass
    # MPPI checks the rollout model and loads a weights path itself
    return MPPI(track, params, conf, residual=residual)


__all__ = ["CostWeights", "MPPI", "MPPIConfig", "load_config", "make_mppi"]
