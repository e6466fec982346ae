"""The randomised foreign-car bench (issue #23): CommonRoad's cars behind actuators and drive interfaces the fit
does not assume, identified from command-only logs of two excitation programmes, then raced.

    python tools/foreign_bench.py [--cells 24] [--seed 0] [--track Norisring] [--controller mppi] [--laps 2]
                                  [--duration 120] [--workers 2] [--only 0,5] [--out runs/foreign_bench]
                                  [--reuse-fits]

Each cell is drawn with ``--seed`` (:func:`draw_cells`: every factor's levels spread evenly over the cells, then
shuffled independently, so 24 cells hold every level of every factor) from

* the car: CommonRoad vehicles 1-3 (Ford Escort, BMW 320i, VW Vanagon) x model ST / STD / MB;
* the steering actuator: a proportional servo saturated at 50-100 % of the car's rate limit; the same after a pure
  dead time of 20-60 ms; a second-order servo (natural frequency 8-20 rad/s, damping 0.5-0.9)
  (:class:`racing.sim.foreign.ForeignActuators`); a steering gain of 0.92-1.05;
* the speed loop: P or PI (gains drawn), clipped to the car's limits;
* the drive interface: speed only (the acceleration field ignored) or speed + feed-forward acceleration;
* the excitation programme: the project's (:class:`racing.sysid.excite.ExcitationDriver`, random speed and
  lateral targets) or the manoeuvre programme written apart from it (:class:`racing.sysid.excite.ManoeuvreDriver`:
  circles, steering sweeps, step steers, straight-line speed changes).

Per cell: ``--duration`` s of the programme at 50 Hz with sensor noise, the steering angle not logged (a
command-only log); ``racing fit``'s fit (``actuator="auto"``) from a base car 10-30 % off (grip 10 % low, I_z +30 %,
B_f -25 %, B_r +25 %; its ``drive_interface`` the cell's, which the fit lowers to what the log shows); the fitted
car's minimum-time reference on ``--track``; a race of ``--laps`` laps with the fitted car as the controller's model
on the same foreign car (a fresh plant). It reports the fit against the truth (I_z and the axle cornering
stiffnesses, :func:`commonroad_plant.truth`), what the fit flagged, the steering and speed-loop structures it chose
(the speed loop's gains beside the truth in ``cells.json``), and the race
(laps, off-track, status, gap to the fitted car's reference and to the true car's).

Writes ``cells.json`` (every cell's draw and results, rewritten after each cell), each fitted car as
``cars/cell<i>.yaml``, and prints a markdown table. ``--reuse-fits`` races those fitted cars again without exciting
and fitting (a controller change measured on the same fits) and writes ``cells_raced_again.json``.
The cells are independent: ``--workers`` processes here; ``--grid`` takes every combination of the factors (216
cells, the actuator values still drawn per cell) and ``--ray`` runs the cells as Ray tasks (the ``sweep`` extra; on a
cluster, ``RAY_ADDRESS``) where more cores exist.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from commonroad_plant import axle_stiffness, truth  # noqa: E402
from commonroad_race import NOISE  # noqa: E402
from commonroad_race import base_car as cautious_car  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACTORS = {"vehicle": (1, 2, 3), "model": ("st", "std", "mb"), "steering": ("p_servo", "dead_time", "second_order"),
           "speed_loop": ("P", "PI"), "interface": ("speed", "speed_accel"), "programme": ("project", "manoeuvres")}
NAMES = ("inertia_z", "B_f", "C_f", "D_f", "B_r", "C_r", "D_r", "steer_gain", "steer_tau", "steer_offset", "speed_kp")


def draw_cells(n: int, seed: int, grid: bool = False) -> list[dict]:
    """``n`` cells: each factor's levels repeated evenly over the cells and shuffled on its own (a seeded Latin
    draw), plus each cell's actuator values (dict per cell: the factors, ``actuators`` kwargs without the limits).
    ``grid``: every combination of the factors instead (``n`` is ignored)."""
    rng = np.random.default_rng(seed)
    if grid:
        combos = np.array(list(itertools.product(*(range(len(v)) for v in FACTORS.values()))))
        cols, n = dict(zip(FACTORS, combos.T)), len(combos)
    else:
        cols = {k: rng.permutation(np.resize(np.arange(len(v)), n)) for k, v in FACTORS.items()}
    cells = []
    for i in range(n):
        c = {k: FACTORS[k][int(cols[k][i])] for k in FACTORS}
        c["vehicle"] = int(c["vehicle"])
        a = {"steer_gain": float(rng.uniform(0.92, 1.05)), "rate_share": float(rng.uniform(0.5, 1.0))}
        if c["steering"] == "second_order":
            a.update(servo="second_order", servo_wn=float(rng.uniform(8.0, 20.0)),
                     servo_zeta=float(rng.uniform(0.5, 0.9)), dead_time=0.0)
        else:
            a.update(servo="p", steer_kp=float(rng.uniform(6.0, 15.0)),
                     dead_time=float(rng.uniform(0.02, 0.06)) if c["steering"] == "dead_time" else 0.0)
        if c["speed_loop"] == "PI":
            a.update(speed_kp=float(rng.uniform(0.3, 0.9)), speed_ki=float(rng.uniform(0.1, 0.4)))
        else:
            a.update(speed_kp=float(rng.uniform(0.4, 1.2)), speed_ki=0.0)
        a["accel_ff"] = c["interface"] == "speed_accel"
        cells.append({"index": i, **c, "actuators": a, "seed": seed * 1000 + i})
    return cells


def foreign_actuators(cell: dict, car):
    """The cell's :class:`racing.sim.foreign.ForeignActuators`, limited as the car (``car``: the true car)."""
    from racing.sim.foreign import ForeignActuators

    a = dict(cell["actuators"])
    share = a.pop("rate_share")
    return ForeignActuators(rate_max=share * car.steer_rate_max, steer_max=car.steer_max, accel_max=car.accel_max,
                            decel_max=car.decel_max, **a)


