"""Measure the sysid targets: parameter recovery, residual RMSE reduction, learn loop (see README).

    python tools/sysid_report.py [recovery] [residual] [learn]
"""
from __future__ import annotations

import sys
import time

from racing.models.params import load_params
from racing.sysid.evaluate import evaluate
from racing.sysid.excite import MODERATE, excitation_log
from racing.sysid.parametric import fit

TARGET = ("inertia_z", "B_f", "C_f", "D_f", "B_r", "C_r", "D_r", "mu")


def recovery(seed: int = 1):
    p0 = load_params("f1tenth")
    true = p0.replace(inertia_z=0.04712 * 1.1, B_f=5.0, C_f=1.4, D_f=0.95, B_r=7.0, C_r=1.6, D_r=1.0, mu=0.8,
                      c_drag=0.006)
    base = p0.replace(inertia_z=0.04712 * 0.8, B_f=6.5, C_f=1.7, D_f=1.2, B_r=8.5, C_r=1.3, D_r=1.2, mu=1.0)
    log, _ = excitation_log(true, 60.0, seed=seed)
    res = fit([log], base)
    print(res.report())
    print(f"\nrecovery (60 s, noise, seed {seed}), fit {res.seconds:.1f} s:")
    for n, v in zip(res.names, res.values):
        if n in TARGET:
            print(f"  {n:<10} true {getattr(true, n):.5g}  fitted {v:.5g}  error {(v / getattr(true, n) - 1) * 100:+.2f}%")


def residual():
    """Parametric fit vs fit + residual on ``dynamic_ext`` (load transfer + drivetrain lag, tau 0.08 s).

    Train: 60 s noisy session (seed 1). Held out: the seed-2 session noise-free and noisy (the
    benchmark; it holds one slide, |beta| up to 0.25 rad, beyond the training data's range) and
    sessions 3 and 4 noise-free. RMSE over all steps of the 0.5 s / 1 s open-loop windows.
    """
    from racing.sysid.residual import train_residual

    p0 = load_params("f1tenth")
    tr, _ = excitation_log(p0, 60.0, seed=1, plant="dynamic_ext", config=MODERATE)
    res = fit([tr], p0)
    t = time.perf_counter()
    rr = train_residual([tr], res.params)
    print(f"residual trained in {time.perf_counter() - t:.1f} s (best epoch {rr.best_epoch + 1}/{len(rr.val_loss)}, "
          f"filter taus {', '.join(f'{v:.3f}' for v in rr.weights.taus)} s)")
    for seed, noise in ((2, {}), (2, None), (3, {}), (4, {})):
        te, _ = excitation_log(p0, 60.0, seed=seed, plant="dynamic_ext", config=MODERATE, noise=noise)
        ev = evaluate([te], res.params, rr.weights, horizons_s=(0.5, 1.0))
        print(f"\nheld-out session {seed}, {'noise-free' if noise == {} else 'noisy'}:")
        print(ev.table())
        print("1 s RMSE reduction: " + ", ".join(f"{k} {ev.reduction('1 s', k) * 100:.1f}%" for k in ("vx", "vy", "yaw_rate")))


def learn_loop():
    from racing.sysid.learn import learn

    p0 = load_params("f1tenth")
    start = p0.replace(inertia_z=p0.inertia_z * 1.25, B_f=p0.B_f * 0.75, C_f=p0.C_f * 1.2, D_f=p0.D_f * 0.75,
                       B_r=p0.B_r * 1.25, C_r=p0.C_r * 0.8, D_r=p0.D_r * 0.75, mu=p0.mu * 0.75)
    r = learn("lab_loop", p0, start, iterations=2, controller="mppi", laps=2)
    print(r.table())
    print(f"best-lap improvement {r.improvement() * 100:.2f}%")


if __name__ == "__main__":
    what = sys.argv[1:] or ["recovery", "residual", "learn"]
    for w in what:
        {"recovery": recovery, "residual": residual, "learn": learn_loop}[w]()
