"""Race pure pursuit, MPPI and iLQR on every shipped track and every TUM track; print a markdown lap table.

The tracks and their cars are :func:`racing.track.catalog.benchmark_tracks`: the project's tracks (the f1tenth
car on 1:10 tracks, the gt_car on "full" ones, among them the TUM circuits shipped in ``tracks/``).
Every run: plant = the simulator's default (``dynamic_ext``: the car's model + tyre relaxation, drivetrain lag,
optional dead time; ``--plant dynamic`` races the controllers' own model), 3 laps, ``realtime`` (compute time
counts, deadline misses counted), 50 Hz.

    python tools/lap_table.py                    # everything
    python tools/lap_table.py --only lab_loop Monza --laps 2 --json out.json
    python tools/lap_table.py lab_loop garage_gp     # a subset (positional names work too)
    python tools/lap_table.py --controllers ilqr     # one controller
    python tools/lap_table.py --controllers mppi --mppi-set guide=ilqr   # MPPI guided by the car's iLQR
    python tools/lap_table.py --controllers ilqr --ilqr-set iterations=1 # iLQR with one iteration a tick
    python tools/lap_table.py --noise 1 --delay 0.02                     # noisy measurements, a late car

Columns include the cached minimum-lap-time reference of the car on the track (``racing raceline
--method mintime``) and each controller's gap to it (— when none is cached).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def track_list():
    """(name, source, car) of every benchmark track (:func:`racing.track.catalog.benchmark_tracks`)."""
    from racing.track.catalog import benchmark_tracks

    return benchmark_tracks()


def race(track, car: str, controller: str, laps: int, realtime: bool, seed: int = 0, plant: str | None = None,
         settings: tuple = (), noise: float = 0.0, delay: float = 0.0):
    """One race as ``racing race`` runs it (:func:`racing.api.race`; ``plant`` default: the simulator's;
    ``settings``: ``KEY=VALUE`` items over the controller's, as ``racing race --set``; ``noise``, ``delay`` [s]:
    as ``racing race --noise --delay``)."""
    from racing.api import race as api_race
    from racing.sim.plant import DEFAULT_PLANT

    return api_race(track, car, controller, plant=plant or DEFAULT_PLANT, laps=laps, realtime=realtime, seed=seed,
                    controller_set=tuple(settings), noise=noise, delay_s=delay)


SHORT = {"pure_pursuit": "pp", "mppi": "mppi", "ilqr": "ilqr"}
LABEL = {"pure_pursuit": "PP", "mppi": "MPPI", "ilqr": "iLQR"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--laps", type=int, default=3)
    ap.add_argument("--plant", default=None, help="plant (default: the simulator's default, dynamic_ext)")
    ap.add_argument("--no-realtime", action="store_true")
    ap.add_argument("--noise", type=float, default=0.0, help="measurement noise scale, as racing race --noise")
    ap.add_argument("--delay", type=float, default=0.0, help="actuation delay [s], as racing race --delay")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise and the controllers")
    ap.add_argument("--only", nargs="*", default=None, help="track names to run (default: all)")
    ap.add_argument("tracks", nargs="*", help="track names to run (same as --only)")
    ap.add_argument("--json", default=None, help="also write the rows to this JSON file")
    ap.add_argument("--threads", type=int, default=None,
                    help="numba threads (default: all); --threads-small sets the 1:10 cars' count")
    ap.add_argument("--threads-small", type=int, default=None, help="numba threads for the 1:10 cars")
    ap.add_argument("--controllers", nargs="+", default=["pure_pursuit", "mppi", "ilqr"],
                    choices=sorted(SHORT), help="controllers to race (default: all three)")
    ap.add_argument("--no-pp", action="store_true", help="leave pure pursuit out")
    ap.add_argument("--mppi-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting over MPPI's (repeatable, as racing race --set): --mppi-set guide=ilqr")
    ap.add_argument("--ilqr-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting over iLQR's (repeatable, as racing race --set): --ilqr-set iterations=1")
    args = ap.parse_args(argv)
    import numba
    if args.tracks:
        args.only = list(args.only or []) + args.tracks
    ctrls = [c for c in args.controllers if not (args.no_pp and c == "pure_pursuit")]
    from racing.track import load_track
    from racing.raceline import reference_for

    rows = []
    head = "| track | car | min-time ref [s] |"
    rule = "|---|---|---|"
    for c in ctrls:
        lab = LABEL[c]
        head += f" {lab} best lap [s] | {lab} gap to ref | {lab} off-track / misses | {lab} compute p50 / p99 / max [ms] |"
        rule += "---|---|---|---|"
    print(head)
    print(rule)
    for name, src, car in track_list():
        if args.only and name not in args.only:
            continue
        track = load_track(src)
        t0 = time.time()
        n = args.threads_small if (car == "f1tenth" and args.threads_small) else args.threads
        numba.set_num_threads(n or numba.config.NUMBA_NUM_THREADS)
        ref = reference_for(track, car)
        row = {"track": name, "car": car, "ref_s": ref}
        line = f"| {name} | {car} | {'—' if ref is None else f'{ref:.3f}'} |"
        for c in ctrls:
            settings = {"mppi": args.mppi_set, "ilqr": args.ilqr_set}.get(c, ())
            res = race(track, car, c, args.laps, not args.no_realtime, seed=args.seed, plant=args.plant,
                       settings=settings, noise=args.noise, delay=args.delay)
            k = SHORT[c]
            best = res.best_lap_s
            ok = res.status in ("completed", "completed_with_incidents")  # incidents: in the next column
            gap = (best - ref) / ref * 100.0 if (ref and best and ok) else None
            cm = res.compute_ms()
            row.update({f"{k}_best_s": best, f"{k}_gap_pct": gap, f"{k}_status": res.status,
                        f"{k}_off_track": res.off_track, f"{k}_deadline_misses": res.deadline_misses,
                        f"{k}_compute_ms": cm, f"{k}_laps": res.laps})
            lap = f"{best:.2f}" if (best is not None and ok) else f"— ({res.status})"
            line += (f" {lap} | {'—' if gap is None else f'{gap:+.1f} %'} | {res.off_track} / {res.deadline_misses} | "
                     f"{cm['p50']:.1f} / {cm['p99']:.1f} / {cm['max']:.1f} |")
        row["wall_s"] = time.time() - t0
        rows.append(row)
        print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
