"""Race the car you fitted on a plant the project did not write (CommonRoad ST / MB, BMW 320i): the README table.

    python tools/commonroad_race.py [--models st,mb] [--tracks Spielberg,...] [--controllers mppi,pure_pursuit]
                                    [--laps 3] [--out runs/commonroad]

For each CommonRoad model:

1. **excite**: 120 s at 50 Hz of the project's excitation programme on the CommonRoad plant
   (:func:`racing.sysid.excite.excitation_for`: lateral targets up to 0.95 of the model's grip, ramped speed
   commands), driven with a cautious base car: CommonRoad's data sheet in the project's terms
   (:func:`racing.sim.commonroad.nominal_params`) with the tyre grip 10 % low and I_z, B_f, B_r 20-30 % off;
2. **fit** the model parameters to the noisy log (:func:`racing.sysid.parametric.fit`, what ``racing fit`` runs),
   the grip margin included (the share of the grip the fit cannot vouch for: the controllers plan with the rest);
3. the **reference**: the fitted car's minimum-time lap on each circuit (``racing raceline --method mintime``);
4. **race** each controller ``--laps`` laps on the CommonRoad plant with the fitted car as its model.

Prints a markdown table (plant, car, controller, track, laps, best lap, off-track, gap to the fitted car's
reference) and writes the fitted cars, a JSON of every race and each run itself (``racing race --out``'s files) to
``--out``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("inertia_z", "B_f", "C_f", "D_f", "B_r", "C_r", "D_r", "steer_gain", "steer_tau", "steer_offset")
NOISE = {"pos": 0.02, "yaw": 0.005, "vel": 0.03, "yaw_rate": 0.01, "steer": 0.002}


def base_car(model: str, vehicle: int = 2):
    """The cautious base car: CommonRoad's data sheet, grip 10 % low, inertia and stiffness 20-30 % off."""
    from racing.sim.commonroad import nominal_params

    q = nominal_params(vehicle, model, name=f"bmw_{model}_base")
    return q.replace(D_f=0.9 * q.D_f, D_r=0.9 * q.D_r, inertia_z=1.3 * q.inertia_z, B_f=0.75 * q.B_f,
                     B_r=1.25 * q.B_r, steer_tau=0.04)


def excite_and_fit(model: str, out: Path, duration: float = 120.0, seed: int = 1):
    from racing.sim.commonroad import CommonRoadPlant
    from racing.sysid.excite import ExcitationDriver, drive_session, excitation_for
    from racing.sysid.parametric import fit

    base = base_car(model)
    config = excitation_for(base)
    x0 = np.zeros(7)
    x0[3] = config.v_min
    t0 = time.perf_counter()
    plant = CommonRoadPlant(model)
    log, _ = drive_session(plant, ExcitationDriver(base, config, seed=seed), duration, 50.0, noise=NOISE, seed=seed,
                           x0=x0, meta={"car": base.name, "plant": f"commonroad:{model}"})
    res = fit([log], base, names=NAMES, name=f"bmw_{model}_fit")
    q = res.params
    path = out / f"bmw_{model}_fit.yaml"
    q.to_yaml(path, header=f"fitted by tools/commonroad_race.py from {duration:g} s of excitation on CommonRoad "
                           f"{model} (seed {seed}); not identified: {', '.join(res.not_identified) or 'none'}")
    lat = np.abs(log.state[:, 5] * log.state[:, 3])
    print(f"[{model}] excitation {duration:g} s + fit in {time.perf_counter() - t0:.0f} s; peak |r v_x| "
          f"{lat.max():.1f} m/s^2 (p95 {np.percentile(lat, 95):.1f}); D_f {q.D_f:.3f} D_r {q.D_r:.3f} "
          f"I_z {q.inertia_z:.0f}; grip margin {100 * q.grip_margin:.1f} %; not identified: {', '.join(res.not_identified) or 'none'}", flush=True)
    return path


def reference(track: str, car: Path) -> float | None:
    """The fitted car's minimum-time lap [s] on ``track`` (computed and cached by ``racing raceline``)."""
    import subprocess

    from racing.models.params import load_params
    from racing.raceline.cache import reference_for

    subprocess.run([sys.executable, "-m", "racing", "raceline", "--track", str(track), "--car", str(car),
                    "--method", "mintime", "--json"], check=False, capture_output=True)
    q = load_params(car)
    return reference_for(str(track), q.name, q)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="st,mb")
    ap.add_argument("--tracks", default="Norisring,BrandsHatch,Spielberg,Catalunya,Monza")
    ap.add_argument("--controllers", default="mppi,pure_pursuit")
    ap.add_argument("--laps", type=int, default=3)
    ap.add_argument("--out", default="runs/commonroad")
    ap.add_argument("--cars", default=None, help="use these fitted car files (model=path,...) instead of fitting")
    a = ap.parse_args(argv)
    import racing

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cars = dict(kv.split("=", 1) for kv in a.cars.split(",")) if a.cars else {}
    rows = []
    print("| plant | car | controller | track | laps | best lap [s] | off-track | status | gap to the fitted car's "
          "reference |\n|---|---|---|---|---|---|---|---|---|", flush=True)
    for model in a.models.split(","):
        car_path = Path(cars[model]) if model in cars else excite_and_fit(model, out)
        car = racing.load_car(str(car_path))
        for name in a.tracks.split(","):
            track = racing.load_track(name)  # the TUM circuits ship in tracks/
            ref = reference(name, car_path)
            for ctrl in a.controllers.split(","):
                t0 = time.perf_counter()
                r = racing.race(track, car, controller=ctrl, plant=f"commonroad:{model}", laps=a.laps)
                s = r.summary()
                r.save(out / f"{model}_{name}_{ctrl}")  # the run itself (log.csv, events, config) for a post-mortem
                gap = (r.best_lap_s / ref - 1.0) if (ref and r.best_lap_s) else None
                row = {"plant": f"commonroad:{model}", "car": car.name, "controller": ctrl, "track": name,
                       "laps": list(r.laps), "best_lap_s": r.best_lap_s, "off_track": r.off_track,
                       "status": r.status, "reference_s": ref, "gap": gap, "wall_s": time.perf_counter() - t0,
                       "compute_ms": s["compute_ms"]}
                rows.append(row)
                (out / "races.json").write_text(json.dumps(rows, indent=1))
                print(f"| CommonRoad {model.upper()} | {car.name} | {ctrl} | {name} | {len(r.laps)}/{a.laps} | "
                      f"{r.best_lap_s or float('nan'):.2f} | {r.off_track} | {r.status} | "
                      f"{'-' if gap is None else f'{100 * gap:+.1f} %'} (ref {ref or float('nan'):.2f} s) |",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
