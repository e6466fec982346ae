"""Vehicle models: golden values, backend equivalence (numba, torch, casadi vs numpy), integrators."""
import math

import numpy as np
import pytest

from racing.models import numba_backend as nbm
from racing.models.dynamic import NX, dynamic_rhs, dynamic_state_from_kinematic, kinematic_state_from_dynamic
from racing.models.integrators import euler, linearize, rk4
from racing.models.kinematic import kinematic_rhs
from racing.models.params import G, load_params

F1 = load_params("f1tenth")
GT = load_params("gt_car")


def random_states(rng, n, params, nx=7):
    scale = 0.5 * params.v_max
    X = np.column_stack([
        rng.uniform(-50, 50, n), rng.uniform(-50, 50, n), rng.uniform(-math.pi, math.pi, n),
        rng.uniform(0.0, scale, n), rng.normal(0, 0.05 * scale, n), rng.normal(0, 1.0, n),
        rng.uniform(-params.steer_max, params.steer_max, n)])
    U = np.column_stack([rng.uniform(-params.steer_rate_max, params.steer_rate_max, n),
                         rng.uniform(-params.decel_max, params.accel_max, n)])
    if nx == 5:
        X = kinematic_state_from_dynamic(X)
    return X, U


def test_kinematic_golden_values():
    p = F1.to_array()
    L = F1.l_f + F1.l_r
    x = np.array([1.0, 2.0, 0.3, 4.0, 0.2])
    u = np.array([0.5, -1.5])
    beta = math.atan(F1.l_r * math.tan(0.2) / L)
    expect = [4.0 * math.cos(0.3 + beta), 4.0 * math.sin(0.3 + beta), 4.0 * math.cos(beta) * math.tan(0.2) / L,
              -1.5, 0.5]
    np.testing.assert_allclose(kinematic_rhs(x, u, p), expect, rtol=1e-12)
    # straight line: no yaw rate, velocity along the heading
    np.testing.assert_allclose(kinematic_rhs(np.array([0, 0, 1.0, 3.0, 0.0]), np.zeros(2), p),
                               [3 * math.cos(1.0), 3 * math.sin(1.0), 0, 0, 0], atol=1e-12)


def test_dynamic_golden_values_hand_computed():
    """Front slip only (v_y = r = 0, delta = 0.1 rad) at 5 m/s, where the model is fully dynamic."""
    prm = F1.replace(B_f=5.5, C_f=1.5, D_f=1.05, E_f=0.0, c_roll=0.015, c_drag=0.005, v_blend_low=0.5,
                     v_blend_high=1.5)
    p = prm.to_array()
    x = np.array([1.0, 2.0, 0.3, 5.0, 0.0, 0.0, 0.1])
    f = dynamic_rhs(x, np.zeros(2), p)
    L = F1.l_f + F1.l_r
    fzf = F1.mass * G * F1.l_r / L
    fyf = fzf * 1.05 * math.sin(1.5 * math.atan(5.5 * 0.1))  # E_f = 0
    fx = -0.015 * F1.mass * G * math.tanh(5.0 / 0.5) - 0.005 * 25.0
    assert f[0] == pytest.approx(5 * math.cos(0.3))
    assert f[1] == pytest.approx(5 * math.sin(0.3))
    assert f[3] == pytest.approx((fx - fyf * math.sin(0.1)) / F1.mass, rel=1e-9)
    assert f[4] == pytest.approx(fyf * math.cos(0.1) / F1.mass, rel=1e-6)
    assert f[5] == pytest.approx(F1.l_f * fyf * math.cos(0.1) / F1.inertia_z, rel=1e-6)
    # pinned regression values (checked by hand above: 3.644 m/s^2, 45.92 rad/s^2)
    np.testing.assert_allclose(f, [4.77668245, 1.47760103, 0.0, -0.54619137, 3.64399367, 45.91532559, 0.0],
                               rtol=1e-7)


def test_dynamic_standstill_is_finite_and_still():
    for prm in (F1, GT):
        f = dynamic_rhs(np.zeros(NX), np.zeros(2), prm.to_array())
        assert np.all(np.isfinite(f))
        np.testing.assert_allclose(f, 0.0, atol=1e-12)
        f = dynamic_rhs(np.array([0, 0, 0, 0, 0, 0, 0.3]), np.array([1.0, 2.0]), prm.to_array())
        assert np.all(np.isfinite(f))
        assert f[3] == pytest.approx(2.0)  # pure acceleration from standstill


