"""MPPI with the semi-parametric model (physics + MLP residual with filter states) in its rollouts."""
from __future__ import annotations

import numpy as np
import pytest

from racing.control import make_controller
from racing.control.base import Command, Observation
from racing.control.mppi import MPPI, MPPIConfig
from racing.control.mppi import step as S
from racing.models.params import load_params


def reference(c: MPPI, x0, U0, eps, z0):
    return S.mppi_step_numpy(x0, U0, eps, c.sigma, c.last["lambda"], c.gamma, c.p, c.model, c.config.dt,
                             c.config.substeps, c.cost, c.cost_args, c.last["i0"], c.last["s0"], c.u_prev, c.M,
                             residual=c.residual, z0=z0)


@pytest.mark.parametrize("kernel", ["lockstep", "scalar"])
@pytest.mark.parametrize("kw", [dict(), dict(taus=(), products=False, clip=False), dict(layers=1, clip=False)])
def test_numba_step_equals_numpy_reference_with_residual(kw, kernel, oval, start_state, make_residual):
    """Both CPU kernels, the lockstep one with the network evaluated for 16 samples at once (K = 61: a partial
    last chunk), equal the numpy reference."""
    track = oval()
    p = load_params("f1tenth")
    rw = make_residual(**kw)
    c = MPPI(track, p, MPPIConfig(num_samples=61, horizon=25, dt=0.04, substeps=2, model="dynamic", alpha=0.5,
                                  warmup=False, kernel=kernel), residual=rw)
    assert c.rw.size == rw.flat.size and c.ZR.shape[0] == 61 and c.lockstep == (kernel == "lockstep")
    x0 = start_state(track)
    c.U[:, 0], c.U[:, 1] = 0.2, 3.0
    if rw.n_aug:
        c.z[:] = np.linspace(-1.0, 2.0, rw.n_aug)  # a running filter state away from steady state
    z0 = c.z[:rw.n_aug].copy()
    U0 = c.U.copy()
    c.solve(x0, store_noise=True)
    ref = reference(c, x0, U0, c.eps, z0)
    np.testing.assert_allclose(c.Sk, ref["S"], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(c.w, ref["w"], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(c.V, ref["V"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(c.X, ref["X"], rtol=0, atol=1e-9)
    # the controller's running z is not touched by solve
    np.testing.assert_array_equal(c.z[:rw.n_aug], z0)
    # and the residual really changes the rollouts
    ref0 = S.mppi_step_numpy(x0, U0, c.eps, c.sigma, c.last["lambda"], c.gamma, c.p, c.model, c.config.dt,
                             c.config.substeps, c.cost, c.cost_args, c.last["i0"], c.last["s0"], c.u_prev, c.M)
    assert np.max(np.abs(ref0["S"] - ref["S"])) > 1e-3


def test_zero_residual_equals_plain_model(oval, start_state, make_residual):
    track = oval()
    p = load_params("f1tenth")
    rw = make_residual(scale=0.0)  # out_mean = out_std = 0: the correction is exactly zero
    conf = MPPIConfig(num_samples=32, horizon=15, model="dynamic", warmup=False)
    a, b = MPPI(track, p, conf, residual=rw), MPPI(track, p, conf)
    x0 = start_state(track)
    a.solve(x0, 0.0)
    b.solve(x0, 0.0)
    np.testing.assert_allclose(a.Sk, b.Sk, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.X, b.X, atol=1e-12)


def test_closed_loop_factory_with_residual_file(tmp_path, oval, start_state, make_residual):
    track = oval()
    p = load_params("f1tenth")
    path = make_residual(scale=0.2).save(tmp_path / "res.npz")
    c = make_controller("mppi", track, p, None, residual=str(path), num_samples=64, horizon=15)
    assert isinstance(c, MPPI) and c.residual is not None and c.residual.n_aug == 2
    np.testing.assert_array_equal(c.z[:2], 0.0)  # steady state of a zero command after reset
    x0 = start_state(track)
    t = 0.0
    accels = []
    for _ in range(5):
        cmd = c.act(Observation(t, x0), t)
        assert isinstance(cmd, Command) and np.isfinite(cmd.steering_angle) and np.isfinite(cmd.speed)
        accels.append(cmd.acceleration)
        t += 0.02
    assert np.all(np.isfinite(c.X)) and np.all(np.isfinite(c.Sk))
    # the running z followed the commanded accelerations (first-order filters over the control period)
    z = np.zeros(2)
    for a in accels:
        z = c.residual.aug_update(z, np.array([0.0, a]), 0.02)
    np.testing.assert_allclose(c.z[:2], z, atol=1e-12)
    c.reset()
    np.testing.assert_array_equal(c.z[:2], 0.0)


def test_residual_needs_dynamic_model_and_a_valid_file(tmp_path, oval, make_residual):
    track = oval()
    p = load_params("f1tenth")
    path = make_residual().save(tmp_path / "res.npz")
    with pytest.raises(ValueError, match="dynamic"):
        make_controller("mppi", track, p, None, residual=str(path), model="kinematic", warmup=False)
    bad = tmp_path / "bad.npz"
    bad.write_text("not weights")
    with pytest.raises(ValueError, match="bad.npz"):
        make_controller("mppi", track, p, None, residual=str(bad), warmup=False)
    with pytest.raises(ValueError, match="missing.npz.*not found"):
        make_controller("mppi", track, p, None, residual=str(tmp_path / "missing.npz"), warmup=False)


def test_race_cli_rejects_bad_residual_file(tmp_path, capsys):
    from racing.cli import main

    bad = tmp_path / "bad.npz"
    bad.write_text("not weights")
    rc = main(["race", "--controller", "mppi", "--residual", str(bad), "--laps", "1"])
    assert rc != 0
    err = capsys.readouterr().err
    assert "bad.npz" in err and "residual" in err


@pytest.mark.parametrize("kw", [dict(), dict(taus=(), products=False, clip=False), dict(hidden=32, layers=3, seed=4)])
def test_float32_network_stays_within_its_bound_of_the_reference(kw, oval, start_state, make_residual):
    """The lockstep kernel with the residual network in float32 (residual_precision: float32, K = 61: a partial
    last chunk): the float64 numpy reference's rollouts to float32 rounding of the correction, its plan to 1e-6."""
    track = oval()
    rw = make_residual(**kw)
    c = MPPI(track, load_params("f1tenth"), MPPIConfig(num_samples=61, horizon=25, dt=0.04, substeps=2, alpha=0.5,
                                                       warmup=False, residual_precision="float32"), residual=rw)
    x0 = start_state(track)
    c.U[:, 0], c.U[:, 1] = 0.2, 3.0
    U0, z0 = c.U.copy(), c.z[:rw.n_aug].copy()
    c.solve(x0, store_noise=True)
    ref = reference(c, x0, U0, c.eps, z0)
    np.testing.assert_allclose(c.V, ref["V"], rtol=0, atol=1e-12)  # the inputs do not depend on the network
    # measured: costs 2e-7 relative, nominal states 3e-8 m, plan 7e-8 (three networks, seeded); bounds 10x that
    np.testing.assert_allclose(c.Sk, ref["S"], rtol=2e-6)
    np.testing.assert_allclose(c.X, ref["X"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-6)


def test_float32_network_needs_the_lockstep_kernel(oval, make_residual):
    conf = MPPIConfig(num_samples=32, horizon=10, warmup=False, kernel="scalar", residual_precision="float32")
    with pytest.raises(ValueError, match="residual_precision: float32 needs kernel: lockstep"):
        MPPI(oval(), load_params("f1tenth"), conf, residual=make_residual())
    MPPI(oval(), load_params("f1tenth"), conf)  # without a residual the setting changes nothing


def test_float32_physics_runs_without_a_residual_only(oval, make_residual):
    conf = MPPIConfig(num_samples=32, horizon=10, warmup=False, physics_precision="float32")
    with pytest.raises(ValueError, match="physics_precision: float32 runs without a residual"):
        MPPI(oval(), load_params("f1tenth"), conf, residual=make_residual())
