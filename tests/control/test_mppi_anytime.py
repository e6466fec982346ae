"""Anytime MPPI: an iteration that stops sampling when its time budget is spent uses the samples it has.

No test here depends on the machine's speed: a cut is asked for by sample count, or by a budget no block of samples
can meet (one microsecond) or every one meets (an hour)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from racing.control.base import Observation
from racing.control.mppi import MPPI, MPPIConfig
from racing.control.mppi import step as S
from racing.models.params import load_params


@pytest.fixture
def ctrl(oval):
    track = oval()
    return MPPI(track, load_params("f1tenth"), MPPIConfig(num_samples=256, horizon=20, noise_correlation=0.5,
                                                          online_grip=False)), track


def test_a_cut_iteration_equals_the_reference_on_the_samples_it_had(ctrl, start_state):
    c, track = ctrl
    x0 = start_state(track)
    c.U[:, 0], c.U[:, 1] = 0.1, 2.0
    U0 = c.U.copy()
    c.solve(x0, store_noise=True, samples=128)  # half the samples: stops after the block that reaches 128 (K / 16 each)
    n = c.last["samples"]
    assert n == 128 and c.K == 256
    ref = S.mppi_step_numpy(x0, U0, c.eps[:n], c.sigma, c.last["lambda"], c.gamma, c.p, c.model, c.config.dt,
                            c.config.substeps, c.cost, c.cost_args, c.last["i0"], c.last["s0"], c.u_prev, c.M)
    np.testing.assert_allclose(c.Sk[:n], ref["S"], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(c.w[:n], ref["w"], rtol=1e-7, atol=1e-12)
    assert np.all(c.w[n:] == 0.0)
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(c.X, ref["X"], rtol=0, atol=1e-9)


def test_an_ample_budget_gives_the_whole_iteration_bit_for_bit(ctrl, start_state):
    c, track = ctrl
    x0 = start_state(track)
    c.solve(x0, 0.0)
    whole = c.U.copy()
    c.set_time_budget(3600.0)
    c.reset()
    c.solve(x0, 0.0)
    assert c.last["samples"] == c.K and np.array_equal(c.U, whole)


def test_a_budget_no_block_meets_gives_one_block_and_a_valid_command(ctrl, start_state):
    c, track = ctrl
    c.set_time_budget(1e-6)
    c.reset()
    x = start_state(track)
    for j in range(5):
        cmd = c.act(Observation(0.02 * j, x), 0.02 * j)
        assert all(math.isfinite(v) for v in (cmd.steering_angle, cmd.speed, cmd.acceleration))
        assert abs(cmd.steering_angle) <= c.params.steer_max
    rep = c.compute_report()["samples"]
    assert rep["min"] == rep["block"] == 16 and rep["mean"] == 16.0  # K / 16
    assert rep["cut_iterations"] == rep["iterations"] == 5 and rep["anytime"]
    assert c.diagnostics()["weights"].sum() == pytest.approx(1.0)


def test_bad_budget_is_an_error(ctrl):
    c, _ = ctrl
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="time budget"):
            c.set_time_budget(bad)


def test_a_realtime_race_reports_its_samples_an_offline_one_takes_them_all():
    from racing.api import race

    on = race("lab_loop", controller="mppi", laps=1, max_time_s=1.0, realtime=True).summary()
    off = race("lab_loop", controller="mppi", laps=1, max_time_s=1.0).summary()
    K = on["samples"]["K"]
    assert on["samples"]["anytime"] and 1 <= on["samples"]["iterations"] <= 60  # fewer on a loaded machine
    assert on["samples"]["block"] <= on["samples"]["min"] <= K  # however loaded the machine: at least one block
    assert not off["samples"]["anytime"] and off["samples"]["cut_iterations"] == 0
    assert off["samples"]["mean"] == K
