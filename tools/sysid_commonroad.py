"""Measure the issue-10 identification targets on plants the project did not write, and on the AV-21 log.

    python tools/sysid_commonroad.py [st] [mb] [foreign] [av21]

* st / mb: 120 s at 50 Hz of the project's excitation programme on CommonRoad's single-track / multi-body
  model of a BMW 320i (vehicle 2) through :mod:`commonroad_plant`; fit with and without the measured steering
  angle from a base car 20-30 % off; prints I_z and axle cornering-stiffness errors against the truth derived
  in commonroad_plant.truth, flags and fit times.
* foreign: the same 120 s session on CommonRoad ST behind :class:`racing.sim.foreign.ForeignActuators` (a servo
  after a 40 ms dead time, a PI speed loop that ignores the acceleration field), the angle not logged, fitted with
  ``actuator="lag"`` and ``"auto"``: I_z and axle-stiffness errors, the structure chosen, the dead time, the flags
  (docs/results.md, 2026-12-06).
* av21: ``racing fit`` of the AV-21 log (first 70 % fit, last 30 % validation), without and with the fitted
  velocity reference point (``--lever-arm auto``), the README tables.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from commonroad_plant import CommonRoadPlant, actuator_car, axle_stiffness, truth  # noqa: E402

from racing.logs import DriveLog  # noqa: E402
from racing.sysid.excite import ExcitationConfig, ExcitationDriver, drive_session  # noqa: E402

#: full-size excitation: 12-26 m/s, lateral levels 0.1-0.45 of the grip, no full-brake phases (CommonRoad's
#: axle loads shift with acceleration, the project's model keeps them static)
CONFIG = ExcitationConfig(v_min=12.0, v_max=26.0, speed_hold=(1.5, 4.0), steer_hold=(0.3, 1.2), lat_level=(0.1, 0.45),
                          p_brake=0.0, dither_amp=0.004, dither_hz=1.0, beta_guard=0.08, brake_lat_scale=0.3)
NOISE = {"pos": 0.02, "yaw": 0.005, "vel": 0.03, "yaw_rate": 0.01, "steer": 0.002}
NAMES = ("inertia_z", "B_f", "C_f", "D_f", "B_r", "C_r", "D_r", "mu", "c_drag", "c_roll", "steer_gain", "steer_tau",
         "steer_offset")
AV21 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "logs" / "av21" / "Putnam_park2023_run4_2.csv"


def session(model: str, duration: float = 120.0, seed: int = 1):
    """(log, base car): an excitation session on CommonRoad ``model`` and a base car 20-30 % off the truth."""
    act = actuator_car().replace(speed_kp=0.3)  # a gentle speed loop: accelerations below ~4 m/s^2
    x0 = np.zeros(7)
    x0[3] = 10.0
    log, _ = drive_session(CommonRoadPlant(model, actuators=act), ExcitationDriver(act, CONFIG, seed=seed), duration, 50.0,
                           noise=NOISE, seed=seed, x0=x0, meta={"car": "bmw320i", "plant": f"commonroad-{model}"})
    base = act.replace(inertia_z=truth(model)["inertia_z"] * 1.3, B_f=act.B_f * 0.75, B_r=act.B_r * 1.25,
                       steer_tau=0.04)
    return log, base


def errors(res, model):
    """Relative errors (I_z, K_f, K_r) of a fit against :func:`commonroad_plant.truth`."""
    t = truth(model)
    kf, kr = axle_stiffness(res.params)
    return res.params.inertia_z / t["inertia_z"] - 1, kf / t["K_f"] - 1, kr / t["K_r"] - 1


def commonroad(model: str) -> None:
    from racing.sysid.parametric import fit

    t0 = time.perf_counter()
    log, base = session(model)
    print(f"\n=== CommonRoad {model.upper()}: 120 s session simulated in {time.perf_counter() - t0:.1f} s")
    blind = DriveLog(log.t, log.state, log.command, meta={**log.meta, "steer_source": "command"}, source="no angle")
    print("| plant | steering angle | I_z | K_f | K_r | steer_tau (truth 0.08 s) | flagged pairs | fit [s] |")
    print("|---|---|---|---|---|---|---|---|")
    for label, lg in (("measured", log), ("not logged", blind)):
        res = fit([lg], base, names=NAMES)
        e = errors(res, model)
        fl = ", ".join(f"{n}~{c['partner']} ({c['correlation']:+.2f}; {c['interval'][0]:.4g}..{c['interval'][1]:.4g})"
                       for n, c in res.confounded.items()) or "none"
        print(f"| {model.upper()} | {label} | {e[0]:+.1%} | {e[1]:+.1%} | {e[2]:+.1%} | {res.params.steer_tau:.3f} | "
              f"{fl} | {res.seconds:.1f} |", flush=True)
        print("   not identified:", ", ".join(res.not_identified) or "none")


def foreign() -> None:
    from racing.sim.foreign import ForeignActuators
    from racing.sysid.parametric import fit

    act = actuator_car().replace(speed_kp=0.3)
    fa = ForeignActuators(rate_max=act.steer_rate_max, steer_max=act.steer_max, accel_max=act.accel_max,
                          decel_max=act.decel_max)
    x0 = np.zeros(7)
    x0[3] = 10.0
    log, _ = drive_session(CommonRoadPlant("st", actuators=fa), ExcitationDriver(act, CONFIG, seed=1), 120.0, 50.0,
                           noise=NOISE, seed=1, x0=x0, meta={"car": "bmw320i", "plant": "commonroad-st+foreign"})
    blind = DriveLog(log.t, log.state, log.command, meta={**log.meta, "steer_source": "command"}, source="no angle")
    base = act.replace(inertia_z=truth("st")["inertia_z"] * 1.3, B_f=act.B_f * 0.75, B_r=act.B_r * 1.25,
                       steer_tau=0.04)
    print("\n=== CommonRoad ST behind ForeignActuators (dead time 0.04 s, PI speed loop), angle not logged")
    print("| --actuator | chosen | I_z | K_f | K_r | steer_tau | steer_delay | structure-limited | fit [s] |")
    print("|---|---|---|---|---|---|---|---|---|")
    for actuator in ("lag", "auto"):
        res = fit([blind], base, names=NAMES, actuator=actuator)
        e = errors(res, "st")
        a = res.actuator
        print(f"| {actuator} | {a['chosen']} | {e[0]:+.1%} | {e[1]:+.1%} | {e[2]:+.1%} | {res.params.steer_tau:.3f} | "
              f"{res.params.steer_delay:.4f} | {a.get('misfit') or a.get('structure_limited')} | {res.seconds:.1f} |",
              flush=True)


def av21() -> None:
    from racing.sysid.cli import main

    if not AV21.is_file():
        print("AV-21 log not present:", AV21)
        return
    for extra in ([], ["--lever-arm", "auto"]):
        print(f"\n=== AV-21, racing fit --columns av21 --fit-fraction 0.7 --min-speed 5 {' '.join(extra)}", flush=True)
        main(["fit", str(AV21), "--columns", "av21", "--fit-fraction", "0.7", "--min-speed", "5", *extra])


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", metavar="SECTION",
                    help="sections to run (default: st, mb, av21)")
    what = ap.parse_args().what or ["st", "mb", "av21"]
    known = ("st", "mb", "foreign", "av21")
    bad = [w for w in what if w not in known]
    if bad:
        ap.error("unknown section(s) " + ", ".join(bad) + "; expected some of " + ", ".join(known))
    for w in what:
        {"st": lambda: commonroad("st"), "mb": lambda: commonroad("mb"), "foreign": foreign, "av21": av21}[w]()
