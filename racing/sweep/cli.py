"""``racing sweep SPEC.yaml`` and ``racing tune SPEC.yaml``: many closed-loop races on Ray (the ``sweep`` extra).

The spec is read and checked completely first (unknown key, empty range, unknown track, car or setting: exit
code 2 before any trial); then Ray starts on this machine (``--workers N`` trials at once) or joins a cluster
(``--address ray://host:10001``), and every race runs through ``racing race``'s own code path. Outputs in
``--out`` (default ``runs/<command>_<spec name>/``):

* sweep: ``sweep.csv`` (+ ``sweep.parquet`` with pyarrow), ``sweep.png``, ``configs/`` (controller settings files
  the rows' commands name), ``ray/`` (Ray Tune's experiment: an interrupted run resumes from it);
* tune: ``trials.csv`` (one row per trial: settings, objective, mean/std gap, incidents), ``races.csv`` (every race
  of every trial), ``best.yaml`` (the best settings: ``racing race --controller-config best.yaml``), ``tune.png``.

Exit codes: 0 every race clean (tune: the best trial clean), 3 some races had incidents or failed (tune: the best
trial did), 1 trials raised errors, none finished, or the run was interrupted (Ctrl-C: the tables hold what
finished; the same command resumes), 2 bad input.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from racing.argtypes import positive_int
from racing.plot.sweep import save_figure, sweep_figure, tune_figure
from racing.sweep.engine import require_ray, run_sweep, run_tune
from racing.sweep.spec import load_spec


def _out_dir(args, kind: str) -> Path:
    return Path(args.out) if args.out else Path("runs") / f"{kind}_{Path(args.spec).stem}"


def _prepare(args, kind: str):
    spec = load_spec(args.spec, kind)  # every check before Ray or any trial

    require_ray()
    if args.workers is not None and args.address:
        print(f"racing {kind}: note: --workers {args.workers} limits the trials running at once on the cluster",
              file=sys.stderr, flush=True)
    return spec, _out_dir(args, kind)


def run_sweep_cmd(args) -> int:
    spec, out = _prepare(args, "sweep")
    n = len(spec.sweep_trials())
    where = args.address or f"this machine, {args.workers or 'all'} worker(s)"
    print(f"racing sweep: {n} trials ({spec.sample}) on {where}; results in {out}", file=sys.stderr, flush=True)
    res = run_sweep(spec, out, workers=args.workers, address=args.address, restart=args.restart)
    files = res.save(out)
    if not args.no_plot and res.rows:
        swept = [k for k, a in {**spec.perturbations, **spec.settings}.items() if len(set(map(str, a.values))) > 1
                 or a.is_range]
        swept = (["track"] * (len(spec.tracks) > 1) + ["car"] * (len(spec.cars) > 1) + ["seed"] * (len(spec.seeds) > 1)
                 + swept)
        files.append(save_figure(sweep_figure(res.rows, swept, f"racing sweep {Path(args.spec).name}"),
                                 out / "sweep.png"))
    summary = {**res.summary(), "files": [str(f) for f in files]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(_table(res.rows, ["trial", "track", "car", "seed", "friction", "delay", *spec.settings, "status",
                                "best_lap_s", "gap_pct", "off_track", "spins"]))
        print(f"{summary['finished']}/{summary['trials']} trials in {summary['wall_s']:.0f} s "
              f"({_rate(summary)} on {summary['cpus']} CPUs"
              f"{', resumed' if summary['resumed'] else ''}); clean {summary['clean']}, incidents "
              f"{summary['incidents']}, failed {summary['failed']}, errors {summary['errors']}; Ray started in "
              f"{summary['ray_start_s']:.1f} s, overhead per trial beyond its race {summary['overhead_per_trial_s']} s")
        if summary["unfinished"]:
            print(f"{summary['unfinished']} trials not run (interrupted): the same command resumes the run")
        for f in files:
            print(f"  wrote {f}")
    return res.exit_code


def run_tune_cmd(args) -> int:
    spec, out = _prepare(args, "tune")
    races = spec.tune_races()
    where = args.address or f"this machine, {args.workers or 'all'} worker(s)"
    print(f"racing tune: {spec.trials} trials ({spec.searcher}), each {len(races)} races "
          f"({len(spec.tracks)} tracks x {len(spec.cars)} cars x {len(spec.seeds)} seeds x "
          f"{len(races) // max(1, len(spec.tracks) * len(spec.cars) * len(spec.seeds))} scenarios) on {where}; "
          f"results in {out}", file=sys.stderr, flush=True)
    res = run_tune(spec, out, workers=args.workers, address=args.address, restart=args.restart)
    files = res.save(out, str(args.spec))
    if res.trials and not args.no_plot:
        files.append(save_figure(tune_figure(res.trials, f"racing tune {Path(args.spec).name}"), out / "tune.png"))
    summary = {**res.summary(), "files": [str(f) for f in files]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(_table(res.trials, ["trial", *spec.settings, "objective", "mean_gap_pct", "std_gap_pct",
                                  "off_track", "spins", "failed"]))
        print(f"{summary['finished']}/{summary['planned']} trials in {summary['wall_s']:.0f} s "
              f"({_rate(summary)} on {summary['cpus']} CPUs"
              f"{', resumed' if summary['resumed'] else ''})")
        if summary["unfinished"]:
            print(f"{summary['unfinished']} trials not run (interrupted): the same command resumes the search")
        if summary.get("best"):
            b = summary["best"]
            print(f"best: trial {b['trial']}, objective {b['objective']:.3f}, mean gap {b['mean_gap_pct']:+.2f} % "
                  f"(base: {summary['base_objective']}); settings in {out / 'best.yaml'}")
        for f in files:
            print(f"  wrote {f}")
    return res.exit_code


def _rate(summary) -> str:
    r = summary["trials_per_hour"]
    return "resumed: no rate" if r is None else f"{r:.1f} trials/hour"


def _table(rows, cols) -> str:
    def fmt(v):
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cols = [c for c in cols if any(c in r for r in rows)]
    cells = [[fmt(r.get(c)) for c in cols] for r in rows]
    w = [max([len(c)] + [len(x[i]) for x in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w[i]) for i, c in enumerate(cols))]
    lines += ["  ".join(x[i].rjust(w[i]) for i in range(len(cols))) for x in cells]
    return "\n".join(lines)


def _common(p):
    p.add_argument("spec", help="the spec YAML (see the README: racing sweep / racing tune)")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="trials at once (local: Ray gets workers x threads CPUs; default: every core)")
    p.add_argument("--address", default=None, help="a Ray cluster to join, e.g. ray://head:10001 (default: start "
                                                   "Ray on this machine)")
    p.add_argument("--out", default=None, help="output folder (default runs/<command>_<spec name>)")
    p.add_argument("--restart", action="store_true", help="discard an interrupted run in --out instead of resuming")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def register(sub) -> None:
    p = sub.add_parser("sweep", help="a grid or random sample of closed-loop races on Ray (the sweep extra)",
                       description=__doc__)
    _common(p)
    p.set_defaults(func=run_sweep_cmd)
    p = sub.add_parser("tune", help="search controller settings for a robust objective on Ray Tune + Optuna",
                       description=__doc__)
    _common(p)
    p.set_defaults(func=run_tune_cmd)


__all__ = ["register", "run_sweep_cmd", "run_tune_cmd"]
