"""The ``racing`` command line: ``racing race | raceline | fit | learn | bench | drive | tracks | cars``.

Each subcommand lives in its own module exposing ``register(subparsers)``; this file wires
them together, so a part of the stack that is not installed simply has no subcommand.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from racing import __version__, exit_codes
from racing.argtypes import positive_int
from racing.assembly import RaceSpec, build, check_out_dir, save
from racing.config import ConfigError
from racing.control import known_controllers
from racing.control.mppi.device import DEVICES
from racing.models.params import DEFAULT_CAR, known_cars
from racing.plot import headless_backend_for_cli
from racing.sim.result import filter_text, guide_text, samples_text
from racing.sim.plant import DEFAULT_PLANT, known_plants
from racing.track import DEFAULT_TRACK, known_tracks

SUBCOMMAND_MODULES = (
    "racing.raceline.cli",
    "racing.sysid.cli",
    "racing.bench",
    "racing.runtime.cli",
    "racing.sweep.cli",
)

#: optional packages -> the extra that installs them (pyproject.toml)
OPTIONAL_PACKAGES = {"torch": "learn", "rosbags": "ros", "casadi": "raceline", "pytorch_mppi": "bench", "ray": "sweep",
                     "optuna": "sweep"}


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
    est = summary.get("estimates", {})
    if "grip_scale" in est:
        edge = "; at the bank's edge: a bound, not a value" if est.get("at_bank_edge") else ""
        rows.insert(-1, ("grip estimate", f"{est['grip_scale']:.3f} x the car file's (lower {est['grip_lower']:.3f}, "
                                          f"{est['windows']} windows{edge})" if est["informed"] else
                         f"not informed ({est['windows']} windows)"))
    if "filter_gain" in est:
        rows.insert(-1, ("state filter", filter_text(est)))
    if "dead_time_s" in est:
        rows.insert(-1, ("dead time", f"{1e3 * est['dead_time_s']:.0f} ms planned over ("
                         + ("identified from the steering angle)" if est.get("steer_informed") else "the car file's)")))
    smp = summary.get("samples")
    if smp and smp.get("iterations"):
        rows.insert(-1, ("samples", samples_text(smp)))
    gd = summary.get("guide")
    if gd and gd.get("weight_mean") is not None:
        rows.insert(-1, ("guide", guide_text(gd)))
    dev = summary.get("device")
    if dev:
        rows.insert(-1, ("device", (f"cuda ({dev.get('gpu')})" if dev.get("device") == "cuda" else "cpu")
                         + (f"  ({dev['note']})" if dev.get("note") else "")))
    if "reference_lap_s" in summary:
        rows.insert(1, ("reference (min-time) lap [s]", _fmt(summary["reference_lap_s"])))
        gap = summary.get("gap_to_reference")
        rows.insert(2, ("gap to reference", "-" if gap is None else f"{100 * gap:+.2f} %"))
    w = max(len(k) for k, _ in rows)
    lines += [f"{k:<{w}}  {v}" for k, v in rows]
    return "\n".join(lines)


def race_summary(race, result, wall_s: float) -> dict:
    """The JSON summary of a run (``racing race --json``): the result's, the wall time and the snapshots missed."""
    summary = result.summary()
    summary["wall_time_s"] = round(wall_s, 3)
    missed = [t for t in race.sim.snapshot_times if not result.t.size or t > result.t[-1]]
    if missed:
        summary["snapshots_missed"] = missed
        print(f"racing race: note: --snapshot {', '.join(f'{t:g}' for t in missed)} s not taken: the run ended at "
              f"{summary['sim_time_s']:.2f} s", file=sys.stderr)
    return summary


class Progress:
    """A tqdm bar on stderr over the race's progress (``enabled`` False: silent)."""

    def __init__(self, name: str, laps: int, enabled: bool):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc=f"race {name}", unit="‰", file=sys.stderr, disable=None if enabled else True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
        self.laps, self.last = laps, 0

    def __call__(self, frac: float, laps_done: int) -> None:
        k = int(frac * 1000)
        if k > self.last:
            self.bar.update(k - self.last)
            self.last = k
            self.bar.set_postfix_str(f"lap {min(laps_done + 1, self.laps)}/{self.laps}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def run_race(args) -> int:
    """``racing race``: the spec of the options, built and run once (:mod:`racing.assembly`), saved and reported."""
    spec = RaceSpec.from_args(args)
    out = None
    if not args.no_save and args.out:
        out = check_out_dir(args.out)  # before anything is computed
    race = build(spec, notice=True)
    progress = Progress(race.track.name, race.sim.laps, enabled=not args.json)
    t0 = time.perf_counter()
    result = race.run(progress)
    progress.close()
    summary = race_summary(race, result, time.perf_counter() - t0)
    if not args.no_save:
        out = out or Path("runs") / f"{race.track.name}_{summary['car']}_{summary['controller']}"
        _save(result, race.plot_track, out, summary, plot=not args.no_plot, animate=args.animate)
    if args.json:
        print(json.dumps(summary))
    else:
        print(race_table(summary))
        if "out_dir" in summary:
            print(f"saved: {summary['out_dir']}" + (f"  plot: {summary['plot']}" if "plot" in summary else ""))
            for f in summary["files"]:
                print(f"  wrote {f}")
    return result.exit_code


def _save(result, track, out: Path, summary: dict, plot: bool, animate: bool) -> None:
    """Write the run and add what was written to ``summary`` (rewritten into summary.json)."""
    files = save(result, track, out, plot=plot, animate=animate)
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


def add_race_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--set", dest="controller_set", action="append", default=None, metavar="KEY=VALUE",
                   help="a setting over the controller's settings (repeatable; dotted keys for nested ones): "
                        "--set guide=ilqr, --set physics_precision=float32, --set cost.line=0.5")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="numba threads for the controller (a machine setting; default: all cores)")
    p.add_argument("--device", default="cpu", choices=DEVICES,
                   help="where MPPI's iteration runs: cpu (default), cuda (an NVIDIA GPU: the 'cuda' extra; exit 2 "
                        "naming what is missing without one) or auto (the GPU when one works, else the CPU)")
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
