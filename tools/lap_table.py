"""Race pure pursuit and MPPI on every shipped track and every TUM track; print a markdown lap table.

Shipped tracks (``tracks/``) use the f1tenth car when their scale is 1:10 and the gt_car when it
is "full"; the TUM circuits in ``../shared/data/tracks/racetrack-database/`` use the gt_car.
Every run: plant = dynamic model, 3 laps, ``realtime`` (compute time counts, deadline misses
counted), 50 Hz.

    python tools/lap_table.py                    # everything
    python tools/lap_table.py --only lab_loop Monza --laps 2 --json out.json
    python tools/lap_table.py lab_loop garage_gp     # a subset (positional names work too)

Columns include the cached minimum-lap-time reference of the car on the track (``racing raceline
--method mintime``) and MPPI's gap to it (— when none is cached).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUM = ROOT.parent / "shared" / "data" / "tracks" / "racetrack-database"


def track_list():
    from racing.track import known_tracks, load_track

    out = []
    for name in known_tracks():
        t = load_track(name)
        out.append((name, name, "gt_car" if t.scale == "full" else "f1tenth"))
    if TUM.is_dir():
        for f in sorted(TUM.glob("*.csv")):
            out.append((f.stem, str(f), "gt_car"))
    return out


def race(track, car: str, controller: str, laps: int, realtime: bool, seed: int = 0):
    from racing.control import make_controller
    from racing.models.params import load_params
    from racing.sim.plant import make_plant
    from racing.sim.simulator import SimConfig, simulate

    p = load_params(car)
    ctrl = make_controller(controller, track, p)
    res = simulate(track, ctrl, make_plant("dynamic", p), p, SimConfig(laps=laps, realtime=realtime, seed=seed),
                   run_config={"track": {"name": track.name}, "car": {"name": car},
                               "controller": {"name": controller}, "plant": "dynamic"})
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--laps", type=int, default=3)
    ap.add_argument("--no-realtime", action="store_true")
    ap.add_argument("--only", nargs="*", default=None, help="track names to run (default: all)")
    ap.add_argument("tracks", nargs="*", help="track names to run (same as --only)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--threads", type=int, default=None,
                    help="numba threads (default: all); --threads-small sets the 1:10 cars' count")
    ap.add_argument("--threads-small", type=int, default=None, help="numba threads for the 1:10 cars")
    ap.add_argument("--no-pp", action="store_true", help="MPPI only (pure pursuit columns empty)")
    args = ap.parse_args(argv)
    import numba
    if args.tracks:
        args.only = list(args.only or []) + args.tracks
    from racing.track import load_track

    rows = []
    from racing.raceline import reference_for

    print("| track | car | PP best lap [s] | MPPI best lap [s] | improvement | min-time ref [s] | gap to ref "
          "| MPPI off-track | MPPI deadline misses | MPPI compute p50 / p99 / max [ms] | PP off-track |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, src, car in track_list():
        if args.only and name not in args.only:
            continue
        track = load_track(src)
        t0 = time.time()
        n = args.threads_small if (car == "f1tenth" and args.threads_small) else args.threads
        numba.set_num_threads(n or numba.config.NUMBA_NUM_THREADS)
        pp = race(track, car, "mppi" if args.no_pp else "pure_pursuit", args.laps, not args.no_realtime) \
            if not args.no_pp else None
        if pp is None:
            from types import SimpleNamespace

            pp = SimpleNamespace(best_lap_s=None, status="skipped", off_track=0, deadline_misses=0, laps=[])
        mp = race(track, car, "mppi", args.laps, not args.no_realtime)
        pb, mb = pp.best_lap_s, mp.best_lap_s
        ok_pp = pp.status == "completed"
        ok_mp = mp.status == "completed"
        imp = (pb - mb) / pb * 100.0 if (pb and mb and ok_pp and ok_mp) else None
        cm = mp.compute_ms()
        ref = reference_for(track, car)
        gap = (mb - ref) / ref * 100.0 if (ref and mb and ok_mp) else None
        row = {"track": name, "car": car, "pp_best_s": pb, "mppi_best_s": mb, "improvement_pct": imp,
               "ref_s": ref, "gap_pct": gap,
               "mppi_off_track": mp.off_track, "mppi_deadline_misses": mp.deadline_misses,
               "mppi_status": mp.status, "pp_status": pp.status, "pp_off_track": pp.off_track,
               "pp_deadline_misses": pp.deadline_misses, "mppi_compute_ms": cm, "mppi_laps": mp.laps,
               "pp_laps": pp.laps, "wall_s": time.time() - t0}
        rows.append(row)

        def f(x, st):
            return f"{x:.2f}" if (x is not None and st == "completed") else f"— ({st})"

        print(f"| {name} | {car} | {f(pb, pp.status)} | {f(mb, mp.status)} | "
              f"{'—' if imp is None else f'{imp:+.1f} %'} | {'—' if ref is None else f'{ref:.3f}'} | "
              f"{'—' if gap is None else f'{gap:+.1f} %'} | {mp.off_track} | {mp.deadline_misses} | "
              f"{cm['p50']:.1f} / {cm['p99']:.1f} / {cm['max']:.1f} | {pp.off_track} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
