"""Reference lap table: min-curvature QSS lap and minimum-time lap for every shipped track (f1tenth on 1:10
tracks, gt_car on full-size ones, among them the TUM circuits).

    python tools/raceline_table.py                 # markdown table on stdout
    python tools/raceline_table.py --save          # also write the lines to the raceline cache
    python tools/raceline_table.py --only lab_loop Monza --spacing 2.0 --json

Each OCP solve prints its IPOPT status. Benchmark timings only mean something on an otherwise idle machine (the load average is
printed with the table).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def track_list(only=None):
    from racing.track import known_tracks, load_track

    out = [("shipped", name, lambda n=name: load_track(n)) for name in known_tracks()]
    if only:
        out = [t for t in out if t[1] in only]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="track names to run")
    ap.add_argument("--spacing", type=float, default=None, help="grid spacing [m] (default: per car)")
    ap.add_argument("--margin", type=float, default=None, help="safety margin [m] (default: 10%% car width)")
    ap.add_argument("--save", action="store_true", help="write the lines to the raceline cache")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of markdown")
    args = ap.parse_args(argv)

    from racing.models.params import load_params
    from racing.raceline import RacelineError
    from racing.raceline.cache import cache_path, params_fingerprint, save_raceline, track_fingerprint
    from racing.raceline.cli import default_car
    from racing.raceline.mincurv import min_curvature_line
    from racing.raceline.mintime import min_time_lap

    rows = []
    for kind, name, load in track_list(args.only):
        track = load()
        car = default_car(track)
        params = load_params(car)
        row = {"track": name, "source": kind, "car": car, "length_m": round(track.length, 1)}
        try:
            mc = min_curvature_line(track, params, spacing=args.spacing, margin=args.margin)
            row.update(qss_lap_s=round(mc.lap_time, 3), mincurv_solve_s=round(mc.solve_time, 2),
                       mincurv_status=mc.status, spacing_m=round(mc.spacing, 3), n_intervals=len(mc.alpha))
            mt = min_time_lap(track, params, spacing=args.spacing, margin=args.margin, mincurv=mc)
            row.update(mintime_lap_s=round(mt.lap_time, 3), mintime_solve_s=round(mt.solve_time, 2),
                       ipopt_s=round(mt.ipopt_time, 2), ipopt_status=mt.status, ipopt_iterations=mt.iterations,
                       gain_pct=round(100.0 * (1.0 - mt.lap_time / mc.lap_time), 2),
                       max_violation=max(v for k, v in mt.violations.items() if k != "defect"))
            print(f"[{name} / {car}] mincurv QSS {mc.lap_time:.3f} s ({mc.solve_time:.2f} s) | mintime "
                  f"{mt.lap_time:.3f} s, IPOPT {mt.status} in {mt.iterations} it, {mt.solve_time:.1f} s",
                  file=sys.stderr)
            if args.save:
                for method, rl, info in (("mincurv", mc.raceline, {"lap_time_s": mc.lap_time, "status": mc.status,
                                                                    "solve_time_s": mc.solve_time}),
                                         ("mintime", mt.raceline, {"lap_time_s": mt.lap_time, "status": mt.status,
                                                                    "solve_time_s": mt.solve_time,
                                                                    "qss_lap_time_s": mt.qss_lap_time,
                                                                    "iterations": mt.iterations})):
                    meta = {"track": track.name, "car": car, "method": method, **info, "spacing_m": mc.spacing,
                            "margin_m": mc.margin, "params_sha1": params_fingerprint(params),
                            "track_sha1": track_fingerprint(track)}
                    save_raceline(rl, cache_path(track, car, method), meta)
        except RacelineError as exc:
            row.update(error=str(exc), ipopt_status=getattr(exc, "status", None))
            print(f"[{name} / {car}] error: {exc}", file=sys.stderr)
        rows.append(row)

    load_avg = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    if args.json:
        print(json.dumps({"load_avg_1min": load_avg, "rows": rows}, indent=2))
        return 0
    print(f"| track | car | length [m] | spacing [m] | QSS lap on min-curvature line [s] | min-curvature solve [s] "
          f"| min-time lap [s] | gain | min-time solve [s] | IPOPT status (iterations) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['track']} | {r['car']} | {r['length_m']} | | | | | | | error: {r['error']} |")
            continue
        print(f"| {r['track']} | {r['car']} | {r['length_m']:.0f} | {r['spacing_m']:.2f} | {r['qss_lap_s']:.3f} | "
              f"{r['mincurv_solve_s']:.2f} | {r['mintime_lap_s']:.3f} | -{r['gain_pct']:.1f}% | "
              f"{r['mintime_solve_s']:.1f} | {r['ipopt_status']} ({r['ipopt_iterations']}) |")
    print(f"\n(load average during the run: {load_avg:.2f}; {time.strftime('%Y-%m-%d %H:%M')})")
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
