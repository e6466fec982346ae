"""Closed-loop simulator: laps, off-track, deadlines, delay, noise, plants, results on disk."""
import math
import sys
import time
import types

import numpy as np
import pytest

from racing.config import ConfigError
from racing.control import Command, Controller, make_controller
from racing.models.params import load_params
from racing.sim.plant import known_plants, make_plant
from racing.sim.result import SimResult
from racing.sim.simulator import NoiseConfig, SimConfig, simulate
from racing.track import Track, known_tracks, load_track

F1 = load_params("f1tenth")
GT = load_params("gt_car")


def circle_track(radius=5.0, width=1.0, n=200):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    xy = np.column_stack([radius * np.cos(a), radius * np.sin(a)])
    return Track.from_centerline(xy, np.full(n, width), np.full(n, width), name="circle")


class Constant(Controller):
    """Holds one command; optionally sleeps to emulate a slow solver."""

    name = "constant"

    def __init__(self, steer=0.0, speed=2.0, sleep=0.0):
        self.cmd = Command(steer, speed)
        self.sleep = sleep

    def act(self, observation, t):
        if self.sleep:
            time.sleep(self.sleep)
        return self.cmd


def car_for(track):
    return F1 if track.length < 500 else GT


@pytest.mark.parametrize("name", known_tracks())
def test_pure_pursuit_two_clean_laps_on_every_shipped_track(name):
    track = load_track(name)
    params = car_for(track)
    ctrl = make_controller("pure_pursuit", track, params)
    res = simulate(track, ctrl, make_plant("dynamic", params), params, SimConfig(laps=2, seed=1))
    assert res.status == "completed", res.events[-3:]
    assert len(res.laps) == 2
    assert res.off_track == 0
    assert res.laps[1] < res.laps[0]  # the flying lap beats the standing start
    assert np.all(np.abs(res.frenet[:, 1]) < np.minimum(track.w_left.min(), track.w_right.min()) + 1e-9)


def test_lap_time_matches_distance_over_speed_on_a_circle():
    track = circle_track(radius=10.0, width=2.0)
    params = F1
    ctrl = make_controller("pure_pursuit", track, params, speed_scale=0.5)
    res = simulate(track, ctrl, make_plant("dynamic", params), params, SimConfig(laps=3))
    assert res.status == "completed" and res.off_track == 0
    v_mean = np.mean(np.hypot(res.state[-50:, 3], res.state[-50:, 4]))
    assert res.laps[-1] == pytest.approx(track.length / v_mean, rel=0.03)


def test_off_track_is_counted_and_stops_the_run():
    track = circle_track(radius=5.0, width=0.5)
    res = simulate(track, Constant(steer=0.0, speed=3.0), make_plant("dynamic", F1), F1, SimConfig(laps=1))
    assert res.status == "off_track"
    assert res.off_track == 1
    assert any(e["type"] == "off_track" for e in res.events)


def test_realtime_deadline_misses_are_counted():
    track = circle_track(radius=20.0, width=5.0)
    ctrl = Constant(steer=math.atan(F1.wheelbase / 20.0), speed=2.0, sleep=0.03)  # 30 ms > 20 ms budget
    res = simulate(track, ctrl, make_plant("dynamic", F1), F1, SimConfig(laps=1, max_time_s=1.0, realtime=True))
    assert res.deadline_misses > 0
    assert res.status == "timeout"
    off = simulate(track, Constant(sleep=0.0), make_plant("dynamic", F1), F1,
                   SimConfig(laps=1, max_time_s=1.0, realtime=False))
    assert off.deadline_misses == 0


def test_actuation_delay_postpones_the_response():
    track = circle_track(radius=20.0, width=5.0)

    def steer_onset(delay):
        res = simulate(track, Constant(steer=0.2, speed=0.0), make_plant("dynamic", F1), F1,
                       SimConfig(laps=1, max_time_s=0.5, delay_s=delay))
        return res.t[np.argmax(res.state[:, 6] > 0.01)]

    assert steer_onset(0.2) - steer_onset(0.0) == pytest.approx(0.2, abs=0.021)


def test_noise_is_seeded():
    track = circle_track(radius=10.0, width=2.0)
    sim = SimConfig(laps=1, max_time_s=2.0, noise=NoiseConfig(pos=0.05, yaw=0.01), seed=7)
    runs = [simulate(track, make_controller("pure_pursuit", track, F1), make_plant("dynamic", F1), F1, sim)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].measured, runs[1].measured)
    assert np.std(runs[0].measured[:, 0] - runs[0].state[:, 0]) == pytest.approx(0.05, rel=0.3)


