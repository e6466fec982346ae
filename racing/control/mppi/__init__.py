"""MPPI: sampling-based MPC on numba (CPU) or numba-cuda (an NVIDIA GPU, ``device="cuda"``).
``make_controller("mppi", track, params)``.

* :mod:`.config` settings (frozen dataclasses; tunings named by the car files, YAML next to this file)
* :mod:`racing.control.costs` racing cost terms (code) + weights (config)
* :mod:`.step`   the pure step: numba kernels and a numpy reference
* :mod:`.lockstep` the CPU iteration with a chunk of samples stepped in lockstep (``kernel: lockstep``)
* :mod:`.controller` the thin stateful wrapper (warm start, timing, commands)
* :mod:`.device` where the iteration runs (``cpu``, ``cuda``, ``auto``); :mod:`.gpu` the iteration on a GPU
"""
from __future__ import annotations

from racing import config as cfg
from racing.control.base import register
from racing.control.mppi.config import CostWeights, MPPIConfig, config_for, load_config
from racing.control.mppi.controller import MPPI


def raceline_request(conf: MPPIConfig):
    """The line MPPI races with these settings: the car's cached minimum-time line (``use_raceline``), else none
    (centre-line progress)."""
    return (("mintime",) if conf.use_raceline else ()), None


@register("mppi", "sampling MPC (MPPI) on numba kernels, racing cost on the track (default)", config_for=config_for,
          raceline_request=raceline_request, takes_residual=True, devices=("cpu", "cuda"))
def make_mppi(track, params, config_path=None, threads: int | None = None, device="cpu", **options) -> MPPI:
    """Build MPPI with ``config_path`` (default: the tuning the car names, else settings derived from its
    parameters, see :func:`~racing.control.mppi.config.config_for`) and overrides; ``threads`` is the machine's
    numba thread count (default: all), ``device`` where the iteration runs (``cpu``, ``cuda``, ``auto``, see
    :mod:`racing.control.mppi.device`). The chosen source is ``controller.config_source``.

    MPPI races the line of ``track`` (``track.raceline``, attached by the race assembly,
    :func:`racing.assembly.build_controller`, from :func:`raceline_request`); without one, centre-line progress. It
    reads and writes nothing.

    ``guide``: the controller of ``guide:`` in the settings (the race assembly builds it on its own line), else built
    by MPPI on ``track``. ``residual``: path of residual network weights (``racing fit --residual``, loaded with
    :func:`racing.models.residual.load_residual`) or :class:`ResidualWeights`: the rollouts use the
    semi-parametric model (physics + MLP correction). Needs ``model: dynamic``; a bad file or a
    kinematic model is a ValueError.
    """
    residual = options.pop("residual", None)
    guide = options.pop("guide", None)
    conf, source = config_for(params, config_path)
    if options:
        conf = cfg.replace_from(conf, options, source="mppi options")
        source += f" + overrides {sorted(options)}"
    # MPPI checks the rollout model and loads a weights path itself
    return MPPI(track, params, conf, residual=residual, threads=threads, config_source=source, device=device,
                guide=guide)


__all__ = ["CostWeights", "MPPI", "MPPIConfig", "load_config", "make_mppi", "raceline_request"]