def plant_of(cell: dict):
    """A fresh CommonRoad plant behind the cell's actuators, its own car saying the cell's drive interface."""
    from racing.sim.commonroad import CommonRoadPlant, nominal_params

    true = nominal_params(cell["vehicle"], cell["model"])
    plant = CommonRoadPlant(cell["model"], cell["vehicle"], actuators=foreign_actuators(cell, true))
    plant.params = plant.params.replace(drive_interface=cell["interface"])
    return plant


def base_car(cell: dict):
    """The cautious base car the fit starts from (module doc; :func:`commonroad_race.base_car`), saying the cell's
    drive interface."""
    return cautious_car(cell["model"], cell["vehicle"]).replace(
        name=f"cr{cell['vehicle']}_{cell['model']}_base", drive_interface=cell["interface"])


def excite(cell: dict, duration: float):
    """The cell's command-only log (DriveLog), or raise FloatingPointError when the plant diverged."""
    from racing.logs import DriveLog
    from racing.sysid.excite import ExcitationDriver, ManoeuvreDriver, drive_session, excitation_for

    base = base_car(cell)
    if cell["programme"] == "project":
        driver, v0 = ExcitationDriver(base, excitation_for(base), seed=cell["seed"]), excitation_for(base).v_min
    else:
        driver, v0 = ManoeuvreDriver(base, seed=cell["seed"]), 0.25 * base.v_max
    x0 = np.zeros(7)
    x0[3] = v0
    log, _ = drive_session(plant_of(cell), driver, duration, 50.0, noise=NOISE, seed=cell["seed"], x0=x0,
                           meta={"car": base.name, "plant": f"commonroad:{cell['model']}:{cell['vehicle']}+foreign"})
    return DriveLog(log.t, log.state, log.command, meta={**log.meta, "steer_source": "command"}, source="no angle")


def fit_report(cell: dict, res) -> dict:
    """The fit against the truth and what it flagged."""
    t = truth(cell["model"], cell["vehicle"])
    kf, kr = axle_stiffness(res.params)
    se = dict(zip(res.names, res.std_errors))
    a = res.actuator or {}
    return {"I_z_error": res.params.inertia_z / t["inertia_z"] - 1.0,
            "I_z_se": float(se.get("inertia_z", math.nan)) / t["inertia_z"],
            "K_f_error": kf / t["K_f"] - 1.0, "K_r_error": kr / t["K_r"] - 1.0,
            "steer_structure": a.get("chosen"), "steer_delay_s": res.params.steer_delay,
            "steer_tau_s": res.params.steer_tau, "structure_limited": bool(a.get("misfit") or
                                                                            a.get("structure_limited")),
            "halves_disagree": sorted(res.disagree), "not_identified": sorted(res.not_identified),
            "implausible": sorted(res.implausible),
            "grip_margin": res.params.grip_margin, "drive_interface": res.params.drive_interface,
            "speed_kp": res.params.speed_kp, "speed_kp_true": cell["actuators"]["speed_kp"],
            "speed_ki": res.params.speed_ki, "speed_ki_true": cell["actuators"]["speed_ki"],
            "speed_structure": (res.speed_loop or {}).get("chosen"), "fit_s": res.seconds}