def test_kinematic_plant_and_import_path_plant():
    assert {"dynamic", "kinematic"} <= set(known_plants())
    mod = types.ModuleType("my_test_plants")

    class Unicycle:
        """A user plant: perfect speed tracking, yaw rate from the steering angle."""

        def __init__(self, params, plant_hz=1000.0):
            self.L = params.wheelbase
            self.x = np.zeros(7)

        def reset(self, x0):
            self.x = np.array(x0, dtype=float)

        def step(self, command, dt):
            self.x[3] = command.speed
            self.x[6] = command.steering_angle
            r = command.speed * math.tan(command.steering_angle) / self.L
            self.x[2] += r * dt
            self.x[0] += command.speed * math.cos(self.x[2]) * dt
            self.x[1] += command.speed * math.sin(self.x[2]) * dt
            self.x[5] = r
            return self.x.copy()

    mod.Unicycle = Unicycle
    sys.modules["my_test_plants"] = mod
    track = circle_track(radius=10.0, width=2.0)
    for spec in ("kinematic", "my_test_plants:Unicycle"):
        res = simulate(track, make_controller("pure_pursuit", track, F1), make_plant(spec, F1), F1,
                       SimConfig(laps=1))
        assert res.status == "completed" and res.off_track == 0, spec
    with pytest.raises(ValueError, match="unknown plant 'nope'; known plants: .*dynamic"):
        make_plant("nope", F1)
    with pytest.raises(ValueError, match="has no attribute 'Nope'"):
        make_plant("my_test_plants:Nope", F1)


def test_result_save_load_and_summary(tmp_path):
    track = circle_track(radius=10.0, width=2.0)
    res = simulate(track, make_controller("pure_pursuit", track, F1), make_plant("dynamic", F1), F1,
                   SimConfig(laps=1), run_config={"track": {"name": "circle"}, "car": {"name": "f1tenth"},
                                                   "controller": {"name": "pure_pursuit"}})
    d = res.save(tmp_path / "run")
    for f in ("result.npz", "summary.json", "config.yaml", "log.csv", "events.json"):
        assert (d / f).is_file()
    back = SimResult.load(d)
    np.testing.assert_array_equal(back.state, res.state)
    assert back.laps == res.laps
    s = back.summary()
    for key in ("track", "car", "controller", "rate_hz", "laps", "best_lap_s", "off_track", "deadline_misses",
                "compute_ms", "status"):
        assert key in s
    assert s["rate_hz"] == 50.0 and s["track"] == "circle"
    assert set(s["compute_ms"]) == {"p50", "p99", "max"}
    from racing.logs import read_log

    log = read_log(d / "log.csv")
    np.testing.assert_allclose(log.state, res.state, rtol=1e-8, atol=1e-8)


class Wobble(Controller):
    """Pure pursuit with a steering pulse: the car leaves the track for a moment and comes back."""

    name = "wobble"

    def __init__(self, inner, t0=3.0, dur=0.2, steer=-0.15):
        self.inner, self.t0, self.dur, self.steer = inner, t0, dur, steer

    def reset(self, observation=None):
        self.inner.reset()

    def act(self, observation, t):
        c = self.inner.act(observation, t)
        return Command(self.steer, c.speed, c.acceleration) if self.t0 <= t < self.t0 + self.dur else c


def test_an_excursion_is_completed_with_incidents_not_a_clean_success():
    track = load_track("lab_loop")
    res = simulate(track, Wobble(make_controller("pure_pursuit", track, F1)), make_plant("dynamic", F1), F1,
                   SimConfig(laps=1))
    assert len(res.laps) == 1 and res.off_track == 1
    assert res.status == "completed_with_incidents" and res.outcome == "incidents" and res.exit_code == 3
    s = res.summary()
    assert s["status"] == "completed_with_incidents" and s["outcome"] == "incidents" and s["exit_code"] == 3
    assert s["incidents"]["off_track"] == 1
    clean = simulate(track, make_controller("pure_pursuit", track, F1), make_plant("dynamic", F1), F1,
                     SimConfig(laps=1))
    assert clean.status == "completed" and clean.outcome == "clean" and clean.exit_code == 0


def test_realtime_misses_on_a_completed_run_are_incidents():
    track = circle_track(radius=3.0, width=1.0)
    calls = {"n": 0}

    class SlowSometimes(Constant):
        def act(self, observation, t):
            calls["n"] += 1
            self.sleep = 0.03 if calls["n"] % 100 == 0 else 0.0
            return super().act(observation, t)

    ctrl = SlowSometimes(steer=math.atan(F1.wheelbase / 3.0), speed=3.0)
    res = simulate(track, ctrl, make_plant("dynamic", F1), F1, SimConfig(laps=1, realtime=True))
    assert len(res.laps) == 1 and res.off_track == 0 and res.deadline_misses >= 1
    assert res.status == "completed_with_incidents" and res.exit_code == 3
    assert res.summary()["incidents"]["deadline_misses"] == res.deadline_misses


def test_compute_over_the_period_is_counted_off_line_too():
    track = circle_track(radius=20.0, width=5.0)
    ctrl = Constant(steer=math.atan(F1.wheelbase / 20.0), speed=2.0, sleep=0.03)  # 30 ms > 20 ms
    res = simulate(track, ctrl, make_plant("dynamic", F1), F1, SimConfig(laps=1, max_time_s=0.2))
    assert res.deadline_misses == 0  # off-line: no simulated time lost
    assert res.compute_over_period == res.t.size  # every call took 30 ms
    s = res.summary()
    assert s["period_ms"] == pytest.approx(20.0) and s["compute_over_period"] == res.compute_over_period
    assert s["status"] == "timeout" and s["outcome"] == "failed" and s["exit_code"] == 1


