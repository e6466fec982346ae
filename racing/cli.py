"""The ``racing`` command line: ``racing race | raceline | fit | learn | bench | drive | tracks | cars``.

Each subcommand lives in its own module exposing ``register(subparsers)``; this file wires
them together, so a part of the stack that is not installed simply has no subcommand.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import time
from pathlib import Path

from racing import exit_codes
from racing.argtypes import positive_int
from racing.config import ConfigError

SUBCOMMAND_MODULES = (
    "racing.raceline.cli",
    "racing.sysid.cli",
    "racing.bench",
    "racing.runtime.cli",
    "racing.sweep.cli",
)

DEFAULT_CONTROLLER = "pure_pursuit"

#: optional packages -> the extra that installs them (pyproject.toml)
OPTIONAL_PACKAGES = {"torch": "learn", "rosbags": "ros", "casadi": "raceline", "pytorch_mppi": "bench", "ray": "sweep",
                     "optuna": "sweep"}


def _default_controller() -> str:
    from racing.control import known_controllers

    return "mppi" if "mppi" in known_controllers() else DEFAULT_CONTROLLER


#: the ``racing race`` option of each SimConfig field (named in errors)
SIM_FLAGS = {"rate_hz": "--rate", "plant_hz": "--plant-hz", "laps": "--laps", "max_time_s": "--max-time",
             "delay_s": "--delay", "seed": "--seed", "snapshot_times": "--snapshot", "noise": "--noise",
             "start_speed": "--start-speed"}


def sim_config_from_args(args, plant_params):
    """The :class:`SimConfig` of ``racing race`` options; a bad value is a ConfigError naming the option, the
    field and the expected range (the checks live in SimConfig, so the Python API gets the same)."""
    from racing.sim.simulator import SimConfig

    try:
        return SimConfig(rate_hz=args.rate, plant_hz=args.plant_hz, laps=args.laps, max_time_s=args.max_time,
                         realtime=args.realtime, delay_s=args.delay, noise=noise_preset(plant_params, args.noise),
                         seed=args.seed, snapshot_times=tuple(args.snapshot or ()),
                         start_speed=getattr(args, "start_speed", 0.0))
    except ConfigError as exc:
        msg = str(exc)
        field_name = msg.split(": ", 2)[1].split("[")[0].split(" ")[0] if ": " in msg else ""
        flag = SIM_FLAGS.get(field_name)
        raise ConfigError(f"{flag}: {msg}" if flag else msg) from None


def noise_preset(params, scale: float):
    """Measurement noise of a typical localisation stack for this car, times ``scale`` (>= 0)."""
    from racing.sim.simulator import NoiseConfig

    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and scale >= 0):
        raise ConfigError(f"--noise: noise scale = {scale!r}; expected a number >= 0 (0 = none, 1 = typical)")

    return NoiseConfig(pos=0.05 * params.wheelbase * scale, yaw=0.01 * scale, vel=0.01 * params.v_max * scale,
                       yaw_rate=0.02 * scale, steer=0.005 * scale)


def set_numba_threads(n) -> int:
    """Set the process's numba thread count (``--threads``; None: leave numba's default, all cores); returns it.
    A machine setting: algorithm configs do not hold it."""
    import numba

    if n is not None:
        if n < 1 or n > numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"--threads must be in 1..{numba.config.NUMBA_NUM_THREADS} (the cores numba was "
                             f"started with), got {n}")
        numba.set_num_threads(n)
    return numba.get_num_threads()


class compile_notice:
    """Context manager: if the block takes longer than ``after_s`` (numba compiling the kernels on a machine's first
    run), say so on stderr while it runs and how long it took at the end; quiet when it is fast (cache loaded)."""

    def __init__(self, what: str, after_s: float = 2.0, stream=None):
        self.what, self.after_s, self.stream = what, after_s, stream
        self.shown = False

    def _show(self):
        self.shown = True
        print(f"racing: {self.what}: compiling numba kernels (the first run on this machine or after an update "
              f"takes 1-3 minutes; later runs load them from the cache) ...", file=self.stream or sys.stderr,
              flush=True)

    def __enter__(self):
        import threading

        self.t0 = time.perf_counter()
        self.timer = threading.Timer(self.after_s, self._show)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        if self.shown:
            print(f"racing: {self.what}: ready after {time.perf_counter() - self.t0:.0f} s",
                  file=self.stream or sys.stderr, flush=True)
        return False


def build_race(args):
    """Resolve track, cars, plant, controller and simulator settings from ``args``."""
    from racing import config as cfg
    from racing.control import make_controller
    from racing.models.params import DEFAULT_CAR, load_params, perturbed
    from racing.sim.plant import make_plant, own_car
    from racing.track import load_track

    track = load_track(args.track, check_geometry=not getattr(args, "allow_bad_geometry", False))
    car = load_params(args.car) if args.car else None
    base = car or load_params(DEFAULT_CAR)
    # a perturbed plant (--friction-scale, --mass-scale): the controller keeps the car's own parameters
    scales = {"friction": getattr(args, "friction_scale", 1.0), "mass": getattr(args, "mass_scale", 1.0)}
    try:
        perturbed_car = perturbed(base, **scales)
    except ConfigError as exc:
        raise ConfigError(f"--{str(exc).split(' ', 1)[0]}-scale: {exc}") from None
    # the plant first (cheap: nothing compiles here): a foreign plant (CommonRoad) is its own car, and --car is
    # then the controller's model of it
    plant = make_plant(args.plant, perturbed_car, plant_hz=args.plant_hz)
    own = own_car(plant, perturbed_car)
    foreign = own is not None
    if foreign and scales != {"friction": 1.0, "mass": 1.0}:
        raise ConfigError(f"--friction-scale / --mass-scale: the plant {args.plant} is its own car (its physics are "
                          f"not the project's parameters); they apply to the project's plants (dynamic_ext, dynamic, "
                          f"kinematic)")
    plant_params = own if foreign else perturbed_car
    # the controller's model: --model-params, else the car (unperturbed), else a foreign plant's own car
    model_params = load_params(args.model_params) if args.model_params else (own if foreign and car is None else base)
    if getattr(args, "raceline", None):
        from racing.track import Raceline

        track = track.with_raceline(track.check_raceline(Raceline.load(args.raceline)))
    sim = sim_config_from_args(args, plant_params)  # before the controller: bad options fail before any compile
    options = {}
    if getattr(args, "residual", None):
        options["residual"] = args.residual
    controller_name = args.controller or _default_controller()
    threads = set_numba_threads(getattr(args, "threads", None))
    with compile_notice(f"building the {controller_name} controller and the {args.plant} plant"):
        controller = make_controller(controller_name, track, model_params, args.controller_config, **options)
    run_config = {
        "track": {"name": track.name, "source": track.source, "length_m": track.length,
                  "raceline": track.raceline is not None, "widths_from": track.widths_from},
        "car": cfg.to_dict(plant_params),
        "model_car": cfg.to_dict(model_params),
        "controller": {"name": controller_name, "config": cfg.to_dict(controller.config),
                       "config_file": args.controller_config,
                       "config_source": getattr(controller, "config_source", args.controller_config or "defaults"),
                       "raceline": getattr(controller, "raceline_record", None), **options},
        "plant": args.plant,
        "machine": {"numba_threads": threads},
    }
    if scales != {"friction": 1.0, "mass": 1.0}:
        run_config["plant_scales"] = scales
    return track, plant_params, model_params, controller, plant, sim, run_config


def _fmt(x, nd=3):
    return "-" if x is None else f"{x:.{nd}f}"


STATUS_WORDS = {"clean": "completed clean", "incidents": "completed with incidents", "failed": "failed"}


def race_table(summary: dict) -> str:
    """Human-readable summary of a race."""
    lines = [f"track {summary['track']}  car {summary['car']}  controller {summary['controller']}  "
             f"plant {summary['plant']}  rate {summary['rate_hz']:g} Hz"]
    lines.append(f"{'lap':>4} {'time [s]':>10}")
    for i, lt in enumerate(summary["laps"], 1):
        lines.append(f"{i:>4} {lt:>10.3f}")
    c = summary["compute_ms"]
    period = summary.get("period_ms")
    over = summary.get("compute_over_period", 0)
    over_txt = str(over)
    if period is not None:
        pct = summary.get("compute_over_period_pct", 0.0)
        over_txt = f"{over} ({pct:.1f} % of ticks)" + ("" if summary.get("realtime") or not over else
                                                       "  off-line: no simulated time lost; --realtime to let it")
    rows = [("best lap [s]", _fmt(summary["best_lap_s"])),
            ("off-track", str(summary["off_track"])),
            ("deadline misses", str(summary["deadline_misses"]) + ("" if summary.get("realtime", True)
                                                                   else "  (off-line run: see compute over period)")),
            ("compute p50 / p99 / max [ms]", f"{_fmt(c['p50'])} / {_fmt(c['p99'])} / {_fmt(c['max'])}"
             + ("" if period is None else f"  (period {period:g} ms)")),
            ("compute over period", over_txt),
            ("max speed [m/s]", _fmt(summary["max_speed_mps"], 2)),
            ("status", summary["status"] + (f"  ({STATUS_WORDS[summary['outcome']]}, exit code {summary['exit_code']})"
                                            if "outcome" in summary else ""))]
    if "reference_lap_s" in summary:
        rows.insert(1, ("reference (min-time) lap [s]", _fmt(summary["reference_lap_s"])))
        gap = summary.get("gap_to_reference")
        rows.insert(2, ("gap to reference", "-" if gap is None else f"{100 * gap:+.2f} %"))
    w = max(len(k) for k, _ in rows)
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    return "\n".join(lines)


#: what ``racing race`` writes into its output folder (patterns); removed before a new run writes there, so that a
#: folder never mixes two runs. Nothing else in the folder is touched.
RACE_OUTPUTS = ("result.npz", "events.json", "summary.json", "config.yaml", "log.csv", "race.png", "lap.gif",
                "mppi_t*.png")


def remove_stale_outputs(out: Path) -> list[Path]:
    """Delete the files of a previous ``racing race`` in ``out`` (only :data:`RACE_OUTPUTS`); returns them."""
    gone = []
    if out.is_dir():
        for pattern in RACE_OUTPUTS:
            for f in sorted(out.glob(pattern)):
                if f.is_file():
                    f.unlink()
                    gone.append(f)
    return gone


def save_race_outputs(result, track, out: Path, plot: bool = True, animate: bool = False) -> list[Path]:
    """Write a run into ``out`` (stale outputs of a previous run removed first); returns every file written."""
    remove_stale_outputs(out)
    result.save(out)
    if plot:
        from racing.plot.race import save_race_plot

        save_race_plot(result, track, out / "race.png")
        if result.snapshots:
            try:
                from racing.plot.mppi import save_snapshot_plots

                save_snapshot_plots(result, track, out)
            except ImportError:
                pass
        if animate:
            from racing.plot.mppi import animate_lap

            animate_lap(result, track, out / "lap.gif")
    return sorted(f for pattern in RACE_OUTPUTS for f in out.glob(pattern) if f.is_file())


def race_from_args(args, show_progress: bool = False):
    """One ``racing race`` from its parsed options, without writing anything: ``(result, summary, track, sim)``.
    ``racing sweep`` / ``racing tune`` run their trials through this, so a trial is exactly the ``racing race``
    command its row prints. The reference lap is the cached minimum-time lap of the car (its own parameters, not
    a perturbed plant's)."""
    from tqdm import tqdm

    from racing.sim.simulator import simulate

    track, plant_params, model_params, controller, plant, sim, run_config = build_race(args)
    bar = tqdm(total=1000, desc=f"race {track.name}", unit="‰", file=sys.stderr,
               disable=None if show_progress else True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
    state = {"last": 0}

    def progress(frac, laps_done):
        k = int(frac * 1000)
        if k > state["last"]:
            bar.update(k - state["last"])
            state["last"] = k
            bar.set_postfix_str(f"lap {min(laps_done + 1, sim.laps)}/{sim.laps}", refresh=False)

    t0 = time.perf_counter()
    result = simulate(track, controller, plant, plant_params, sim, run_config, progress=progress)
    bar.close()
    wall = time.perf_counter() - t0
    try:
        from racing.raceline import reference_for

        result.reference_lap_s = reference_for(track, model_params.name, model_params)
    except ImportError:
        pass
    summary = result.summary()
    summary["wall_time_s"] = round(wall, 3)
    return result, summary, track, sim


def run_race(args) -> int:
    result, summary, track, sim = race_from_args(args, show_progress=not args.json)
    plant_params_name = summary["car"]
    missed = [t for t in sim.snapshot_times if not result.t.size or t > result.t[-1]]
    if missed:
        summary["snapshots_missed"] = missed
        print(f"racing race: note: --snapshot {', '.join(f'{t:g}' for t in missed)} s not taken: the run ended at "
              f"{summary['sim_time_s']:.2f} s", file=sys.stderr)
    out = Path(args.out) if args.out else Path("runs") / f"{track.name}_{plant_params_name}_{summary['controller']}"
    if not args.no_save:
        files = save_race_outputs(result, track, out, plot=not args.no_plot, animate=getattr(args, "animate", False))
        summary["out_dir"] = str(out)
        summary["files"] = [str(f) for f in files]
        if out / "race.png" in files:
            summary["plot"] = str(out / "race.png")
        snaps = [str(f) for f in files if f.name.startswith("mppi_t")]
        if snaps:
            summary["snapshot_plots"] = snaps
        if out / "lap.gif" in files:
            summary["animation"] = str(out / "lap.gif")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))  # with the files and the wall time
    if args.json:
        print(json.dumps(summary))
    else:
        print(race_table(summary))
        if "out_dir" in summary:
            print(f"saved: {summary['out_dir']}" + (f"  plot: {summary['plot']}" if "plot" in summary else ""))
            for f in summary["files"]:
                print(f"  wrote {f}")
    return result.exit_code


