"""Sweep and tune specifications: a strict YAML -> a checked spec -> the list of races to run.

A spec is checked completely before any trial starts (:func:`load_sweep_spec`, :func:`load_tune_spec`): an unknown
key, an empty list or range, an unknown track, car, controller, plant or controller setting, or a value the
simulator would refuse is a :class:`racing.config.ConfigError` naming the file, the key and what was expected.

Common keys (``racing sweep`` and ``racing tune``)::

    controller: mppi               # registry name
    controller_config: null        # base settings YAML (default: the car's tuning / derived settings)
    tracks: [Norisring, lab_loop]  # project tracks, shared TUM circuits by name, or paths (relative to the spec)
    cars: [gt_car]                 # names or YAML paths
    seeds: [0]                     # the simulator's seed (measurement noise)
    laps: 1
    rate_hz: 50.0
    start_speed: 0.0               # [m/s], or "reference": the min-time line's speed at its start (a flying lap)
    realtime: false
    max_time_s: null
    threads: 1                     # numba threads per trial (= the CPUs Ray gives each trial)
    device: cpu                    # where MPPI's iteration runs: cpu, cuda (a trial asks Ray for a GPU) or auto
    perturbations:                 # the plant, not the controller
      friction: [1.0]              # tyre grip scale (D_f, D_r, mu)
      mass: [1.0]                  # mass and yaw-inertia scale
      delay: [0.0]                 # actuation delay [s]
      noise: [0.0]                 # localisation-noise scale (racing race --noise)
      plant: [dynamic_ext]          # the simulator's default plant
    settings:                      # controller settings by dotted key (cost.progress, sigma_accel, ...)
      cost.progress: [1.0, 3.0]

An axis is a list of values (a grid axis, or a categorical choice) or a range ``{low: a, high: b}`` with optional
``log: true`` (random draws only). ``racing sweep`` adds ``sample: grid`` (every combination; lists only) or
``sample: {random: N, seed: S}`` (N trials, each axis drawn independently). ``racing tune`` adds ``trials``,
``searcher`` (``optuna``: Bayesian TPE; ``random``), ``search_seed``, ``scenarios`` (how many perturbation
scenarios per track to draw once from the ranges, shared by every trial: common random numbers; a grid of the
lists when 0) and ``objective`` (see :class:`Objective`).
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from racing import config as cfg
from racing.config import ConfigError, load_yaml
from racing.control import known_controllers
from racing.control.base import controller_settings
from racing.control.mppi.device import DEVICES, resolve_device
from racing.models.params import load_params
from racing.raceline import cached_raceline, reference_lap
from racing.sim.plant import known_plants
from racing.sweep.settings import get_dotted, nest
from racing.track import load_track
from racing.track.catalog import resolve_track

PERTURBATIONS = ("friction", "mass", "delay", "noise", "plant")
#: default of each perturbation axis (the nominal car and simulator)
PERTURBATION_DEFAULTS = {"friction": 1.0, "mass": 1.0, "delay": 0.0, "noise": 0.0, "plant": "dynamic_ext"}
#: checks of each numeric perturbation value: (test, what was expected)
_PERT_CHECKS = {"friction": (lambda v: 0.0 < v <= 3.0, "a grip scale in (0, 3]"),
                "mass": (lambda v: 0.0 < v <= 5.0, "a mass scale in (0, 5]"),
                "delay": (lambda v: 0.0 <= v <= 1.0, "an actuation delay in [0, 1] s"),
                "noise": (lambda v: 0.0 <= v <= 100.0, "a noise scale in [0, 100]")}

COMMON_KEYS = ("controller", "controller_config", "tracks", "cars", "seeds", "laps", "rate_hz", "start_speed",
               "realtime", "max_time_s", "threads", "device", "perturbations", "settings", "allow_bad_geometry")
SWEEP_KEYS = COMMON_KEYS + ("sample",)
TUNE_KEYS = COMMON_KEYS + ("trials", "searcher", "search_seed", "scenarios", "objective", "start_from_base")


@dataclass(frozen=True)
class Axis:
    """One swept quantity: ``values`` (a list) or a range ``low``..``high`` (uniform, or log-uniform)."""

    name: str
    values: tuple = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None

    def draw(self, rng: np.random.Generator):
        """One value: a uniform choice of the list, or a uniform (log-uniform) number in the range."""
        if not self.is_range:
            return self.values[int(rng.integers(len(self.values)))]
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def bounds(self) -> list:
        """The values a check must accept: the list, or both ends of the range."""
        return [self.low, self.high] if self.is_range else list(self.values)


@dataclass(frozen=True)
class Objective:
    """The robust objective of ``racing tune`` (lower is better), over the races of one trial:

    ``mean(score) + k_std * std(score) + off_track_penalty * (off-track excursions + spins)``, where a race's score
    is its gap to the minimum-time reference in percent (best lap / reference - 1, x 100) when it completed its
    laps and ``fail_penalty`` when it did not (off track for good, timeout, diverged). A spin is an excursion of
    the sideslip |atan(v_y / v_x)| beyond ``spin_beta`` [rad] above 5 m/s."""

    k_std: float = field(default=1.0, metadata={"min": 0.0})
    off_track_penalty: float = field(default=20.0, metadata={"min": 0.0, "unit": "percentage points"})
    fail_penalty: float = field(default=100.0, metadata={"min": 0.0, "unit": "percentage points"})
    spin_beta: float = field(default=0.3, metadata={"gt": 0.0, "max": 1.5, "unit": "rad"})


@dataclass(frozen=True)
class Spec:
    """A checked spec (both commands). ``races()`` / ``trials()`` expand it."""

    kind: str                      # "sweep" | "tune"
    source: str                    # the file
    controller: str
    controller_config: str | None
    tracks: tuple                  # (spec name, load_track argument)
    cars: tuple
    seeds: tuple
    laps: int
    rate_hz: float
    start_speed: float | str
    realtime: bool
    max_time_s: float | None
    threads: int
    perturbations: dict            # name -> Axis
    settings: dict                 # dotted key -> Axis
    sample: str = "grid"           # sweep: "grid" | "random"
    samples: int = 0               # sweep random: how many
    sample_seed: int = 0
    trials: int = 0                # tune
    searcher: str = "optuna"
    search_seed: int = 0
    scenarios: int = 0
    objective: Objective = Objective()
    start_from_base: bool = True
    #: (track source, car) -> the min-time line's speed at its start [m/s] (``start_speed: reference``)
    start_speeds: dict = field(default_factory=dict)
    #: race tracks whose geometry check fails (``racing race --allow-bad-geometry``)
    allow_bad_geometry: bool = False
    #: where MPPI's iteration runs (``racing race --device``)
    device: str = "cpu"

    # ------------------------------------------------------------------------------------------------
    def base_race(self) -> dict:
        """The race fields every trial shares."""
        return {"controller": self.controller, "controller_config": self.controller_config, "laps": self.laps,
                "rate_hz": self.rate_hz, "realtime": self.realtime, "max_time_s": self.max_time_s,
                "threads": self.threads, "device": self.device, "allow_bad_geometry": self.allow_bad_geometry}

    def resources(self) -> dict:
        """What Ray gives each trial: ``threads`` CPUs, and a GPU with ``device: cuda``."""
        return {"cpu": self.threads, **({"gpu": 1} if self.device == "cuda" else {})}

    def sweep_trials(self) -> list[dict]:
        """The sweep's races, one per trial: dicts with ``trial`` (0..), ``track``, ``track_source``, ``car``,
        ``seed``, the perturbations, ``settings`` (dotted key -> value) and the shared race fields."""
        axes = {"track": Axis("tracks", tuple(self.tracks)), "car": Axis("cars", tuple(self.cars)),
                "seed": Axis("seeds", tuple(self.seeds)),
                **{f"p:{k}": a for k, a in self.perturbations.items()},
                **{f"s:{k}": a for k, a in self.settings.items()}}
        names = list(axes)
        if self.sample == "grid":
            combos = [dict(zip(names, vals)) for vals in itertools.product(*(axes[n].values for n in names))]
        else:
            rng = np.random.default_rng(self.sample_seed)
            combos = [{n: axes[n].draw(rng) for n in names} for _ in range(self.samples)]
        out = []
        for i, c in enumerate(combos):
            out.append(self._race(i, c))
        return out

    def _race(self, i: int, c: dict) -> dict:
        (name, source), car = c["track"], c["car"]
        race = {"trial": i, "track": name, "track_source": source, "car": car, "seed": int(c["seed"]),
                **{k: c[f"p:{k}"] for k in PERTURBATIONS},
                "settings": {k[2:]: v for k, v in c.items() if k.startswith("s:")}, **self.base_race()}
        race["start_speed"] = self.start_speeds.get((source, car), 0.0) if self.start_speed == "reference" \
            else float(self.start_speed)
        return race

    def tune_races(self) -> list[dict]:
        """Tune: the races of one trial, the same for every trial (common random numbers; settings left empty,
        the searcher fills them). With ``scenarios: 0`` every (track, car, seed) races every combination of the
        perturbation lists; with ``scenarios: N`` it races N scenarios of its own, drawn once (seeded by
        ``search_seed``) by Latin-hypercube sampling over all the races: each range is cut into as many equal
        strata as there are races and every stratum is used once, so a few races cover the whole range."""
        combos = list(itertools.product(self.tracks, self.cars, self.seeds))
        axes = self.perturbations
        if self.scenarios == 0:
            grid = [dict(zip(axes, vals)) for vals in itertools.product(*(axes[k].values for k in axes))]
            scen = [sc for _ in combos for sc in grid]
        else:
            m = len(combos) * self.scenarios
            rng = np.random.default_rng(self.search_seed + 7919)
            cols = {k: _stratified(a, m, rng) for k, a in axes.items()}
            scen = [{k: cols[k][j] for k in axes} for j in range(m)]
        per = len(scen) // len(combos)
        out = []
        for i, (track, car, seed) in enumerate(combos):
            for sc in scen[i * per:(i + 1) * per]:
                c = {"track": track, "car": car, "seed": seed, **{f"p:{k}": v for k, v in sc.items()}}
                out.append(self._race(len(out), c))
        return out


# ----------------------------------------------------------------------------------------------------------------
def _stratified(axis: Axis, m: int, rng: np.random.Generator) -> list:
    """``m`` values of ``axis`` by Latin-hypercube sampling: a range cut into ``m`` equal strata (in log space for a
    log range), one uniform draw in each, in random order (rounded to 4 significant digits); a list cycled
    through in random order."""
    if not axis.is_range:
        return [axis.values[i % len(axis.values)] for i in rng.permutation(m)]
    u = (rng.permutation(m) + rng.uniform(size=m)) / m
    if axis.log:
        v = np.exp(np.log(axis.low) + u * (np.log(axis.high) - np.log(axis.low)))
    else:
        v = axis.low + u * (axis.high - axis.low)
    return [float(f"{x:.4g}") for x in v]


def _where(source, key):
    return f"{source}: {key}"


def _axis(value, name: str, source: str, allow_range: bool, numeric: bool) -> Axis:
    where = _where(source, name)
    if isinstance(value, dict):
        if not allow_range:
            raise ConfigError(f"{where}: a range {{low, high}} needs random sampling (sample: {{random: N}}) or "
                              f"racing tune; a grid takes a list of values")
        unknown = [k for k in value if k not in ("low", "high", "log")]
        if unknown:
            raise ConfigError(f"{where}: unknown key '{unknown[0]}' in a range; known keys: high, log, low")
        for k in ("low", "high"):
            if k not in value:
                raise ConfigError(f"{where}: a range needs '{k}'")
            v = value[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{where}.{k}: expected a finite number, got {v!r}")
        log = value.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.log: expected true or false, got {log!r}")
        low, high = float(value["low"]), float(value["high"])
        if not low < high:
            raise ConfigError(f"{where}: empty range: low = {low:g} is not below high = {high:g}")
        if log and low <= 0:
            raise ConfigError(f"{where}: a log range needs low > 0, got {low:g}")
        return Axis(name, low=low, high=high, log=log)
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ConfigError(f"{where}: empty list; expected at least one value")
    if numeric:
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{where}: expected numbers, got {v!r}")
    return Axis(name, values=tuple(values))


def _number(data, key, source, default, kind=float, check=None, expected=""):
    v = data.get(key, default)
    if v is None and default is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or (kind is int and int(v) != v) or (check is not None and not check(v)):
        want = expected or ("an integer" if kind is int else "a number")
        raise ConfigError(f"{_where(source, key)}: {v!r}; expected {want}")
    return kind(v)


def _resolve_path(text: str, folder: Path) -> str:
    """A path as an absolute one (trials run in other folders, on other machines): from the current folder when
    it exists there, else relative to the spec's folder; unchanged when neither exists (the loader's error)."""
    p = Path(text).expanduser()
    if p.is_absolute() or p.exists():
        return str(p.resolve())
    q = folder / p
    return str(q.resolve()) if q.exists() else text


def _check_keys(data: dict, source: str, kind: str) -> None:
    """Refuse a key the ``kind`` of spec does not know and a spec without ``tracks``."""
    known = SWEEP_KEYS if kind == "sweep" else TUNE_KEYS
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ConfigError(f"{source}: unknown key '{unknown[0]}'; known keys: {', '.join(sorted(known))}")
    for k in ("tracks",):
        if k not in data:
            raise ConfigError(f"{source}: missing key {k} (a list of track names or paths)")


def _controller(data: dict, source: str, folder: Path) -> tuple[str, str | None]:
    """(the registry name of ``controller``, the absolute path of ``controller_config`` or None)."""
    controller = data.get("controller", "mppi")
    if controller not in known_controllers():
        raise ConfigError(f"{_where(source, 'controller')}: unknown controller {controller!r}; known controllers: "
                          f"{', '.join(known_controllers())}")
    ccfg = data.get("controller_config")
    if ccfg is not None:
        if not isinstance(ccfg, str):
            raise ConfigError(f"{_where(source, 'controller_config')}: expected a path to a YAML file, got {ccfg!r}")
        ccfg = str(Path(_resolve_path(ccfg, folder)).resolve())
        if not Path(ccfg).is_file():
            raise ConfigError(f"{_where(source, 'controller_config')}: file not found: {data['controller_config']}")
    return controller, ccfg


def _run_options(data: dict, source: str) -> dict:
    """The race options: ``laps``, ``rate_hz`` [Hz], ``start_speed`` [m/s] (or "reference"), ``realtime``,
    ``max_time_s`` [s] (or None), ``threads`` (numba threads per trial), ``device`` (``cpu``, ``cuda``: checked
    here, a missing GPU is an error before any trial; ``auto``), as Spec fields."""
    laps = _number(data, "laps", source, 1, int, lambda v: v >= 1, "an integer >= 1")
    rate_hz = _number(data, "rate_hz", source, 50.0, float, lambda v: 0 < v <= 2000, "a rate in (0, 2000] Hz")
    start_speed = data.get("start_speed", 0.0)
    if start_speed != "reference":
        start_speed = _number(data, "start_speed", source, 0.0, float, lambda v: v >= 0,
                              "a speed >= 0 m/s or 'reference'")
    realtime = data.get("realtime", False)
    if not isinstance(realtime, bool):
        raise ConfigError(f"{_where(source, 'realtime')}: expected true or false, got {realtime!r}")
    max_time = _number(data, "max_time_s", source, None, float, lambda v: v > 0, "a time > 0 s or null")
    import numba

    threads = _number(data, "threads", source, 1, int, lambda v: 1 <= v <= numba.config.NUMBA_NUM_THREADS,
                      f"an integer in 1..{numba.config.NUMBA_NUM_THREADS} (the cores numba started with)")
    device = data.get("device", "cpu")
    if device not in DEVICES:
        raise ConfigError(f"{_where(source, 'device')}: expected one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda":
        resolve_device(device, option=_where(source, "device"))
    return dict(laps=laps, rate_hz=rate_hz, start_speed=start_speed, realtime=realtime, max_time_s=max_time,
                threads=threads, device=device)


def _sampling(data: dict, source: str, kind: str) -> tuple[dict, bool]:
    """(the sweep's sampling as Spec fields: sample, samples, sample_seed; empty for tune, whether axes may be
    ranges {low, high}: tune and random sweeps)."""
    allow_range = kind == "tune"
    extra = {}
    if kind == "sweep":
        sample = data.get("sample", "grid")
        if sample == "grid":
            extra.update(sample="grid")
        elif isinstance(sample, dict) and set(sample) <= {"random", "seed"} and "random" in sample:
            n = sample["random"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ConfigError(f"{_where(source, 'sample.random')}: expected an integer >= 1 (trials), got {n!r}")
            seed = sample.get("seed", 0)
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ConfigError(f"{_where(source, 'sample.seed')}: expected an integer, got {seed!r}")
            extra.update(sample="random", samples=n, sample_seed=seed)
            allow_range = True
        else:
            raise ConfigError(f"{_where(source, 'sample')}: expected 'grid' or {{random: N, seed: S}}, got {sample!r}")
    return extra, allow_range


def _perturbations(data: dict, source: str, allow_range: bool) -> dict:
    """{perturbation: Axis} of every :data:`PERTURBATIONS` (the defaults where not given), each value checked."""
    pert_data = data.get("perturbations", {}) or {}
    if not isinstance(pert_data, dict):
        raise ConfigError(f"{_where(source, 'perturbations')}: expected a mapping of {', '.join(PERTURBATIONS)}")
    unknown = [k for k in pert_data if k not in PERTURBATIONS]
    if unknown:
        raise ConfigError(f"{source}: unknown key 'perturbations.{unknown[0]}'; known keys: "
                          f"{', '.join(PERTURBATIONS)}")
    perts = {}
    for k in PERTURBATIONS:
        raw = pert_data.get(k, [PERTURBATION_DEFAULTS[k]])
        a = _axis(raw, f"perturbations.{k}", source, allow_range and k != "plant", k != "plant")
        if k == "plant":
            for v in a.values:
                if not isinstance(v, str) or (v not in known_plants() and ":" not in v):
                    raise ConfigError(f"{_where(source, 'perturbations.plant')}: unknown plant {v!r}; known plants: "
                                      f"{', '.join(known_plants())} (or module:factory)")
        else:
            test, expected = _PERT_CHECKS[k]
            for v in a.bounds():
                if not test(v):
                    raise ConfigError(f"{_where(source, f'perturbations.{k}')}: {v!r}; expected {expected}")
        perts[k] = a
    return perts


def _settings(data: dict, source: str, allow_range: bool) -> dict:
    """{dotted controller key: Axis} of ``settings`` (a range is numeric; list values are checked later, by the
    controller's config)."""
    settings_data = data.get("settings", {}) or {}
    if not isinstance(settings_data, dict):
        raise ConfigError(f"{_where(source, 'settings')}: expected a mapping of dotted controller keys to values")
    settings = {}
    for k, raw in settings_data.items():
        numeric = isinstance(raw, dict)
        settings[str(k)] = _axis(raw, f"settings.{k}", source, allow_range, numeric)
    return settings


def _load_tracks(tracks_axis: Axis, source: str, folder: Path, allow_bad: bool) -> list:
    """[(track name, load_track argument, Track)] of the ``tracks`` axis, loaded now so that a bad name fails
    before any trial (``allow_bad``: without the geometry check)."""
    tracks = []
    for name in tracks_axis.values:
        if not isinstance(name, str):
            raise ConfigError(f"{_where(source, 'tracks')}: expected track names or paths, got {name!r}")
        arg = resolve_track(_resolve_path(name, folder) if ("/" in name or name.endswith(".csv")) else name)
        try:
            track = load_track(arg, check_geometry=not allow_bad)
        except Exception as exc:  # noqa: BLE001 - TrackError, ConfigError, OSError: one clear message
            raise ConfigError(f"{_where(source, 'tracks')}: {name!r}: {exc}") from None
        tracks.append((track.name, str(arg), track))
    return tracks


def _load_cars(cars_axis: Axis, source: str, folder: Path) -> list:
    """[(load_params argument, VehicleParams)] of the ``cars`` axis, loaded now."""
    cars = []
    for name in cars_axis.values:
        if not isinstance(name, str):
            raise ConfigError(f"{_where(source, 'cars')}: expected car names or paths, got {name!r}")
        arg = _resolve_path(name, folder) if name.endswith((".yaml", ".yml")) else name
        try:
            cars.append((arg, load_params(arg)))
        except ConfigError as exc:
            raise ConfigError(f"{_where(source, 'cars')}: {exc}") from None
    return cars


def _check_settings(controller: str, ccfg: str | None, cars: list, settings: dict, source: str) -> None:
    """Every setting value (or both ends of a range) must be accepted by the controller's config, for each car."""
    for _car_arg, car in cars:
        try:
            controller_settings(controller, car, ccfg)
        except ConfigError as exc:
            raise ConfigError(f"{_where(source, 'controller_config')}: {exc}") from None
        for k, a in settings.items():
            for v in a.bounds():
                try:
                    controller_settings(controller, car, ccfg, nest({k: v}))
                except (ConfigError, ValueError) as exc:
                    raise ConfigError(f"{_where(source, f'settings.{k}')}: {v!r} refused by the {controller} "
                                      f"settings: {exc}") from None


def _start_speeds(start_speed, tracks: list, cars: list) -> dict:
    """{(track argument, car argument): start speed [m/s]}: with ``start_speed: reference`` the cached min-time
    line's speed at its start (0 without one), else empty."""
    start_speeds = {}
    if start_speed == "reference":
        for _, arg, track in tracks:
            for car_arg, car in cars:
                line = cached_raceline(track, car.name, "mintime", car)
                start_speeds[(arg, car_arg)] = round(float(line.vx[0]), 2) if line is not None else 0.0
    return start_speeds


def load_spec(path, kind: str) -> Spec:
    """Read and check a spec file (``kind``: "sweep" or "tune"); every error names the file and the key."""
    source = str(path)
    data = load_yaml(path)
    folder = Path(path).resolve().parent
    _check_keys(data, source, kind)
    controller, ccfg = _controller(data, source, folder)
    tracks_axis = _axis(data["tracks"], "tracks", source, False, False)
    cars_axis = _axis(data.get("cars", ["gt_car"]), "cars", source, False, False)
    seeds_axis = _axis(data.get("seeds", [0]), "seeds", source, False, True)
    for s in seeds_axis.values:
        if int(s) != s or s < 0:
            raise ConfigError(f"{_where(source, 'seeds')}: expected integers >= 0, got {s!r}")
    run = _run_options(data, source)
    extra, allow_range = _sampling(data, source, kind)
    perts = _perturbations(data, source, allow_range)
    settings = _settings(data, source, allow_range)
    allow_bad = data.get("allow_bad_geometry", False)
    if not isinstance(allow_bad, bool):
        raise ConfigError(f"{_where(source, 'allow_bad_geometry')}: expected true or false, got {allow_bad!r}")
    tracks = _load_tracks(tracks_axis, source, folder, allow_bad)
    cars = _load_cars(cars_axis, source, folder)
    _check_settings(controller, ccfg, cars, settings, source)
    start_speeds = _start_speeds(run["start_speed"], tracks, cars)
    common = dict(kind=kind, source=source, controller=controller, controller_config=ccfg,
                  tracks=tuple((n, a) for n, a, _ in tracks), cars=tuple(c for c, _ in cars),
                  seeds=tuple(int(s) for s in seeds_axis.values), **run,
                  perturbations=perts, settings=settings, start_speeds=start_speeds, allow_bad_geometry=allow_bad)
    if kind == "tune":
        return _tune_spec(data, source, common, tracks, cars)
    n = len(Spec(**common, **extra).sweep_trials()) if extra["sample"] == "grid" else extra["samples"]
    if n > 100_000:
        raise ConfigError(f"{source}: the grid has {n} trials; expected at most 100000 (sample: {{random: N}})")
    return Spec(**common, **extra)


def _tune_spec(data: dict, source: str, common: dict, tracks: list, cars: list) -> Spec:
    """The ``racing tune`` spec: ``common`` (the checked common keys as Spec fields) with the tune keys checked:
    trials, searcher, search_seed, scenarios, objective, start_from_base; one car, at least one setting, and a
    cached minimum-time reference lap for every track."""
    perts, settings = common["perturbations"], common["settings"]
    trials = _number(data, "trials", source, 20, int, lambda v: v >= 1, "an integer >= 1")
    searcher = data.get("searcher", "optuna")
    if searcher not in ("optuna", "random"):
        raise ConfigError(f"{_where(source, 'searcher')}: expected 'optuna' or 'random', got {searcher!r}")
    search_seed = _number(data, "search_seed", source, 0, int, None, "an integer")
    scenarios = _number(data, "scenarios", source, 0, int, lambda v: v >= 0, "an integer >= 0")
    if scenarios == 0 and any(a.is_range for a in perts.values()):
        raise ConfigError(f"{_where(source, 'scenarios')}: perturbation ranges need scenarios >= 1 (how many "
                          f"to draw per track); 0 takes the grid of the listed values")
    if not settings:
        raise ConfigError(f"{_where(source, 'settings')}: racing tune needs at least one setting to search")
    if len(cars) != 1:
        raise ConfigError(f"{_where(source, 'cars')}: racing tune takes one car (the settings it writes are "
                          f"that car's); got {len(cars)}")

    objective = cfg.from_mapping(Objective, data.get("objective", {}) or {}, source=source, prefix="objective.")
    start_from_base = data.get("start_from_base", True)
    if not isinstance(start_from_base, bool):
        raise ConfigError(f"{_where(source, 'start_from_base')}: expected true or false")
    if start_from_base:
        _check_base_inside(common["controller"], common["controller_config"], cars, settings, source)
    missing = [(n, c) for n, _, t in tracks for c_arg, c in cars if _reference(t, c) is None]
    if missing:
        n, c = missing[0]
        raise ConfigError(f"{_where(source, 'tracks')}: no cached minimum-time reference for car {c.name!r} on "
                          f"{n!r} (the objective is the gap to it): racing raceline --track ... --car {c.name} "
                          f"--method mintime")
    return Spec(**common, trials=trials, searcher=searcher, search_seed=search_seed, scenarios=scenarios,
                objective=objective, start_from_base=start_from_base)


def _check_base_inside(controller: str, ccfg: str | None, cars: list, settings: dict, source: str) -> None:
    """``start_from_base``: the base settings of each car must lie in the search space."""
    for _car_arg, car in cars:
        base, _ = controller_settings(controller, car, ccfg)
        for k, a in settings.items():
            v = get_dotted(base, k)
            inside = (a.low <= v <= a.high) if a.is_range else v in a.values
            if not inside:
                raise ConfigError(f"{_where(source, f'settings.{k}')}: the base value {v!r} lies outside "
                                  f"the search space; widen it or set start_from_base: false")


def _reference(track, car):
    return reference_lap(track, car.name, car)


def load_sweep_spec(path) -> Spec:
    """A checked ``racing sweep`` spec."""
    return load_spec(path, "sweep")


def load_tune_spec(path) -> Spec:
    """A checked ``racing tune`` spec."""
    return load_spec(path, "tune")


def spec_fingerprint(spec: Spec) -> str:
    """sha1 (12 hex) of what the spec runs (to refuse resuming a run folder with a different spec)."""
    import hashlib
    import json

    d = dataclasses.asdict(spec)
    d.pop("source", None)
    d["start_speeds"] = sorted((list(k), v) for k, v in d["start_speeds"].items())
    return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


__all__ = ["Axis", "Objective", "PERTURBATIONS", "Spec", "load_spec", "load_sweep_spec", "load_tune_spec",
           "spec_fingerprint"]
