"""Dead-time compensation (racing.control.latency): the state carried over the car's dead time with the commands
in flight, against the vehicle runtime's predictor (an independent integration), and a dead time the car file does
not state found and compensated in a race."""
from __future__ import annotations

import numpy as np
import pytest

import racing
from racing.cli import race_table
from racing.control.latency import DeadTime
from racing.interfaces import Command
from racing.models.params import load_params
from racing.runtime.predict import StatePredictor

X0 = np.array([1.0, 2.0, 0.3, 6.0, 0.2, 0.5, 0.05])
SENT = [(0.00, 0.10, 7.0, 0.0), (0.02, 0.15, 7.5, 0.0), (0.04, -0.05, 6.5, 0.0)]  # (t [s], steer, speed, accel)


def test_without_a_dead_time_the_plan_starts_from_the_measurement():
    car = load_params("f1tenth")
    assert car.steer_delay == 0.0
    dead = DeadTime(car, car.to_array())
    for t, *cmd in SENT:
        dead.sent(t, *cmd)
    assert dead.predict(0.05, X0) is X0 and dead.delay == 0.0


@pytest.mark.parametrize("delay", [0.02, 0.035])
def test_the_state_is_carried_with_the_commands_in_flight(delay):
    """The car file's dead time (before any identification): the prediction is the runtime predictor's (RK4 of the
    continuous model with the same actuators) within the discrete step's error."""
    car = load_params("f1tenth").replace(steer_delay=delay)
    dead = DeadTime(car, car.to_array())
    ref = StatePredictor(car, delay, step_s=0.001)
    for t, *cmd in SENT:
        dead.sent(t, *cmd)
        ref.record(Command(steering_angle=cmd[0], speed=cmd[1], acceleration=cmd[2]), t)
    got = dead.predict(0.05, X0).copy()
    want = ref.predict(X0, 0.05, 0.05 + delay)
    assert not np.allclose(got, X0)  # it moved
    np.testing.assert_allclose(got[:3], want[:3], atol=2e-5)
    np.testing.assert_allclose(got[3:], want[3:], atol=2e-3)


def test_a_dead_time_the_car_file_does_not_state_is_found_and_compensated():
    """A 20 ms actuation delay on the default plant, unannounced: identified from the steering angle within a lap;
    compensated, the best lap is within 1.5 % of the undelayed car's (without: 3 % slower, docs/results.md)."""
    track, car = racing.load_track("lab_loop"), load_params("f1tenth")
    laps = {}
    for on in (True, False):
        ctl = racing.make_controller("ilqr", track, car, dead_time=on)
        res = racing.race(track, car, controller=ctl, laps=2, delay_s=0.02, seed=0)
        assert res.status == "completed" and res.off_track == 0, res.summary()
        laps[on] = min(res.laps)
        if on:
            assert ctl.estimates()["dead_time_s"] == pytest.approx(0.02)
            assert "20 ms planned over (identified from the steering angle)" in race_table(res.summary())
    free = racing.race(track, car, controller="ilqr", laps=2, seed=0)
    assert laps[True] < 1.015 * min(free.laps) < laps[False], (laps, free.laps)
