"""Pure pursuit (racing.control.pure_pursuit): the yaw-rate feedback term and the speed loop's acceleration
feedforward, each against its formula (the closed loops that need them are in tests/sim/test_commonroad.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import racing
from racing.control import make_controller
from racing.interfaces import Observation


@pytest.fixture(scope="module")
def setup():
    return racing.load_track("harbour_circuit"), racing.load_car("gt_car")


def _on_path(pp, i, v, r=0.0):
    """The car on the path at sample ``i``, heading along it, at speed ``v`` [m/s] and yaw rate ``r``."""
    x, y = pp.path.point_at(pp.path.s[i])
    x2, y2 = pp.path.point_at(pp.path.s[i] + 0.5)
    return Observation(0.0, np.array([x, y, math.atan2(y2 - y, x2 - x), v, 0.0, r, 0.0]))


def test_yaw_damping_steers_for_the_missing_yaw_rate(setup):
    track, car = setup
    v = 30.0
    for gain in (0.0, 1.0, 2.5):
        pp = make_controller("pure_pursuit", track, car, None, yaw_damping=gain)
        i = int(np.argmax(np.abs(pp.path.kappa)))  # in a corner: the target point is off the heading
        d0 = pp.act(_on_path(pp, i, v, 0.0), 0.0).steering_angle
        pp.reset()
        d1 = pp.act(_on_path(pp, i, v, 0.1), 0.0).steering_angle
        # 0.1 rad/s more yaw rate than before: the kinematic steering for it, L / v per rad/s, times the gain, less
        assert d1 - d0 == pytest.approx(-gain * car.wheelbase / v * 0.1, abs=1e-12)
        assert abs(d0) < car.steer_max and abs(d1) < car.steer_max  # neither clipped
    # below the kinematic blend speed there is no yaw mode to damp: pure pursuit alone
    pp = make_controller("pure_pursuit", track, car, None, yaw_damping=1.0)
    slow = car.v_blend_high * 0.5
    assert pp.act(_on_path(pp, 10, slow, 0.3), 0.0).steering_angle == pytest.approx(
        make_controller("pure_pursuit", track, car, None, yaw_damping=0.0).act(_on_path(pp, 10, slow, 0.3), 0.0)
        .steering_angle, abs=1e-15)


def test_the_speed_loop_gets_the_profiles_acceleration_within_what_the_tyres_allow(setup):
    track, car = setup
    pp = make_controller("pure_pursuit", track, car)
    kp = car.speed_kp
    braking = accelerating = 0
    for i in range(0, pp.path.n, 7):
        v = float(pp.v_profile[i])
        obs = _on_path(pp, i, v)
        cmd = pp.act(obs, 0.0)
        pp.reset()
        i, _ = pp.path.project(obs.state[0], obs.state[1])  # the sample the controller stands on
        k = float(pp.path.kappa[i])
        lo, hi = -pp.accel_avail(v, k, True), max(pp.accel_avail(v, k, False), 0.0)
        # what the car's speed loop applies: a_ff + kp (v_cmd - v), within the profile's limits at this speed and
        # curvature (slack for the rounding of the clip)
        a = cmd.acceleration + kp * (cmd.speed - v)
        assert lo - 1e-9 <= a <= hi + 1e-9
        assert lo - 1e-9 <= cmd.acceleration <= hi + 1e-9
        nwin = 1 + int(v * pp.config.brake_lookahead_time / pp.path.ds)
        a_prof = float(pp.a_profile[(i + np.arange(nwin + 1)) % pp.path.n].min())
        assert cmd.acceleration == pytest.approx(min(max(a_prof, lo), hi), abs=1e-12)
        braking += a_prof < -1.0
        accelerating += a_prof > 1.0
    assert braking > 10 and accelerating > 10  # the check covered both ends of the loop
    # on the profile, a braking ramp is led by its deceleration rather than lagged by a / kp
    i = int(np.argmin(pp.a_profile))
    assert pp.act(_on_path(pp, i, float(pp.v_profile[i])), 0.0).acceleration < -0.5 * car.decel_max
