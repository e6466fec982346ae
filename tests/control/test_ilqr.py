"""iLQR: the LQR solution of a linear-quadratic problem in one iteration, monotone cost, input limits, casadi
derivatives against finite differences of the numpy model and cost, the compiled forward cost against the
casadi cost, the fallback on a diverging solve, strict configuration."""
from __future__ import annotations

import math

import numpy as np
import pytest

from racing import config as cfg
from racing.control import costs as C
from racing.control.ilqr import derivatives as DV
from racing.control.ilqr.config import ILQRConfig
from racing.control.ilqr.solver import ILQR
from racing.models.discrete import dynamic_step, kinematic_step
from racing.models.ops import NUMPY
from racing.models.params import P_MASS, load_params
from racing.track import Track


# ------------------------------------------------------------------------------------------------
# a linear-quadratic problem in the solver's packed layout (independent of casadi and of the racing problem)
# ------------------------------------------------------------------------------------------------
class LQProblem:
    """x' = A x + B u, cost sum_t 1/2 (x'Qx + u'Ru) + 1/2 x_T' Qf x_T, state n (no input-history part)."""

    def __init__(self, A, B, Q, R, Qf, x0, T, lo=-np.inf, hi=np.inf):
        n = A.shape[0]
        self.A, self.B, self.Q, self.R, self.Qf, self.x0, self.T = A, B, Q, R, Qf, x0, T
        self.lay = DV.layout(n)
        self.OUT = np.zeros((T, self.lay.size))
        self.OUT_T = np.zeros(self.lay.f_size)
        self.U = np.zeros((T, 2))
        self.X = np.zeros((T + 1, n))
        self.lo = np.full((T, 2), lo, dtype=float)
        self.hi = np.full((T, 2), hi, dtype=float)
        self._cand = None

    def cost_of(self, X, U):
        return 0.5 * (np.einsum("ti,ij,tj->", X[:-1], self.Q, X[:-1]) + np.einsum("ti,ij,tj->", U, self.R, U)
                      + X[-1] @ self.Qf @ X[-1])

    def rollout(self, U):
        X = np.zeros_like(self.X)
        X[0] = self.x0
        for t in range(self.T):
            X[t + 1] = self.A @ X[t] + self.B @ U[t]
        return X

    def linearize(self):
        L, n = self.lay, self.lay.n
        for t in range(self.T):
            r = self.OUT[t]
            r[L.a:L.a + n * n] = self.A.ravel()
            r[L.b:L.b + 2 * n] = self.B.ravel()
            r[L.lx:L.lx + n] = self.Q @ self.X[t]
            r[L.lu:L.lu + 2] = self.R @ self.U[t]
            r[L.lxx:L.lxx + n * n] = self.Q.ravel()
            r[L.luu:L.luu + 4] = self.R.ravel()
            r[L.lux:L.lux + 2 * n] = 0.0
        self.OUT_T[1:1 + n] = self.Qf @ self.X[-1]
        self.OUT_T[1 + n:] = self.Qf.ravel()

    def forward(self, alpha, k, K):
        X = np.zeros_like(self.X)
        U = np.zeros_like(self.U)
        X[0] = self.x0
        for t in range(self.T):
            U[t] = np.clip(self.U[t] + alpha * k[t] + K[t] @ (X[t] - self.X[t]), self.lo[t], self.hi[t])
            X[t + 1] = self.A @ X[t] + self.B @ U[t]
        self._cand = (X, U)
        return self.cost_of(X, U)

    def accept(self):
        self.X, self.U = self._cand


def _lq(T=20, seed=0, **kw):
    rng = np.random.default_rng(seed)
    n = 4
    A = np.eye(n) + 0.1 * rng.standard_normal((n, n))
    B = rng.standard_normal((n, 2))
    Q = np.diag(rng.uniform(0.5, 2.0, n))
    R = np.diag([0.3, 0.7])
    Qf = 5.0 * np.eye(n)
    x0 = rng.standard_normal(n)
    pb = LQProblem(A, B, Q, R, Qf, x0, T, **kw)
    pb.X = pb.rollout(pb.U)
    return pb


