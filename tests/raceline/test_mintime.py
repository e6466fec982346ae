"""Minimum-lap-time OCP: the spatial model is the dynamic model, the lap on a small shipped track solves,
respects every limit at the nodes, beats the QSS lap, and is reproduced by the time-domain model."""
from __future__ import annotations

import numpy as np
import pytest

from racing.models.dynamic import dynamic_rhs
from racing.models.integrators import rk4
from racing.models.params import load_params
from racing.raceline import RacelineError
from racing.raceline.cache import save_raceline
from racing.models.dynamic import peak_slip_angle as peak_slip
from racing.raceline.mintime import OK_STATUS, accel_bounds, min_time_lap, spatial_rhs
from racing.track import Raceline, Track, load_track


@pytest.fixture(scope="module")
def f1tenth():
    return load_params("f1tenth")


@pytest.fixture(scope="module")
def lap(f1tenth):
    track = load_track("lab_loop")
    return track, min_time_lap(track, f1tenth, spacing=0.25)


def test_spatial_rhs_is_the_dynamic_model_divided_by_the_progress_rate(f1tenth):
    import casadi as ca

    rng = np.random.default_rng(1)
    p = f1tenth.to_array()
    z, u, k = ca.SX.sym("z", 6), ca.SX.sym("u", 2), ca.SX.sym("k")
    dz, dtds = spatial_rhs(z, u, k, p)
    f = ca.Function("f", [z, u, k], [dz, dtds])
    for _ in range(20):
        n, xi, vx, vy, r, delta = rng.uniform([-0.5, -0.3, 2.0, -0.5, -2.0, -0.3], [0.5, 0.3, 10.0, 0.5, 2.0, 0.3])
        uu = rng.uniform([-3.0, -8.0], [3.0, 8.0])
        kap = rng.uniform(-0.5, 0.5)
        dz_c, dtds_c = (np.asarray(v).ravel() for v in f([n, xi, vx, vy, r, delta], uu, kap))
        x = np.array([0.0, 0.0, xi, vx, vy, r, delta])
        xd = dynamic_rhs(x, uu, p)
        sdot = (vx * np.cos(xi) - vy * np.sin(xi)) / (1.0 - n * kap)
        assert dtds_c[0] == pytest.approx(1.0 / sdot, rel=1e-12)
        np.testing.assert_allclose(dz_c[2:], xd[3:] / sdot, rtol=1e-10, atol=1e-12)
        assert dz_c[0] == pytest.approx((vx * np.sin(xi) + vy * np.cos(xi)) / sdot, rel=1e-10)
        assert dz_c[1] == pytest.approx(r / sdot - kap, rel=1e-10, abs=1e-12)


def test_min_time_lap_solves_and_beats_the_qss_lap(lap):
    track, res = lap
    assert res.status in OK_STATUS and res.success
    assert res.iterations > 0
    assert res.lap_time < res.qss_lap_time
    assert res.lap_time == pytest.approx(float(res.dt.sum()))
    assert np.all(res.dt > 0)


def test_min_time_lap_respects_every_limit_at_the_nodes(lap, f1tenth):
    _, res = lap
    z, u = res.z, res.u
    tol = 1e-6
    assert np.all(z[:, 0] >= res.lb - tol) and np.all(z[:, 0] <= res.ub + tol)
    assert np.all(np.abs(z[:, 5]) <= f1tenth.steer_max + tol)
    assert np.all(np.abs(u[:, 0]) <= f1tenth.steer_rate_max + tol)
    amin, amax = accel_bounds(f1tenth)
    assert np.all(u[:, 1] >= amin - tol) and np.all(u[:, 1] <= amax + tol)
    assert amax <= f1tenth.accel_max and -amin <= f1tenth.decel_max
    power = f1tenth.mass * u[:, 1] * np.maximum(z[:, 2], np.roll(z[:, 2], -1))
    assert np.all(power <= f1tenth.power_max * (1 + 1e-6))
    assert np.all(z[:, 2] <= f1tenth.v_max + tol)
    for key, val in res.violations.items():
        assert val <= (1e-4 if key == "defect" else tol), key
    # the slip angles stay below the peak of the tyre curve
    assert peak_slip(f1tenth.B_r, f1tenth.C_r, f1tenth.E_r) > 0.1


