"""One source: every compiled (scalar, numba) form equals its vectorised numpy reference on random batches,
torch and casadi equal numpy, and no second copy of the physics is left to drift.

The component functions are written once against ``ops``; here each is compiled into a numba kernel with
``ops = racing.models.sops`` (libm-free atan/tanh, Taylor sincos) and compared with the same function run on
numpy arrays (``ops = NUMPY``) to 1e-10.
"""
import math

import numpy as np
import pytest
from numba import njit

from racing.control import costs as C
from racing.control.mppi.config import CostWeights
from racing.models import sops
from racing.models.actuators import actuator_inputs
from racing.models.discrete import dynamic_step, dynamic_step_c, kinematic_step, kinematic_step_c
from racing.models.dynamic import (axle_loads, body_derivatives, dynamic_rhs, tyre_force_set, longitudinal_force,
                                   pacejka, peak_slip_angle, slip_angles)
from racing.models.kinematic import body_velocities, kinematic_rhs
from racing.models.ops import NUMPY, casadi_ops, torch_ops
from racing.models.params import load_params

F1 = load_params("f1tenth")
GT = load_params("gt_car")


def batch(rng, params, n=3000):
    v = 0.6 * params.v_max
    return dict(vx=np.concatenate([rng.uniform(-0.5, v, n - 20), np.linspace(0, 3 * params.v_blend_high, 20)]),
                vy=rng.normal(0, 0.08 * v, n), r=rng.normal(0, 1.0, n),
                d=rng.uniform(-params.steer_max, params.steer_max, n),
                rate=rng.uniform(-params.steer_rate_max, params.steer_rate_max, n),
                a=rng.uniform(-params.decel_max, params.accel_max, n),
                psi=rng.uniform(-math.pi, math.pi, n), x=rng.uniform(-50, 50, n), y=rng.uniform(-50, 50, n))


@njit(cache=True)
def _scalar_components(vx, vy, r, d, rate, a, p, out):
    for k in range(vx.shape[0]):
        af, ar = slip_angles(vx[k], vy[k], r[k], d[k], p, sops)
        fyf, fyr, _ = tyre_force_set(vx[k], vy[k], r[k], d[k], a[k], p, sops)
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = af, ar, fyf, fyr
        out[k, 4] = longitudinal_force(vx[k], a[k], p, sops)
        out[k, 5], out[k, 6], out[k, 7] = body_derivatives(vx[k], vy[k], r[k], d[k], rate[k], a[k], p, sops)
        out[k, 8], out[k, 9] = axle_loads(a[k], vx[k], p, sops)
        out[k, 10], out[k, 11] = actuator_inputs(d[k], vx[k], 0.5 * d[k], vx[k] + 1.0, a[k], p, 0.003, False, sops)
        out[k, 12], out[k, 13] = actuator_inputs(d[k], vx[k], -d[k], vx[k] - 2.0, 0.0, p, 0.01, True, sops)
        out[k, 14], out[k, 15], out[k, 16] = body_velocities(vx[k], d[k], p, sops)


def _vector_components(b, p):
    vx, vy, r, d, rate, a = b["vx"], b["vy"], b["r"], b["d"], b["rate"], b["a"]
    af, ar = slip_angles(vx, vy, r, d, p, NUMPY)
    fyf, fyr, _ = tyre_force_set(vx, vy, r, d, a, p, NUMPY)
    cols = [af, ar, fyf, fyr, longitudinal_force(vx, a, p, NUMPY), *body_derivatives(vx, vy, r, d, rate, a, p, NUMPY),
            *axle_loads(a, vx, p, NUMPY),
            *actuator_inputs(d, vx, 0.5 * d, vx + 1.0, a, p, 0.003, False, NUMPY),
            *actuator_inputs(d, vx, -d, vx - 2.0, 0.0, p, 0.01, True, NUMPY),
            *body_velocities(vx, d, p, NUMPY)]
    return np.column_stack([np.broadcast_to(c, vx.shape) for c in cols])


@pytest.mark.parametrize("params", [F1, GT], ids=["f1tenth", "gt_car"])
def test_scalar_model_components_equal_the_numpy_reference(params):
    b = batch(np.random.default_rng(11), params)
    p = params.to_array()
    out = np.zeros((b["vx"].size, 17))
    _scalar_components(b["vx"], b["vy"], b["r"], b["d"], b["rate"], b["a"], p, out)
    ref = _vector_components(b, p)
    scale = np.maximum(np.abs(ref).max(axis=0), 1.0)
    assert np.max(np.abs(out - ref) / scale) < 1e-10


