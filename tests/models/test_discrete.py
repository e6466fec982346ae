"""The discrete step the controllers plan with, held to RK4 of the continuous model at 1 kHz.

Manoeuvres (inputs held over each controller step, the same inputs for both):

* steering ramp: from straight running the steering angle ramps over 0.5 s to the angle of a kinematic
  lateral acceleration of 0.8 mu g (clipped to 0.9 steer_max), then is held for 1 s, speed held by a = 0;
* brake-in-turn: the same ramp to 0.6 mu g, held 0.5 s, then braking at 0.3 of the car's deceleration limit for
  1 s with the steering held (:data:`BRAKE`).

Criterion: at every controller step, |yaw rate - RK4| and |v_y - RK4| stay within 2 % of the peak |yaw rate| and
|v_y| of the RK4 solution. gt_car at 20-70 m/s with its MPPI step 0.05 s; f1tenth at 2-10 m/s with 0.04 s.
"""
import numpy as np
import pytest

from racing.models import numba_backend as nbm
from racing.models.discrete import dynamic_step
from racing.models.params import G, load_params

TOL = 0.02
#: brake-in-turn deceleration, share of decel_max: trail braking the car survives (at 0.5 the F1TENTH car, its rear
#: axle unloaded by the load transfer, spins at 10 m/s: a regime no integrator step of 0.04 s follows to 2 %)
BRAKE = 0.3


def manoeuvre(params, v, dt, kind):
    """Inputs U[n, 2] held over steps of dt [s]."""
    L = params.wheelbase
    frac = 0.8 if kind == "ramp" else 0.6
    d_final = min(frac * params.mu * G * L / (v * v), 0.9 * params.steer_max)
    n_ramp, n_hold = int(round(0.5 / dt)), int(round((1.0 if kind == "ramp" else 0.5) / dt))
    n_brake = int(round(1.0 / dt)) if kind == "brake" else 0
    n = n_ramp + n_hold + n_brake
    U = np.zeros((n, 2))
    U[:n_ramp, 0] = d_final / (n_ramp * dt)
    U[n_ramp + n_hold:, 1] = -BRAKE * params.decel_max
    return U


def simulate(params, v, dt, U):
    p = params.to_array()
    x0 = np.array([0.0, 0.0, 0.0, v, 0.0, 0.0, 0.0])
    n = U.shape[0]
    X_d = np.zeros((n + 1, 7))
    X_r = np.zeros((n + 1, 7))
    X_d[0] = X_r[0] = x0
    sub = int(round(dt / 0.001))
    out = np.zeros((1, 7))
    for k in range(n):
        X_d[k + 1] = dynamic_step(X_d[k], U[k], p, dt)
        nbm.rk4_batch(nbm.MODEL_DYNAMIC, X_r[k][None], U[k][None], p, dt, sub, out)
        X_r[k + 1] = out[0]
    return X_d, X_r


CASES = [("gt_car", v, 0.05, kind) for v in (20.0, 45.0, 70.0) for kind in ("ramp", "brake")] + \
        [("f1tenth", v, 0.04, kind) for v in (2.0, 5.0, 10.0) for kind in ("ramp", "brake")]
#: measured 2026-11-27 (max error in % of the peak, yaw rate / v_y), the largest: gt_car 20 m/s ramp 0.05 / 1.21 (a
#: v_y peak of only 0.077 m/s), f1tenth 5 m/s brake 0.24 / 0.53, 2 m/s brake 0.34 / 0.47 (through zero speed into
#: reverse: the model has no stop). Second order in dt away from zero speed (f1tenth 5 m/s ramp, v_y: 0.97 / 0.26 /
#: 0.05 / 0.01 % at dt 0.1 / 0.04 / 0.02 / 0.01 s), about first order through it (2 m/s brake: 1.04 / 0.47 / 0.27 /
#: 0.15 %)


def _id(c):
    return f"{c[0]}-{c[1]:g}mps-{c[3]}"


@pytest.mark.parametrize("car,v,dt,kind", CASES, ids=[_id(c) for c in CASES])
def test_discrete_step_follows_rk4_at_1khz(car, v, dt, kind):
    params = load_params(car)
    X_d, X_r = simulate(params, v, dt, manoeuvre(params, v, dt, kind))
    assert np.all(np.isfinite(X_d))
    for col, name in ((5, "yaw rate"), (4, "v_y")):
        peak = np.max(np.abs(X_r[:, col]))
        err = np.max(np.abs(X_d[:, col] - X_r[:, col]))
        assert peak > 0
        assert err <= TOL * peak, f"{name}: max error {err:.4g} > {TOL:.0%} of the peak {peak:.4g}"
    assert abs(X_d[-1, 3] - X_r[-1, 3]) <= 0.01 * v + 0.05  # v_x follows too


@pytest.mark.parametrize("car,v", [("gt_car", 60.0), ("gt_car", 8.0), ("f1tenth", 8.0), ("f1tenth", 1.0)])
@pytest.mark.parametrize("dt", [0.02, 0.05, 0.1])
def test_discrete_step_stays_bounded_at_large_steps(car, v, dt):
    """A slalom at the steering-rate limit with the acceleration switching between full drive and full braking for
    6 s (spins past the tyres' peak, speeds through the low-speed blend and into reverse): the step stays finite at
    the controllers' largest steps, where explicit integration of the tyre dynamics diverges; the speed grows no
    faster than full drive allows, and the yaw rate stays within 3x of what RK4 of the continuous model reaches on
    the same inputs (the F1TENTH car spins at 40-45 rad/s in both; at 0.1 s the step overshoots that by up to 2.5x,
    measured 2026-11-27)."""
    params = load_params(car)
    p = params.to_array()
    n = int(round(6.0 / dt))
    t = np.arange(n) * dt
    U = np.column_stack([params.steer_rate_max * np.sign(np.sin(2 * np.pi * 0.7 * t)),
                         np.where(np.sin(2 * np.pi * 0.4 * t) > 0, params.accel_max, -params.decel_max)])
    x = np.array([0.0, 0.0, 0.0, v, 0.0, 0.0, 0.0])
    xr, out = x[None].copy(), np.zeros((1, 7))
    r_max = r_ref = 0.0
    for k in range(n):
        x = dynamic_step(x, U[k], p, dt)
        nbm.rk4_batch(nbm.MODEL_DYNAMIC, xr, U[k][None], p, dt, int(round(dt / 0.001)), out)
        xr[:] = out
        for z in (x, xr[0]):
            z[6] = np.clip(z[6], -params.steer_max, params.steer_max)  # the controllers clamp the steering angle
        assert np.all(np.isfinite(x)), (k, x)
        assert np.hypot(x[3], x[4]) <= v + params.accel_max * (k + 1) * dt, (k, x)
        r_max, r_ref = max(r_max, abs(x[5])), max(r_ref, abs(xr[0, 5]))
    assert r_max <= 3.0 * r_ref, (r_max, r_ref)
