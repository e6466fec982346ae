"""The grip margin: what a fit vouches for (racing.sysid.parametric.grip_margin), carried by the car file
(VehicleParams.grip_margin) and taken off the grip the controllers plan their speeds with."""
from __future__ import annotations

import numpy as np
import pytest

import racing
from racing.config import ConfigError
from racing.control import make_controller
from racing.control.costs import TAB_VCAP
from racing.geometry.speed_profile import speed_profile
from racing.logs import DriveLog
from racing.models.params import G, N_PARAMS, load_params, usable_grip
from racing.sysid import rollout as ro
from racing.sysid.parametric import GRIP_MARGIN_MAX, grip_margin


def _log(ay: float = 5.0, ax: float = 2.0, rate: float = 50.0, seconds: float = 20.0) -> ro.Data:
    """A log of a car circling at a constant lateral acceleration ``ay`` [m/s^2] while it speeds up at ``ax``."""
    t = np.arange(0.0, seconds, 1.0 / rate)
    v = 8.0 + ax * t
    r = ay / v
    state = np.zeros((t.size, 7))
    state[:, 2] = np.cumsum(r) / rate
    state[:, 3], state[:, 5], state[:, 6] = v, r, 0.05
    state[:, 0] = np.cumsum(v * np.cos(state[:, 2])) / rate
    state[:, 1] = np.cumsum(v * np.sin(state[:, 2])) / rate
    command = np.column_stack([np.full(t.size, 0.05), v, np.zeros(t.size)])
    return ro.prepare([DriveLog(t=t, state=state, command=command)])


def test_margin_from_the_bootstrap_and_from_what_the_log_used():
    car = load_params("gt_car")
    data = _log(ay=5.0, ax=2.0)
    # fitted: twice the relative standard error (a 95 % half-width); the largest of the grip parameters counts
    m = grip_margin(("inertia_z", "D_f", "D_r"), [2000.0, 1.2, 1.0], [400.0, 0.012, 0.03], {}, data, car)
    assert m == pytest.approx(2 * 0.03 / 1.0)
    # a tyre peak asked for and not identified: the share of it above the lateral acceleration the log reached
    m = grip_margin(("inertia_z",), [2000.0], [10.0], {"D_r": "not excited"}, _log(ay=12.0), car)
    assert m == pytest.approx(1.0 - 12.0 / (G * car.D_r), rel=1e-3) and 0.0 < m < GRIP_MARGIN_MAX
    # mu not identified: the share of the model's longitudinal grip above what the log used (7 m/s^2)
    from racing.models.dynamic import grip_limits
    from racing.models.ops import NUMPY

    lo, hi = grip_limits(0.0, car.to_array(), NUMPY)
    m = grip_margin((), [], [], {"mu": "not excited"}, _log(ay=5.0, ax=7.0, seconds=4.0), car)
    assert m == pytest.approx(1.0 - 7.0 / min(-float(lo), float(hi)), rel=1e-2) and 0.0 < m < GRIP_MARGIN_MAX
    # what the fit was not asked for is taken as known; a huge uncertainty is capped
    assert grip_margin(("inertia_z",), [2000.0], [900.0], {}, data, car) == 0.0
    assert grip_margin(("D_f",), [1.0], [2.0], {}, data, car) == GRIP_MARGIN_MAX
    # a log that used more than the model's grip vouches for all of it
    assert grip_margin((), [], [], {"D_f": "kept"}, _log(ay=20.0), car) == 0.0


def test_the_car_file_carries_the_margin(tmp_path):
    car = load_params("gt_car")
    assert car.grip_margin == 0.0 and usable_grip(car) == 1.0  # optional: a data-sheet car is trusted
    fitted = car.replace(grip_margin=0.12, name="gt_fit")
    assert fitted.to_array().shape == (N_PARAMS,)  # not physics: not in the kernels' flat array
    np.testing.assert_array_equal(fitted.to_array(), car.to_array())
    path = tmp_path / "gt_fit.yaml"
    fitted.to_yaml(path)
    assert "grip_margin: 0.12" in path.read_text()
    assert load_params(path) == fitted
    with pytest.raises(ConfigError, match="grip_margin"):
        car.replace(grip_margin=0.7)
    path.write_text(path.read_text().replace("grip_margin: 0.12", "grip_margin: -0.1"))
    with pytest.raises(ConfigError, match="grip_margin"):
        load_params(path)


def test_controllers_plan_speeds_with_the_grip_the_fit_vouches_for():
    track, car = racing.load_track("harbour_circuit"), load_params("gt_car")
    doubtful = car.replace(grip_margin=0.2)
    pp, pp_m = (make_controller("pure_pursuit", track, c) for c in (car, doubtful))
    expected = speed_profile(pp.path.kappa, pp.path.ds, car, grip_scale=pp.config.grip_scale * 0.8).v
    np.testing.assert_allclose(pp_m.v_profile, expected, rtol=1e-12)
    assert pp_m.profile_lap_s > pp.profile_lap_s
    mppi, mppi_m = (make_controller("mppi", track, c) for c in (car, doubtful))
    assert mppi_m.profile_lap_s > mppi.profile_lap_s
    assert np.all(mppi_m.tab[:, TAB_VCAP] <= mppi.tab[:, TAB_VCAP] + 1e-9)  # the speed caps only come down
