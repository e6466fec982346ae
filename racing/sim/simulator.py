"""The closed-loop race simulator: a controller drives a plant around a track at a fixed rate.

Timing model. The controller is called every ``1 / rate_hz`` seconds with a (noisy)
observation. Its command reaches the actuators ``delay_s`` later; in real-time mode the
measured compute time is added to that latency, and a call that takes longer than the period
is a deadline miss: the previous command stays applied until the late one lands, and the
ticks that passed meanwhile are skipped (a single-threaded loop). Off-line (default) the
compute time is measured but costs no simulated time.

Off-line the number of calls that took longer than the period is still counted
(``compute_over_period``): the run's figures hold, but the controller would not have kept up.

Outcome. A run that finished its laps is ``completed`` when nothing happened on the way and
``completed_with_incidents`` when the car left the track (and came back) or, in real-time mode,
missed deadlines; ``off_track``, ``stalled`` (the car stood on the track, slower than
:func:`stall_speed`, for ``stall_timeout_s``: after a spin, say, with no controller driving it off again),
``timeout`` and ``diverged`` are failures (see :data:`racing.sim.result.EXIT_CODES`).

Laps are counted on the unwrapped arc-length progress of the true state: lap k ends when
progress crosses k * track length (the crossing time is interpolated between ticks). The car
is off track when its centre is beyond a boundary; the run stops with status ``off_track`` if
it stays off for ``off_track_timeout_s`` or goes further than one track width outside.
"""
from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass, field

import numpy as np

from racing import config as cfg
from racing.control.base import ACT_BUDGET, Command, Controller, Observation
from racing.interfaces import DriveInterface, drive_interface
from racing.models.dynamic import NX, STATE_NAMES, VX
from racing.models.params import VehicleParams
from racing.sim.result import SimResult


#: the most control ticks one run may hold (time series in memory: ~200 bytes per tick)
MAX_TICKS = 10_000_000


@dataclass(frozen=True)
class NoiseConfig:
    """Standard deviations of the Gaussian measurement noise (0 = none)."""

    pos: float = field(default=0.0, metadata={"unit": "m", "min": 0.0})
    yaw: float = field(default=0.0, metadata={"unit": "rad", "min": 0.0})
    vel: float = field(default=0.0, metadata={"unit": "m/s", "min": 0.0})
    yaw_rate: float = field(default=0.0, metadata={"unit": "rad/s", "min": 0.0})
    steer: float = field(default=0.0, metadata={"unit": "rad", "min": 0.0})

    def __post_init__(self):
        cfg.validate(self)

    def std(self) -> np.ndarray:
        return np.array([self.pos, self.pos, self.yaw, self.vel, self.vel, self.yaw_rate, self.steer])


@dataclass(frozen=True)
class SimConfig:
    """Closed-loop simulation settings."""

    rate_hz: float = field(default=50.0, metadata={"unit": "Hz", "gt": 0.0, "max": 2000.0})
    plant_hz: float = field(default=1000.0, metadata={"unit": "Hz", "min": 500.0})
    laps: int = field(default=2, metadata={"min": 1})
    max_time_s: float | None = field(default=None, metadata={"unit": "s", "gt": 0.0})
    realtime: bool = False
    delay_s: float = field(default=0.0, metadata={"unit": "s", "min": 0.0})
    noise: NoiseConfig = NoiseConfig()
    seed: int = 0
    start_speed: float = field(default=0.0, metadata={"unit": "m/s", "min": 0.0})
    off_track_timeout_s: float = field(default=1.0, metadata={"unit": "s", "gt": 0.0})
    stall_timeout_s: float = field(default=5.0, metadata={
        "unit": "s", "gt": 0.0, "doc": "a car slower than stall_speed for this long has stalled: the run stops"})
    snapshot_times: tuple[float, ...] = field(default=(), metadata={"unit": "s", "min": 0.0})

    def __post_init__(self):
        cfg.validate(self)
        if self.rate_hz > self.plant_hz:
            raise cfg.ConfigError(f"SimConfig: rate_hz = {self.rate_hz:g} Hz is above plant_hz = {self.plant_hz:g} Hz; "
                                  f"expected a control rate at most the plant's integration rate")
        if self.max_time_s is not None:
            ticks = self.max_time_s * self.rate_hz
            if ticks > MAX_TICKS:
                raise cfg.ConfigError(f"SimConfig: max_time_s x rate_hz = {ticks:.3g} control ticks; expected at "
                                      f"most {MAX_TICKS:.0e} (the time series are kept in memory)")
            late = [t for t in self.snapshot_times if t > self.max_time_s]
            if late:
                raise cfg.ConfigError(f"SimConfig: snapshot_times: {late[0]:g} s is after max_time_s = "
                                      f"{self.max_time_s:g} s; expected snapshot times within the run")

    def check_for(self, car: VehicleParams) -> "SimConfig":
        """Check the settings that depend on the car raced (``car``: the plant's parameters); returns ``self``.

        Raises
        ------
        ConfigError
            ``start_speed`` above the car's top speed ``v_max`` [m/s].
        """
        if not isinstance(car, VehicleParams):
            raise TypeError(f"SimConfig.check_for: car must be a VehicleParams, got {type(car).__name__}")
        if self.start_speed > car.v_max:
            raise cfg.ConfigError(f"SimConfig: start_speed: {self.start_speed:g} m/s is above the top speed v_max = "
                                  f"{car.v_max:g} m/s of car {car.name!r}; expected 0 .. {car.v_max:g} m/s")
        return self


