"""The runtime loop and its watchdog: deadline accounting on a fake clock, every trip reason, logs.

Timing-based tests (real clock) use generous margins and assert only which reason tripped.
"""
from __future__ import annotations

import math
import time

import numpy as np

from racing.control.base import Command, Controller
from racing.runtime.vehicle import Vehicle


class FakeClock:
    """A monotonic clock that only moves when something sleeps or spends time."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, dt: float) -> None:
        self.sleeps.append(dt)
        self.now += max(dt, 0.0)

    def spend(self, dt: float) -> None:
        self.now += dt


class ScriptedVehicle(Vehicle):
    """Returns a new state on every ``latest_state()`` call (vehicle time = clock), until ``silent_after``
    states; ``state_fn(i) -> float64[7]`` gives the i-th state (default: driving along +x at 2 m/s)."""

    def __init__(self, clock, silent_after: int | None = None, state_fn=None):
        super().__init__()
        self.clock = clock
        self.silent_after = silent_after
        self.state_fn = state_fn or (lambda i: np.array([0.02 * 2.0 * i, 0, 0, 2.0, 0, 0, 0]))
        self.calls = 0
        self.commands: list[tuple[Command, float]] = []
        self.heartbeats = 0
        self.stops: list[int] = []
        self.connected = False

    def connect(self):
        self.connected = True

    def latest_state(self):
        i = self.calls
        self.calls += 1
        if self.silent_after is not None and i >= self.silent_after:
            return None
        self.stats.states += 1
        return float(self.clock()) + 1e-6 * i, self.state_fn(i)

    def send(self, command, t=0.0):
        self.commands.append((command, t))

    def heartbeat(self, t=0.0):
        self.heartbeats += 1

    def stop(self, reason=0, t=0.0):
        self.stops.append(int(reason))

    def close(self):
        self.connected = False


class TimedController(Controller):
    """Spends ``cost(i)`` seconds of the given clock (fake: advances it; real: sleeps) per call."""

    name = "timed"

    def __init__(self, clock=None, cost=lambda i: 0.0, command=lambda i: Command(0.0, 1.0, 0.0), real=False):
        self.clock, self.cost, self.command, self.real = clock, cost, command, real
        self.calls: list[float] = []

    def act(self, observation, t):
        i = len(self.calls)
        self.calls.append(t)
        c = self.cost(i)
        if c > 0:
            if self.real:
                time.sleep(c)
            else:
                self.clock.spend(c)
        return self.command(i)


def nan_command() -> Command:
    """A Command that slipped past validation (e.g. built with object.__new__ by foreign code)."""
    cmd = object.__new__(Command)
    object.__setattr__(cmd, "steering_angle", 0.0)
    object.__setattr__(cmd, "speed", math.nan)
    object.__setattr__(cmd, "acceleration", 0.0)
    return cmd


import os
import signal

import pytest

from racing.logs import read_log
from racing.runtime import protocol as proto
from racing.runtime.loop import LoopConfig, RuntimeLoop, run_with_signals
from racing.runtime.watchdog import WatchdogConfig

P = 0.02  # 50 Hz


def make_loop(controller, vehicle, clock, hang=None, **kw):
    wd = dict(hang_timeout_s=hang)
    for k in ("state_timeout_s", "connect_timeout_s", "max_consecutive_misses", "off_track_margin_m"):
        if k in kw:
            wd[k] = kw.pop(k)
    lc = {k: kw.pop(k) for k in list(kw) if k in ("duration_s", "laps", "warmup_calls", "on_state_timeout",
                                                   "reconnect_timeout_s", "actuation_delay_s", "compensate")}
    lc.setdefault("warmup_calls", 0)
    conf = LoopConfig(rate_hz=1.0 / P, watchdog=WatchdogConfig(**wd), **lc)
    return RuntimeLoop(controller, vehicle, conf, clock=clock, sleep=getattr(clock, "sleep", time.sleep), **kw)


# --- deadline accounting (fake clock) ---------------------------------------------------------------
def test_fixed_rate_on_absolute_deadlines_without_drift():
    clock = FakeClock()
    veh = ScriptedVehicle(clock)
    ctl = TimedController(clock, cost=lambda i: 0.3 * P + 1e-7 * i)  # slowly growing compute: no drift allowed
    res = make_loop(ctl, veh, clock, duration_s=2.0).run()
    assert res.status == "completed" and res.watchdog is None
    assert res.ticks == 100 and res.control_ticks == 100 and res.deadline_misses == 0 and res.skipped_ticks == 0
    np.testing.assert_allclose(ctl.calls, P * np.arange(100), atol=1e-9)
    assert len(veh.commands) == 100
    assert veh.stops == [proto.StopReason.NORMAL] * 3
    s = res.summary()
    assert s["compute_ms"]["p50"] == pytest.approx(0.3 * P * 1e3, rel=0.01)
    assert set(s["compute_ms"]) == {"p50", "p99", "max"}


def test_one_long_tick_skips_slots_instead_of_bursting():
    clock = FakeClock()
    ctl = TimedController(clock, cost=lambda i: 2.5 * P if i == 10 else 0.1 * P)
    res = make_loop(ctl, ScriptedVehicle(clock), clock, duration_s=1.0).run()
    assert res.status == "completed"
    assert res.deadline_misses == 1 and res.skipped_ticks == 1 and res.ticks == 49
    t = np.array(ctl.calls)
    assert t[11] == pytest.approx(12.5 * P)  # runs at once in the current slot, late...
    assert t[12] == pytest.approx(13 * P)  # ...then back on the grid
    slots = np.floor(t / P + 1e-9)
    assert np.all(np.diff(slots) >= 1)  # never two ticks in one slot


def test_consecutive_deadline_misses_trip_the_watchdog():
    clock = FakeClock()
    veh = ScriptedVehicle(clock)
    res = make_loop(TimedController(clock, cost=lambda i: 1.5 * P), veh, clock, duration_s=5.0).run()
    assert res.status == "watchdog:deadline_misses"
    assert res.deadline_misses == 5 and "5 consecutive" in res.watchdog.detail
    assert veh.stops == [proto.StopReason.DEADLINE_MISSES] * 3


def test_isolated_misses_do_not_trip():
    clock = FakeClock()
    res = make_loop(TimedController(clock, cost=lambda i: 1.5 * P if i % 2 == 0 else 0.0), ScriptedVehicle(clock),
                    clock, duration_s=1.0).run()
    assert res.status == "completed" and res.deadline_misses > 5


# --- trip reasons ---------------------------------------------------------------------------------
def test_state_timeout_when_the_vehicle_goes_silent():
    clock = FakeClock()
    veh = ScriptedVehicle(clock, silent_after=20)
    res = make_loop(TimedController(clock), veh, clock, duration_s=5.0).run()
    assert res.status == "watchdog:state_timeout" and "no fresh state" in res.watchdog.detail
    assert veh.stops == [proto.StopReason.STATE_TIMEOUT] * 3
    assert res.watchdog.t < 1.0


def test_state_timeout_when_no_state_ever_arrives():
    clock = FakeClock()
    veh = ScriptedVehicle(clock, silent_after=0)
    res = make_loop(TimedController(clock), veh, clock, duration_s=5.0, connect_timeout_s=0.5).run()
    assert res.status == "watchdog:state_timeout" and "no state received" in res.watchdog.detail
    assert veh.heartbeats > 10 and veh.commands == [] and res.control_ticks == 0


def test_a_frozen_vehicle_clock_is_not_fresh():
    clock = FakeClock()
    veh = ScriptedVehicle(clock)
    veh.latest_state = lambda: (5.0, np.zeros(7))  # the same measurement over and over
    res = make_loop(TimedController(clock), veh, clock, duration_s=5.0).run()
    assert res.status == "watchdog:state_timeout"


def test_controller_exception_trips():
    clock = FakeClock()
    veh = ScriptedVehicle(clock)

    def boom(i):
        if i == 3:
            raise RuntimeError("solver exploded")
        return Command(0.0, 1.0)

    res = make_loop(TimedController(clock, command=boom), veh, clock, duration_s=5.0).run()
    assert res.status == "watchdog:controller_error" and "solver exploded" in res.watchdog.detail
    assert veh.stops == [proto.StopReason.CONTROLLER_ERROR] * 3 and len(veh.commands) == 3


@pytest.mark.parametrize("bad", [nan_command, lambda: None, lambda: (0.0, 1.0)])
def test_non_finite_or_foreign_command_trips(bad):
    clock = FakeClock()
    veh = ScriptedVehicle(clock)
    res = make_loop(TimedController(clock, command=lambda i: bad() if i == 2 else Command(0.0, 1.0)), veh, clock,
                    duration_s=5.0).run()
    assert res.status == "watchdog:bad_command"
    assert len(veh.commands) == 2  # the bad one was never sent
    assert veh.stops == [proto.StopReason.BAD_COMMAND] * 3


def test_a_command_the_car_does_not_take_trips_and_is_never_sent():
    from racing.interfaces import DRIVE_INTERFACES

    clock = FakeClock()
    veh = ScriptedVehicle(clock)
    ctl = TimedController(clock, command=lambda i: Command(0.0, 1.0, 2.0 if i == 2 else 0.0))
    res = make_loop(ctl, veh, clock, duration_s=5.0, interface=DRIVE_INTERFACES["speed"]).run()
    assert res.status == "watchdog:bad_command" and "does not take an acceleration" in res.watchdog.detail
    assert len(veh.commands) == 2 and veh.stops == [proto.StopReason.BAD_COMMAND] * 3


def test_a_speed_only_vehicle_ignores_the_acceleration_field_and_counts_it():
    from racing.models.params import load_params
    from racing.runtime.vehicle_sim import LoopbackSimVehicle
    from racing.sim.simulator import initial_state
    from racing.track import load_track

    track, params = load_track("lab_loop"), load_params("f1tenth")
    clock = FakeClock()
    veh = LoopbackSimVehicle(params, initial_state(track), clock=clock)
    res = make_loop(TimedController(clock, command=lambda i: Command(0.0, 2.0, 1.5)), veh, clock,
                    duration_s=1.0).run()
    assert res.status == "completed"
    assert veh.core.stats["acceleration_ignored"] == veh.core.stats["commands"] > 10
    assert veh.core.command.acceleration == 0.0


def test_the_controllers_estimates_end_up_in_the_summary():
    class Estimating(TimedController):
        def estimates(self):
            return {"grip_scale": 0.9, "informed": True}

    clock = FakeClock()
    res = make_loop(Estimating(clock), ScriptedVehicle(clock), clock, duration_s=0.5).run()
    assert res.summary()["estimates"] == {"grip_scale": 0.9, "informed": True}


def test_non_finite_state_trips():
    clock = FakeClock()
    veh = ScriptedVehicle(clock, state_fn=lambda i: np.array([0, 0, 0, np.nan if i == 4 else 1.0, 0, 0, 0]))
    res = make_loop(TimedController(clock), veh, clock, duration_s=5.0).run()
    assert res.status == "watchdog:bad_state" and len(veh.commands) == 4


def test_off_track_trips_with_a_track():
    from racing.track import load_track

    track = load_track("lab_loop")

    def state(i):
        n = 0.0 if i < 5 else 3.0  # the boundary is 1 m from the centre line; margin 0.5 m
        x, y = track.to_cartesian(np.array([2.0 + 0.05 * i]), np.array([n]))[0]
        return np.array([x, y, track.psi[0], 2.0, 0, 0, 0])

    clock = FakeClock()
    veh = ScriptedVehicle(clock, state_fn=state)
    res = make_loop(TimedController(clock), veh, clock, duration_s=5.0, off_track_margin_m=0.5, track=track).run()
    assert res.status == "watchdog:off_track" and "beyond the boundary" in res.watchdog.detail
    assert veh.stops == [proto.StopReason.OFF_TRACK] * 3 and res.off_track == 1


def test_request_stop_and_sigint_end_gracefully(tmp_path):
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the test process was started in the background
    clock = FakeClock()
    veh = ScriptedVehicle(clock)

    def cmd(i):
        if i == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return Command(0.0, 1.0)

    loop = make_loop(TimedController(clock, command=cmd), veh, clock, log_path=tmp_path / "d.csv")
    res = run_with_signals(loop)  # no duration: only the signal ends it
    assert res.status == "interrupted" and res.watchdog is None
    assert veh.stops == [proto.StopReason.INTERRUPTED] * 3
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found is put back
    assert read_log(tmp_path / "d.csv").t.size == res.log_rows >= 5


# --- the log ----------------------------------------------------------------------------------------
def test_log_rows_flushed_with_resolved_config(tmp_path):
    clock = FakeClock()
    veh = ScriptedVehicle(clock)
    path = tmp_path / "drive.csv"
    res = make_loop(TimedController(clock), veh, clock, duration_s=1.0, log_path=path,
                    meta={"controller": {"name": "timed"}}).run()
    log = read_log(path)
    assert log.t.size == res.log_rows == res.control_ticks == 50
    assert '"rate_hz":50.0' in log.meta["loop"] and '"state_timeout_s":0.03' in log.meta["loop"]
    assert log.meta["controller"] == '{"name":"timed"}' and log.meta["protocol"] == "RCNG v1"
    np.testing.assert_allclose(log.command[:, 1], 1.0)
    np.testing.assert_allclose(log.state[:, 3], 2.0)


def test_warm_up_runs_off_the_clock_then_resets():
    clock = FakeClock()
    resets = []

    class Warm(TimedController):
        def reset(self, observation=None):
            resets.append(len(self.calls))

    ctl = Warm(clock, cost=lambda i: 0.5 if i == 0 else 0.1 * P)  # a 0.5 s first call (JIT) ...
    veh = ScriptedVehicle(clock)
    res = make_loop(ctl, veh, clock, duration_s=1.0, warmup_calls=2).run()
    assert resets == [2] and res.warmup_s == [pytest.approx(0.5), pytest.approx(0.1 * P)]
    assert res.status == "completed" and res.deadline_misses == 0 and res.ticks == 50  # ... costs no deadline
    assert len(ctl.calls) == 52 and len(veh.commands) == 50


def test_controller_failing_in_warm_up_never_drives():
    clock = FakeClock()
    veh = ScriptedVehicle(clock)

    def boom(i):
        raise RuntimeError("no model")

    res = make_loop(TimedController(clock, command=boom), veh, clock, duration_s=1.0, warmup_calls=1).run()
    assert res.status == "watchdog:controller_error" and "warm-up" in res.watchdog.detail
    assert veh.commands == [] and veh.stops == [proto.StopReason.CONTROLLER_ERROR] * 3


def test_laps_need_a_track():
    clock = FakeClock()
    with pytest.raises(ValueError, match="track"):
        make_loop(TimedController(clock), ScriptedVehicle(clock), clock, laps=1)


# --- with the simulated car on a fake clock ------------------------------------------------------------
def test_pure_pursuit_laps_the_in_process_twin_on_a_fake_clock(tmp_path):
    from racing.control import make_controller
    from racing.models.params import load_params
    from racing.runtime.vehicle_sim import LoopbackSimVehicle
    from racing.sim.simulator import initial_state
    from racing.track import load_track

    track, params = load_track("lab_loop"), load_params("f1tenth")
    clock = FakeClock()
    veh = LoopbackSimVehicle(params, initial_state(track), clock=clock)
    ctl = make_controller("pure_pursuit", track, params)
    res = make_loop(ctl, veh, clock, laps=1, duration_s=60.0, track=track, off_track_margin_m=0.3,
                    log_path=tmp_path / "lap.csv").run()
    assert res.status == "completed" and res.watchdog is None, res.events
    assert len(res.laps) == 1 and 8.0 < res.laps[0] < 40.0
    assert res.deadline_misses == 0 and res.link["dropped"] == 0
    assert veh.core.mode == "stopped" and veh.core.stats["stop_reason"] == "normal"
    assert read_log(tmp_path / "lap.csv").t.size == res.control_ticks


# --- real clock: generous margins, assert only the reason ----------------------------------------------
def test_real_clock_slow_controller_trips_on_deadline_misses():
    veh = ScriptedVehicle(time.perf_counter)
    ctl = TimedController(cost=lambda i: 2.5 * P, real=True)  # every call at least 2.5 periods
    res = make_loop(ctl, veh, time.perf_counter, duration_s=30.0, state_timeout_s=30.0, hang=30.0).run()
    assert res.status == "watchdog:deadline_misses"


def test_supervisor_stops_the_car_while_the_controller_hangs():
    veh = ScriptedVehicle(time.perf_counter)
    seen = {}

    def cost(i):
        return 1.5 if i == 3 else 0.0

    class Hanging(TimedController):
        def act(self, observation, t):
            cmd = super().act(observation, t)
            if len(self.calls) == 4:
                seen["stops_while_hung"] = list(veh.stops)
            return cmd

    res = make_loop(Hanging(cost=cost, real=True), veh, time.perf_counter, hang=0.3, duration_s=30.0,
                    state_timeout_s=30.0, max_consecutive_misses=100).run()
    assert res.status == "watchdog:loop_hang"
    assert proto.StopReason.LOOP_HANG in seen["stops_while_hung"]  # sent from the supervisor thread


# --- link loss: STOP on time, wait, resume ----------------------------------------------------------
class GappyVehicle(ScriptedVehicle):
    """States (vehicle time = the clock) except in the loop-time windows ``gaps``; records when each
    STOP was sent; ``age`` [s] = what the link reports as the age of each state."""

    def __init__(self, clock, gaps=(), age=None):
        super().__init__(clock)
        self.gaps, self.age, self.t0 = gaps, age, None
        self.stop_times: list[float] = []
        self.sent_at: list[float] = []
        self.measured_at: list[float] = []  # loop time of each state's measurement

    def connect(self):
        self.t0 = self.clock()
        super().connect()

    def latest_state(self):
        t = self.clock() - self.t0
        if any(a <= t < b for a, b in self.gaps):
            return None
        self.calls += 1
        self.stats.states += 1
        self.measured_at.append(t - (self.age or 0.0))
        return self.clock() - (self.age or 0.0), self.state_fn(self.calls)

    def state_age(self, t_meas):
        return None if self.age is None else self.clock() - t_meas

    def send(self, command, t=0.0):
        super().send(command, t)
        self.sent_at.append(self.clock() - self.t0)

    def stop(self, reason=0, t=0.0):
        super().stop(reason, t)
        self.stop_times.append(self.clock() - self.t0)


@pytest.mark.parametrize("age", [None, 0.008])
def test_stop_leaves_within_two_periods_of_the_last_state(age):
    clock = FakeClock()
    veh = GappyVehicle(clock, gaps=[(0.5, 99.0)], age=age)
    res = make_loop(TimedController(clock, cost=lambda i: 0.2 * P), veh, clock, duration_s=5.0).run()
    assert res.status == "watchdog:state_timeout"
    last_state = veh.measured_at[-1]
    assert veh.stops == [proto.StopReason.STATE_TIMEOUT] * 3
    first_stop = veh.stop_times[0]
    # the loop wakes for the deadline between ticks (at worst it notices at the end of a tick: + 0.2 P of work)
    assert 1.5 * P - 1e-9 <= first_stop - last_state <= 1.7 * P + 1e-3 < 2 * P
    assert any(e["type"] == "state_timeout" and e["last_state_ms_ago"] <= 2e3 * P for e in res.events)


def test_wait_mode_stops_then_resumes_with_a_new_log_segment(tmp_path):
    clock = FakeClock()
    veh = GappyVehicle(clock, gaps=[(1.0, 1.6)], age=0.004)
    resets = []

    class Counting(TimedController):
        def reset(self, observation=None):
            resets.append(len(self.calls))

    ctl = Counting(clock, cost=lambda i: 0.1 * P)
    res = make_loop(ctl, veh, clock, duration_s=3.0, on_state_timeout="wait", reconnect_timeout_s=5.0,
                    log_path=tmp_path / "run.csv").run()
    assert res.status == "completed" and res.watchdog is None, res.events
    assert veh.stops == [proto.StopReason.STATE_TIMEOUT] * 3 + [proto.StopReason.NORMAL] * 3
    (loss,) = res.link_losses
    assert loss["stop_after_last_state_ms"] <= 2e3 * P and loss["due_after_last_state_ms"] == pytest.approx(30.0)
    assert 1.0 <= veh.stop_times[0] <= 1.0 + 2 * P
    assert not any(1.0 + 2 * P < t < 1.6 for t in veh.sent_at)  # no commands while the vehicle was gone
    assert veh.heartbeats >= 20  # HEARTBEATs meanwhile, so a restarted vehicle finds the computer
    kinds = [e["type"] for e in res.events]
    assert kinds.count("link_lost") == 1 and kinds.count("resumed") == 1 and len(resets) == 2
    assert res.logs == [str(tmp_path / "run.csv"), str(tmp_path / "run.seg2.csv")]
    first, second = read_log(res.logs[0]), read_log(res.logs[1])
    assert first.t[-1] < 1.0 + 2 * P <= 1.6 <= second.t[0]
    assert first.t.size + second.t.size == res.log_rows == res.control_ticks
    assert second.meta["segment"] == "2" and second.meta["previous"] == res.logs[0]
    assert res.summary()["state_age_ms"]["p50"] == pytest.approx(4.0)


def test_wait_mode_gives_up_after_the_reconnect_timeout():
    clock = FakeClock()
    veh = GappyVehicle(clock, gaps=[(0.5, 99.0)])
    res = make_loop(TimedController(clock), veh, clock, duration_s=20.0, on_state_timeout="wait",
                    reconnect_timeout_s=2.0).run()
    assert res.status == "watchdog:state_timeout" and "after the link loss" in res.watchdog.detail
    assert 2.4 < res.watchdog.t < 2.7
    assert veh.stops == [proto.StopReason.STATE_TIMEOUT] * 6


def test_period_jitter_and_state_age_in_the_summary():
    clock = FakeClock()
    veh = GappyVehicle(clock, age=0.003)
    res = make_loop(TimedController(clock, cost=lambda i: 0.1 * P), veh, clock, duration_s=1.0).run()
    s = res.summary()
    assert s["period_jitter_ms"]["max"] == pytest.approx(0.0, abs=1e-6) and len(res.jitter_s) == 49
    assert s["state_age_ms"]["p50"] == pytest.approx(3.0) and s["compensation"]["enabled"] is False