@njit(cache=True)
def _scalar_steps(X, U, p, h, out_d, out_k):
    for k in range(X.shape[0]):
        x = X[k]
        c, s = math.cos(x[2]), math.sin(x[2])
        res = dynamic_step_c(x[0], x[1], x[2], x[3], x[4], x[5], x[6], c, s, U[k, 0], U[k, 1], p, h, sops)
        for j in range(7):
            out_d[k, j] = res[j]
        rk = kinematic_step_c(x[0], x[1], x[2], x[3], x[6], c, s, U[k, 0], U[k, 1], p, h, sops)
        for j in range(5):
            out_k[k, j] = rk[j]


@pytest.mark.parametrize("params", [F1, GT], ids=["f1tenth", "gt_car"])
def test_scalar_discrete_steps_equal_the_numpy_reference(params):
    b = batch(np.random.default_rng(5), params)
    X = np.column_stack([b["x"], b["y"], b["psi"], b["vx"], b["vy"], b["r"], b["d"]])
    U = np.column_stack([b["rate"], b["a"]])
    p = params.to_array()
    out_d, out_k = np.zeros_like(X), np.zeros((X.shape[0], 5))
    _scalar_steps(X, U, p, 0.05, out_d, out_k)
    np.testing.assert_allclose(out_d, dynamic_step(X, U, p, 0.05), rtol=1e-10, atol=1e-10)
    Xk = X[:, [0, 1, 2, 3, 6]]
    np.testing.assert_allclose(out_k, kinematic_step(Xk, U, p, 0.05), rtol=1e-10, atol=1e-10)


@njit(cache=True)
def _scalar_stage(tab, cp, I, FR, NN, D, VX, VY, R, DU, out):
    for k in range(I.shape[0]):
        out[k, 0], out[k, 1] = C.stage_terms(tab, cp, 5, 10, I[k], FR[k], NN[k], D[k], VX[k], VY[k], R[k], DU[k],
                                             -DU[k], sops)
        out[k, 2] = C.crash_condition(out[k, 1], VX[k], VY[k], R[k], cp, sops)
        out[k, 3] = C.smooth_stage(NN[k], 1.0, 1.2, 0.1, 5.0, D[k], VX[k], VY[k], R[k], DU[k], -DU[k], 1.0, 30.0, cp,
                                   sops)


