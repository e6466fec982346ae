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
    """Build MPPI with ``config_path`` (default: ``<car>.yaml`` or ``default.yaml`` here) and overrides."""
    conf = load_config(config_path, car_name=getattr(params, "name", None))
    if options:
        conf = cfg.replace_from(conf, options, source="mppi options")
    return MPPI(track, params, conf)


__all__ = ["CostWeights", "MPPI", "MPPIConfig", "load_config", "make_mppi"]