# ------------------------------------------------------------------ bad arguments (issue 27)
def test_start_speed_above_the_cars_top_speed_is_refused():
    assert SimConfig(start_speed=12.0).check_for(F1).start_speed == 12.0
    with pytest.raises(ConfigError, match=r"SimConfig: start_speed: 1000 m/s is above the top speed v_max = 12 m/s of "
                                          r"car 'f1tenth'; expected 0 .. 12 m/s"):
        SimConfig(start_speed=1000.0).check_for(F1)
    track = load_track("lab_loop")
    ctrl = make_controller("pure_pursuit", track, F1)
    with pytest.raises(ConfigError, match=r"start_speed: 1000 m/s is above the top speed"):
        simulate(track, ctrl, make_plant("dynamic", F1), F1, SimConfig(start_speed=1000.0))


@pytest.mark.parametrize("arg,value,pattern", [
    ("sim", "x", r"simulate: sim must be a racing.sim.simulator.SimConfig \(e.g. SimConfig\(laps=1\)\), got str 'x'"),
    ("plant_params", "f1tenth", r"simulate: plant_params \(the car\) must be a racing.models.params.VehicleParams"),
    ("track", "lab_loop", r"simulate: track must be a racing.track.Track \(racing.load_track\), got str"),
    ("controller", None, r"simulate: controller must be a controller with reset\(\) and act\(\)"),
    ("plant", 3, r"simulate: plant must be a plant with reset\(x0\) and step\(command, dt\)"),
])
def test_simulate_names_an_argument_of_the_wrong_type(arg, value, pattern):
    track = load_track("lab_loop")
    kw = dict(track=track, controller=make_controller("pure_pursuit", track, F1), plant=make_plant("dynamic", F1),
              plant_params=F1, sim=SimConfig(laps=1))
    kw[arg] = value
    with pytest.raises(TypeError, match=pattern):
        simulate(**kw)


def test_api_simulate_names_the_sim_argument():
    import racing

    track = racing.load_track("lab_loop")
    with pytest.raises(TypeError, match=r"simulate: sim must be a racing.sim.simulator.SimConfig"):
        racing.api.simulate(track, make_controller("pure_pursuit", track, F1), make_plant("dynamic", F1), F1, sim="x")


@pytest.mark.parametrize("plant", ["dynamic", "dynamic_ext"])
def test_a_pi_speed_loop_in_the_car_file_is_simulated(plant):
    """A car whose speed loop integrates (``speed_ki``) holds a constant set-point against drag and rolling
    resistance without the P loop's steady error (resistance / speed_kp), and its integral is emptied by a reset."""
    def settled(params) -> float:
        pl = make_plant(plant, params)
        x0 = np.zeros(7)
        x0[3] = 5.0
        pl.reset(x0)
        for _ in range(300):
            x = pl.step(Command(0.0, 5.0, 0.0), 0.1)
        return 5.0 - float(x[3])

    p_err, pi_err = settled(F1), settled(F1.replace(speed_ki=4.0))
    assert p_err > 0.02 and abs(pi_err) < 0.1 * p_err
    pl = make_plant(plant, F1.replace(speed_ki=4.0))
    pl.reset(np.array([0, 0, 0, 5.0, 0, 0, 0.0]))
    pl.step(Command(0.0, 8.0, 0.0), 1.0)
    pl.reset(np.array([0, 0, 0, 5.0, 0, 0, 0.0]))
    assert pl._integ[0] == 0.0


def test_a_car_that_stands_on_the_track_has_stalled():
    """A car slower than stall_speed for stall_timeout_s ends the run as 'stalled' (a failure, the event saying
    where and since when), not as a timeout at max_time; one that keeps moving does not."""
    from racing.sim.simulator import stall_speed

    track = circle_track(radius=20.0, width=5.0)
    res = simulate(track, Constant(steer=0.0, speed=0.0), make_plant("dynamic", F1), F1,
                   SimConfig(laps=1, max_time_s=30.0, stall_timeout_s=2.0))
    assert res.status == "stalled" and res.outcome == "failed" and res.exit_code == 1
    ev = [e for e in res.events if e["type"] == "stalled"]
    assert len(ev) == 1 and ev[0]["t"] == pytest.approx(2.0, abs=0.05) and res.t[-1] < 3.0
    assert stall_speed(F1) == pytest.approx(max(0.3, 0.02 * F1.v_max))
    moving = simulate(track, Constant(steer=math.atan(F1.wheelbase / 20.0), speed=1.0), make_plant("dynamic", F1), F1,
                      SimConfig(laps=1, max_time_s=4.0, stall_timeout_s=2.0))
    assert moving.status == "timeout"