def test_scalar_cost_terms_equal_the_numpy_reference(oval):
    track = oval()
    p = F1
    tab, _ = C.track_table(track, p)
    cp = C.cost_params(CostWeights(line=0.5, speed_track=0.3, tyre_slip=20.0), 0.4, 0.2, track.ds, beta_max=0.2,
                       rv_max=12.0, l_f=p.l_f, l_r=p.l_r, alpha_peak_f=peak_slip_angle(p.B_f, p.C_f, p.E_f),
                       alpha_peak_r=peak_slip_angle(p.B_r, p.C_r, p.E_r))
    rng = np.random.default_rng(2)
    n = 2000
    I = rng.integers(0, tab.shape[0], n)
    FR, NN, D = rng.uniform(0, 1, n), rng.uniform(-1.5, 1.5, n), rng.uniform(-0.4, 0.4, n)
    VX, VY, R, DU = rng.uniform(0, 12, n), rng.normal(0, 0.5, n), rng.normal(0, 2, n), rng.normal(0, 1, n)
    out = np.zeros((n, 4))
    _scalar_stage(tab, cp, I, FR, NN, D, VX, VY, R, DU, out)
    c, dmin = C.stage_terms(tab, cp, 5, 10, I, FR, NN, D, VX, VY, R, DU, -DU, NUMPY)
    np.testing.assert_allclose(out[:, 0], c, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out[:, 1], dmin, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(out[:, 2], C.crash_condition(dmin, VX, VY, R, cp, NUMPY))
    np.testing.assert_allclose(out[:, 3], C.smooth_stage(NN, 1.0, 1.2, 0.1, 5.0, D, VX, VY, R, DU, -DU, 1.0, 30.0,
                                                         cp, NUMPY), rtol=1e-10, atol=1e-10)
    assert 0 < out[:, 2].sum() < n  # both branches of the crash flag were exercised


def test_smooth_stage_tends_to_the_hinge_terms():
    cp = C.cost_params(CostWeights(boundary=50.0, speed_cap=2.0, tyre_slip=0.0, slip=0.0, crash=0.0), 1.0, 0.3, 1.0)
    e = np.linspace(-2, 2, 401)
    for k in (10.0, 100.0, 1000.0):
        sm = C.softplus_hinge(e, k, NUMPY) ** 2
        err = np.max(np.abs(sm - C.hinge_sq(e, NUMPY)))
        assert err <= (math.log(2.0) / k) ** 2 + 2 * math.log(2.0) / k * 2.0 + 1e-12
    # the smooth boundary term approaches the exact one away from the kink
    n = np.array([0.0, 0.5, 0.9])
    exact = C.boundary_cost(np.minimum(1.0 - n, 1.0 + n), cp, NUMPY)
    smooth = C.smooth_stage(n, 1.0, 1.0, n, 100.0, 0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1e4, cp, NUMPY)
    np.testing.assert_allclose(smooth, exact, rtol=1e-3, atol=1e-6)


@pytest.mark.torch
def test_torch_forms_equal_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    b = batch(rng, GT, 500)
    X = np.column_stack([b["x"], b["y"], b["psi"], b["vx"], b["vy"], b["r"], b["d"]])
    U = np.column_stack([b["rate"], b["a"]])
    p = GT.to_array()
    ops = torch_ops()
    Xt, Ut = torch.tensor(X), torch.tensor(U)
    np.testing.assert_allclose(dynamic_step(Xt, Ut, p, 0.05, ops).numpy(), dynamic_step(X, U, p, 0.05),
                               rtol=1e-10, atol=1e-10)
    Xk = X[:, [0, 1, 2, 3, 6]]
    np.testing.assert_allclose(kinematic_step(torch.tensor(Xk), Ut, p, 0.05, ops).numpy(),
                               kinematic_step(Xk, U, p, 0.05), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(kinematic_rhs(torch.tensor(Xk), Ut, p, ops).numpy(), kinematic_rhs(Xk, U, p),
                               rtol=1e-10, atol=1e-10)


def test_casadi_discrete_step_equals_numpy():
    ca = pytest.importorskip("casadi")
    ops = casadi_ops()
    p = GT.to_array()
    x, u = ca.SX.sym("x", 7), ca.SX.sym("u", 2)
    f = ca.Function("step", [x, u], [dynamic_step(x, u, p, 0.05, ops)])
    b = batch(np.random.default_rng(8), GT, 200)
    X = np.column_stack([b["x"], b["y"], b["psi"], b["vx"], b["vy"], b["r"], b["d"]])
    U = np.column_stack([b["rate"], b["a"]])
    got = np.array(f.map(X.shape[0])(X.T, U.T)).T
    np.testing.assert_allclose(got, dynamic_step(X, U, p, 0.05), rtol=1e-10, atol=1e-10)
    g = ca.Function("rhs", [x, u], [dynamic_rhs(x, u, p, ops)])
    np.testing.assert_allclose(np.array(g.map(X.shape[0])(X.T, U.T)).T, dynamic_rhs(X, U, p), rtol=1e-10,
                               atol=1e-9)


def test_pacejka_peak_is_the_maximum_and_is_shared():
    for B, Cc, E in ((11.0, 1.6, 0.3), (12.0, 1.6, 0.3), (F1.B_f, F1.C_f, F1.E_f), (8.0, 1.2, -0.5)):
        a = peak_slip_angle(B, Cc, E)
        assert pacejka(a, B, Cc, 1.0, E) == pytest.approx(1.0, abs=1e-12)
        assert pacejka(a, B, Cc, 1.0, E) >= pacejka(a * (1 + 1e-6), B, Cc, 1.0, E)
        assert pacejka(0.97 * a, B, Cc, 1.0, E) < 1.0 and pacejka(1.03 * a, B, Cc, 1.0, E) < 1.0
    a = peak_slip_angle(10.0, 0.95, 0.0)  # no peak: the slip angle of 99 % of D
    assert pacejka(a, 10.0, 0.95, 1.0, 0.0) == pytest.approx(0.99, abs=1e-9)
    assert peak_slip_angle(10.0, 1.5, 1.0) == math.inf and peak_slip_angle(10.0, 0.8, 0.0) == math.inf
    # the min-time OCP and the controllers' cost assembly (MPPI and iLQR) use this very function (no second copy)
    import racing.raceline.mintime as mt
    from racing.control import horizon

    assert mt.peak_slip_angle is peak_slip_angle and horizon.peak_slip_angle is peak_slip_angle
