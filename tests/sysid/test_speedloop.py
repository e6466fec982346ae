"""The speed loop identified from a command-only log (racing.sysid.speedloop): a PI loop is told from a P loop on
held-out windows and its gains found; the fit carries them into the car file.

The car is CommonRoad's single-track BMW 320i behind :class:`racing.sim.foreign.ForeignActuators` (a speed loop that
ignores the acceleration field, a servo after a dead time): a car the project's actuator model does not describe.
The identification starts from a speed gain half the true one."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from racing.logs import DriveLog
from racing.models.params import load_params
from racing.sim.foreign import ForeignActuators
from racing.sysid import rollout as ro
from racing.sysid.parametric import fit
from racing.sysid.speedloop import KI_RATIOS, KP_SCALES, hypotheses, identify_speed_loop

ROOT = Path(__file__).resolve().parents[2]
KP, KI = 0.6, 0.25


def _log(speed_ki: float):
    """45 s of the excitation programme on the foreign car with the speed loop (KP, ``speed_ki``), command-only; and
    the car the identification starts from (the data sheet, speed gain 0.3 1/s)."""
    pytest.importorskip("vehiclemodels")
    sys.path.insert(0, str(ROOT / "tools"))
    from sysid_commonroad import CONFIG, NOISE, actuator_car

    from racing.sim.commonroad import CommonRoadPlant
    from racing.sysid.excite import ExcitationDriver, drive_session

    act = actuator_car().replace(speed_kp=0.3)
    fa = ForeignActuators(dead_time=0.04, rate_max=act.steer_rate_max, steer_max=act.steer_max, speed_kp=KP,
                          speed_ki=speed_ki, accel_max=act.accel_max, decel_max=act.decel_max)
    x0 = np.zeros(7)
    x0[3] = 10.0
    log, _ = drive_session(CommonRoadPlant("st", actuators=fa), ExcitationDriver(act, CONFIG, seed=2), 45.0, 50.0,
                           noise=NOISE, seed=2, x0=x0, meta={"car": "bmw320i"})
    return DriveLog(log.t, log.state, log.command, meta={**log.meta, "steer_source": "command"},
                    source="no angle"), act


@pytest.fixture(scope="module")
def pi_log():
    return _log(KI)


def test_the_grid_holds_the_p_loops_first_and_spans_the_gains():
    H = hypotheses(0.5)
    n_p = KP_SCALES.size
    assert H.shape == (KP_SCALES.size * KI_RATIOS.size, 2)
    assert np.all(H[:n_p, 1] == 0.0) and np.all(H[n_p:, 1] > 0.0)
    assert H[:, 0].min() == pytest.approx(0.5 * KP_SCALES[0]) and H[:, 0].max() == pytest.approx(0.5 * KP_SCALES[-1])


def test_a_pi_loop_is_chosen_and_its_gains_found(pi_log):
    log, start = pi_log
    rep = identify_speed_loop(ro.prepare([log]), start)
    assert rep["chosen"] == "PI", rep
    assert rep["speed_kp"] == pytest.approx(KP, rel=0.2)
    assert rep["speed_ki"] == pytest.approx(KI, rel=0.35)
    assert rep["rmse_mps"]["PI"] < 0.9 * rep["rmse_mps"]["P"]


def test_a_p_loop_stays_a_p_loop():
    log, start = _log(0.0)
    rep = identify_speed_loop(ro.prepare([log]), start)
    assert rep["chosen"] == "P", rep
    assert rep["speed_kp"] is None and rep["speed_ki"] == 0.0


def test_the_fit_carries_the_pi_loop_into_the_car_file(pi_log, tmp_path):
    log, start = pi_log
    res = fit([log], start, names=("speed_kp",), n_boot=0, actuator="lag")
    assert res.speed_loop["chosen"] == "PI"
    assert res.params.speed_ki == pytest.approx(res.speed_loop["speed_ki"]) and res.params.speed_ki > 0.0
    assert res.params.speed_kp == pytest.approx(res.speed_loop["speed_kp"])
    assert "Speed loop: PI" in res.report() and res.to_dict()["speed_loop"]["chosen"] == "PI"
    path = tmp_path / "fitted.yaml"
    res.params.to_yaml(path)
    assert load_params(path).speed_ki == pytest.approx(res.params.speed_ki)


def test_too_short_a_log_says_so(pi_log):
    log, start = pi_log
    short = DriveLog(log.t[:100], log.state[:100], log.command[:100], meta=log.meta, source=log.source)
    rep = identify_speed_loop(ro.prepare([short]), start)
    assert rep["chosen"] == "P" and rep["speed_kp"] is None and "too few" in rep["why"]
