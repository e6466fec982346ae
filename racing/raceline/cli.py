"""``racing raceline``: compute (or reuse) a minimum-curvature line or the minimum-lap-time reference.

    racing raceline --track lab_loop --method mincurv
    racing raceline --track ridge_ring --car gt_car --method mintime --json
    racing raceline --track Monza --method mintime --spacing 3

The line is written in the TUM 7-column raceline format to the cache (beside a project track, or
``~/.cache/racing/racelines`` for other tracks; see :mod:`racing.raceline.cache`) and to ``--out``. A cached line
computed for the same car parameters, track geometry, spacing and margin is reused unless ``--no-cache``.
Exit status: 0 on success, 2 for an option outside its range (the option and the range named), 1 when the line
cannot be computed (track too narrow for the car, IPOPT failure: the message and the JSON name the solver status).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from racing.models.params import DEFAULT_CAR, load_params
from racing.raceline import RacelineError
from racing.raceline.cache import METHODS, cache_path, cached_entry, line_metadata, save_raceline
from racing.raceline.compute import check_options, compute
from racing.raceline.mincurv import default_margin, default_spacing
from racing.track import DEFAULT_TRACK, load_track


def register(subparsers) -> None:
    p = subparsers.add_parser("raceline", help="minimum-curvature racing line or minimum-lap-time reference",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--track", default=DEFAULT_TRACK,
                   help="track name (racing list, e.g. Monza), a TUM centre-line csv or a track folder "
                        "(default: %(default)s, as racing race)")
    p.add_argument("--allow-bad-geometry", action="store_true",
                   help="use a track whose geometry check fails (e.g. distinct parts overlapping), as racing race")
    p.add_argument("--car", default=DEFAULT_CAR,
                   help="car name or YAML path (default: %(default)s, as racing race)")
    p.add_argument("--method", choices=METHODS, default="mincurv",
                   help="mincurv: min-curvature QP + quasi-steady-state speed profile; mintime: minimum-lap-time "
                        "optimal control with the dynamic single-track model (IPOPT)")
    p.add_argument("--out", default=None, help="also write the line to this file (TUM 7-column csv)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of a table")
    p.add_argument("--spacing", type=float, default=None,
                   help="optimisation grid spacing [m] (default: the wheelbase, at most 3 m)")
    p.add_argument("--margin", type=float, default=None,
                   help="safety margin [m] between the car's side and the track edge (default: 10%% of car width)")
    p.add_argument("--no-cache", action="store_true", help="neither reuse nor write the cached line")
    p.add_argument("--time-limit", type=float, default=600.0, help="IPOPT wall-time limit [s] (mintime)")
    p.add_argument("--max-iter", type=int, default=3000, help="IPOPT iteration limit (mintime)")
    p.add_argument("--verbose", action="store_true", help="print IPOPT's iteration log (mintime)")
    p.set_defaults(func=run)


def default_car(track) -> str:
    """f1tenth on 1:10 tracks, gt_car on full-size (or unknown-scale) tracks."""
    return "f1tenth" if getattr(track, "scale", None) == "1:10" else "gt_car"


def _close(a, b, rel=1e-6) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def run(args) -> int:
    track = load_track(args.track, check_geometry=not args.allow_bad_geometry)
    car = args.car or default_car(track)
    params = load_params(car)
    car_name = params.name if (car.endswith((".yaml", ".yml")) or "/" in car) else car
    check_options(track, params, args.spacing, args.margin, args.time_limit, args.max_iter)
    spacing = args.spacing if args.spacing is not None else default_spacing(track, params)
    margin = args.margin if args.margin is not None else default_margin(params)
    grid_spacing = track.length / max(8, int(round(track.length / spacing))) if spacing > 0 else spacing
    cpath = cache_path(track, car_name, args.method, params)
    summary = {"track": track.name, "car": car_name, "method": args.method}
    raceline, info, cached = None, None, False
    if not args.no_cache:
        entry = cached_entry(track, car_name, args.method, params)
        if entry is not None:
            rl, meta, _ = entry
            try:
                same = _close(float(meta["spacing_m"]), grid_spacing) and _close(float(meta["margin_m"]), margin)
            except (KeyError, ValueError):
                same = False
            if same:
                raceline, cached = rl, True
                info = {k: _num(v) for k, v in meta.items()
                        if k not in ("track", "car", "method", "params_sha1", "track_sha1", "closed_length_m")}
    if raceline is None:
        t0 = time.perf_counter()
        try:
            raceline, info = compute(track, params, args.method, spacing=args.spacing, margin=args.margin,
                                     time_limit=args.time_limit, max_iter=args.max_iter, verbose=args.verbose)
        except RacelineError as exc:
            status = getattr(exc, "status", None)
            if args.json:
                print(json.dumps({**summary, "error": str(exc), "status": status}, indent=2))
            print(f"racing raceline: error: {exc}", file=sys.stderr)
            return 1
        info["solve_time_s"] = info.get("solve_time_s", time.perf_counter() - t0)
    meta = line_metadata(track, car_name, args.method, info, params)
    written = []
    if not args.no_cache and not cached:
        save_raceline(raceline, cpath, meta)
        written.append(str(cpath))
    if args.out:
        save_raceline(raceline, args.out, meta)
        written.append(str(Path(args.out)))
    summary.update({
        "lap_time_s": _round(info.get("lap_time_s")),
        "length_m": round(float(raceline.length), 3),
        "solve_time_s": _round(info.get("solve_time_s")),
        "status": info.get("status"),
        "n_points": len(raceline),
        "v_max_mps": round(float(max(raceline.vx)), 3),
        "path": written[-1] if written else (str(cpath) if cached else None),
        "cached": cached,
        "cache_path": None if args.no_cache else str(cpath),
        "spacing_m": _round(info.get("spacing_m")),
        "margin_m": _round(info.get("margin_m")),
    })
    for k in ("qss_lap_time_s", "iterations", "qp_iterations", "ipopt_time_s", "max_violation", "max_defect"):
        if k in info:
            summary[k] = _round(info[k]) if isinstance(info[k], float) else info[k]
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_table(summary))
    return 0


def _num(v: str):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return int(f) if f.is_integer() and "." not in v else f


def _round(v, nd=6):
    return round(float(v), nd) if isinstance(v, (int, float)) and math.isfinite(v) else v


def _table(s: dict) -> str:
    rows = [("track", s["track"]), ("car", s["car"]), ("method", s["method"]),
            ("lap time [s]", f"{s['lap_time_s']:.3f}")]
    if "qss_lap_time_s" in s:
        rows.append(("QSS lap on min-curvature line [s]", f"{s['qss_lap_time_s']:.3f}"))
    rows += [("status", str(s["status"])),
             ("solve time [s]", f"{s['solve_time_s']:.2f}" + ("  (cached)" if s["cached"] else "")),
             ("line length [m]", f"{s['length_m']:.2f}"), ("points", str(s["n_points"])),
             ("top speed [m/s]", f"{s['v_max_mps']:.2f}"),
             ("spacing / margin [m]", f"{s['spacing_m']:.3f} / {s['margin_m']:.3f}"),
             ("file", str(s["path"]))]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
