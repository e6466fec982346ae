"""The notebook API: a handful of functions re-exported by ``import racing`` (lazily: ``import racing`` itself
loads nothing heavy).

>>> import racing
>>> track = racing.load_track("lab_loop")                 # a name, a TUM csv or an F1TENTH map folder
>>> car = racing.load_car("f1tenth")                      # a name or a YAML path -> VehicleParams
>>> result = racing.race(track, car, controller="pure_pursuit", laps=1)
>>> result.status, result.laps                            # ("completed", [15.6...])
>>> fig = racing.plot_race(result, track)                 # a matplotlib Figure (shows inline in Jupyter)

Everything below takes the same objects the command line builds, and checks its inputs the same way (a
:class:`racing.config.ConfigError` or :class:`racing.track.TrackError` naming the field and what was expected).
"""
from __future__ import annotations

from pathlib import Path

from racing.config import ConfigError  # noqa: F401 (re-exported; light: pyyaml only)

__all__ = ["ConfigError", "TrackError", "load_track", "load_car", "known_tracks", "known_cars", "known_controllers", "make_controller",
           "make_plant", "SimConfig", "NoiseConfig", "SimResult", "simulate", "race", "load_result", "read_log",
           "load_logs", "fit", "plot_race", "plot_fit", "save_race"]


def load_track(name_or_path, check_geometry: bool = True, **options):
    """A :class:`racing.track.Track` by name (:func:`known_tracks`) or path; its shape is checked unless
    ``check_geometry=False``. ``options``: ``measure_widths``, ``ds`` [m], ``smoothing`` [m]."""
    from racing.track import load_track as _load

    return _load(name_or_path, check_geometry=check_geometry, **options)


def load_car(name_or_path="f1tenth"):
    """The :class:`racing.models.params.VehicleParams` of a car by name (:func:`known_cars`), YAML path or a mapping
    of its parameters (the same strict checks: an unknown or missing key, a value out of its plausible range, is a
    ConfigError naming it); a VehicleParams is returned as is."""
    from racing.models.params import load_params

    return load_params(name_or_path)


def known_tracks() -> list[str]:
    from racing.track import known_tracks as _k

    return _k()


def known_cars() -> list[str]:
    from racing.models.params import known_cars as _k

    return _k()


def known_controllers() -> list[str]:
    from racing.control import known_controllers as _k

    return _k()


def make_controller(name: str, track, car, config=None, **options):
    """A controller (``reset``, ``act(observation, t) -> Command``) by registry name, for ``track`` with the model
    parameters ``car``; ``config``: a YAML path with its settings (default: the car's tuning or derived ones).
    Built as a race builds it (:func:`racing.assembly.build_controller`: the racing line its settings ask for is
    attached to its own copy of the track); ``options``: ``residual``, ``threads``, ``device`` (``cpu``, ``cuda``,
    ``auto``: where MPPI's iteration runs) and setting overrides. ``track`` and ``car`` may be names or paths, as
    in :func:`race`."""
    from racing.assembly import build_controller, resolve_car, resolve_track

    return build_controller(name, resolve_track(track), resolve_car(car), config, **options)[0]


def make_plant(name: str, car, plant_hz: float = 1000.0):
    """The simulated car: a registry name (``dynamic_ext``: the default, richer than the model; ``dynamic``,
    ``kinematic``), ``commonroad:st|std|mb[:vehicle]`` or ``module:factory``."""
    from racing.sim.plant import make_plant as _make

    return _make(name, car, plant_hz=plant_hz)


def __getattr__(name):  # the config and result classes, without importing the simulator at import time
    if name in ("SimConfig", "NoiseConfig"):
        from racing.sim import simulator

        return getattr(simulator, name)
    if name == "TrackError":
        from racing.track import TrackError

        return TrackError
    if name == "SimResult":
        from racing.sim.result import SimResult

        return SimResult
    raise AttributeError(f"module 'racing.api' has no attribute {name!r}")


def simulate(track, controller, plant, car, sim=None, progress=None):
    """Race ``controller`` on ``plant`` (the true car ``car``) around ``track`` with ``sim``
    (:class:`SimConfig`, default 2 laps at 50 Hz); returns a :class:`racing.sim.result.SimResult`."""
    from racing.sim.simulator import SimConfig
    from racing.sim.simulator import simulate as _simulate

    return _simulate(track, controller, plant, car, sim if sim is not None else SimConfig(), progress=progress)