def stall_speed(params: VehicleParams) -> float:
    """The speed [m/s] below which a car counts as standing: 2 % of its top speed, at least 0.3 m/s."""
    return max(0.3, 0.02 * params.v_max)


def default_max_time(track_length: float, laps: int, params: VehicleParams) -> float:
    """Generous time limit [s]: every lap at 15% of top speed, plus 20 s."""
    return laps * track_length / (0.15 * params.v_max) + 20.0


def initial_state(track, speed: float = 0.0) -> np.ndarray:
    """On the centre line (or raceline if present) at s = 0, aligned with it, at ``speed`` [m/s]."""
    x0 = np.zeros(NX)
    if track.raceline is not None:
        rl = track.raceline
        x0[0], x0[1], x0[2] = rl.x[0], rl.y[0], rl.psi[0]
    else:
        x0[0], x0[1], x0[2] = track.xy[0, 0], track.xy[0, 1], track.psi[0]
    x0[VX] = speed
    return x0


def _check_arguments(track, controller, plant, plant_params, sim, x0) -> None:
    """TypeError / ConfigError naming the argument of :func:`simulate` that is not what it expects."""
    def need(ok: bool, name: str, what: str, value) -> None:
        if not ok:
            raise TypeError(f"simulate: {name} must be {what}, got {type(value).__name__} {value!r:.60}")

    need(isinstance(sim, SimConfig), "sim", "a racing.sim.simulator.SimConfig (e.g. SimConfig(laps=1))", sim)
    need(isinstance(plant_params, VehicleParams), "plant_params (the car)",
         "a racing.models.params.VehicleParams (racing.load_car)", plant_params)
    need(hasattr(track, "frenet") and hasattr(track, "length"), "track", "a racing.track.Track (racing.load_track)",
         track)
    need(callable(getattr(controller, "act", None)) and callable(getattr(controller, "reset", None)), "controller",
         "a controller with reset() and act() (racing.make_controller)", controller)
    need(callable(getattr(plant, "step", None)) and callable(getattr(plant, "reset", None)), "plant",
         "a plant with reset(x0) and step(command, dt) (racing.make_plant)", plant)
    if x0 is not None and np.shape(x0) != (NX,):
        raise cfg.ConfigError(f"simulate: x0 has shape {np.shape(x0)}; expected ({NX},) ({', '.join(STATE_NAMES)})")
    sim.check_for(plant_params)


def simulate(track, controller: Controller, plant, plant_params: VehicleParams, sim: SimConfig = SimConfig(),
             run_config: dict | None = None, progress=None, x0: np.ndarray | None = None) -> SimResult:
    """Race ``controller`` on ``plant`` around ``track``.

    Parameters
    ----------
    track : racing.track.Track
    controller : Controller (already built with its own model parameters)
    plant : object with reset(x0[7]) and step(command, dt) -> x[7] (see racing.sim.plant)
    plant_params : the plant's parameters (for limits and the time budget; its ``drive_interface`` says which
                   command fields the car takes: a command with another raises
                   :class:`racing.interfaces.InterfaceError`)
    sim : SimConfig
    run_config : extra resolved configuration stored in the result (track, cars, controller)
    progress : optional callable(fraction_done: float, laps_done: int) called every tick
    x0 : initial true state float64[7] (default: :func:`initial_state`)

    Returns
    -------
    SimResult
    """
    _check_arguments(track, controller, plant, plant_params, sim, x0)
    max_time = sim.max_time_s if sim.max_time_s is not None else default_max_time(track.length, sim.laps,
                                                                                  plant_params)
    # a plant valid only when rolling (CommonRoad MB) says how fast a race on it starts
    v0 = max(sim.start_speed, float(getattr(plant, "min_start_speed", 0.0)))
    x = initial_state(track, v0) if x0 is None else np.asarray(x0, dtype=float).copy()
    plant.reset(x)
    controller.reset(Observation(0.0, x.copy()))
    run = _Run(track, controller, plant, sim, int(math.ceil(max_time * sim.rate_hz)) + 2, x, progress,
               drive_interface(plant_params.drive_interface), stall_speed(plant_params))
    # real-time mode: no cyclic garbage collection inside the timed loop (a full collection in a big
    # process can take longer than a control period; the loop makes no reference cycles)
    gc_was_enabled = gc.isenabled()
    if sim.realtime:  # compute time delays the command: an anytime controller keeps within the period
        gc.disable()
        _budget(controller, ACT_BUDGET / sim.rate_hz)
    try:
        run.loop()
    finally:
        if gc_was_enabled:
            gc.enable()
        report = getattr(controller, "compute_report", dict)()
        _budget(controller, None)
    result = run.result(run_config)
    est = controller.estimates()
    if est:
        result.config["estimates"] = est
    result.config.update(report)
    return result


