"""Acceleration feedback around a car's own speed loop (racing.control.speedloop): the bias converges, it is
frozen where a mismatch says nothing about the loop, and a wound-up PI loop brakes as planned with it."""
from __future__ import annotations

import numpy as np
import pytest

from racing.control.speedloop import BIAS_SHARE, AccelObserver, speed_observer
from racing.interfaces import drive_interface
from racing.models import sops
from racing.models.dynamic import accel_limits, body_derivatives
from racing.models.params import load_params
from racing.sim.foreign import ForeignActuators

SPEED = drive_interface("speed")
ACCEL = drive_interface("speed_accel")


@pytest.fixture(scope="module")
def car():
    return load_params("gt_car")


def _straight(v: float) -> np.ndarray:
    x = np.zeros(7)
    x[3] = v
    return x


def _run(car, obs, b_true: float, a_plan: float, seconds: float, v0: float = 30.0, h: float = 0.02):
    """A straight line at 50 Hz whose car adds ``b_true`` [m/s^2] to what the model expects; returns the speeds."""
    p = car.to_array()
    x, vs = _straight(v0), []
    for k in range(int(round(seconds / h))):
        obs.update(float(x[3]), k * h)
        hi = accel_limits(float(x[3]), p, sops)[1]
        cmd = obs.command(SPEED, 0.0, float(x[3]), a_plan, x, hi)
        u = min(max(car.speed_kp * (cmd.speed - x[3]), -car.decel_max), car.accel_max)
        x[3] += h * (body_derivatives(float(x[3]), 0.0, 0.0, 0.0, 0.0, u, p, sops)[0] + b_true)
        vs.append(float(x[3]))
    return np.array(vs)


@pytest.mark.parametrize("b_true", [-1.5, 0.8])
def test_the_bias_converges_and_the_plan_is_delivered(car, b_true):
    obs = AccelObserver(car)
    v = _run(car, obs, b_true, a_plan=-4.0, seconds=4.0, v0=45.0)
    assert obs.bias == pytest.approx(b_true, abs=0.05)
    # over the last half second the car decelerates at the planned 4 m/s^2 (the model's drag is the plan's too)
    p = car.to_array()
    drag = body_derivatives(float(v[-1]), 0.0, 0.0, 0.0, 0.0, 0.0, p, sops)[0]
    assert (v[-1] - v[-26]) / 0.5 == pytest.approx(-4.0 + drag, abs=0.1)


def test_nothing_is_learnt_at_the_drive_limit_and_the_bias_is_bounded(car):
    obs = AccelObserver(car)
    _run(car, obs, -3.0, a_plan=50.0, seconds=2.0, v0=20.0)  # flat out: short of power, not a speed-loop bias
    assert obs.bias == 0.0
    _run(car, obs, -50.0, a_plan=-2.0, seconds=3.0)
    assert obs.bias == pytest.approx(-BIAS_SHARE * max(car.accel_max, car.decel_max))
    obs.reset()
    assert obs.bias == 0.0


def test_the_bias_goes_into_the_field_the_interface_takes(car):
    obs = AccelObserver(car)
    obs.bias = 1.0
    x = _straight(20.0)
    s = obs.command(SPEED, 0.1, 20.0, -3.0, x, hi=5.0)
    assert s.acceleration == 0.0 and s.speed == pytest.approx(20.0 - 4.0 / car.speed_kp)
    a = obs.command(ACCEL, 0.1, 20.0, -3.0, x, hi=5.0)
    assert a.acceleration == pytest.approx(-4.0) and a.speed == 20.0 and a.steering_angle == 0.1