def reference(track: str, car, tag: str) -> float | None:
    """``car``'s minimum-time lap [s] on ``track`` (``racing raceline --method mintime``, cached by car name)."""
    import subprocess
    import tempfile

    from racing.raceline.cache import reference_for

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{tag}.yaml"
        car.to_yaml(path)
        subprocess.run([sys.executable, "-m", "racing", "raceline", "--track", track, "--car", str(path),
                        "--method", "mintime", "--json"], check=False, capture_output=True, cwd=ROOT)
    return reference_for(track, car.name, car)


def race_report(cell: dict, car, args) -> dict:
    """Race the fitted ``car`` on a fresh copy of the cell's foreign car."""
    import racing

    r = racing.race(args.track, car, controller=args.controller, plant=plant_of(cell), laps=args.laps,
                    threads=1, seed=cell["seed"], controller_set=tuple(getattr(args, "set", None) or ()))
    off = [e for e in r.events if e.get("type") == "off_track"]
    return {"laps": [float(x) for x in r.laps], "best_lap_s": r.best_lap_s, "off_track": int(r.off_track),
            "status": r.status, "first_off_track_s": float(off[0]["t"]) if off else None,
            "first_off_track_at_m": float(r.frenet[min(np.searchsorted(r.t, off[0]["t"]), r.t.size - 1), 0]) if off else None,
            "max_speed_mps": r.summary()["max_speed_mps"]}


def run_cell(cell: dict, args) -> dict:
    from racing.models.params import load_params
    from racing.sim.commonroad import nominal_params
    from racing.sysid.parametric import fit, implausible

    t0 = time.perf_counter()
    out = dict(cell)
    cars = Path(args.out) / "cars"
    if args.reuse_fits:  # the fitted car and its report from an earlier run of the same draw
        if "fit" not in args.earlier.get(cell["index"], {}):
            return {**out, "error": "no earlier fit of this cell in cells.json", "wall_s": 0.0}
        car = load_params(cars / f"cell{cell['index']}.yaml")
        # a report from before the plausibility check gets it from the saved car (the check needs nothing else)
        out["fit"] = {"implausible": sorted(implausible(car, base_car(cell))), **args.earlier[cell["index"]]["fit"]}
    else:
        try:
            log = excite(cell, args.duration)
        except FloatingPointError as exc:
            return {**out, "error": f"excitation: the plant diverged ({exc})", "wall_s": time.perf_counter() - t0}
        res = fit([log], base_car(cell), names=NAMES, actuator="auto",
                  name=f"cr{cell['vehicle']}_{cell['model']}_fb{cell['seed']}")
        out["fit"] = fit_report(cell, res)
        cars.mkdir(parents=True, exist_ok=True)
        res.params.to_yaml(cars / f"cell{cell['index']}.yaml")  # the fitted car, to race again without refitting
        car = res.params
    true = nominal_params(cell["vehicle"], cell["model"], name=f"cr{cell['vehicle']}_{cell['model']}_true")
    ref_fit = None if args.no_reference else reference(args.track, car, car.name)
    ref_true = None if args.no_reference else reference(args.track, true, true.name)
    try:
        out["race"] = race_report(cell, car, args)
    except Exception as exc:  # a race that cannot be run is a result of the cell, reported as such
        out["race"] = {"status": f"error: {type(exc).__name__}: {exc}"}
    best = out["race"].get("best_lap_s")
    out["race"].update(reference_fit_s=ref_fit, reference_true_s=ref_true,
                       gap_fit=best / ref_fit - 1.0 if best and ref_fit else None,
                       gap_true=best / ref_true - 1.0 if best and ref_true else None)
    out["wall_s"] = time.perf_counter() - t0
    return out


