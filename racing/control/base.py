"""The controller interface shared by every controller, the simulator and the vehicle runtime.

A controller owns no I/O and no clock: the caller (simulator or :mod:`racing.runtime`) hands it
an :class:`Observation` at time ``t`` and applies the returned :class:`Command`.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Callable

from racing import config as cfg
from racing.interfaces import Command, Observation  # noqa: F401 (the controllers' vocabulary)


#: the share of the control period a runner with deadlines gives ``act`` (:meth:`Controller.set_time_budget`): the
#: rest is its own work (the state in, the command out, the log) and the operating system's wake-up latency
ACT_BUDGET = 0.7


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

    def set_time_budget(self, seconds: float | None) -> None:  # noqa: B027 - optional hook
        """The wall time [s] an ``act`` may take from now on (a runner with deadlines sets it: ``--realtime`` races,
        ``racing drive``), or None: no limit. An anytime controller (MPPI) uses fewer samples to keep it; the
        others ignore it."""

    def compute_report(self) -> dict:
        """How the controller's computation went since ``reset`` (plain numbers, e.g. MPPI's samples per
        iteration); empty by default. Stored in the result (``summary()["samples"]`` for MPPI)."""
        return {}

    def estimates(self) -> dict:
        """What the controller has estimated about the car so far (plain numbers, e.g. the grip); empty by
        default. The simulator stores it in the result (``summary()["estimates"]``) at the end of a run."""
        return {}


@dataclass
class ControllerSpec:
    """A registry entry: ``factory(track, params, config_path, **options) -> Controller``; ``config_for(params,
    config_path) -> (config, source)``: the settings the factory would start from (for tools that vary them);
    ``raceline_request(config) -> (methods, compute)``: the racing line the controller races with those settings
    (cached lines of ``methods`` in order, else ``compute`` one, e.g. ``"mincurv"``, or None), resolved by the race
    assembly (:func:`racing.assembly.resolve_line`) before the factory is called: a controller owns no I/O;
    ``takes_residual``: its model can carry a residual network (``residual=`` option); ``devices``: where it runs
    (``"cpu"``, ``"cuda"``: the factory takes a ``device=`` option, :mod:`racing.control.mppi.device`)."""

    name: str
    factory: Callable[..., Controller]
    description: str = ""
    defaults: dict = field(default_factory=dict)
    config_for: Callable | None = None
    raceline_request: Callable | None = None
    takes_residual: bool = False
    devices: tuple = ("cpu",)


CONTROLLERS: dict[str, ControllerSpec] = {}


def register(name: str, description: str = "", config_for: Callable | None = None,
             raceline_request: Callable | None = None, takes_residual: bool = False, devices: tuple = ("cpu",)):
    """Decorator registering a controller factory under ``name`` (the rest: see :class:`ControllerSpec`)."""

    def deco(factory):
        CONTROLLERS[name] = ControllerSpec(name, factory, description, config_for=config_for,
                                           raceline_request=raceline_request, takes_residual=takes_residual,
                                           devices=devices)
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


def controller_settings(name: str, params, config_path=None, overrides: dict | None = None):
    """``(config, source)``: the settings controller ``name`` races with for the car ``params`` (``config_path``,
    else its default for the car) with ``overrides`` (a nested mapping, checked strictly: an unknown key or a bad
    value is a ConfigError naming it). Builds nothing (no kernel compiled)."""
    _load_builtin()
    if name not in CONTROLLERS:
        raise ValueError(f"unknown controller {name!r}; known controllers: {', '.join(sorted(CONTROLLERS))}")
    spec = CONTROLLERS[name]
    if spec.config_for is None:
        raise ValueError(f"controller {name!r} does not expose its settings (no config_for in its registration)")
    conf, source = spec.config_for(params, config_path)
    if overrides:
        conf = cfg.replace_from(conf, overrides, source=f"{name} settings")
        source += f" + overrides {sorted(overrides)}"
    return conf, source


def present(*parts) -> list:
    """The parts that are not None (a controller's optional online estimators, in the order given)."""
    return [p for p in parts if p is not None]


def merged_summaries(*estimators) -> dict:
    """The ``summary()`` dicts of the estimators that are not None, merged (a controller's ``estimates()``)."""
    out: dict = {}
    for e in present(*estimators):
        out.update(e.summary())
    return out


def known_controllers() -> list[str]:
    _load_builtin()
    return sorted(CONTROLLERS)