def _shed(car, act, obs, a_drive: float, brake: float, steps: int) -> float:
    """A straight line at 50 Hz on ``car``'s longitudinal model behind the speed loop ``act``: ``a_drive`` planned
    for 10 s, then ``-brake`` for ``steps`` ticks. ``obs``: the speed observer making the commands (None: the P
    loop's set-point ``v + a / speed_kp``). Returns the speed shed over the braking less what the model shed at
    exactly ``-brake`` from the same speed [m/s] (> 0: more than planned)."""
    p = car.to_array()
    x, h = _straight(15.0), 0.02
    for k in range(500 + steps):
        t = k * h
        a_plan = a_drive if t < 10.0 else -brake
        hi = accel_limits(float(x[3]), p, sops)[1]
        if obs is not None:
            obs.update(float(x[3]), t)
            cmd = obs.command(SPEED, 0.0, float(x[3]), a_plan, x, hi)
        else:
            cmd = SPEED.command(0.0, float(x[3]), min(a_plan, hi), float(x[3]), car.speed_kp, car.v_max)
        if k == 500:
            v_start = v_plan = float(x[3])
        for _ in range(10):
            _, a = act.inputs(0.0, float(x[3]), 0.0, cmd.speed, cmd.acceleration, h / 10)
            x[3] += h / 10 * body_derivatives(float(x[3]), 0.0, 0.0, 0.0, 0.0, a, p, sops)[0]
            if k >= 500:
                v_plan += h / 10 * body_derivatives(v_plan, 0.0, 0.0, 0.0, 0.0, -brake, p, sops)[0]
    return (v_start - float(x[3])) - (v_start - v_plan)


def _pi_loop(car, speed_ki: float) -> ForeignActuators:
    return ForeignActuators(speed_kp=car.speed_kp, speed_ki=speed_ki, accel_max=car.accel_max, decel_max=car.decel_max)


@pytest.mark.parametrize("brake", [7.0, None])
def test_a_wound_up_pi_loop_brakes_as_planned_with_the_feedback(car, brake):
    """A PI speed loop (not the model's P loop) after 10 s of drive: its integrator holds back the braking that
    follows. Planned: +2 m/s^2 for 10 s, then -7 m/s^2 for 3 s. The speed shed over the braking, against the model
    integrated at exactly -7 m/s^2 from the same speed: without the feedback the PI car sheds over 1.5 m/s less;
    with it, no less than planned and at most 2 m/s more (the observer lags the unwinding integrator by about
    2 tau times its rate: a little more braking, never less). Planned at the car's brake limit (``brake`` None:
    ``decel_max``, the planner's clamp, which the compensated command passes): the PI loop reaches its limit
    sooner with the feedback (1.5 s of braking: from 31 m/s it would stop in 2.4 s)."""
    brake, steps = (car.decel_max, 75) if brake is None else (brake, 150)  # 1.5 s at the limit, 3 s at 7 m/s^2
    without = _shed(car, _pi_loop(car, 0.3), None, 2.0, brake, steps)
    with_ = _shed(car, _pi_loop(car, 0.3), AccelObserver(car), 2.0, brake, steps)
    assert without < -1.5
    if brake < car.decel_max:
        assert -0.3 < with_ < 2.0
        # the model's own loop: the feedback only takes off the sampling lag
        assert abs(_shed(car, _pi_loop(car, 0.0), AccelObserver(car), 2.0, brake, steps)) < 0.3
    else:  # the car's own loop clips at decel_max: no more than planned, but over 1 m/s closer to it
        assert without + 1.0 < with_ < 0.3


@pytest.mark.parametrize("learn", [False, True])
def test_a_pi_loop_the_car_file_knows_brakes_as_planned(car, learn):
    """The car file says the loop's integral gain (``speed_ki``, as ``racing fit`` identifies it): the observer's
    shadow of the integral, wound up by 10 s at the drive limit (+6 m/s^2 asked of a car that gets less above
    its power limit), is taken off the braking asked for, so the car decelerates as planned from the first
    tenths (within 0.3 m/s over 1 s of -7 m/s^2), with or without the bias learnt on top; without it (the P
    loop's set-point) over 1.5 m/s less."""
    pi_car = car.replace(speed_ki=0.3)
    assert speed_observer(car, False) is None and speed_observer(pi_car, False).learn_bias is False
    assert _shed(car, _pi_loop(car, 0.3), None, 6.0, 7.0, 50) < -1.5
    obs = speed_observer(pi_car, learn)
    assert abs(_shed(car, _pi_loop(car, 0.3), obs, 6.0, 7.0, 50)) < 0.3
    assert obs.integral != 0.0
    obs.reset()
    assert obs.integral == 0.0


def test_a_bad_time_constant_is_refused(car):
    with pytest.raises(ValueError, match="tau"):
        AccelObserver(car, tau=0.0)