def _lqr_by_least_squares(pb):
    """The optimal inputs of the LQ problem as one least-squares problem in U (no Riccati recursion)."""
    T, n = pb.T, pb.A.shape[0]
    # X = F x0 + G U (stacked)
    F = np.zeros(((T + 1) * n, n))
    G = np.zeros(((T + 1) * n, 2 * T))
    Ak = np.eye(n)
    for t in range(T + 1):
        F[t * n:(t + 1) * n] = Ak
        Ak = pb.A @ Ak
        for j in range(t):
            G[t * n:(t + 1) * n, 2 * j:2 * j + 2] = np.linalg.matrix_power(pb.A, t - 1 - j) @ pb.B
    Qbig = np.zeros(((T + 1) * n, (T + 1) * n))
    for t in range(T):
        Qbig[t * n:(t + 1) * n, t * n:(t + 1) * n] = pb.Q
    Qbig[T * n:, T * n:] = pb.Qf
    Rbig = np.kron(np.eye(T), pb.R)
    H = G.T @ Qbig @ G + Rbig
    g = G.T @ Qbig @ F @ pb.x0
    return np.linalg.solve(H, -g).reshape(T, 2)


def test_linear_quadratic_problem_is_solved_in_one_iteration():
    pb = _lq()
    solver = ILQR(pb, ILQRConfig(reg_init=1e-9, reg_min=1e-12))
    info = solver.solve(1, pb.cost_of(pb.X, pb.U))
    assert info.accepted == 1 and info.alpha == 1.0
    U_star = _lqr_by_least_squares(pb)
    np.testing.assert_allclose(pb.U, U_star, rtol=1e-5, atol=1e-6)
    # the expected decrease of the quadratic model is the actual one
    assert info.decrease == pytest.approx(info.expected_decrease, rel=1e-5)


def test_box_constraints_hold_and_the_cost_never_increases():
    pb = _lq(seed=3, lo=-0.2, hi=0.25)
    solver = ILQR(pb, ILQRConfig())
    c0 = pb.cost_of(pb.X, pb.U)
    info = solver.solve(20, c0)
    assert not info.failed
    assert np.all(pb.U >= -0.2 - 1e-12) and np.all(pb.U <= 0.25 + 1e-12)
    assert np.any(np.isclose(pb.U, -0.2)) or np.any(np.isclose(pb.U, 0.25))  # the bounds are active
    costs = [c0, *info.history]
    assert all(b < a for a, b in zip(costs, costs[1:]))
    # no better feasible point along the projected unconstrained optimum
    U_clip = np.clip(_lqr_by_least_squares(pb), -0.2, 0.25)
    assert info.cost <= pb.cost_of(pb.rollout(U_clip), U_clip) + 1e-9


# ------------------------------------------------------------------------------------------------
# casadi derivatives of the one-source model and cost
# ------------------------------------------------------------------------------------------------
def _stage_inputs(lay, rng, model, p):
    n = lay.n
    xa = np.zeros(n)
    if model == "dynamic":
        xa[:7] = [1.0, -2.0, 0.3, 12.0, 0.4, 0.2, 0.05]
    else:
        xa[:5] = [1.0, -2.0, 0.3, 12.0, 0.05]
    xa[n - 2:] = [0.1, -0.5]
    u = np.array([0.2, 1.5])
    row = np.array([0.8, -2.5, math.cos(0.25), math.sin(0.25), 40.0, 1.2, 1.1, 0.1, 11.0, 0.01, -0.02, 0.05, -0.3])
    return xa + 0.01 * rng.standard_normal(n), u, row


def _cost_params(prm):
    w = ILQRConfig().cost
    return C.cost_params(w, 0.8, 0.35, 0.5, l_f=prm.l_f, l_r=prm.l_r, alpha_peak_f=0.15, alpha_peak_r=0.12)


def _numpy_stage(model, xa, u, row, w, p, cp, k, h):
    """The stage cost and next state straight from the numpy forms of the one source."""
    nx = xa.size - 2
    step = dynamic_step if model == "dynamic" else kinematic_step
    xn = step(xa[:nx], u, p, h)
    ls, _ = DV._state_cost(model, xa[:nx], row, 0.0, p, cp, k, NUMPY)
    du = u - xa[nx:]
    return np.concatenate([xn, u]), w * ls + C.input_change_cost(du[0], du[1], cp)


