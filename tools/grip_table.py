"""MPPI with and without its online grip estimate on perturbed plants; print a markdown table.

Every case races the default plant (``dynamic_ext``) with its grip scaled by ``friction`` (and, for a wrong fit,
the controller's own yaw inertia scaled by ``I_z model``), seed 0, 50 Hz, off-line timing, twice: the controller
with ``online_grip: false`` and with ``online_grip: true`` (the default). BrandsHatch is a circuit the controller
was never tuned on.

    python tools/grip_table.py                    # the eight cases of docs/results.md (2026-12-06): about 30 min
    python tools/grip_table.py --only lab_loop    # the cases on one track
    python tools/grip_table.py --json out.json
"""
from __future__ import annotations

import argparse
import json

#: (track, car, friction scale of the plant, I_z scale of the controller's model, laps)
CASES = (
    ("lab_loop", "f1tenth", 1.0, 1.0, 3), ("lab_loop", "f1tenth", 0.85, 1.0, 3), ("lab_loop", "f1tenth", 1.1, 1.0, 3),
    ("lab_loop", "f1tenth", 1.0, 1.5, 3), ("ridge_ring", "gt_car", 0.85, 1.0, 2), ("ridge_ring", "gt_car", 1.0, 1.5, 2),
    ("garage_gp", "f1tenth", 0.85, 1.0, 3), ("BrandsHatch", "gt_car", 0.85, 1.0, 1),
)


def run_case(track: str, car: str, friction: float, iz: float, laps: int, online: bool, threads: int) -> dict:
    """One race; returns its row (best lap [s], off-track count, outcome, the grip estimate when on)."""
    import racing

    tr, c = racing.load_track(track), racing.load_car(car)
    model = c.replace(inertia_z=c.inertia_z * iz)
    ctl = racing.make_controller("mppi", tr, model, online_grip=online, threads=threads)
    r = racing.race(track=tr, car=c, controller=ctl, laps=laps, seed=0, friction_scale=friction)
    s = r.summary()
    return {"track": track, "car": car, "friction": friction, "iz_model": iz, "laps": laps, "online": online,
            "best_lap_s": s["best_lap_s"], "off_track": s["off_track"], "outcome": s["outcome"],
            "status": s["status"], **s.get("estimates", {})}


def cell(row: dict) -> str:
    if row["status"] != "completed" and row["status"] != "completed_with_incidents":
        return f"**{row['status']}**, {row['off_track']}"
    off = f"**{row['off_track']}**" if row["off_track"] else "0"
    return f"{row['best_lap_s']:.3f} s, {off}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="tracks to run (default: every case)")
    ap.add_argument("--threads", type=int, default=2, help="numba threads (default 2)")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.only or c[0] in args.only]
    print("| track | car | friction | I_z model | laps | off: best lap, off-track | online: best lap, off-track "
          "| estimate (lower) |")
    print("|---|---|---:|---:|---:|---|---|---|")
    rows = []
    for track, car, friction, iz, laps in cases:
        off, on = (run_case(track, car, friction, iz, laps, og, args.threads) for og in (False, True))
        rows += [off, on]
        est = f"{on['grip_scale']:.3f} ({on['grip_lower']:.3f})" if on.get("informed") else "not informed"
        print(f"| {track} | {car} | {friction:g} | {iz:g} | {laps} | {cell(off)} | {cell(on)} | {est} |", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
