"""One race assembly: a :class:`RaceSpec` (data) -> :func:`build` -> :class:`Race` -> :meth:`Race.run` ->
:func:`save`.

Every consumer assembles a race here and nowhere else: ``racing race`` parses its options into a spec
(:meth:`RaceSpec.from_args`), the API (:func:`racing.race`) builds one in Python, a sweep trial writes one
(and prints it back as the ``racing race`` command, :meth:`RaceSpec.argv`), ``racing learn`` races one per
iteration and ``racing drive`` takes the track, cars and controller of one. The resolved parts are built once:
the track (with its racing line, resolved here from the cache or computed, so a controller receives a finished
track and owns no I/O), the plant's and the controller's parameters, the plant, the controller, the simulator
settings, and one run record (``result.config``, written as ``config.yaml``).

>>> from racing.assembly import RaceSpec, build
>>> race = build(RaceSpec(track="lab_loop", controller="pure_pursuit", laps=1))
>>> result = race.run()
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np

from racing import config as cfg
from racing.config import ConfigError
from racing.control.base import CONTROLLERS, controller_settings, known_controllers, make_controller
from racing.control.mppi.device import DEVICES, Device, resolve_device
from racing.interfaces import drive_interface
from racing.models.params import DEFAULT_CAR, VehicleParams, load_params, perturbed
from racing.raceline.cache import (
    cache_path,
    line_metadata,
    params_fingerprint,
    read_metadata,
    reference_for,
    save_raceline,
    track_fingerprint,
    with_cached_raceline,
)
from racing.raceline.compute import compute as compute_line
from racing.sim.plant import DEFAULT_PLANT, make_plant, own_car
from racing.sim.result import SimResult
from racing.sim.simulator import NoiseConfig, SimConfig, initial_state, simulate
from racing.sim.warm import PlantWarmer, warm_plant
from racing.track import DEFAULT_TRACK, Raceline, Track, load_track

#: the ``racing race`` option of each :class:`RaceSpec` field (errors name both; :meth:`RaceSpec.argv` writes them)
FLAGS = {"track": "--track", "car": "--car", "model_params": "--model-params", "plant": "--plant",
         "controller": "--controller", "controller_config": "--controller-config", "residual": "--residual",
         "raceline": "--raceline", "allow_bad_geometry": "--allow-bad-geometry",
         "friction_scale": "--friction-scale", "mass_scale": "--mass-scale", "threads": "--threads",
         "device": "--device",
         "laps": "--laps", "rate_hz": "--rate", "plant_hz": "--plant-hz", "seed": "--seed",
         "realtime": "--realtime", "delay_s": "--delay", "noise": "--noise", "start_speed": "--start-speed",
         "max_time_s": "--max-time", "snapshot_times": "--snapshot", "controller_set": "--set"}

#: the options :meth:`RaceSpec.argv` writes even at their default (a command that reads alone)
ALWAYS_WRITTEN = ("track", "controller", "plant", "laps", "rate_hz", "seed")

#: the SimConfig fields a spec carries (same names)
SIM_FIELDS = ("rate_hz", "plant_hz", "laps", "max_time_s", "realtime", "delay_s", "seed", "start_speed",
              "snapshot_times")


def default_controller() -> str:
    """MPPI when it is installed (numba), else pure pursuit."""
    return "mppi" if "mppi" in known_controllers() else "pure_pursuit"


@dataclass(frozen=True)
class RaceSpec:
    """Everything that defines a race, as data (names or paths; the API may also pass built objects).

    ``track``: name, path or :class:`Track`; ``car``: the plant's parameters (name, YAML path or
    :class:`VehicleParams`; default :data:`DEFAULT_CAR`, or with a plant that is its own car such as
    ``commonroad:mb`` the controller's model of it); ``model_params``: the controller's own model (default:
    the car, unperturbed); ``plant``: registry name, ``commonroad:...``, ``module:factory`` or a plant object;
    ``controller``: registry name (default :func:`default_controller`) or a built controller;
    ``controller_config``: YAML path of its settings; ``controller_set``: ``KEY=VALUE`` items over those settings
    (``--set``: ``guide=ilqr``, ``cost.line=0.5``; checked as the file's keys are); ``residual``: residual weights
    for the controller's model; ``raceline``: a TUM 7-column raceline file to follow; ``friction_scale`` /
    ``mass_scale``: a perturbed plant
    (the controller keeps the car's own parameters); ``noise``: measurement noise as a scale of a typical
    localisation stack (0 = none, 1 = typical) or a :class:`NoiseConfig`; the rest are :class:`SimConfig`'s
    fields; ``threads``: numba threads, ``device``: where MPPI's iteration runs (``cpu``, ``cuda``, ``auto``;
    :mod:`racing.control.mppi.device`): machine settings.
    """

    track: Any = DEFAULT_TRACK
    car: Any = None
    model_params: Any = None
    plant: Any = DEFAULT_PLANT
    controller: Any = None
    controller_config: str | None = None
    controller_set: tuple = field(default=())
    residual: str | None = None
    raceline: str | None = None
    allow_bad_geometry: bool = False
    friction_scale: float = 1.0
    mass_scale: float = 1.0
    threads: int | None = None
    device: str = "cpu"
    laps: int = 2
    rate_hz: float = 50.0
    plant_hz: float = 1000.0
    seed: int = 0
    realtime: bool = False
    delay_s: float = 0.0
    noise: Any = 0.0
    start_speed: float = 0.0
    max_time_s: float | None = None
    snapshot_times: tuple = field(default=())

    def __post_init__(self):
        v = self.controller_config
        if v is not None and not isinstance(v, (str, Path)):
            raise ConfigError(f"controller_config (--controller-config): expected the path of a YAML file of the "
                              f"controller's settings, got a {type(v).__name__} (settings as keyword overrides: "
                              f"racing.make_controller(name, track, car, **settings))")

    @classmethod
    def from_args(cls, args) -> "RaceSpec":
        """The spec of parsed ``racing race`` options (an argparse Namespace)."""
        kw = {name: getattr(args, dest) for name, dest in _ARG_DEST.items() if hasattr(args, dest)}
        kw["snapshot_times"] = tuple(kw.get("snapshot_times") or ())
        kw["controller_set"] = tuple(kw.get("controller_set") or ())
        return cls(**kw)

    @classmethod
    def from_dict(cls, data: dict, source: str = "race spec") -> "RaceSpec":
        """A spec from a mapping (strict: an unknown key is a ConfigError naming it and the known ones)."""
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}; expected some of "
                              f"{', '.join(f.name for f in dataclasses.fields(cls))}")
        return cls(**{**data, "snapshot_times": tuple(data.get("snapshot_times") or ()),
                      "controller_set": tuple(data.get("controller_set") or ())})

    def to_dict(self) -> dict:
        """The spec as plain data (objects by their name), for the run record."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def argv(self) -> list[str]:
        """The ``racing race`` options that build this spec again (only for a spec of names and paths: a built
        object has no command line, a ValueError)."""
        out: list[str] = []
        defaults = RaceSpec()
        for name in ARGV_ORDER:
            f = _FIELDS[name]
            value = getattr(self, f.name)
            if value is None or (value == getattr(defaults, f.name) and f.name not in ALWAYS_WRITTEN):
                continue
            flag = FLAGS[f.name]
            if isinstance(value, bool):
                out += [flag] if value else []
            elif f.name == "snapshot_times":
                for t in value:
                    out += [flag, f"{t:g}"]
            elif f.name == "controller_set":
                for item in value:
                    out += [flag, item]
            elif isinstance(value, (str, Path, int, float)):
                out += [flag, f"{value:.6g}" if isinstance(value, float) else str(value)]
            else:
                raise ValueError(f"RaceSpec.{f.name} is a {type(value).__name__} object; only a spec of names and "
                                 f"paths has a racing race command line")
        return out


#: the order of :meth:`RaceSpec.argv`'s options: what a reader looks for first (every field once)
ARGV_ORDER = ("track", "car", "controller", "laps", "rate_hz", "seed", "plant", "threads", "device", "model_params",
              "controller_config", "controller_set", "residual", "raceline", "allow_bad_geometry", "friction_scale",
              "mass_scale",
              "delay_s", "noise", "start_speed", "max_time_s", "realtime", "snapshot_times", "plant_hz")
_FIELDS = {f.name: f for f in dataclasses.fields(RaceSpec)}
if sorted(ARGV_ORDER) != sorted(_FIELDS):
    raise RuntimeError("racing.assembly.ARGV_ORDER must name every RaceSpec field once")

#: RaceSpec field -> ``racing race`` argparse destination
_ARG_DEST = {"track": "track", "car": "car", "model_params": "model_params", "plant": "plant",
             "controller": "controller", "controller_config": "controller_config",
             "controller_set": "controller_set", "residual": "residual",
             "raceline": "raceline", "allow_bad_geometry": "allow_bad_geometry", "friction_scale": "friction_scale",
             "mass_scale": "mass_scale", "threads": "threads", "device": "device", "laps": "laps", "rate_hz": "rate",
             "plant_hz": "plant_hz", "seed": "seed", "realtime": "realtime", "delay_s": "delay", "noise": "noise",
             "start_speed": "start_speed", "max_time_s": "max_time", "snapshot_times": "snapshot"}


def settings_overrides(items) -> dict:
    """The nested overrides of ``--set KEY=VALUE`` items (``cost.line=0.5`` -> ``{"cost": {"line": 0.5}}``; values
    read as YAML scalars: ``0.5``, ``true``, ``ilqr``); a malformed item is a ConfigError naming it."""
    out: dict = {}
    for item in items:
        key, eq, text = str(item).partition("=")
        if not eq or not key.strip() or not text.strip():
            raise ConfigError(f"controller_set (--set): {item!r}: expected KEY=VALUE, e.g. guide=ilqr or cost.line=0.5")
        try:
            value = cfg.parse_yaml(text)
        except Exception as exc:  # noqa: BLE001 - yaml's errors: named with the item
            raise ConfigError(f"controller_set (--set): {item!r}: the value is not a YAML scalar ({exc})") from None
        if isinstance(value, (dict, list)) or value is None:
            raise ConfigError(f"controller_set (--set): {item!r}: expected a single value (a number, true/false "
                              f"or a word)")
        *path, leaf = key.strip().split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _plain(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, NoiseConfig):
        return cfg.to_dict(value)
    return getattr(value, "name", type(value).__name__)


@dataclass
class Race:
    """A built race: every part resolved once (see the module docstring). ``record`` is the run record stored
    in the result (``config.yaml``); ``reference_lap_s`` the cached minimum-time lap of the controller's car;
    ``plot_track`` the track with that lap's line attached (the plots' reference: its speed and time profile), or
    the track itself."""

    spec: RaceSpec
    track: Track
    car: VehicleParams
    model_params: VehicleParams
    plant: Any
    controller: Any
    sim: SimConfig
    record: dict
    reference_lap_s: float | None = None
    plot_track: Track | None = None

    def run(self, progress=None) -> SimResult:
        """Race once (``progress(fraction, laps_done)`` is called every tick); the result carries the record and
        the reference lap. ``result.config['wall_time_s']`` is not set here (see the CLI)."""
        result = simulate(self.track, self.controller, self.plant, self.car, self.sim, self.record,
                          progress=progress)
        result.reference_lap_s = self.reference_lap_s
        return result


# --- resolving the parts ------------------------------------------------------------------------------------------
def resolve_track(spec_track, allow_bad_geometry: bool = False) -> Track:
    """The :class:`Track` of a name, a path or a Track (returned as is); its shape is checked unless allowed."""
    if isinstance(spec_track, Track):
        return spec_track
    if not isinstance(spec_track, (str, Path)):
        raise ConfigError(f"track: {spec_track!r}; expected a track name, a path or a racing.track.Track")
    return load_track(spec_track, check_geometry=not allow_bad_geometry)


def resolve_car(value, what: str = "car") -> VehicleParams:
    """:class:`VehicleParams` of a name, a YAML path or the object itself."""
    if isinstance(value, VehicleParams):
        return value
    if not isinstance(value, (str, Path)):
        raise ConfigError(f"{what}: {value!r}; expected a car name, a YAML path or a VehicleParams")
    return load_params(value)


def noise_preset(params: VehicleParams, noise) -> NoiseConfig:
    """The measurement noise of a typical localisation stack for this car times ``noise`` (a scale >= 0), or
    ``noise`` itself when it is a :class:`NoiseConfig`."""
    if isinstance(noise, NoiseConfig):
        return noise
    if isinstance(noise, bool) or not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ConfigError(f"noise (--noise): noise scale = {noise!r}; expected a number >= 0 (0 = none, 1 = "
                          f"typical)")
    return NoiseConfig(pos=0.05 * params.wheelbase * noise, yaw=0.01 * noise, vel=0.01 * params.v_max * noise,
                       yaw_rate=0.02 * noise, steer=0.005 * noise)


def sim_config(spec: RaceSpec, car: VehicleParams) -> SimConfig:
    """The :class:`SimConfig` of a spec for the plant's car; a bad value is a ConfigError naming the field and
    its ``racing race`` option (the checks live in SimConfig, so every consumer gets the same)."""
    try:
        sim = SimConfig(noise=noise_preset(car, spec.noise), **{k: getattr(spec, k) for k in SIM_FIELDS})
        sim.check_for(car)
        return sim
    except ConfigError as exc:
        msg = str(exc)
        name = msg.split(": ", 2)[1].split("[")[0].split(" ")[0] if ": " in msg else ""
        raise ConfigError(f"{FLAGS[name]}: {msg}" if name in FLAGS else msg) from None


def set_numba_threads(n) -> int:
    """Set the process's numba thread count (None: leave numba's default, all cores); returns it."""
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > numba.config.NUMBA_NUM_THREADS:
            raise ConfigError(f"--threads must be in 1..{numba.config.NUMBA_NUM_THREADS} (the cores numba was started "
                              f"with), got {n!r}")
        numba.set_num_threads(n)
    return numba.get_num_threads()


def resolve_line(track: Track, params: VehicleParams, methods: tuple = (), compute: str | None = None):
    """``(track, record)``: ``track`` with the car's first valid cached line of ``methods`` (then ``compute``)
    attached (only a line computed for these very parameters and this track geometry), else (``compute``, e.g.
    ``"mincurv"``) one computed now (a QP, 1-2 s on a 5 km circuit) and cached; ``track`` itself when it has a line already or none
    is asked for. ``record`` says where the line came from. A line that cannot be computed only means no line
    (the record says why)."""
    if getattr(track, "raceline", None) is not None:
        return own_speeds(track, params)
    for method in (*methods, compute) if compute is not None else methods:
        with_line = with_cached_raceline(track, params.name, methods=(method,), params=params)
        if with_line is not track:
            return with_line, {"source": str(cache_path(track, params.name, method, params)), "method": method,
                               "params_sha1": params_fingerprint(params), "track_sha1": track_fingerprint(track)}
    if compute is None:
        return track, {"source": None}
    try:
        line, info = compute_line(track, params, compute)
    except (ValueError, RuntimeError, ArithmeticError) as exc:  # e.g. a track too narrow for the car
        return track, {"source": None, "error": f"{compute} line not computed: {exc}"}
    path = cache_path(track, params.name, compute, params)
    try:
        save_raceline(line, path, line_metadata(track, params.name, compute, info, params))
    except OSError:
        path = None
    return track.with_raceline(line), {"source": str(path) if path else "computed (not cached)", "method": compute,
                                       "computed": True, "params_sha1": params_fingerprint(params),
                                       "track_sha1": track_fingerprint(track)}


def race_line(track: Track, raceline, params: VehicleParams) -> Track:
    """``track`` with the line the race follows: ``raceline`` (a file or a :class:`Raceline`, checked against the
    track) when given; else a line the track brings (a map folder's, made for some other car) gives way to the
    car's minimum-time line when one is cached for these parameters (``racing raceline --method mintime``). On
    the F1TENTH Oschersleben map iLQR lapped +5.4 % off the car's minimum-time lap on the map's line (its path,
    the car's own speeds) and +3.6 % on the car's line."""
    if raceline is not None:
        line = raceline if isinstance(raceline, Raceline) else Raceline.load(raceline)
        return track.with_raceline(track.check_raceline(line))
    if track.raceline is not None and reference_for(track, params.name, params) is not None:
        return with_cached_raceline(track.with_raceline(None), params.name, ("mintime",), params)
    return track


def own_speeds(track: Track, params: VehicleParams):
    """``(track, record)`` for a track that brings its own line (an F1TENTH map folder's, ``--raceline``): the
    line's speeds are kept only where its file says they were computed for these very parameters (the metadata
    ``racing raceline`` writes); else the line gives its geometry only and the controllers put the car's own
    friction-limited profile along it. A line's speeds are one car's: on the F1TENTH Oschersleben map the line's
    8 m/s (another car's) held iLQR to 36.2 s a lap where the f1tenth car laps in about 28."""
    rl = track.raceline
    speeds = np.asarray(rl.vx)
    if not np.any(speeds > 0.0):
        return track, {"source": "track", "speeds": None}
    meta = read_metadata(rl.source) if rl.source != "<array>" else {}
    if meta.get("params_sha1") == params_fingerprint(params):
        return track, {"source": "track", "speeds": "the line's (computed for this car)"}
    return track.with_raceline(rl.without_speeds()), {
        "source": "track", "speeds": f"the car's own profile (the line's, up to {float(speeds.max()):.1f} m/s, "
                                    f"were not computed for these parameters)"}


def build_controller(name: str, track: Track, params: VehicleParams, config_path=None, residual=None,
                     threads: int | None = None, device="cpu", **overrides):
    """``(controller, line_record, config_source)``: controller ``name`` for the car ``params`` with its settings
    (``config_path``, else the car's tuning or derived ones, with ``overrides``) and the racing line its settings
    ask for (:func:`resolve_line`), attached to its own copy of the track. The one place a controller is built
    for a race (the race, the vehicle runtime, ``racing learn``). ``device``: ``cpu``, ``cuda`` or ``auto``
    (:func:`controller_device`)."""
    if name not in CONTROLLERS and name not in known_controllers():
        raise ConfigError(f"controller (--controller): unknown controller {name!r}; known: "
                          f"{', '.join(known_controllers())}")
    spec = CONTROLLERS[name]
    if residual is not None and not spec.takes_residual:
        raise ConfigError(f"residual (--residual): controller {name!r} has no model to correct; a residual network "
                          f"is for the model-based controllers "
                          f"({', '.join(n for n, s in CONTROLLERS.items() if s.takes_residual)})")
    dev = controller_device(name, device)
    original = track
    track, record = own_speeds(track, params) if track.raceline is not None else (track, {"source": None})
    source = config_path or "defaults"
    if spec.config_for is not None:
        conf, source = controller_settings(name, params, config_path, overrides or None)
        if spec.raceline_request is not None and track.raceline is None:
            track, record = resolve_line(track, params, *spec.raceline_request(conf))
    options = {} if spec.config_for is not None else dict(overrides)
    guide_name = getattr(conf, "guide", "none") if spec.config_for is not None else "none"
    if guide_name != "none":  # an ancillary controller (MPPI's guide): built here, on the line it asks for
        guide, guide_line, guide_source = build_controller(guide_name, original, params, threads=1)
        options["guide"] = guide
        record = {**record, "guide": {"controller": guide_name, "line": guide_line, "config_source": guide_source}}
    if residual is not None:
        options["residual"] = residual
    if threads is not None:
        options["threads"] = threads
    if "cuda" in spec.devices:
        options["device"] = dev
    given = conf if spec.config_for is not None else config_path  # resolved: the factory reads nothing
    return make_controller(name, track, params, given, **options), record, source


def controller_device(name: str, device="cpu"):
    """The :class:`~racing.control.mppi.device.Device` controller ``name`` runs on for ``--device`` ``device``:
    ``cuda`` for a controller that runs on the CPU only is a ConfigError naming the ones that run on a GPU; ``auto``
    takes the GPU for those that can use one (and says why not otherwise); without a GPU ``cuda`` is a
    :class:`~racing.control.mppi.device.DeviceError` naming what is missing (exit 2)."""
    if not isinstance(device, Device) and device not in DEVICES:
        raise ConfigError(f"--device: unknown device {device!r}; expected one of {', '.join(DEVICES)}")
    kind = device.kind if isinstance(device, Device) else device
    devices = CONTROLLERS[name].devices if name in CONTROLLERS else ("cpu",)
    if kind == "cuda" and "cuda" not in devices:
        gpu = [n for n, s in CONTROLLERS.items() if "cuda" in s.devices]
        raise ConfigError(f"--device cuda: controller {name!r} runs on the CPU only; on a GPU: {', '.join(gpu)}")
    if kind == "auto" and "cuda" not in devices:
        return Device("cpu", "cpu", "auto", f"auto chose the CPU: controller {name!r} runs on the CPU only")
    return resolve_device(device)


def check_interfaces(model_params: VehicleParams, plant_params: VehicleParams) -> None:
    """The controller sends what its own car file's ``drive_interface`` takes; the car raced (the plant) must take
    it: a controller that plans with a feed-forward acceleration on a speed-only car brakes late (the car ignores
    the field), so that pairing is a :class:`ConfigError`. A speed-only controller drives either kind of car."""
    sent, taken = drive_interface(model_params.drive_interface), drive_interface(plant_params.drive_interface)
    if sent.acceleration and not taken.acceleration:
        raise ConfigError(
            f"drive_interface: the controller's car {model_params.name!r} is {sent.name!r} ({sent.doc}) but the car "
            f"raced, {plant_params.name!r}, is {taken.name!r} ({taken.doc}); give the controller's car file "
            f"drive_interface: {taken.name}")


def build(spec: RaceSpec, notice: bool = False) -> Race:
    """Resolve every part of ``spec`` once (see the module docstring). Cheap checks first: bad options fail
    before any kernel compiles. ``notice``: say on stderr when building takes long (numba compiling)."""
    track = resolve_track(spec.track, spec.allow_bad_geometry)
    car = resolve_car(spec.car) if spec.car is not None else None
    base = car or load_params(DEFAULT_CAR)
    scales = {"friction": spec.friction_scale, "mass": spec.mass_scale}
    try:
        perturbed_car = perturbed(base, **scales)
    except ConfigError as exc:
        raise ConfigError(f"--{str(exc).split(' ', 1)[0]}-scale: {exc}") from None
    plant = make_plant(spec.plant, perturbed_car, plant_hz=spec.plant_hz) if isinstance(spec.plant, str) \
        else spec.plant
    own = own_car(plant, perturbed_car)  # a foreign plant (CommonRoad) is its own car
    if own is not None and scales != {"friction": 1.0, "mass": 1.0}:
        raise ConfigError(f"--friction-scale / --mass-scale: the plant {spec.plant} is its own car (its physics are "
                          f"not the project's parameters); they apply to the project's plants (dynamic_ext, dynamic, "
                          f"kinematic)")
    plant_params = own or perturbed_car
    model_params = (resolve_car(spec.model_params, "model_params") if spec.model_params is not None
                    else (own if own is not None and car is None else base))
    check_interfaces(model_params, plant_params)
    track = race_line(track, spec.raceline, model_params)
    sim = sim_config(spec, plant_params)
    threads = set_numba_threads(spec.threads)
    # the project's own plants (numba) compile beside the controller on a machine's first run (a second process)
    ours = own is None and isinstance(spec.plant, str)  # a plant of the project's, built here
    warmer = PlantWarmer(spec.plant, spec.plant_hz) if notice and ours else None
    controller, line_record, source, name = _controller_of(spec, track, model_params, notice, warmer)
    if ours:
        with compile_notice(f"building the {spec.plant} plant", enabled=notice):
            if warmer is not None:
                warmer.wait()
            warm_plant(plant, initial_state(track, max(spec.start_speed, 1.0)))
    record = run_record(spec, track, plant_params, model_params, controller, name, source, line_record, threads)
    if scales != {"friction": 1.0, "mass": 1.0}:
        record["plant_scales"] = scales
    return Race(spec, track, plant_params, model_params, plant, controller, sim, record,
                reference_for(track, model_params.name, model_params),
                resolve_line(track, model_params, ("mintime",))[0])


def _controller_of(spec: RaceSpec, track: Track, model_params: VehicleParams, notice: bool,
                   warmer: PlantWarmer | None = None):
    """``(controller, line_record, config_source, name)`` of the spec: a built controller as given, else built by
    name with its line (the controller drives its own copy of the track). When building takes long (numba
    compiling), ``warmer`` starts compiling the plant in a second process meanwhile."""
    if spec.controller is not None and not isinstance(spec.controller, str):
        if spec.residual is not None:
            raise ConfigError("residual (--residual): the controller is already built; give the residual to it")
        if spec.controller_set:
            raise ConfigError("controller_set (--set): the controller is already built; give it its settings")
        c = spec.controller
        return c, {"source": "track" if track.raceline is not None else None}, spec.controller_config or "given", \
            getattr(c, "name", type(c).__name__)
    name = spec.controller or default_controller()
    with compile_notice(f"building the {name} controller", enabled=notice,
                        on_slow=warmer.start if warmer is not None else None):
        controller, line_record, source = build_controller(name, track, model_params, spec.controller_config,
                                                           residual=spec.residual, threads=spec.threads,
                                                           device=spec.device,
                                                           **settings_overrides(spec.controller_set))
    return controller, line_record, source, name


def run_record(spec: RaceSpec, track: Track, car, model_params, controller, name: str, config_source,
               line_record: dict, threads: int) -> dict:
    """The run record (``result.config``, ``config.yaml``): the spec, and what it resolved to."""
    return {
        "spec": spec.to_dict(),
        "track": {"name": track.name, "source": str(track.source), "length_m": track.length,
                  "raceline": track.raceline is not None or bool(line_record.get("source")),
                  "widths_from": getattr(track, "widths_from", None)},
        "car": cfg.to_dict(car),
        "model_car": cfg.to_dict(model_params),
        "controller": {"name": name, "config": cfg.to_dict(getattr(controller, "config", None)),
                       "config_file": spec.controller_config, "config_source": str(config_source),
                       "raceline": line_record,
                       **({"residual": str(spec.residual)} if spec.residual is not None else {})},
        "plant": spec.plant if isinstance(spec.plant, str) else type(spec.plant).__name__,
        "machine": {"numba_threads": threads,
                    **(getattr(controller, "device_info", None) or controller_device(name, spec.device).record())},
    }


class compile_notice:
    """Context manager: if the block takes longer than ``after_s`` (numba compiling the kernels on a machine's first
    run), say so on stderr while it runs (and call ``on_slow``) and how long it took at the end; quiet when it is
    fast (cache loaded) or not ``enabled``."""

    def __init__(self, what: str, after_s: float = 2.0, stream=None, enabled: bool = True, on_slow=None):
        self.what, self.after_s, self.stream, self.enabled, self.on_slow = what, after_s, stream, enabled, on_slow
        self.shown = False

    def _show(self):
        self.shown = True
        if self.on_slow is not None:
            self.on_slow()
        print(f"racing: {self.what}: compiling numba kernels (the first run on this machine or after an update "
              f"takes 15-60 s; later runs load them from the cache) ...", file=self.stream or sys.stderr,
              flush=True)

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.timer = threading.Timer(self.after_s, self._show)
        self.timer.daemon = True
        if self.enabled:
            self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        if self.shown:
            print(f"racing: {self.what}: ready after {time.perf_counter() - self.t0:.0f} s",
                  file=self.stream or sys.stderr, flush=True)
        return False


# --- saving a run -------------------------------------------------------------------------------------------------
#: what a saved race writes into its folder (patterns); removed before a new run writes there, so that a folder
#: never mixes two runs. Nothing else in the folder is touched.
RACE_OUTPUTS = ("result.npz", "events.json", "summary.json", "config.yaml", "log.csv", "race.png", "lap.gif",
                "mppi_t*.png")


def check_out_dir(out) -> Path:
    """``out`` as a folder a run can be written into (it or its nearest existing parent writable, no file in the
    way); a ConfigError naming it otherwise. Checked before a race runs, so nothing is computed for nothing; nothing
    is created here."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file; expected a folder (created if missing) for the run's outputs")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"--out {out}: {existing} is a file; expected a folder (created if missing)")
    try:  # a real probe (permissions, a read-only file system, root's exemptions): a file made and removed
        fd, probe = tempfile.mkstemp(prefix=".racing-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"--out {out}: {'the folder' if existing == out else existing} is not writable (a "
                          f"file cannot be made there: {exc.strerror or exc}); expected a folder the run can be written into") from None
    return out


def remove_stale_outputs(out: Path) -> list[Path]:
    """Delete the files of a previous run in ``out`` (only :data:`RACE_OUTPUTS`); returns them."""
    gone = []
    if out.is_dir():
        for pattern in RACE_OUTPUTS:
            for f in sorted(out.glob(pattern)):
                if f.is_file():
                    f.unlink()
                    gone.append(f)
    return gone


def save(result: SimResult, track: Track, out, plot: bool = True, animate: bool = False) -> list[Path]:
    """Write a run into ``out`` (a previous run's files removed first): result.npz, summary.json, events.json,
    config.yaml, log.csv, and with ``plot`` race.png (plus the snapshot plots and, with ``animate``, lap.gif);
    returns every file written."""
    out = check_out_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_outputs(out)
    result.save(out)
    if plot:
        from racing.plot.race import save_race_plot  # matplotlib: only when plotting

        save_race_plot(result, track, out / "race.png")
        if result.snapshots:
            from racing.plot.mppi import save_snapshot_plots

            save_snapshot_plots(result, track, out)
        if animate:
            from racing.plot.mppi import animate_lap

            animate_lap(result, track, out / "lap.gif")
    return sorted(f for pattern in RACE_OUTPUTS for f in out.glob(pattern) if f.is_file())


__all__ = ["FLAGS", "RACE_OUTPUTS", "Race", "RaceSpec", "build", "build_controller", "check_out_dir", "controller_device",
           "compile_notice", "default_controller", "noise_preset", "remove_stale_outputs", "resolve_car",
           "resolve_line", "resolve_track", "run_record", "save", "set_numba_threads", "sim_config"]