def test_dynamic_matches_kinematic_at_low_speed():
    """Below v_blend_low the yaw rate follows the kinematic relation r' = (delta' v + v' tan delta) / L."""
    p = F1.to_array()
    x = np.array([0, 0, 0, 0.2, 0.0, 0.0, 0.2])
    u = np.array([1.0, 1.0])
    f = dynamic_rhs(x, u, p)
    L = F1.wheelbase
    expect_r = (1.0 * 0.2 / math.cos(0.2) ** 2 + f[3] * math.tan(0.2)) / L
    assert f[5] == pytest.approx(expect_r, rel=1e-9)


def test_steady_state_cornering_small_slip_gives_kinematic_radius():
    """At low lateral acceleration the dynamic model turns on the kinematic radius L / tan(delta)."""
    p = GT.replace(c_roll=0.0, c_drag=0.0).to_array()
    step = rk4(dynamic_rhs, 0.01)
    x = np.array([0, 0, 0, 10.0, 0, 0, 0.01])
    for _ in range(2000):
        x = step(x, np.zeros(2), p)
    radius = x[3] / x[5]
    assert radius == pytest.approx(GT.wheelbase / math.tan(0.01), rel=0.05)


@pytest.mark.parametrize("params", [F1, GT], ids=["f1tenth", "gt_car"])
def test_numba_equals_numpy_on_random_batches(params):
    rng = np.random.default_rng(1)
    p = params.to_array()
    X, U = random_states(rng, 2000, params)
    np.testing.assert_allclose(nbm.rhs("dynamic", X, U, p), dynamic_rhs(X, U, p), rtol=1e-10, atol=1e-9)
    Xk = kinematic_state_from_dynamic(X)
    np.testing.assert_allclose(nbm.rhs("kinematic", Xk, U, p), kinematic_rhs(Xk, U, p), rtol=1e-10, atol=1e-9)


def test_numba_rk4_equals_numpy_rk4():
    rng = np.random.default_rng(2)
    p = F1.to_array()
    X, U = random_states(rng, 500, F1)
    out = np.empty_like(X)
    nbm.rk4_batch(nbm.MODEL_DYNAMIC, X, U, p, 0.02, 4, out)
    ref = rk4(dynamic_rhs, 0.02, substeps=4)(X, U, p)
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)


def test_torch_equals_numpy():
    torch = pytest.importorskip("torch")
    from racing.models.ops import torch_ops

    rng = np.random.default_rng(3)
    p = GT.to_array()
    X, U = random_states(rng, 300, GT)
    got = dynamic_rhs(torch.tensor(X), torch.tensor(U), torch.tensor(p), torch_ops()).numpy()
    np.testing.assert_allclose(got, dynamic_rhs(X, U, p), rtol=1e-10, atol=1e-9)
    Xk = kinematic_state_from_dynamic(X)
    got = kinematic_rhs(torch.tensor(Xk), torch.tensor(U), torch.tensor(p), torch_ops()).numpy()
    np.testing.assert_allclose(got, kinematic_rhs(Xk, U, p), rtol=1e-10, atol=1e-9)


def test_casadi_equals_numpy():
    ca = pytest.importorskip("casadi")
    from racing.models.ops import casadi_ops

    xs, us = ca.SX.sym("x", 7), ca.SX.sym("u", 2)
    f = ca.Function("f", [xs, us], [dynamic_rhs(xs, us, F1.to_array(), casadi_ops())])
    rng = np.random.default_rng(4)
    X, U = random_states(rng, 50, F1)
    ref = dynamic_rhs(X, U, F1.to_array())
    for i in range(50):
        np.testing.assert_allclose(np.array(f(X[i], U[i])).ravel(), ref[i], rtol=1e-10, atol=1e-9)


def test_state_maps_round_trip():
    p = F1.to_array()
    xk = np.array([1.0, 2.0, 0.5, 3.0, 0.2])
    xd = dynamic_state_from_kinematic(xk, p)
    np.testing.assert_allclose(kinematic_state_from_dynamic(xd), xk, atol=1e-12)


def test_integrators_and_linearize():
    f = lambda x, u, p: -x + u  # noqa: E731
    x1 = rk4(f, 0.1)(np.array([1.0]), np.array([0.0]), None)
    assert x1[0] == pytest.approx(math.exp(-0.1), rel=1e-6)
    x1e = euler(f, 0.1, substeps=100)(np.array([1.0]), np.array([0.0]), None)
    assert x1e[0] == pytest.approx(math.exp(-0.1), rel=1e-3)
    A, B = linearize(dynamic_rhs)(np.array([0, 0, 0, 5.0, 0, 0, 0]), np.zeros(2), F1.to_array())
    assert A.shape == (7, 7) and B.shape == (7, 2)
    assert A[0, 3] == pytest.approx(1.0)  # x' = v_x cos(yaw)
    assert B[6, 0] == pytest.approx(1.0)  # delta' = steer rate
