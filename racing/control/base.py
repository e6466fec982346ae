"""The controller interface shared by every controller, the simulator and the vehicle runtime.

A controller owns no I/O and no clock: the caller (simulator or :mod:`racing.runtime`) hands it
an :class:`Observation` at time ``t`` and applies the returned :class:`Command`.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Command:
    """An Ackermann drive command (REP 103 signs).

    steering_angle : float  road-wheel angle [rad], positive = left
    speed          : float  target longitudinal speed [m/s]
    acceleration   : float  feed-forward acceleration [m/s^2] for the speed loop (0 = none)
    """

    steering_angle: float
    speed: float
    acceleration: float = 0.0

    def __post_init__(self):
        for name in ("steering_angle", "speed", "acceleration"):
            v = getattr(self, name)
            if not math.isfinite(v):
                raise ValueError(f"Command.{name} is {v}; expected a finite number")


@dataclass
class Observation:
    """What a controller sees at one control instant.

    t     : float       time [s]
    state : float64[7]  (x [m], y [m], yaw [rad], v_x [m/s], v_y [m/s], yaw rate [rad/s], steer [rad]),
                        see :mod:`racing.models.dynamic` (measured, i.e. possibly noisy)
    """

    t: float
    state: np.ndarray

    def __post_init__(self):
        s = np.asarray(self.state, dtype=np.float64)
        if s.shape != (7,):
            raise ValueError(f"Observation.state must have shape (7,), got {s.shape}")
        if not np.all(np.isfinite(s)):
            bad = [i for i in range(7) if not np.isfinite(s[i])]
            from racing.models.dynamic import STATE_NAMES
            raise ValueError(f"Observation.state has non-finite {', '.join(STATE_NAMES[i] for i in bad)}: {s}")
        self.state = s


class Controller(abc.ABC):
    """Base class: ``reset()`` then ``act(observation, t) -> Command`` at a fixed rate.

    Subclasses set ``name`` and keep their settings in a frozen config dataclass ``self.config``.
    ``diagnostics()`` may return data about the last step (for plots); it must not do I/O.
    """

    name: str = "controller"
    config: Any = None

    def reset(self, observation: Observation | None = None) -> None:  # noqa: B027 - optional hook
        """Forget all internal state (warm starts, filters) before a new run."""

    @abc.abstractmethod
    def act(self, observation: Observation, t: float) -> Command:
        """The command to apply from time ``t`` [s] on."""

    def diagnostics(self) -> dict:
        """Data about the last ``act`` call (e.g. MPPI samples); empty by default."""
        return {}


@dataclass
class ControllerSpec:
    """A registry entry: ``factory(track, params, config_path, **options) -> Controller``."""

    name: str
    factory: Callable[..., Controller]
    description: str = ""
    defaults: dict = field(default_factory=dict)


CONTROLLERS: dict[str, ControllerSpec] = {}


def register(name: str, description: str = ""):
    """Decorator registering a controller factory under ``name``."""

    def deco(factory):
        CONTROLLERS[name] = ControllerSpec(name, factory, description)
        return factory

    return deco


def _load_builtin() -> None:
    # importing the modules registers them; heavy parts stay lazy inside each module
    import importlib

    for mod in ("racing.control.pure_pursuit", "racing.control.mppi", "racing.control.ilqr"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def make_controller(name: str, track, params, config_path=None, **options) -> Controller:
    """Build a registered controller by name.

    Parameters
    ----------
    name : registry name (``racing.control.CONTROLLERS``)
    track : :class:`racing.track.Track`
    params : :class:`racing.models.params.VehicleParams` the controller's own model parameters
    config_path : optional YAML with the controller's settings (strict keys)
    """
    _load_builtin()
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known controllers: {', '.join(sorted(CONTROLLERS))}")
    return CONTROLLERS[name].factory(track, params, config_path, **options)


def known_controllers() -> list[str]:
    _load_builtin()
    return sorted(CONTROLLERS)