def test_the_time_domain_model_reproduces_the_optimal_lap(lap, f1tenth):
    """Integrate the dynamic model in time with the optimal inputs held per interval (the plant = the model)."""
    track, res = lap
    grid = res.grid
    p = f1tenth.to_array()
    for k0 in (0, len(res.s) // 3, 2 * len(res.s) // 3):
        n0, xi0, vx0, vy0, r0, d0 = res.z[k0]
        xy = grid.to_cartesian(res.s[k0], n0)
        yaw = grid.interp(res.s[k0])["psi"] + xi0
        x = np.array([xy[0], xy[1], yaw, vx0, vy0, r0, d0])
        for j in range(20):
            k = (k0 + j) % len(res.s)
            nsub = 10
            h = res.dt[k] / nsub
            stepper = rk4(dynamic_rhs, h)
            for _ in range(nsub):
                x = stepper(x, res.u[k], p)
        kk = (k0 + 20) % len(res.s)
        target = grid.to_cartesian(res.s[kk], res.z[kk, 0])
        assert np.hypot(*(x[:2] - target)) < 0.02  # 2 cm after 5 m at 1:10 scale
        assert x[3] == pytest.approx(res.z[kk, 2], abs=0.05)


def test_the_optimal_lap_is_a_readable_tum_raceline(lap, tmp_path):
    track, res = lap
    path = save_raceline(res.raceline, tmp_path / "line.csv", {"lap_time_s": res.lap_time})
    rl = Raceline.load(path)
    assert len(rl) == len(res.raceline)
    ds = np.diff(np.append(rl.s, res.raceline.length))
    v = rl.vx
    t_file = float(np.sum(ds / (0.5 * (v + np.roll(v, -1)))))
    assert t_file == pytest.approx(res.lap_time, rel=0.01)
    # inside the track
    assert np.all(track.is_inside(rl.xy()))
    # and controllers can follow it
    from racing.geometry.path import ClosedPath

    path_ = ClosedPath.from_track(track.with_raceline(rl))
    assert path_.length == pytest.approx(rl.length, rel=1e-6)


def test_ipopt_failure_is_an_error_with_the_status(f1tenth):
    track = load_track("lab_loop")
    with pytest.raises(RacelineError, match="Maximum_Iterations_Exceeded") as info:
        min_time_lap(track, f1tenth, spacing=0.5, max_iter=2, jit=False)
    assert info.value.status == "Maximum_Iterations_Exceeded"
    assert "lab_loop" in str(info.value)


def test_too_narrow_track_is_an_error_before_solving(f1tenth):
    th = np.linspace(0.0, 2 * np.pi, 120, endpoint=False)
    track = Track.from_centerline(5.0 * np.column_stack([np.cos(th), np.sin(th)]), 0.15, 0.15, name="slot")
    with pytest.raises(RacelineError, match="slot is too narrow"):
        min_time_lap(track, f1tenth, spacing=0.3)


def test_a_solver_failure_falls_back_to_other_grids(monkeypatch):
    """IPOPT failing on the default grid is not the end: the solve is repeated on the fallback grids (another NLP),
    and a failure on all of them names every attempt; a failure that is not the solver's is raised at once."""
    from racing.raceline import RacelineError
    from racing.raceline import mintime as mt
    from racing.raceline.mincurv import default_spacing

    track, car = load_track("lab_loop"), load_params("f1tenth")
    base = default_spacing(track, car)
    tried = []

    def flaky(track, params, spacing=None, mincurv=None, **kw):
        tried.append(spacing)
        if spacing == base:
            raise RacelineError("minimum-time OCP not solved: IPOPT status 'Restoration_Failed'",
                                status="Restoration_Failed")
        return spacing

    monkeypatch.setattr(mt, "solve_on_grid", flaky)
    assert mt.min_time_lap(track, car) == pytest.approx(base * mt.FALLBACK_SPACING[0])
    assert tried == pytest.approx([base, base * mt.FALLBACK_SPACING[0]])
    tried.clear()
    assert mt.min_time_lap(track, car, spacing=0.5) == 0.5  # a grid the caller pins is the only one tried
    assert tried == [0.5]

    def failing(track, params, spacing=None, mincurv=None, **kw):
        raise RacelineError(f"IPOPT status 'Infeasible_Problem_Detected' on {spacing:.3f} m",
                            status="Infeasible_Problem_Detected")

    monkeypatch.setattr(mt, "solve_on_grid", failing)
    with pytest.raises(RacelineError, match=r"on 0\.\d+ m; then .* m; then .*tried") as info:
        mt.min_time_lap(track, car)
    assert info.value.status == "Infeasible_Problem_Detected"

    def narrow(track, params, spacing=None, mincurv=None, **kw):
        tried.append(spacing)
        raise RacelineError("track lab_loop too narrow at s = 3.0 m")

    tried.clear()
    monkeypatch.setattr(mt, "solve_on_grid", narrow)
    with pytest.raises(RacelineError, match="too narrow"):
        mt.min_time_lap(track, car)
    assert len(tried) == 1
