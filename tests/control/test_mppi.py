"""MPPI: numba step == numpy reference, weights, limits, config errors, a seeded closed-loop lap."""
from __future__ import annotations

import math

import numpy as np
import pytest

from racing.config import ConfigError
from racing.control import make_controller
from racing.control.base import Command, Observation
from racing.control.mppi import MPPI, MPPIConfig, load_config
from racing.control.mppi.config import tuning_path
from racing.control import costs as C
from racing.control.mppi import step as S
from racing.models.dynamic import peak_slip_angle
from racing.models.params import load_params


def reference(c: MPPI, x0, U0, eps):
    return S.mppi_step_numpy(x0, U0, eps, c.sigma, c.last["lambda"], c.gamma, c.p, c.model, c.config.dt,
                             c.config.substeps, c.cost, c.cost_args, c.last["i0"], c.last["s0"], c.u_prev, c.M)


@pytest.mark.parametrize("kernel", ["lockstep", "scalar"])
@pytest.mark.parametrize("model", ["kinematic", "dynamic"])
def test_numba_step_equals_numpy_reference_racing(model, kernel, oval, start_state):
    """Both CPU kernels (samples in lockstep, and one by one) equal the numpy reference for the same noise; K = 61
    leaves the lockstep kernel a partial last chunk."""
    track = oval()
    p = load_params("f1tenth")
    c = MPPI(track, p, MPPIConfig(num_samples=61, horizon=25, dt=0.04, substeps=2, model=model, alpha=0.5,
                                  kernel=kernel,
                                  beta_max=0.2, yaw_limit=1.5, noise_correlation=0.8,
                                  cost=load_config(tuning_path("f1tenth")).cost.__class__(line=0.5, speed_track=0.3,
                                                                                      tyre_slip=20.0)))
    x0 = start_state(track)
    c.U[:, 0], c.U[:, 1] = 0.2, 3.0
    U0 = c.U.copy()
    c.solve(x0, store_noise=True)  # noise generated in the kernel and stored
    ref = reference(c, x0, U0, c.eps)
    np.testing.assert_allclose(c.Sk, ref["S"], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(c.w, ref["w"], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(c.V, ref["V"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(c.X, ref["X"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("kernel", ["lockstep", "scalar"])
def test_numba_step_equals_numpy_reference_given_noise_circle(kernel):
    p = load_params("gt_car")
    from racing.bench import CIRCLE, circle_args

    c = MPPI(None, p, MPPIConfig(num_samples=50, horizon=30, dt=0.05, model="kinematic", alpha=0.0, kernel=kernel),
             cost=(CIRCLE, circle_args()))
    assert c.lockstep == (kernel == "lockstep")
    x0 = np.array([50.0, 0.0, math.pi / 2, 15.0, 0.0, 0.0, 0.0])
    eps = np.random.default_rng(3).standard_normal((50, 30, 2))
    U0 = c.U.copy()
    c.solve(x0, noise=eps)
    ref = reference(c, x0, U0, eps)
    np.testing.assert_allclose(c.Sk, ref["S"], rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-9)


def test_generated_noise_is_standard_normal_and_seeded():
    q = S.normal_table()
    out = np.zeros((2000, 50, 2))
    S.generate_noise(7, q, out)
    z = out[1:].ravel()
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    assert np.all(out[0] == 0.0)
    out2 = np.zeros_like(out)
    S.generate_noise(7, q, out2)
    assert np.array_equal(out, out2)


def test_weights_finite_and_normalised_with_huge_costs():
    for S_in in ([1e300, 1e308, 5e307], [np.inf, np.nan, 1e300, -1e300], [np.inf, np.inf], [np.nan] * 4,
                 list(np.linspace(1e6, 1e9, 100))):
        S_arr = np.asarray(S_in, dtype=float)
        w = np.zeros(S_arr.size)
        S.compute_weights(S_arr, 0.01, w)
        assert np.all(np.isfinite(w)) and np.all(w >= 0)
        assert math.isclose(w.sum(), 1.0, rel_tol=1e-12)
        np.testing.assert_allclose(w, S.weights_np(S_arr, 0.01), atol=1e-15)


def test_limits_hold_in_samples_and_plan(oval, start_state):
    track = oval()
    p = load_params("f1tenth")
    c = MPPI(track, p, MPPIConfig(num_samples=256, horizon=30, sigma_steer_rate=50.0, sigma_accel=100.0))
    x0 = start_state(track)
    x0[6] = 0.9 * p.steer_max
    c.U[:, 0], c.U[:, 1] = 40.0, 50.0
    X = c.solve(x0)
    assert np.all(np.abs(c.V[..., 0]) <= p.steer_rate_max + 1e-12)
    assert np.all(c.V[..., 1] <= p.accel_max + 1e-12) and np.all(c.V[..., 1] >= -p.decel_max - 1e-12)
    assert np.all(np.abs(c.U[:, 0]) <= p.steer_rate_max + 1e-12)
    assert np.all(np.abs(X[:, 6]) <= p.steer_max + 1e-9)
    # every sampled rollout keeps the steering angle in bounds too
    _, _, Xs = S.rollout_np(x0, c.V, c.p, c.model, c.config.dt, 1, c.cost, c.cost_args, c.last["i0"],
                            c.last["s0"], c.u_prev)
    assert np.all(np.abs(Xs[..., 6]) <= p.steer_max + 1e-9)
    cmd = c.act(Observation(0.0, x0), 0.0)
    assert isinstance(cmd, Command) and abs(cmd.steering_angle) <= p.steer_max + 1e-9


@pytest.mark.parametrize("bad", [dict(num_samples=0), dict(num_samples=-3), dict(lambda_=0.0), dict(lambda_=-1.0),
                                 dict(sigma_accel=-0.1), dict(sigma_steer_rate=-1.0), dict(horizon=100000),
                                 dict(horizon=0), dict(dt=0.0), dict(smoothing_window=4)])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ValueError) as exc:
        MPPIConfig(**bad)
    key = next(iter(bad)).rstrip("_")
    assert key.split("_")[0] in str(exc.value)


def test_bad_yaml_names_file_and_key(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("num_samples: 0\n")
    with pytest.raises(ConfigError, match="m.yaml.*num_samples"):
        load_config(f)
    f.write_text("lambda: 1.0\n")
    with pytest.raises(ConfigError, match="m.yaml.*lambda"):
        load_config(f)
    f.write_text("horizon: 100000\n")
    with pytest.raises(ConfigError, match="too long for the buffers"):
        load_config(f)


def test_registry_and_per_car_defaults(oval):
    track = oval()
    c = make_controller("mppi", track, load_params("f1tenth"), num_samples=32, horizon=10)
    assert isinstance(c, MPPI) and c.K == 32 and c.T == 10
    assert load_config(tuning_path("gt_car")).dt >= load_config(tuning_path("f1tenth")).dt
    d = c.diagnostics()
    assert d["samples"].shape[1:] == (11, 2)


def test_frenet_local_projection_matches_track(oval):
    track = oval(w=2.0)
    tab, _ = C.track_table(track, load_params("f1tenth"))
    rng = np.random.default_rng(0)
    s = rng.uniform(0, track.length, 200)
    n = rng.uniform(-1.5, 1.5, 200)
    xy = track.to_cartesian(s, n)
    for k in range(200):
        i0 = int(((s[k] - 1.0) % track.length) / track.ds)
        i, iu, frac, nn = C.project_local(tab, i0, i0, xy[k, 0], xy[k, 1])
        s_hat = ((i + frac) * track.ds) % track.length
        assert abs(track.s_diff(s_hat, s[k])) < 0.05
        assert abs(nn - n[k]) < 0.05


@pytest.mark.slow
def test_closed_loop_lap_on_shipped_track_stays_on_track(oval):
    from racing.sim.plant import make_plant
    from racing.sim.simulator import SimConfig, simulate
    from racing.track import known_tracks, load_track

    small = [n for n in known_tracks() if load_track(n).scale == "1:10"]
    track = load_track(small[0]) if small else oval(w=1.0)
    p = load_params("f1tenth")
    ctrl = make_controller("mppi", track, p, seed=1, num_samples=512)
    res = simulate(track, ctrl, make_plant("dynamic", p), p, SimConfig(laps=1, seed=1, snapshot_times=(2.0,)))
    assert res.status == "completed", res.events[:3]
    assert res.off_track == 0
    assert len(res.laps) == 1
    assert res.snapshots and res.snapshots[0]["samples"].shape[-1] == 2


def test_warm_up_leaves_a_reset_controller(oval):
    track = oval()
    c = MPPI(track, load_params("f1tenth"), MPPIConfig(num_samples=32, horizon=10))
    assert np.all(c.U == 0.0) and c._calls == 0 and c._hint is None and c._t_prev is None
    assert c.lam == c.config.lambda_


def test_spin_and_yaw_rate_count_as_crash(oval):
    track = oval(w=3.0)
    p = load_params("f1tenth")
    c = MPPI(track, p, MPPIConfig(num_samples=8, horizon=10, beta_max=0.1, yaw_limit=1.0, warmup=False))
    tab, cp = c.tab, c.cp
    x, y = track.xy[0]
    base = C.racing_stage(tab, cp, 1, 10, x, y, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, 0, 0, False, 0.0)
    assert not base[3]
    spin = C.racing_stage(tab, cp, 1, 10, x, y, 0.0, 3.0, 0.5, 0.0, 0.0, 0.0, 0, 0, False, 0.0)  # beta ~ 0.17
    assert spin[3] and spin[0] > base[0] + 0.5 * cp[C.C_CRASH]
    r_lim = 1.0 * 9.81 * min(p.D_f, p.D_r) / 3.0
    yaw = C.racing_stage(tab, cp, 1, 10, x, y, 0.0, 3.0, 0.0, 1.2 * r_lim, 0.0, 0.0, 0, 0, False, 0.0)
    assert yaw[3]


def test_adaptive_lambda_moves_ess_towards_target(oval, start_state):
    track = oval()
    p = load_params("f1tenth")
    c = MPPI(track, p, MPPIConfig(num_samples=256, horizon=20, ess_target=40.0, lambda_=0.01, warmup=False))
    x0 = start_state(track)
    for k in range(25):
        c.solve(x0, 0.02 * k)
    assert c.lam > 0.01
    assert c.last["ess"] > 5.0
    c.reset()
    assert c.lam == 0.01


def test_the_assembly_attaches_the_cached_mintime_raceline(tmp_path, monkeypatch, oval):
    from racing.assembly import build_controller
    from racing.raceline.cache import params_fingerprint, save_raceline, track_fingerprint
    from racing.track import Raceline

    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    track = oval(w=1.0)
    p = load_params("f1tenth")
    # no cache: centre-line progress, the caller's track untouched
    c0, _, _ = build_controller("mppi", track, p, num_samples=16, horizon=5, warmup=False)
    assert c0.track.raceline is None and np.all(c0.tab[:, C.TAB_NREF] == 0.0)
    n_off = 0.3
    xy = track.to_cartesian(track.s, np.full(track.s.size, n_off))
    seg = np.linalg.norm(np.roll(xy, -1, axis=0) - xy, axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)[:-1]])
    rl = Raceline(s=s, x=xy[:, 0], y=xy[:, 1], psi=np.zeros(s.size), kappa=np.zeros(s.size) + 0.1,
                  vx=np.full(s.size, 2.5), ax=np.zeros(s.size), length=float(s[-1] + seg[-1]))
    save_raceline(rl, tmp_path / "oval_f1tenth_mintime.csv",
                  {"params_sha1": params_fingerprint(p), "track_sha1": track_fingerprint(track),
                   "lap_time_s": 20.0})
    c1, rec, _ = build_controller("mppi", track, p, num_samples=16, horizon=5, warmup=False, raceline_speed=True,
                                  cap_scale=1.0)
    assert track.raceline is None and c1.track.raceline is not None and rec["method"] == "mintime"
    np.testing.assert_allclose(c1.tab[:, C.TAB_NREF], n_off, atol=0.02)
    assert np.all(c1.tab[:, C.TAB_VCAP] <= 2.5 + 1e-9)
    c2, _, _ = build_controller("mppi", track, p, num_samples=16, horizon=5, warmup=False, use_raceline=False)
    assert c2.track.raceline is None


def test_libm_free_atan_and_tanh_match_libm():
    from numba import njit

    from racing.models.fastmath import atan_fast, tanh_fast

    @njit
    def both(x, a, t):
        for i in range(x.shape[0]):
            a[i] = atan_fast(x[i])
            t[i] = tanh_fast(x[i])

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-1, 1, 20000), rng.uniform(-5, 5, 20000), rng.uniform(-1e4, 1e4, 2000),
                        [0.0, -0.0, 0.66, -0.66, 2.414213562373095, 1e-300, 1e300, -1e300, 19.1, 40.0]])
    a, t = np.zeros_like(x), np.zeros_like(x)
    both(x, a, t)
    assert np.max(np.abs(a - np.arctan(x))) < 5e-16
    assert np.max(np.abs(a - np.arctan(x)) / np.maximum(np.abs(np.arctan(x)), 1e-300)) < 5e-16
    assert np.max(np.abs(t - np.tanh(x))) < 5e-16
    assert np.all(np.sign(a) == np.sign(x))  # odd and exact at 0; tanh_fast is accurate in absolute terms only
    big = np.abs(x) > 1e-8
    assert np.all(np.sign(t[big]) == np.sign(x[big]))


def test_libm_free_sincos_matches_libm_over_the_tyre_range():
    """sin/cos of C atan(phi) reach |a| < pi (C < 2): the reflected polynomials there, libm beyond."""
    from numba import njit

    from racing.models.fastmath import sincos

    @njit
    def both(x, s, c):
        for i in range(x.shape[0]):
            s[i], c[i] = sincos(x[i])

    x = np.concatenate([np.linspace(-4.0, 4.0, 40001), [0.0, 0.8, -0.8, 0.5 * np.pi, np.pi, -np.pi, 3.2, -3.2]])
    s, c = np.zeros_like(x), np.zeros_like(x)
    both(x, s, c)
    assert np.max(np.abs(s - np.sin(x))) < 3e-14 and np.max(np.abs(c - np.cos(x))) < 3e-14
    mid = (np.abs(x) >= 0.8) & (np.abs(x) <= np.pi)  # the reflected branch: a few ulp
    assert np.max(np.abs(s[mid] - np.sin(x[mid]))) < 1e-15 and np.max(np.abs(c[mid] - np.cos(x[mid]))) < 1e-15


def test_correlated_noise_has_unit_variance_and_the_asked_correlation(oval, start_state):
    track = oval()
    c = MPPI(track, load_params("f1tenth"), MPPIConfig(num_samples=4096, horizon=40, noise_correlation=0.9,
                                                       warmup=False))
    c.solve(start_state(track), store_noise=True)
    e = c.eps[1:]
    assert abs(e.std() - 1.0) < 0.02
    rho = np.mean(e[:, 1:, :] * e[:, :-1, :]) / np.mean(e * e)
    assert abs(rho - 0.9) < 0.02
    assert np.all(c.eps[0] == 0.0)


def test_tyre_slip_term_costs_steering_past_the_peak(oval):
    track = oval(w=3.0)
    p = load_params("f1tenth")
    cw = load_config(tuning_path("f1tenth")).cost.__class__(tyre_slip=100.0)
    c = MPPI(track, p, MPPIConfig(num_samples=8, horizon=10, warmup=False, cost=cw))
    a_peak = peak_slip_angle(p.B_f, p.C_f, p.E_f)
    B, Cc, E = p.B_f, p.C_f, p.E_f
    mu = lambda a: math.sin(Cc * math.atan(B * a - E * (B * a - math.atan(B * a))))  # noqa: E731
    assert mu(a_peak) > mu(0.9 * a_peak) and mu(a_peak) > mu(1.1 * a_peak)
    x, y = track.xy[0]
    at = [C.racing_stage(c.tab, c.cp, 1, 10, x, y, d, 3.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0, 0.0)[0]
          for d in (0.5 * a_peak, 0.99 * a_peak, 1.5 * a_peak)]
    assert at[0] == pytest.approx(at[1]) and at[2] == pytest.approx(at[0] + 100.0 * 0.25)


@pytest.mark.parametrize("model", ["kinematic", "dynamic"])
def test_float32_physics_stays_near_the_numpy_reference(model, oval, start_state):
    """The lockstep kernel with its model in float32 (physics_precision: float32; K = 61, a partial last chunk)
    against the float64 numpy reference for the same noise: the costs, the clamped samples, the plan and its
    rollout within the bounds below (10x what was measured; tools/precision_bound.py measures full horizons on the
    racing tracks)."""
    track = oval()
    p = load_params("f1tenth")
    c = MPPI(track, p, MPPIConfig(num_samples=61, horizon=25, dt=0.04, substeps=2, model=model, alpha=0.5,
                                  physics_precision="float32", beta_max=0.2, yaw_limit=1.5, noise_correlation=0.8,
                                  cost=load_config(tuning_path("f1tenth")).cost.__class__(line=0.5, speed_track=0.3,
                                                                                      tyre_slip=20.0)))
    x0 = start_state(track)
    c.U[:, 0], c.U[:, 1] = 0.2, 3.0
    U0 = c.U.copy()
    c.solve(x0, store_noise=True)
    ref = reference(c, x0, U0, c.eps)
    rel = np.abs(c.Sk - ref["S"]) / np.abs(ref["S"])
    assert 1e-9 < rel.max() < 2e-5  # float32 ran (not float64 bit for bit); 1.2e-6 measured
    np.testing.assert_allclose(c.V, ref["V"], rtol=0, atol=3e-5)  # the clamped samples [rad/s, m/s^2]: 2.4e-6
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-5)  # the plan: 8.2e-7
    np.testing.assert_allclose(c.X, ref["X"], rtol=0, atol=1e-6)  # its float64 rollout [m, rad, m/s]: 6.5e-8


def test_float32_physics_is_refused_where_it_does_not_exist():
    p = load_params("f1tenth")
    with pytest.raises(ValueError, match="physics_precision: float32 needs kernel: lockstep"):
        MPPI(None, p, MPPIConfig(num_samples=32, horizon=10, warmup=False, kernel="scalar",
                                 physics_precision="float32"), cost=_circle())
    with pytest.raises(ConfigError, match="physics_precision"):
        MPPIConfig(physics_precision="float16")


def _circle():
    from racing.bench import CIRCLE, circle_args
    return CIRCLE, circle_args()
