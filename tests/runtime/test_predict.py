"""Latency compensation: the predictor against the plant, and the loop acting on predicted states."""
import math

import numpy as np
import pytest

from racing.control.base import Command, Controller
from racing.models.dynamic import dynamic_rhs
from racing.models.integrators import rk4
from racing.models.params import load_params
from racing.runtime.predict import StatePredictor

PARAMS = load_params("f1tenth")
X0 = np.array([1.0, -0.5, 0.3, 4.0, 0.05, 0.4, 0.08])


def test_zero_horizon_is_the_measurement_and_no_command_holds_still():
    pr = StatePredictor(PARAMS, actuation_delay_s=0.02)
    assert pr.predict(X0, 1.0, 1.0) is not None
    np.testing.assert_array_equal(pr.predict(X0, 1.0, 0.9), X0)
    assert pr.command_at(5.0) == (0.0, 0.0, 0.0)


def test_commands_act_after_the_delay():
    pr = StatePredictor(PARAMS, actuation_delay_s=0.03)
    pr.record(Command(0.1, 3.0, 0.5), 1.00)
    pr.record(Command(-0.1, 4.0, 0.0), 1.02)
    assert pr.command_at(1.029) == (0.0, 0.0, 0.0)
    assert pr.command_at(1.031) == (0.1, 3.0, 0.5)
    assert pr.command_at(1.051) == (-0.1, 4.0, 0.0)


def test_one_step_is_rk4_of_the_model_with_the_actuator_inputs():
    pr = StatePredictor(PARAMS, step_s=0.005)
    pr.record(Command(0.2, 5.0, 1.0), 0.0)
    got = pr.predict(X0, 0.0, 0.005)
    u, _ = pr.inputs(X0, (0.2, 5.0, 1.0), 0.005)
    want = rk4(dynamic_rhs, 0.005)(X0, u, PARAMS.to_array())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    # servo: rate = (target - steer) / tau, limited; speed loop a = a_ff + kp (v_cmd - v_x), limited
    assert u[0] == pytest.approx(min((0.2 - X0[6]) / PARAMS.steer_tau, PARAMS.steer_rate_max))
    assert u[1] == pytest.approx(min(1.0 + PARAMS.speed_kp * (5.0 - X0[3]), PARAMS.accel_max))


def test_prediction_follows_the_plant_through_commands_in_flight():
    from racing.sim.plant import make_plant

    delay = 0.03
    sends = [(0.00, Command(0.15, 5.0, 0.0)), (0.02, Command(0.25, 5.5, 0.5)), (0.04, Command(-0.1, 6.0, 0.0)),
             (0.06, Command(0.0, 6.0, 0.0))]
    pr = StatePredictor(PARAMS, actuation_delay_s=delay)
    for t, c in sends:
        pr.record(c, t)
    # the plant: 1 kHz RK4 with the actuators, the commands acting `delay` after sending
    plant = make_plant("dynamic", PARAMS, plant_hz=1000.0)
    t_state, t_end = 0.035, 0.095  # a state measured at 35 ms, predicted to 95 ms
    plant.reset(X0)
    x_state = None
    t, held = 0.0, Command(0.0, 0.0, 0.0)
    while t < t_end - 1e-12:
        for ts, c in sends:
            if abs(ts + delay - t) < 1e-9:
                held = c
        if abs(t - t_state) < 1e-9:
            x_state = plant.state.copy() if hasattr(plant, "state") else None
        x = plant.step(held, 0.001)
        t = round(t + 0.001, 9)
        if x_state is None and abs(t - t_state) < 1e-9:
            x_state = np.asarray(x, dtype=float).copy()
    x_true = np.asarray(x, dtype=float)
    got = pr.predict(x_state, t_state, t_end)
    moved = np.linalg.norm(x_true[:2] - x_state[:2])
    assert moved > 0.2  # the car moved a lot in 60 ms ...
    assert np.linalg.norm(got[:2] - x_true[:2]) < 0.01 * moved  # ... and the prediction lands within 1 % of it
    assert abs(math.remainder(got[2] - x_true[2], 2 * math.pi)) < 2e-3
    np.testing.assert_allclose(got[3:], x_true[3:], atol=0.03)


def test_horizon_is_capped_and_a_diverging_prediction_returns_the_measurement():
    pr = StatePredictor(PARAMS, max_horizon_s=0.05, step_s=0.01)
    pr.record(Command(0.0, 4.0, 0.0), -1.0)
    capped = pr.predict(X0, 0.0, 10.0)
    assert np.linalg.norm(capped[:2] - X0[:2]) < 0.05 * 4.5  # at most 50 ms of travel
    bad = X0.copy()
    bad[3] = 1e308
    np.testing.assert_array_equal(pr.predict(bad, 0.0, 0.02), bad)