@pytest.mark.parametrize("model", ["dynamic", "kinematic"])
def test_casadi_derivatives_equal_finite_differences_of_the_numpy_model(model):
    prm = load_params("f1tenth")
    p = prm.to_array()
    cp = _cost_params(prm)
    k, h = 4.0, 0.03
    stage, terminal, nx = DV.build(model, 1, hessian="exact")
    lay = DV.layout(nx + 2)
    rng = np.random.default_rng(1)
    xa, u, row = _stage_inputs(lay, rng, model, p)
    q = np.concatenate([p, cp, [k, h]])
    out = stage(np.concatenate([xa, u, row, [1.0]]), q).full().ravel()
    n = lay.n
    xn, l0 = _numpy_stage(model, xa, u, row, 1.0, p, cp, k, h)
    np.testing.assert_allclose(out[lay.xn:lay.xn + n], xn, rtol=1e-12, atol=1e-12)
    assert out[lay.l] == pytest.approx(l0, rel=1e-12)
    A = out[lay.a:lay.a + n * n].reshape(n, n)
    B = out[lay.b:lay.b + 2 * n].reshape(n, 2)
    lx = out[lay.lx:lay.lx + n]
    lu = out[lay.lu:lay.lu + 2]
    eps = 1e-6
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        fp, cpl = _numpy_stage(model, xa + e, u, row, 1.0, p, cp, k, h)
        fm, cml = _numpy_stage(model, xa - e, u, row, 1.0, p, cp, k, h)
        np.testing.assert_allclose(A[:, j], (fp - fm) / (2 * eps), rtol=1e-5, atol=1e-6)
        assert lx[j] == pytest.approx((cpl - cml) / (2 * eps), rel=1e-5, abs=1e-6)
    for j in range(2):
        e = np.zeros(2)
        e[j] = eps
        fp, cpl = _numpy_stage(model, xa, u + e, row, 1.0, p, cp, k, h)
        fm, cml = _numpy_stage(model, xa, u - e, row, 1.0, p, cp, k, h)
        np.testing.assert_allclose(B[:, j], (fp - fm) / (2 * eps), rtol=1e-5, atol=1e-6)
        assert lu[j] == pytest.approx((cpl - cml) / (2 * eps), rel=1e-5, abs=1e-6)
    # the Hessian of the cost against differences of the casadi gradient
    H = out[lay.lxx:lay.lxx + n * n].reshape(n, n)
    for j in range(n):
        e = np.zeros(n)
        e[j] = eps
        gp = stage(np.concatenate([xa + e, u, row, [1.0]]), q).full().ravel()[lay.lx:lay.lx + n]
        gm = stage(np.concatenate([xa - e, u, row, [1.0]]), q).full().ravel()[lay.lx:lay.lx + n]
        np.testing.assert_allclose(H[:, j], (gp - gm) / (2 * eps), rtol=1e-4, atol=1e-5)
    # the Gauss-Newton variant: the same gradient, a positive semi-definite Hessian of (x, u)
    stage_gn, _, _ = DV.build(model, 1, hessian="gauss_newton")
    out_gn = stage_gn(np.concatenate([xa, u, row, [1.0]]), q).full().ravel()
    np.testing.assert_allclose(out_gn[:lay.lxx], out[:lay.lxx], rtol=1e-12, atol=1e-12)
    Hz = np.zeros((n + 2, n + 2))
    Hz[:n, :n] = out_gn[lay.lxx:lay.lxx + n * n].reshape(n, n)
    Hz[n:, n:] = out_gn[lay.luu:lay.luu + 4].reshape(2, 2)
    Hz[n:, :n] = out_gn[lay.lux:lay.lux + 2 * n].reshape(2, n)
    Hz[:n, n:] = Hz[n:, :n].T
    assert np.linalg.eigvalsh(Hz).min() > -1e-9 * np.abs(Hz).max()


