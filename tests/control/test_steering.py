"""The steering chain identified online (racing.control.steering): a servo other than the car file's is found,
one that is the car file's changes nothing, and the controllers lead, scale and limit their steering with it."""
import math

import numpy as np
import pytest

from racing.control.steering import OnlineSteer, SteerEstimator, bank, steer_replay_nb
from racing.models.actuators import actuator_inputs
from racing.models.ops import NUMPY
from racing.models.params import P_STEER_RATE_MAX, load_params
from racing.sim.foreign import ForeignActuators


def drive(servo, est, seconds=40.0, noise=0.002, seed=0, amp=1.0):
    """Feed ``est`` (observe / sent) with a servo ``servo(delta, u, h) -> rate`` driven by corner-like commands
    (slow sines, steps, a fast ripple; x ``amp``) at 50 Hz; the measured angle with white noise [rad]."""
    rng = np.random.default_rng(seed)
    delta, t = 0.0, 0.0
    for k in range(int(seconds * 50)):
        est.observe(t, delta + rng.normal(0.0, noise))
        u = amp * (0.08 * math.sin(0.7 * t) + (0.05 if (k // 150) % 2 else 0.0) + 0.01 * math.sin(5.0 * t))
        est.sent(u)
        for _ in range(20):
            delta += servo(delta, u, 0.001) * 0.001
        t += 0.02


def test_a_foreign_servo_is_identified():
    """Dead time 38 ms, a proportional servo (lag 1/10.85 s) saturated at 0.252 rad/s, gain 1.04, against a car
    file that says a 43 ms lag, 0.4 rad/s and gain 1.24 (a fit that traded the servo for yaw inertia): found within
    the bank's resolution."""
    car = load_params("f1tenth").replace(steer_tau=0.043, steer_gain=1.24, steer_rate_max=0.4, steer_max=0.6)
    act = ForeignActuators(steer_kp=10.85, dead_time=0.038, steer_gain=1.04, rate_max=0.252, steer_max=0.6)
    est = SteerEstimator(car)
    drive(lambda d, u, h: act.inputs(d, 20.0, u, 20.0, 0.0, h)[0], est)
    d, tau, g, r = est.estimate
    assert d + tau == pytest.approx(0.038 + 1.0 / 10.85, abs=0.025)
    assert g == pytest.approx(1.04, rel=0.06)
    assert r == pytest.approx(0.252, rel=0.15)
    assert est.summary()["steer_informed"]


def test_the_car_files_servo_changes_nothing():
    """A servo that is what the car file says (the project's actuator model): the estimate is the car file's and
    the controller's lead, gain and rate limit are untouched."""
    car = load_params("f1tenth")
    pa = car.to_array()
    p = car.to_array()
    online = OnlineSteer(car, p)
    drive(lambda d, u, h: actuator_inputs(d, 5.0, u, 5.0, 0.0, pa, h, True, NUMPY)[0], online, noise=0.001)
    assert online.estimator.informed
    assert online.applied == (car.steer_tau + car.steer_delay, car.steer_gain, car.steer_rate_max)
    assert online.lead(0.02) == pytest.approx(car.steer_tau + car.steer_delay + 0.01)
    assert p[P_STEER_RATE_MAX] == car.steer_rate_max and online.changes == 0


def test_a_slower_servo_is_written_into_the_rollouts_and_undone_by_reset():
    car = load_params("f1tenth")
    p, base = car.to_array(), car.to_array()
    seen = []
    online = OnlineSteer(car, p, bases=(base,), on_params=seen.append)
    slow = car.steer_rate_max * 0.5
    act = ForeignActuators(steer_kp=1.0 / max(car.steer_tau, 0.02), dead_time=0.06, steer_gain=car.steer_gain,
                           rate_max=slow, steer_max=car.steer_max)
    drive(lambda d, u, h: act.inputs(d, 5.0, u, 5.0, 0.0, h)[0], online, noise=0.001, amp=4.0)
    assert p[P_STEER_RATE_MAX] == base[P_STEER_RATE_MAX] == pytest.approx(slow, rel=0.15)
    assert online.lead(0.02) > car.steer_tau + 0.04 and seen
    online.reset()
    assert p[P_STEER_RATE_MAX] == base[P_STEER_RATE_MAX] == car.steer_rate_max


def test_still_windows_say_nothing():
    car = load_params("f1tenth")
    est = SteerEstimator(car)
    for k in range(500):
        est.observe(0.02 * k, 0.01)
        est.sent(0.01 / car.steer_gain)
    assert est.windows == 0 and est.estimate is None


def test_the_replay_is_the_servo():
    """The compiled replay of one hypothesis equals the servo it stands for (first-order lag, rate limit, dead
    time) simulated step by step."""
    car = load_params("f1tenth")
    H = bank(car)[[0]].copy()
    H[0] = (0.04, 0.07, 1.1, 0.5)
    T = np.arange(60) * 0.02
    U = 0.2 * np.sign(np.sin(2.0 * T))
    x, D = 0.0, np.zeros(60)
    for i in range(59):
        D[i] = x
        for s in range(4):
            ts = T[i] + s * 0.005 - 0.04
            u = U[max(int(np.searchsorted(T, ts + 1e-12, side="right")) - 1, 0)]
            dx = (1.1 * u - x) * (1.0 - math.exp(-0.005 / 0.07))
            x += min(max(dx, -0.5 * 0.005), 0.5 * 0.005)
    D[59] = x
    e = np.zeros(1)
    steer_replay_nb(T, D, U, 2, H, 0.0, 1.0, e)
    D2 = D.copy()
    D2[10:] += 0.01
    e2 = np.zeros(1)
    steer_replay_nb(T, D2, U, 2, H, 0.0, 1.0, e2)
    assert e[0] < 1e-20 and e2[0] == pytest.approx(0.01 ** 2 * 50, rel=1e-6)
