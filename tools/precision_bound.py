"""MPPI's float32 physics against its float64 physics: full horizons on the racing tracks, the same noise.

For each track (its car's MPPI tuning, K = 2048, the tuning's horizon), 24 start states spread along the track
(on the centre line, heading along it, at 95 % of the speed cap, the tuning's warm start of zero steering rate and
0.5 m/s^2), one iteration with ``physics_precision: float64`` and one with ``float32`` (the same generated noise:
it depends on the seed and the sample only). Reports the largest differences over the states: every sample's
positions over the whole horizon [m], the costs (median and 99th percentile of the relative difference), and the
plan the iteration returns (steering rate [rad/s], acceleration [m/s^2]; all steps, and the first).

    python tools/precision_bound.py                 # six tracks: about 2 min after the compile
    python tools/precision_bound.py lab_loop Monza --json out.json
"""
from __future__ import annotations

import argparse
import json

import numpy as np

CASES = {"lab_loop": "f1tenth", "garage_gp": "f1tenth", "ridge_ring": "gt_car", "harbour_circuit": "gt_car",
         "Monza": "gt_car", "Spielberg": "gt_car"}


def start_states(tab, n: int) -> list[np.ndarray]:
    """``n`` states ``x0[7]`` spread along the track table ``tab`` (racing.control.costs.track_table)."""
    from racing.control import costs as C

    states = []
    for i in np.linspace(0, tab.shape[0] - 1, n).astype(int):
        tx, ty = tab[i, C.TAB_TX], tab[i, C.TAB_TY]
        states.append(np.array([tab[i, C.TAB_X], tab[i, C.TAB_Y], np.arctan2(ty, tx), 0.95 * tab[i, C.TAB_VCAP],
                                0.0, 0.0, 0.0]))
    return states


def compare(track_name: str, car: str, threads: int, n: int = 24) -> dict:
    """The largest float32-float64 differences over ``n`` start states on one track (module doc)."""
    from racing.control.mppi import make_mppi
    from racing.models.params import load_params
    from racing.track import load_track

    track, params = load_track(track_name), load_params(car)
    ctl = {pr: make_mppi(track, params, threads=threads, num_samples=2048, physics_precision=pr,
                         record_samples=2048, warmup=False) for pr in ("float64", "float32")}
    worst = dict.fromkeys(("position_m", "cost_rel_p50", "cost_rel_p99", "plan_steer_rate", "plan_accel",
                           "first_steer_rate", "first_accel"), 0.0)
    for x0 in start_states(ctl["float64"].tab, n):
        out = {}
        for pr, c in ctl.items():
            c.U[:, 0], c.U[:, 1] = 0.0, 0.5
            c.solve(x0)
            out[pr] = (c.Sk.copy(), c.traj.copy(), c.U.copy())
        (s64, p64, u64), (s32, p32, u32) = out["float64"], out["float32"]
        rel = np.abs(s32 - s64) / np.maximum(np.abs(s64), 1e-9)
        du = np.abs(u32 - u64)
        for key, value in (("position_m", np.abs(p32 - p64).max()), ("cost_rel_p50", np.median(rel)),
                           ("cost_rel_p99", np.quantile(rel, 0.99)), ("plan_steer_rate", du[:, 0].max()),
                           ("plan_accel", du[:, 1].max()), ("first_steer_rate", du[0, 0]),
                           ("first_accel", du[0, 1])):
            worst[key] = max(worst[key], float(value))
    c = ctl["float64"]
    return {"track": track_name, "car": car, "K": c.K, "T": c.T, "dt": c.config.dt, "states": n, **worst}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tracks", nargs="*", metavar="TRACK", help=f"tracks to compare: {', '.join(CASES)} (default: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the rows to this file")
    args = ap.parse_args(argv)
    unknown = [t for t in args.tracks if t not in CASES]
    if unknown:
        ap.error(f"unknown track {unknown[0]!r}; expected one of {', '.join(CASES)}")
    rows = []
    print("| track | car | T | positions [m] | costs, relative (p50 / p99) | plan: steering rate [rad/s] / "
          "acceleration [m/s^2] | first input |")
    print("|---|---|---|---|---|---|---|")
    for name in args.tracks or list(CASES):
        r = compare(name, CASES[name], args.threads)
        rows.append(r)
        print(f"| {name} | {r['car']} | {r['T']} | {r['position_m']:.1e} | {r['cost_rel_p50']:.1e} / "
              f"{r['cost_rel_p99']:.1e} | {r['plan_steer_rate']:.1e} / {r['plan_accel']:.1e} | "
              f"{r['first_steer_rate']:.1e} / {r['first_accel']:.1e} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