def test_compiled_derivatives_equal_the_casadi_vm():
    from racing.control.ilqr.derivatives import compiler, derivatives

    if compiler() is None:
        pytest.skip("no C compiler")
    prm = load_params("f1tenth")
    outs = []
    for codegen in ("off", "on"):
        D = derivatives("dynamic", 5, 1, codegen)
        rng = np.random.default_rng(2)
        for t in range(5):
            xa, u, row = _stage_inputs(D.lay, rng, "dynamic", prm.to_array())
            D.Z[t] = np.concatenate([xa, u, row, [1.0]])
        D.ZT[:] = np.concatenate([xa, row])
        D.q[:] = np.concatenate([prm.to_array(), _cost_params(prm), [4.0, 0.03]])
        D.stage()
        D.terminal()
        outs.append((D.OUT.copy(), D.OUT_T.copy(), D.backend))
    assert outs[0][2] == "casadi VM" and outs[1][2].startswith("compiled C")
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# the racing controller
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ilqr_oval():
    from racing.control.ilqr import ILQRController

    th = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    track = Track.from_centerline(np.column_stack([12.0 * np.cos(th), 6.0 * np.sin(th)]), 1.0, 1.0, name="oval")
    prm = load_params("f1tenth")
    conf = ILQRConfig(horizon=30, dt=0.04, use_raceline=False, warmup=False)
    return ILQRController(track, prm, conf), track, prm


def test_racing_solve_decreases_the_cost_monotonically_within_limits(ilqr_oval, start_state):
    ctrl, track, prm = ilqr_oval
    ctrl.reset()
    X = ctrl.solve(start_state(track, 2.0), 0.0)
    info = ctrl.last
    assert not info["failed"] and info["accepted"] >= 1
    assert info["cost"] < info["cost_start"]
    U = ctrl.pb.U
    assert np.all(np.abs(U[:, 0]) <= prm.steer_rate_max + 1e-9)
    assert np.all(U[:, 1] <= prm.accel_max + 1e-9) and np.all(U[:, 1] >= -prm.decel_max - 1e-9)
    assert np.all(np.abs(X[:, 6]) <= prm.steer_max + 1e-9)
    assert np.all(np.isfinite(X))
    # the plan drives forward along the oval, inside it
    s, n, _ = track.frenet(X[:, :2])
    assert np.all(np.abs(n) < 1.0)


def test_accepted_iterations_never_increase_the_cost(ilqr_oval, start_state):
    ctrl, track, _ = ilqr_oval
    ctrl.reset()
    pb = ctrl.pb
    pb.x0[:] = start_state(track, 4.0)
    pb.u_prev[:] = 0.0
    pb.i0 = 0
    c0 = pb.rollout(np.zeros((ctrl.T, 2)))
    info = ctrl.solver.solve(15, c0)
    costs = [c0, *info.history]
    assert len(costs) > 3
    assert all(b < a for a, b in zip(costs, costs[1:]))


def test_forward_cost_equals_the_casadi_cost_at_the_nominal(ilqr_oval, start_state):
    """The compiled forward pass (numba, exact projection) and the casadi stage/terminal functions (linearised
    track frame) give the same cost at the nominal plan (up to the constant progress of the start)."""
    ctrl, track, _ = ilqr_oval
    ctrl.reset()
    pb = ctrl.pb
    pb.x0[:] = start_state(track, 3.0)
    pb.u_prev[:] = [0.1, 0.2]
    pb.i0 = 0
    rng = np.random.default_rng(0)
    J = pb.rollout(0.3 * rng.standard_normal((ctrl.T, 2)))
    pb.linearize()
    lay = pb.lay
    s0 = pb.R[0, DV.ROW_S] + DV.row_frenet(pb.R[0], pb.X[0, 0], pb.X[0, 1])[1]
    total = pb.OUT[:, lay.l].sum() + pb.OUT_T[0] + ctrl.cp[C.C_PROGRESS] * s0
    assert total == pytest.approx(J, rel=1e-9, abs=1e-9)