def _budget(controller, seconds) -> None:
    """:meth:`Controller.set_time_budget` where the controller has it (a duck-typed one may not)."""
    hook = getattr(controller, "set_time_budget", None)
    if hook is not None:
        hook(seconds)


class _Run:
    """One simulated race in progress: the time series (buffers made once, ``n_max`` ticks), the lap and off-track
    bookkeeping, the commands waiting for their delay, and the true state ``x[7]``."""

    def __init__(self, track, controller, plant, sim: SimConfig, n_max: int, x: np.ndarray, progress,
                 interface: DriveInterface, v_stall: float):
        self.track, self.controller, self.plant, self.sim, self.progress = track, controller, plant, sim, progress
        self.interface, self.v_stall = interface, float(v_stall)
        self.period, self.L, self.n_max, self.x = 1.0 / sim.rate_hz, track.length, n_max, x
        self.rng = np.random.default_rng(sim.seed)
        self.noise_std = sim.noise.std()
        self.T, self.CT = np.zeros(n_max), np.zeros(n_max)
        self.S, self.M = np.zeros((n_max, NX)), np.zeros((n_max, NX))
        self.C, self.F = np.zeros((n_max, 3)), np.zeros((n_max, 3))
        s0, _, _ = track.frenet(x[None, :2])
        self.s_prev = float(s0[0])
        self.progress_m = self.s_prev if self.s_prev < 0.5 * self.L else self.s_prev - self.L
        self.start_progress = self.progress_m
        self.laps, self.lap_end, self.events, self.snapshots = [], [], [], []
        self.snap_times = sorted(sim.snapshot_times)
        self.off_track = self.misses = self.n = 0
        self.outside_since = None
        self.moving_at = 0.0  # the last time the car was faster than stall_speed [s]
        self.status = "timeout"
        self.applied = Command(0.0, 0.0, 0.0)
        self.pending: list[tuple[float, Command]] = []
        self.t = self.last_lap_t = 0.0
        self.skip_until = -1.0

    def loop(self) -> None:
        """Tick until the laps are done, the car is off the track for good, the plant diverged or time ran out."""
        while self.n < self.n_max:
            s_now, n_now = self._measure()
            if self._finished(s_now, n_now):
                self.C[self.n] = self.C[self.n - 1] if self.n else 0.0
                self.n += 1
                return
            if self.progress is not None:
                self.progress(min(1.0, (self.progress_m - self.start_progress) / (self.sim.laps * self.L)),
                              len(self.laps))
            self._control()
            ok = self._step_plant()
            self.n += 1
            if not ok:
                return

    def _measure(self) -> tuple[float, float]:
        """Project the true state (locally near the last s: at a crossover, a bridge, the car stays on its own
        branch), count lap crossings (interpolated between ticks), record the tick; ``(s, n)`` [m]."""
        x, L, t, n = self.x, self.L, self.t, self.n
        s_arr, n_arr, dpsi = self.track.frenet(x[None, :2], np.array([x[2]]), hint=self.s_prev)
        s_now, n_now = float(s_arr[0]), float(n_arr[0])
        ds = s_now - self.s_prev
        if ds > 0.5 * L:
            ds -= L
        elif ds < -0.5 * L:
            ds += L
        new_progress = self.progress_m + ds
        while len(self.laps) < self.sim.laps and new_progress - self.start_progress >= (len(self.laps) + 1) * L:
            target = self.start_progress + (len(self.laps) + 1) * L
            frac = (target - self.progress_m) / max(new_progress - self.progress_m, 1e-12)
            t_cross = t - self.period + frac * self.period if n > 0 else t
            self.laps.append(t_cross - self.last_lap_t)
            self.lap_end.append(t_cross)
            self.events.append({"t": t_cross, "type": "lap", "lap": len(self.laps), "time_s": self.laps[-1]})
            self.last_lap_t = t_cross
        self.progress_m, self.s_prev = new_progress, s_now
        meas = x + self.rng.normal(0.0, 1.0, NX) * self.noise_std if self.noise_std.any() else x.copy()
        self.T[n], self.S[n], self.M[n] = t, x, meas
        self.F[n] = (s_now, n_now, float(dpsi[0]))
        return s_now, n_now

    def _finished(self, s_now: float, n_now: float) -> bool:
        """Off-track bookkeeping (an excursion counted once, back on track noted); True when the race ends here:
        off the track for longer than the timeout (or far beyond an edge), or every lap done."""
        t = self.t
        geo = self.track.interp(np.array([s_now]))
        wl, wr = float(geo["w_left"][0]), float(geo["w_right"][0])
        if not -wr <= n_now <= wl:
            if self.outside_since is None:
                self.outside_since = t
                self.off_track += 1
                self.events.append({"t": t, "type": "off_track", "s": s_now, "n": n_now})
            too_far = n_now > 2 * wl + wr or n_now < -(2 * wr + wl)
            if t - self.outside_since >= self.sim.off_track_timeout_s or too_far:
                self.status = "off_track"
                return True
        elif self.outside_since is not None:
            self.events.append({"t": t, "type": "back_on_track", "s": s_now, "after_s": t - self.outside_since})
            self.outside_since = None
        if len(self.laps) >= self.sim.laps:
            self.status = "completed"
            return True
        if math.hypot(self.x[3], self.x[4]) >= self.v_stall:
            self.moving_at = t
        elif t - self.moving_at >= self.sim.stall_timeout_s:
            self.status = "stalled"
            self.events.append({"t": t, "type": "stalled", "s": s_now, "n": n_now, "since": self.moving_at})
            return True
        return False

    def _control(self) -> None:
        """Ask the controller (unless a late call still holds the slot in real-time mode): time the call, take a
        snapshot when due, count a deadline miss, queue the command for its delay."""
        t, n, sim, period = self.t, self.n, self.sim, self.period
        if t + 1e-9 < self.skip_until:
            self.C[n] = self.C[n - 1]
            return
        obs = Observation(t, self.M[n].copy())
        c0 = time.perf_counter()
        cmd = self.controller.act(obs, t)
        comp = time.perf_counter() - c0
        self.interface.check(cmd)  # a field the car does not take: InterfaceError (a controller built for another car)
        self.CT[n] = comp
        self.C[n] = (cmd.steering_angle, cmd.speed, cmd.acceleration)
        if self.snap_times and t >= self.snap_times[0]:
            self.snap_times.pop(0)
            d = self.controller.diagnostics()
            if d:
                self.snapshots.append({"t": t, "state": self.x.copy(), **d})
        latency = sim.delay_s + (comp if sim.realtime else 0.0)
        if sim.realtime and comp > period:
            self.misses += 1
            self.events.append({"t": t, "type": "deadline_miss", "compute_ms": comp * 1e3})
            self.skip_until = t + math.ceil(comp / period) * period
        self.pending.append((t + latency, cmd))

    def _step_plant(self) -> bool:
        """Advance the plant over one period, switching commands when their delay is up; False if it diverged."""
        t_end = self.t + self.period
        t_cur = self.t
        try:
            while True:
                nxt = self.pending[0][0] if self.pending else math.inf
                if nxt <= t_cur + 1e-12:
                    self.applied = self.pending.pop(0)[1]
                    continue
                seg_end = min(nxt, t_end)
                x = self.plant.step(self.applied, seg_end - t_cur)
                t_cur = seg_end
                if t_cur >= t_end - 1e-12:
                    break
        except FloatingPointError:
            self.status = "diverged"
            self.events.append({"t": t_cur, "type": "diverged"})
            return False
        self.x = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(self.x)):
            bad = [STATE_NAMES[i] for i in range(NX) if not np.isfinite(self.x[i])]
            self.status = "diverged"
            self.events.append({"t": t_end, "type": "diverged", "fields": bad})
            return False
        self.t = t_end
        return True

    def result(self, run_config: dict | None) -> SimResult:
        """The :class:`SimResult` of the ticks run (``config``: ``run_config`` with the simulator's settings)."""
        n, period = self.n, self.period
        status = self.status
        if status == "completed" and (self.off_track or self.misses):
            status = "completed_with_incidents"
        config = dict(run_config or {})
        config["sim"] = cfg.to_dict(self.sim)
        return SimResult(t=self.T[:n].copy(), state=self.S[:n].copy(), measured=self.M[:n].copy(),
                         command=self.C[:n].copy(), frenet=self.F[:n].copy(), compute_s=self.CT[:n].copy(),
                         laps=self.laps, lap_end_t=self.lap_end, events=self.events, status=status,
                         off_track=self.off_track, deadline_misses=self.misses, config=config,
                         snapshots=self.snapshots, period_s=period,
                         compute_over_period=int(np.count_nonzero(self.CT[:n] > period)))