def race(track="lab_loop", car="f1tenth", controller="pure_pursuit", plant="dynamic_ext", model_car=None,
         controller_config=None, **options):
    """One call from names (or objects) to a result, assembled as ``racing race`` does it
    (:class:`racing.assembly.RaceSpec` -> :func:`racing.assembly.build` -> run): ``track`` and ``car`` are names, paths
    or loaded objects; ``controller`` a name or a built controller; ``model_car``: the controller's own parameters
    (default ``car``); ``options``: the other fields of :class:`racing.assembly.RaceSpec` (``laps``, ``rate_hz``,
    ``max_time_s``, ``realtime``, ``delay_s``, ``seed``, ``noise``, ``residual``, ``raceline``, ``threads``,
    ``device``, ...). The result's
    ``config`` is the same run record as the command line's."""
    from racing.assembly import build

    spec = spec_of(track=track, car=car, controller=controller, plant=plant, model_params=model_car,
                   controller_config=controller_config, **options)
    return build(spec).run()


def spec_of(**fields):
    """A :class:`racing.assembly.RaceSpec` from keyword fields; an unknown one is a ConfigError naming it."""
    from racing.assembly import RaceSpec

    return RaceSpec.from_dict(fields, source="racing.race()")


def load_result(out_dir):
    """A saved run (``racing race --out DIR``) as a :class:`racing.sim.result.SimResult`."""
    from racing.sim.result import SimResult

    return SimResult.load(out_dir)


def read_log(path):
    """A log in the project's CSV format (``log.csv`` of a race, ``racing drive --log``) as a DriveLog."""
    from racing.logs import read_log as _read

    return _read(path)


def load_logs(paths, rate_hz: float = 50.0, **bag_options):
    """Logs for fitting: racing CSVs or ROS bags (the ``ros`` extra), resampled to ``rate_hz`` where needed."""
    from racing.sysid.logs import load_logs as _load

    return _load(paths, rate_hz, **bag_options)


def fit(logs, car, model: str = "dynamic", **options):
    """Fit the car model to driving logs (DriveLogs, or paths read with :func:`load_logs`) starting from ``car``
    (a name, path or VehicleParams); ``options`` as :func:`racing.sysid.parametric.fit` (``names``,
    ``horizon_s``, ``stride``, ``prior_rel``, ...). Returns a FitResult (``.params``, ``.report()``)."""
    from racing.sysid.parametric import fit as _fit

    for key, ok, expected in (("horizon_s", lambda v: v > 0, "> 0 s"), ("stride", lambda v: int(v) == v and v >= 1,
                                                                          "an integer >= 1")):
        if key in options and not (isinstance(options[key], (int, float)) and ok(options[key])):
            raise ConfigError(f"fit: {key} = {options[key]!r}; expected {expected}")
    if isinstance(logs, (str, Path)) or (isinstance(logs, (list, tuple)) and logs
                                         and isinstance(logs[0], (str, Path))):
        logs = load_logs(logs)
    base = car if not isinstance(car, (str, Path)) else load_car(car)
    return _fit(logs, base, model=model, **options)


def plot_race(result, track, title: str | None = None):
    """The race figure (map, speed and lateral offset per lap, time delta, compute time); a matplotlib Figure."""
    from racing.plot.race import race_figure

    return race_figure(result, track, title)


def plot_fit(evaluation, window=None):
    """Logged vs base vs fitted signals of :func:`racing.sysid.evaluate.evaluate`; a matplotlib Figure."""
    from racing.plot.sysid import fit_figure

    return fit_figure(evaluation, window=window)


def save_race(result, track, out_dir, plot: bool = True, animate: bool = False) -> list[Path]:
    """Write a run as ``racing race`` does (result.npz, summary.json, events.json, config.yaml, log.csv,
    race.png, ...), removing a previous run's files from ``out_dir`` first; returns the files written."""
    from racing.assembly import save

    return save(result, track, Path(out_dir), plot=plot, animate=animate)