def test_a_diverging_solve_falls_back_to_the_previous_plan(ilqr_oval, start_state):
    from racing.control.base import Observation

    ctrl, track, _ = ilqr_oval
    ctrl.reset()
    x = start_state(track, 3.0)
    ctrl.act(Observation(0.0, x), 0.0)
    plan = ctrl.X.copy()
    saved = ctrl.pb.m.p.copy()
    try:
        ctrl.pb.set_params(np.where(np.arange(saved.size) == P_MASS, np.nan, saved))  # NaN in the model
        cmd = ctrl.act(Observation(0.02, x), 0.02)
    finally:
        ctrl.pb.set_params(saved)
    assert ctrl.last["fallback"] and ctrl.last["failed"] and ctrl.last["reason"]
    assert math.isfinite(cmd.steering_angle) and math.isfinite(cmd.speed)
    # the previous plan, time-indexed (shifted by the elapsed 0.02 s of a 0.04 s step: half-way)
    np.testing.assert_allclose(ctrl.X[:-2, :2], 0.5 * (plan[:-2, :2] + plan[1:-1, :2]), rtol=1e-9)
    assert ctrl.fallbacks == 1
    # and the loop goes on: the next step solves normally again
    ctrl.act(Observation(0.04, x), 0.04)
    assert not ctrl.last["fallback"]


@pytest.mark.parametrize("key, value, words", [
    ("horizon", 0, "horizon"), ("reg_init", -1.0, "reg_init"), ("dt", 0.0, "dt"),
    ("line_search", [1.5], "line_search"), ("model", "unicycle", "model"),
])
def test_bad_config_is_a_clear_error_in_yaml_and_python(tmp_path, key, value, words):
    import yaml

    f = tmp_path / "ilqr.yaml"
    f.write_text(yaml.safe_dump({key: value}))
    with pytest.raises(cfg.ConfigError) as e:
        cfg.load(ILQRConfig, f)
    assert words in str(e.value) and str(f) in str(e.value)
    with pytest.raises(ValueError, match=words):
        ILQRConfig(**{key: tuple(value) if isinstance(value, list) else value})


def test_unknown_config_key_names_the_key(tmp_path):
    f = tmp_path / "ilqr.yaml"
    f.write_text("horizon: 20\nregularisation: 1.0\n")
    with pytest.raises(cfg.ConfigError, match="regularisation"):
        cfg.load(ILQRConfig, f)


def test_a_residual_is_refused_with_a_clear_error():
    from racing.control import make_controller
    from racing.track import Track

    th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    track = Track.from_centerline(np.column_stack([12.0 * np.cos(th), 6.0 * np.sin(th)]), 1.0, 1.0, name="oval")
    with pytest.raises(ValueError, match="residual.*--controller mppi"):
        make_controller("ilqr", track, load_params("f1tenth"), residual="weights.npz")


def test_the_rear_slip_limit_moves_only_the_rear_tyres_hinge():
    """``rear_slip_limit`` (iLQR's optional stability margin): the tyre-slip term acts on the rear slip angle beyond
    that share of the rear tyre's Pacejka peak; the front's hinge stays at its peak; 1 (the default) is the plain
    term; a share <= 0 is a clear error."""
    from racing.control.horizon import CostWeights, cost_params_for, peak_slip_angle

    p = load_params("gt_car")
    w = CostWeights(tyre_slip=30.0)
    plain = cost_params_for(w, 1.0, 0.5, 2.0, 0.15, 1.6, p)
    assert ILQRConfig().rear_slip_limit == 1.0  # the plain term by default
    margin = cost_params_for(w, 1.0, 0.5, 2.0, 0.15, 1.6, p, 0.5)
    peak_r = peak_slip_angle(p.B_r, p.C_r, p.E_r)
    vx = 40.0
    vy = -vx * math.tan(0.7 * peak_r)  # rear slip angle 0.7 of its peak, no yaw rate
    d = math.atan(vy / vx)  # the front's slip angle 0
    assert C.tyre_slip_cost(d, vx, vy, 0.0, plain, NUMPY) == 0.0
    assert C.tyre_slip_cost(d, vx, vy, 0.0, margin, NUMPY) == pytest.approx(30.0 * (0.7 / 0.5 - 1.0) ** 2)
    assert margin[C.C_INV_AF_PEAK] == plain[C.C_INV_AF_PEAK]
    with pytest.raises(ValueError, match="rear_slip_limit"):
        ILQRConfig(rear_slip_limit=0.0)