def add_race_arguments(p: argparse.ArgumentParser) -> None:
    from racing.models.params import DEFAULT_CAR
    from racing.sim.plant import DEFAULT_PLANT
    from racing.track import DEFAULT_TRACK

    p.add_argument("--track", default=DEFAULT_TRACK, help="track name or path")
    p.add_argument("--allow-bad-geometry", action="store_true",
                   help="race a track whose shape fails the checks (self-crossing, bends tighter than the width)")
    p.add_argument("--car", default=None,
                   help=f"car (plant) parameters: name or YAML path (default: {DEFAULT_CAR}; with a foreign plant "
                        "such as commonroad:mb, which is its own car, the controller's model of it)")
    p.add_argument("--model-params", default=None, help="the controller's model parameters (default: the car's)")
    p.add_argument("--residual", default=None, help="residual network weights for the controller's model")
    p.add_argument("--plant", default=DEFAULT_PLANT,
                   help="the simulated car: dynamic_ext (default: the car's model + tyre relaxation, drivetrain lag, "
                        "optional dead time), dynamic (the controller's own model), kinematic, "
                        "commonroad:st|std|mb[:vehicle id] (the 'commonroad' extra) or an import path module:factory")
    p.add_argument("--controller", default=None, help="controller name (default mppi if available, else pure_pursuit)")
    p.add_argument("--controller-config", default=None,
                   help="YAML with the controller's settings (default: the tuning the car's YAML names, else "
                        "settings derived from its parameters)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="numba threads for the controller (a machine setting; default: all cores)")
    p.add_argument("--raceline", default=None, help="raceline file (TUM 7-column) to follow")
    p.add_argument("--laps", type=int, default=2, help="laps to drive (>= 1)")
    p.add_argument("--rate", type=float, default=50.0, help="control rate [Hz]")
    p.add_argument("--plant-hz", type=float, default=1000.0, help="plant integration rate [Hz], >= 500")
    p.add_argument("--seed", type=int, default=0, help="seed of the measurement noise (and the controller's)")
    p.add_argument("--realtime", action="store_true", help="compute time delays commands; count deadline misses")
    p.add_argument("--delay", type=float, default=0.0, help="actuation delay [s]")
    p.add_argument("--friction-scale", type=float, default=1.0,
                   help="the plant's tyre grip (D_f, D_r, mu) times this; the controller keeps the car's own")
    p.add_argument("--mass-scale", type=float, default=1.0,
                   help="the plant's mass and yaw inertia times this; the controller keeps the car's own")
    p.add_argument("--start-speed", type=float, default=0.0, help="speed at the start line [m/s] (a rolling start)")
    p.add_argument("--noise", type=float, default=0.0, help="measurement noise scale (0 = none, 1 = typical)")
    p.add_argument("--max-time", type=float, default=None, help="simulated time limit [s]")
    p.add_argument("--snapshot", type=float, action="append", help="save controller diagnostics at this time [s]")
    p.add_argument("--animate", action="store_true", help="write an animation of the run (lap.gif)")
    p.add_argument("--out", default=None, help="output folder (default runs/<track>_<car>_<controller>)")
    p.add_argument("--no-save", action="store_true", help="write nothing to disk")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def run_list(args) -> int:
    from racing.control import known_controllers
    from racing.models.params import known_cars
    from racing.sim.plant import known_plants
    from racing.track import known_tracks

    data = {"tracks": known_tracks(), "cars": known_cars(), "controllers": known_controllers(),
            "plants": known_plants()}
    if args.json:
        print(json.dumps(data))
    else:
        for k, v in data.items():
            print(f"{k}: {', '.join(v)}")
    return 0


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """One help style for every subcommand: descriptions kept as written but without reStructuredText markup
    (``x``, :mod:`x`), and the default of every option that has one shown (unless its help already says it)."""

    def _get_help_string(self, action):
        help_text = action.help or ""
        default = action.default
        if ("default" not in help_text and "%(default)" not in help_text and default not in (None, False, True)
                and default is not argparse.SUPPRESS and action.option_strings):
            help_text += " (default: %(default)s)"
        return help_text

    def format_help(self):
        return _plain(super().format_help())


def _plain(text: str) -> str:
    import re

    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    return text.replace("``", "")


def _apply_help_style(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if action.help is None and action.option_strings and action.default not in (None, False, True):
            action.help = "(default: %(default)s)"
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _apply_help_style(sub)


def make_parser() -> argparse.ArgumentParser:
    from racing import __version__

    parser = argparse.ArgumentParser(prog="racing", description="Model-based control for racing cars. Exit codes "
                                     "of every command: 0 completed clean, 1 failed, 2 bad input, 3 completed "
                                     "with incidents.")
    parser.add_argument("--version", action="version", version=f"racing {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("race", help="closed-loop race simulation")
    add_race_arguments(p)
    p.set_defaults(func=run_race)
    p = sub.add_parser("list", help="list tracks, cars, controllers and plants")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_list)
    for mod in SUBCOMMAND_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name and (mod == exc.name or mod.startswith(exc.name + ".")):
                continue
            raise
        m.register(sub)
    _apply_help_style(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from racing.plot import headless_backend_for_cli  # sets MPLBACKEND only; matplotlib is not imported here

    headless_backend_for_cli()
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return exit_codes.BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"racing {args.command}: error: {exc}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    except ModuleNotFoundError as exc:
        extra = OPTIONAL_PACKAGES.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"racing {args.command}: error: this needs the optional package {exc.name!r}: "
              f"pip install 'racing[{extra}]'", file=sys.stderr)
        return exit_codes.BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
