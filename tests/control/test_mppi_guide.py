"""MPPI guided by an ancillary controller (``guide: ilqr``): the guided iteration equals the numpy reference with
samples drawn around two plans; the guide's plan resampled onto MPPI's steps; impossible settings are errors; a
race with the car's iLQR as the guide, assembled as ``racing race`` does it."""
from __future__ import annotations

import numpy as np
import pytest

from racing.control.base import Command, Controller, Observation
from racing.control.mppi import MPPI, MPPIConfig, load_config
from racing.control.mppi import step as S
from racing.control.mppi.config import tuning_path
from racing.control.plan import resample_index, resample_inputs
from racing.models.params import load_params


class PlanGuide(Controller):
    """A guide whose plan is a fixed input sequence (steering rate, acceleration) on steps of ``dt``; it counts its
    calls."""

    name = "fixed_plan"

    def __init__(self, U, dt):
        self.U, self.dt, self.calls, self.resets = np.asarray(U, float), dt, 0, 0

    def reset(self, observation=None):
        self.resets += 1

    def act(self, observation: Observation, t: float) -> Command:
        self.calls += 1
        return Command(0.0, 0.0, 0.0)

    def plan_inputs(self):
        return self.U, self.dt


def test_the_guides_plan_is_resampled_onto_the_plans_steps_with_a_zero_order_hold():
    index = resample_index(6, 0.04, 4, 0.05)  # steps at 0, .04, .08, .12, .16, .20 s; the source's at 0-.15 s
    np.testing.assert_array_equal(index, [0, 0, 1, 2, 3, -1])
    U = np.zeros((6, 2))
    resample_inputs(np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [4.0, 8.0]]), index, U)
    np.testing.assert_array_equal(U, [[1, 5], [1, 5], [2, 6], [3, 7], [4, 8], [0, 8]])  # past it: rate 0, accel held


@pytest.mark.parametrize("kernel", ["lockstep", "scalar"])
def test_guided_iteration_equals_the_numpy_reference_around_two_plans(kernel, oval, start_state):
    """K = 64, guide_share 0.5: samples [0, 32) around the guide's plan with guide_sigma x the noise (sample 0 the
    plan itself), [32, 64) around MPPI's own; the weights over all 64 by the one cost."""
    track = oval()
    p = load_params("f1tenth")
    T, dt = 25, 0.04
    Ug = np.column_stack([0.3 * np.sin(np.linspace(0, 3, 30)), np.full(30, 2.0)])
    c = MPPI(track, p, MPPIConfig(num_samples=64, horizon=T, dt=dt, model="dynamic", alpha=0.5, kernel=kernel,
                                  guide="ilqr", guide_share=0.5, guide_sigma=0.3, warmup=False,
                                  cost=load_config(tuning_path("f1tenth")).cost.__class__(line=0.5,
                                                                                          speed_track=0.3)),
             guide=PlanGuide(Ug, 0.03))
    x0 = start_state(track)
    c.U[:, 0], c.U[:, 1] = -0.1, 3.0
    U0 = c.U.copy()
    c._follow_guide(Observation(0.0, x0), 0.0)
    assert c.guide.calls == 1
    c.solve(x0, store_noise=True)
    Ug_steps = np.zeros((T, 2))
    resample_inputs(Ug, resample_index(T, dt, 30, 0.03), Ug_steps)
    U_all = np.concatenate([np.repeat(Ug_steps[None], 32, axis=0), np.repeat(U0[None], 32, axis=0)])
    sig = np.repeat(np.asarray(c.sigma)[None], 64, axis=0)
    sig[:32] *= 0.3
    ref = S.mppi_step_numpy(x0, U_all, c.eps, sig, c.last["lambda"], c.gamma, c.p, c.model, dt, 1, c.cost,
                            c.cost_args, c.last["i0"], c.last["s0"], c.u_prev, c.M)
    assert np.all(c.eps[0] == 0.0)  # sample 0: the guide's plan unperturbed
    np.testing.assert_allclose(c.Sk, ref["S"], rtol=1e-9, atol=1e-7)
    np.testing.assert_allclose(c.V, ref["V"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(c.w, ref["w"], rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(c.U, ref["U_new"], rtol=0, atol=1e-9)
    assert c.last["guide_weight"] == pytest.approx(float(ref["w"][:32].sum()), abs=1e-9)


def test_impossible_guide_settings_are_errors_naming_the_key(oval):
    p = load_params("f1tenth")
    g = PlanGuide(np.zeros((10, 2)), 0.05)
    with pytest.raises(ValueError, match="guide_share 0.5 of K = 16 leaves no samples of MPPI's own"):
        MPPI(oval(), p, MPPIConfig(num_samples=16, horizon=10, guide="ilqr", warmup=False), guide=g)
    from racing.bench import CIRCLE, circle_args
    with pytest.raises(ValueError, match="guide: ilqr needs the racing cost"):
        MPPI(None, p, MPPIConfig(num_samples=64, horizon=10, guide="ilqr", warmup=False), cost=(CIRCLE, circle_args()),
             guide=g)
    with pytest.raises(Exception, match="guide_share"):
        MPPIConfig(guide_share=0.95)
    with pytest.raises(Exception, match="guide"):
        MPPIConfig(guide="pure_pursuit")


def test_a_race_guided_by_the_cars_ilqr_is_assembled_and_stays_on_track(tmp_path):
    """`racing race --controller mppi` with `guide: ilqr` in the settings: the assembly builds the guide on its
    own line, the run records it, and two laps of lab_loop on the default plant stay on the track."""
    pytest.importorskip("casadi")
    from racing.api import race

    conf = tmp_path / "guided.yaml"
    conf.write_text(tuning_path("f1tenth").read_text() + "\nguide: ilqr\nguide_share: 0.5\n")
    res = race("lab_loop", "f1tenth", "mppi", controller_config=str(conf), laps=2, seed=0, threads=1)
    s = res.summary()
    assert s["off_track"] == 0 and s["status"] == "completed", s
    assert s["guide"]["controller"] == "ilqr" and s["guide"]["samples"] == 512
    assert 0.0 < s["guide"]["weight_mean"] <= 1.0