class FakeClock:
    """A monotonic clock that only moves when something sleeps."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.now += max(dt, 0.0)


class Recorder(Controller):
    """Pure pursuit that records what it was given."""

    name = "recorder"

    def __init__(self, inner):
        self.inner, self.config = inner, inner.config
        self.seen = []

    def reset(self, observation=None):
        self.inner.reset()

    def act(self, observation, t):
        self.seen.append((t, observation.state.copy()))
        return self.inner.act(observation, t)


@pytest.mark.parametrize("compensate", [True, False])
def test_loop_acts_on_the_state_predicted_to_when_the_command_lands(compensate):
    """Fake clock, twin with 20 ms of state latency and a 40 ms actuation delay: with compensation the
    controller sees (nearly) the true state at the instant its command takes effect."""
    from racing.control import make_controller
    from racing.runtime.loop import LoopConfig, RuntimeLoop
    from racing.runtime.watchdog import WatchdogConfig
    from racing.runtime.auth import LinkSecurity
    from racing.runtime.vehicle_sim import LoopbackSimVehicle, SimTwinConfig
    from racing.sim.simulator import initial_state
    from racing.track import load_track

    track = load_track("lab_loop")
    clock = FakeClock()
    delay, latency = 0.04, 0.02
    veh = LoopbackSimVehicle(PARAMS, initial_state(track), SimTwinConfig(delay_s=delay), clock=clock,
                             security=LinkSecurity(key=bytes(32)), state_latency_s=latency)
    truth = []
    step = veh.core.plant.step

    def recording_step(cmd, dt):
        x = step(cmd, dt)
        truth.append((veh.core.t + dt, np.array(x, dtype=float)))
        return x

    veh.core.plant.step = recording_step
    ctl = Recorder(make_controller("pure_pursuit", track, PARAMS))
    conf = LoopConfig(rate_hz=50.0, duration_s=4.0, warmup_calls=0, actuation_delay_s=delay, compensate=compensate,
                      watchdog=WatchdogConfig(hang_timeout_s=None, off_track_margin_m=0.5))
    res = RuntimeLoop(ctl, veh, conf, track=track, clock=clock, sleep=clock.sleep,
                      predictor=StatePredictor(PARAMS, delay)).run()
    assert res.status == "completed", res.events
    s = res.summary()
    assert s["compensation"]["enabled"] is compensate
    # the link measures the age of every state: the latency plus up to one publication period
    ages = np.array(res.state_age_s)
    assert ages.size == res.control_ticks and np.all(ages >= latency - 1e-9) and np.all(ages <= latency + 0.0101)
    tt = np.array([t for t, _ in truth])
    xt = np.array([x for _, x in truth])
    errs = []
    for t_c, x_c in ctl.seen[50:]:  # after the standing start
        t_land = t_c if compensate else t_c + delay  # when the command computed from x_c takes effect
        i = int(np.argmin(np.abs(tt - t_land)))
        if abs(tt[i] - t_land) < 2e-3 and xt[i, 3] > 2.0:
            errs.append(np.linalg.norm(x_c[:2] - xt[i, :2]))
    assert len(errs) > 50
    if compensate:
        assert np.median(errs) < 0.01  # [m]: predicted to where the car is when the command lands
    else:
        assert np.median(errs) > 0.1  # the measured state is 40-70 ms old


def test_prediction_carries_the_speed_loops_integral_on_a_pi_car():
    """A car whose speed loop integrates (speed_ki): fed the measured states as the loop would, the predictor's
    shadow of the car's integral puts its 0.2 s prediction of the speed near the plant's after the loop wound up
    against a set-point the car reaches slowly; a predictor that assumes a P loop is several times further off."""
    from racing.sim.plant import make_plant

    car = PARAMS.replace(speed_ki=6.0)
    plant = make_plant("dynamic", car, plant_hz=1000.0)
    x = X0.copy()
    x[3], x[6] = 2.0, 0.0
    plant.reset(x)
    pi, p_loop = StatePredictor(car), StatePredictor(PARAMS)
    cmd = Command(0.0, 6.0, 0.0)
    k0, k1 = 1300, 1500  # measured every 20 ms up to 1.3 s, predicted to 1.5 s
    for k in range(k1):
        if k <= k0 and k % 20 == 0:
            x_meas = np.asarray(x, dtype=float).copy()
            for pr in (pi, p_loop):
                pr.predict(x_meas, k * 0.001, k * 0.001)  # the loop measures: the shadow advances
                pr.record(cmd, k * 0.001)
        x = plant.step(cmd, 0.001)
    truth = float(np.asarray(x)[3])
    err_pi = abs(pi.predict(x_meas, k0 * 0.001, k1 * 0.001)[3] - truth)
    err_p = abs(p_loop.predict(x_meas, k0 * 0.001, k1 * 0.001)[3] - truth)
    assert pi.integral > 0.05 and p_loop.integral == 0.0  # the car's integral wound up; a P loop has none
    assert err_pi < 0.01 and err_pi < 0.25 * err_p  # measured 0.003 against 0.06 m/s