def row(c: dict) -> str:
    a = c["actuators"]
    act = (f"{c['steering']} ({'wn %.0f z %.2f' % (a['servo_wn'], a['servo_zeta']) if a['servo'] != 'p' else 'kp %.0f' % a['steer_kp']}"
           f"{', %.0f ms' % (1000 * a['dead_time']) if a['dead_time'] else ''}, rate x{a['rate_share']:.2f}), "
           f"{c['speed_loop']}, {c['interface']}")
    head = f"| {c['index']} | v{c['vehicle']} {c['model'].upper()} | {act} | {c['programme']} |"
    if "error" in c:
        return head + f" {c['error'][:60]} | | | | | | |"
    f, r = c["fit"], c["race"]
    flags = ", ".join((["structure-limited"] if f["structure_limited"] else []) +
                      [f"halves: {','.join(f['halves_disagree'])}"] * bool(f["halves_disagree"]) +
                      [f"implausible: {','.join(f.get('implausible', []))}"] * bool(f.get("implausible"))) or "none"
    gap = lambda g: "-" if g is None else f"{100 * g:+.1f} %"  # noqa: E731
    return (head + f" {100 * f['I_z_error']:+.0f} % (s.e. {100 * f['I_z_se']:.0f} %) | {100 * f['K_f_error']:+.0f} / "
            f"{100 * f['K_r_error']:+.0f} % | {f['steer_structure']}, {f.get('speed_structure') or '-'} | {flags} | {f['drive_interface']}, margin "
            f"{100 * (f['grip_margin'] or 0):.0f} % | {len(r.get('laps', []))} laps, {r.get('off_track', '-')} off"
            f"{' (first at %.0f s)' % r['first_off_track_s'] if r.get('first_off_track_s') else ''}, {r['status']} | {gap(r.get('gap_fit'))} / {gap(r.get('gap_true'))} |")


HEADER = ("| cell | car | actuators (steering, speed loop, interface) | programme | I_z | K_f / K_r | steering, "
          "speed-loop structure chosen | flagged | fitted interface, grip margin | race | gap to fitted / true car's "
          "reference |\n|---|---|---|---|---|---|---|---|---|---|---|")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--track", default="Norisring")
    ap.add_argument("--controller", default="mppi")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting over the controller's (repeatable, as racing race --set): --set guide=ilqr")
    ap.add_argument("--laps", type=int, default=2)
    ap.add_argument("--duration", type=float, default=120.0, help="excitation per cell [s]")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated cell indices")
    ap.add_argument("--no-reference", action="store_true", help="skip the minimum-time references (no gaps)")
    ap.add_argument("--grid", action="store_true", help="every combination of the factors (216 cells)")
    ap.add_argument("--ray", action="store_true", help="run the cells as Ray tasks")
    ap.add_argument("--out", default="runs/foreign_bench")
    ap.add_argument("--reuse-fits", action="store_true",
                    help="race the fitted cars of an earlier run of the same draw (--out's cells.json and cars/) "
                         "again, without exciting and fitting (a controller change measured on the same fits)")
    a = ap.parse_args(argv)
    a.earlier = {}
    if a.reuse_fits:
        a.earlier = {c["index"]: c for c in json.loads((Path(a.out) / "cells.json").read_text())}
    cells = draw_cells(a.cells, a.seed, grid=a.grid)
    if a.only:
        keep = {int(i) for i in a.only.split(",")}
        cells = [c for c in cells if c["index"] in keep]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    done = []
    print(HEADER, flush=True)
    name = "cells_raced_again.json" if a.reuse_fits else "cells.json"
    for res in _results(cells, a):
        done.append(res)
        (out / name).write_text(json.dumps(done, indent=1, default=float))
        print(row(res), flush=True)
    return 0


def _results(cells: list[dict], a):
    """The cells' results in order, from ``a.workers`` local processes or Ray tasks (``a.ray``)."""
    if a.ray:
        import ray

        ray.init(ignore_reinit_error=True)
        task = ray.remote(run_cell)
        refs = [task.remote(c, a) for c in cells]
        for ref in refs:
            yield ray.get(ref)
        return
    with ProcessPoolExecutor(max_workers=a.workers) as pool:
        yield from pool.map(run_cell, cells, [a] * len(cells))


if __name__ == "__main__":
    sys.exit(main())
