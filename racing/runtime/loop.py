"""The fixed-rate control loop that drives a vehicle: deadlines, overruns, watchdog, log.

Timing. Tick ``k`` is released at ``t0 + k * period`` on a monotonic clock (absolute release
times: no drift) and must finish its work - read the newest state, ``controller.act``, send the
command, write the log row - by ``t0 + (k + 1) * period``; a tick that finishes later is a
*deadline miss*. When a tick overruns so far that the next release's whole slot has already
passed, the loop *skips* those releases (counted as ``skipped_ticks``) and runs the tick of the
current slot at once: it never runs two ticks in one slot to catch up (no bursts). The clock and
the sleep function are injectable, so all of this is testable with a fake clock.

Time given to the controller: ``t`` [s] = the loop clock at the start of the tick minus the start
of the run, so a time-indexed plan (MPPI's warm start) shifts by the real elapsed time even when
ticks were skipped.

Before the clock starts, ``warmup_calls`` act() calls on the track's start pose (JIT compilation,
caches; a failure there trips ``controller_error`` before anything is sent) and ``reset()``.

Per tick (after the first state has arrived; before, the loop sends HEARTBEATs so that a vehicle
that replies to its peer's address learns where to send STATE):

1. ``vehicle.latest_state()`` - fresh if its vehicle time is newer than the last one; its age
   (``vehicle.state_age``, from the STATE's own time) dates it on the loop clock;
2. watchdog: state age, non-finite state, off-track (with a track); laps are counted here;
3. latency compensation (with a :class:`~racing.runtime.predict.StatePredictor` and
   ``compensate``): the state predicted from its measurement instant to ``now + actuation_delay_s``
   with the commands in flight; ``controller.act(Observation(t_c, x_c), t_c)`` with
   ``t_c = now + actuation_delay_s``, timed with the loop clock (compute time);
4. ``vehicle.send(command, t_meas)``; 5. one log row (flushed; the measured state); 6. deadline
   bookkeeping (deadline misses, period jitter = |interval between consecutive tick starts - period|).

Link loss. Between ticks the loop sleeps until the next release or until the newest state expires
(``state_timeout_s`` after its measurement), whichever is first, so STOP leaves on time rather
than at the next tick. With ``on_state_timeout = "end"`` (default) that is a watchdog trip. With
``"wait"`` the loop sends STOP, closes the log segment, keeps sending HEARTBEATs and resumes when
fresh states arrive again (a restarted vehicle: a new log segment ``<log>.seg2.csv``, the
controller and the predictor reset, a new standing-start lap); after ``reconnect_timeout_s``
without a vehicle it trips ``state_timeout``. Whether the car then drives is the vehicle's
decision: STOP is latched on the vehicle until it is re-armed there.

The run ends at ``duration_s``, after ``laps`` laps, on :meth:`RuntimeLoop.request_stop`
(SIGINT / SIGTERM via :func:`run_with_signals`) or on a watchdog trip; in every case the loop sends
STOP ``stop_repeats`` times and closes the log.
"""
from __future__ import annotations

import datetime as _dt
import gc
import json
import math
import signal
import threading
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from racing import config as cfg
from racing.control.base import ACT_BUDGET, Command, Controller, Observation
from racing.interfaces import DRIVE_INTERFACES, DriveInterface
from racing.logs import LogWriter
from racing.runtime import protocol as proto
from racing.runtime.rt import boost_thread
from racing.runtime.vehicle import Vehicle
from racing.runtime.watchdog import Trip, Watchdog, WatchdogConfig
from racing.sim.simulator import initial_state

MAX_EVENTS = 200


@dataclass(frozen=True)
class LoopConfig:
    """Runtime loop settings."""

    rate_hz: float = field(default=50.0, metadata={"unit": "Hz", "gt": 0.0, "max": 1000.0})
    duration_s: float | None = field(default=None, metadata={"unit": "s", "gt": 0.0, "doc": "None = until stopped"})
    laps: int | None = field(default=None, metadata={"min": 1, "doc": "stop after this many laps (needs a track)"})
    stop_interval_s: float = field(default=0.005, metadata={"unit": "s", "min": 0.0,
                                                            "doc": "gap between repeated STOP datagrams"})
    warmup_calls: int = field(default=3, metadata={"min": 0, "doc": "act() calls before the clock starts (JIT, "
                                                                    "caches), followed by reset()"})
    actuation_delay_s: float = field(default=0.0, metadata={"unit": "s", "min": 0.0, "max": 1.0,
                                                            "doc": "time from sending a command to its effect"})
    compensate: bool = field(default=True, metadata={"doc": "act on the state predicted by its age + the "
                                                            "actuation delay (needs a predictor)"})
    on_state_timeout: str = field(default="end", metadata={"choices": ("end", "wait"),
                                                           "doc": "end: watchdog trip; wait: STOP, then resume "
                                                                  "when the vehicle is back"})
    reconnect_timeout_s: float = field(default=30.0, metadata={"unit": "s", "gt": 0.0,
                                                               "doc": "wait mode: trip when no vehicle for this long"})
    watchdog: WatchdogConfig = WatchdogConfig()

    def __post_init__(self):
        if self.on_state_timeout not in ("end", "wait"):
            raise ValueError(f"on_state_timeout {self.on_state_timeout!r}: expected 'end' or 'wait'")
        if not (math.isfinite(self.rate_hz) and 0 < self.rate_hz <= 1000):
            raise ValueError(f"rate_hz {self.rate_hz}: expected 0 < rate <= 1000 Hz")
        if not (math.isfinite(self.actuation_delay_s) and 0 <= self.actuation_delay_s <= 1.0):
            raise ValueError(f"actuation_delay_s {self.actuation_delay_s}: expected 0..1 s")


def _pct(values, unit: float = 1e3) -> dict:
    a = np.frombuffer(values, dtype=np.float64) if isinstance(values, array) else np.asarray(values, dtype=float)
    if a.size == 0:
        return {"p50": None, "p99": None, "max": None}
    a = a * unit
    return {"p50": round(float(np.percentile(a, 50)), 4), "p99": round(float(np.percentile(a, 99)), 4),
            "max": round(float(a.max()), 4)}


@dataclass
class DriveResult:
    """What a run of the loop measured (times in [s] unless the name says otherwise).

    compute_s : act() durations of the control ticks; work_s : whole-tick durations;
    lateness_s : tick start minus release time; jitter_s : |interval between consecutive tick
    starts - period|; state_age_s : age of the state used at each control tick (from its
    measurement instant; only when the link can tell); predict_s : latency-compensation time per
    control tick; laps : lap times (None without a track); off_track : excursions of the car's centre
    beyond a track boundary (None without a track). warmup_s : durations of the warm-up
    act() calls made before the clock started. link_losses : one dict per link loss in wait mode.
    logs : the log segments written (one per vehicle session).
    """

    status: str
    ticks: int
    control_ticks: int
    skipped_ticks: int
    deadline_misses: int
    compute_s: array
    work_s: array
    lateness_s: array
    duration_s: float
    watchdog: Trip | None
    link: dict
    events: list
    laps: list | None
    progress_m: float | None
    log_path: str | None
    log_rows: int
    config: dict
    final_state: np.ndarray | None = None
    warmup_s: list = field(default_factory=list)
    jitter_s: array = field(default_factory=lambda: array("d"))
    state_age_s: array = field(default_factory=lambda: array("d"))
    predict_s: array = field(default_factory=lambda: array("d"))
    link_losses: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    off_track: int | None = None
    estimates: dict = field(default_factory=dict)  # what the controller estimated about the car (e.g. the grip)
    compute: dict = field(default_factory=dict)  # the controller's compute report (MPPI: samples per iteration)

    def summary(self) -> dict:
        """The JSON summary of ``racing drive --json``."""
        loop = self.config.get("loop", {})
        return {
            "status": self.status,
            "ticks": self.ticks,
            "control_ticks": self.control_ticks,
            "skipped_ticks": self.skipped_ticks,
            "deadline_misses": self.deadline_misses,
            "compute_ms": _pct(self.compute_s),
            "warmup_ms": [round(1e3 * w, 3) for w in self.warmup_s],
            "tick_ms": _pct(self.work_s),
            "start_late_ms": _pct(self.lateness_s),
            "period_jitter_ms": _pct(self.jitter_s),
            "state_age_ms": _pct(self.state_age_s),
            "predict_ms": _pct(self.predict_s),
            "compensation": {"enabled": bool(loop.get("compensate")) and len(self.predict_s) > 0,
                             "actuation_delay_s": loop.get("actuation_delay_s")},
            "packets_dropped": int(self.link.get("dropped", 0)),
            "packets": dict(self.link),
            "watchdog": None if self.watchdog is None else self.watchdog.as_dict(),
            "link_losses": list(self.link_losses),
            "log": self.log_path,
            "logs": list(self.logs),
            "log_rows": self.log_rows,
            "duration_s": round(self.duration_s, 4),
            "rate_hz": loop.get("rate_hz"),
            "laps": None if self.laps is None else [round(x, 4) for x in self.laps],
            "progress_m": None if self.progress_m is None else round(self.progress_m, 3),
            "off_track": self.off_track,
            "events": self.events[:50],
            "final_state": None if self.final_state is None else [round(float(v), 6) for v in self.final_state],
            "estimates": dict(self.estimates),
            **{k: dict(v) for k, v in self.compute.items()},
        }


class _Progress:
    """Unwrapped arc-length progress and lap crossings on a closed track (like the simulator)."""

    def __init__(self, track):
        self.track = track
        self.L = track.length
        self.s_prev: float | None = None
        self.progress = 0.0
        self.laps: list[float] = []
        self._last_lap_t = 0.0
        self._done = 0.0  # distance of the sessions before a restart [m]
        self._laps_before = 0

    def restart(self, t: float) -> None:
        """A new vehicle session (the car may be anywhere): keep the laps so far, start a new lap at ``t``."""
        if self.s_prev is not None:
            self._done += self.progress - self._start
        self.s_prev = None
        self._last_lap_t = t
        self._laps_before = len(self.laps)

    def update(self, x: float, y: float, t: float) -> tuple[float, float, list]:
        """Returns (s [m], n [m], [lap times completed at this update])."""
        hint = None if self.s_prev is None else np.array([self.s_prev])
        s_arr, n_arr, _ = self.track.frenet(np.array([[x, y]]), hint=hint)
        s, n = float(s_arr[0]), float(n_arr[0])
        new = []
        if self.s_prev is None:
            self.progress = s if s < 0.5 * self.L else s - self.L
            self._start = self.progress
        else:
            ds = s - self.s_prev
            if ds > 0.5 * self.L:
                ds -= self.L
            elif ds < -0.5 * self.L:
                ds += self.L
            self.progress += ds
            while self.progress - self._start >= (len(self.laps) - self._laps_before + 1) * self.L:
                self.laps.append(t - self._last_lap_t)
                self._last_lap_t = t
                new.append(self.laps[-1])
        self.s_prev = s
        return s, n, new

    @property
    def distance(self) -> float:
        return self._done + (0.0 if self.s_prev is None else self.progress - self._start)


#: what a tick's helpers return to let the loop go on (anything else is the run's end status, None included)
_GO = object()


class _RunStats:
    """The measurements and counters of one :meth:`RuntimeLoop.run` (times in [s]): per-tick float64 arrays
    (act() durations ``compute``, whole-tick ``work``, start lateness ``late``, period ``jitter``, state ``ages``,
    prediction times ``pred_s``), tick counts, the off-track state and the last log time. Attributes only, so
    that the tick helpers update them in place."""

    __slots__ = ("compute", "work", "late", "jitter", "ages", "pred_s", "ticks", "control_ticks", "skipped",
                 "misses", "off_track", "was_outside", "last_log_t", "prev_start_k", "prev_start")

    def __init__(self):
        self.compute, self.work, self.late, self.jitter = array("d"), array("d"), array("d"), array("d")
        self.ages, self.pred_s = array("d"), array("d")
        self.ticks = self.control_ticks = self.skipped = self.misses = self.off_track = 0
        self.was_outside = False
        self.last_log_t = -math.inf
        self.prev_start_k: int | None = None  # slot of the previous tick start
        self.prev_start = 0.0  # loop time [s] of the previous tick start


class RuntimeLoop:
    """Drive ``vehicle`` with ``controller`` at a fixed rate (see the module docstring).

    Parameters
    ----------
    controller : a :class:`Controller` from ``make_controller`` (owns no I/O)
    vehicle : a :class:`Vehicle` (``connect()`` is called by :meth:`run`; closing is the caller's)
    config : :class:`LoopConfig`
    track : optional :class:`racing.track.Track` for laps, progress and the off-track check
    log_path : driving log CSV (:mod:`racing.logs`), flushed every row; None = no log
    meta : extra resolved configuration for the log header (values JSON-encoded)
    clock : monotonic clock [s] (default ``time.perf_counter``); sleep : sleep(seconds)
    warmup_state : float64[7] given to the warm-up calls (default: the track's start pose at rest, or zeros)
    predictor : :class:`racing.runtime.predict.StatePredictor` for latency compensation (None = act on
        the measured state); its ``delay`` should equal ``config.actuation_delay_s``
    supervisor_rt_priority : SCHED_FIFO priority for the watchdog supervisor thread (set when the
        control thread runs real-time, one level above it), None = leave it
    interface : the car's :class:`racing.interfaces.DriveInterface` (its car file's ``drive_interface``); a
        command with a field the car does not take trips the watchdog (``bad_command``) before it is sent
    """

    def __init__(self, controller: Controller, vehicle: Vehicle, config: LoopConfig = LoopConfig(), track=None,
                 log_path=None, meta: dict | None = None, clock=time.perf_counter, sleep=time.sleep,
                 warmup_state=None, predictor=None, supervisor_rt_priority: int | None = None,
                 interface: DriveInterface = DRIVE_INTERFACES["speed_accel"]):
        if config.laps is not None and track is None:
            raise ValueError("LoopConfig.laps needs a track to count laps on")
        self.controller, self.vehicle, self.config, self.track = controller, vehicle, config, track
        self.log_path = None if log_path is None else str(log_path)
        self.meta = dict(meta or {})
        self.clock, self.sleep = clock, sleep
        self.warmup_state = warmup_state
        self.predictor = predictor
        self.supervisor_rt_priority = supervisor_rt_priority
        self.interface = interface
        self.period = 1.0 / config.rate_hz
        self.watchdog = Watchdog(config.watchdog, self.period)
        self._stop_status: str | None = None
        self._budget, self._reserve, self._deadline = None, (1.0 - ACT_BUDGET) * self.period, math.inf
        self._events: list = []
        self._suppressed: dict = {}
        self._stop_lock = threading.Lock()
        self._stops_sent = 0
        # link state (see _poll_link / _check_link)
        self._state: np.ndarray | None = None
        self._t_meas = 0.0
        self._t_state = 0.0  # loop time [s] at which the state was measured
        self._age_known = False
        self._fresh = False
        self._holding_since: float | None = None
        self._dropped_seen = 0
        self._link_losses: list = []
        self._log = None
        self._logs: list[str] = []
        self._log_rows = 0
        self._progress = None
        self._compensator = None  # the predictor when compensating (set by run)

    # --- control from outside ---------------------------------------------------------------
    def request_stop(self, status: str = "interrupted") -> None:
        """Ask the loop to end after the current tick (safe from signal handlers and threads)."""
        if self._stop_status is None:
            self._stop_status = status

    # --- helpers --------------------------------------------------------------------------------
    def _event(self, t: float, kind: str, limit: int | None = None, **data) -> None:
        if limit is not None:
            n = sum(1 for e in self._events if e["type"] == kind)
            if n >= limit:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
        if len(self._events) >= MAX_EVENTS:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._events.append({"t": round(t, 6), "type": kind, **data})

    def _send_stop(self, reason: int, t_meas: float, pause: bool = True) -> None:
        """STOP ``stop_repeats`` times (UDP may lose one); never raises."""
        n = self.config.watchdog.stop_repeats
        with self._stop_lock:
            for i in range(n):
                try:
                    self.vehicle.stop(reason, t_meas)
                    self._stops_sent += 1
                except Exception as exc:  # noqa: BLE001 - stopping must go on whatever the link says
                    self.vehicle.errors.append(f"stop: {exc}")
                if pause and i + 1 < n and self.config.stop_interval_s > 0:
                    self.sleep(self.config.stop_interval_s)

    def _warmup(self) -> tuple[list, str]:
        """Call act() ``warmup_calls`` times off the clock (first calls JIT-compile, fill caches), then
        reset(). Returns (durations [s], error message or '')."""
        n = self.config.warmup_calls
        if n == 0:
            return [], ""
        if self.warmup_state is not None:
            x = np.asarray(self.warmup_state, dtype=np.float64)
        elif self.track is not None:
            x = initial_state(self.track)
        else:
            x = np.zeros(7)
        out = []
        try:
            for i in range(n):
                c0 = self.clock()
                self.controller.act(Observation(i * self.period, x), i * self.period)
                out.append(self.clock() - c0)
            if self.predictor is not None:  # first calls build the integrators
                self.predictor.predict(x, 0.0, self.period)
                self.predictor.reset()
        except Exception as exc:  # noqa: BLE001
            return out, f"during warm-up: {type(exc).__name__}: {exc}"
        return out, ""

    def resolved_config(self) -> dict:
        c = cfg.to_dict(self.config)
        c["watchdog"]["state_timeout_s"] = self.watchdog.state_timeout
        return c

    def _log_meta(self, segment: int = 1) -> dict:
        security = getattr(self.vehicle, "security", None)
        version = security.version if security is not None else proto.VERSION_V1
        meta = {"source": "racing drive", "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                "protocol": f"{proto.MAGIC.decode()} v{version}", "vehicle": self.vehicle.describe()}
        if segment > 1:
            meta["segment"] = str(segment)
            meta["previous"] = self._logs[-1] if self._logs else ""
        for k, v in self.meta.items():
            meta[k] = v
        meta["loop"] = self.resolved_config()
        return {k: (v if isinstance(v, str) else json.dumps(v, separators=(",", ":"), default=str))
                for k, v in meta.items()}

    def _open_log(self) -> None:
        if not self.log_path:
            return
        seg = len(self._logs) + 1
        path = self.log_path
        if seg > 1:
            p = Path(self.log_path)
            path = str(p.with_name(f"{p.stem}.seg{seg}{p.suffix or '.csv'}"))
        self._log = LogWriter(path, meta=self._log_meta(seg))
        self._logs.append(path)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log_rows += self._log.rows
            self._log.close()
            self._log = None

    # --- the link -------------------------------------------------------------------------------
    def _poll_link(self, t: float) -> bool:
        """Read the newest state at loop time ``t``; False when the watchdog tripped (bad state)."""
        vehicle, wd = self.vehicle, self.watchdog
        got = vehicle.latest_state()
        if vehicle.stats.dropped != self._dropped_seen:
            self._event(t, "protocol_error", limit=20, count=vehicle.stats.dropped - self._dropped_seen,
                        error=vehicle.errors[-1] if vehicle.errors else "")
            self._dropped_seen = vehicle.stats.dropped
        if got is None:
            return True
        tm, st = got
        st = np.asarray(st, dtype=np.float64)
        if st.shape != (7,) or not np.all(np.isfinite(st)) or not math.isfinite(tm):
            wd.trip("bad_state", f"vehicle state at t={tm} is not 7 finite numbers: {st}", t)
            return False
        age = vehicle.state_age(float(tm))
        known = age is not None and math.isfinite(age)
        t_state = t - max(float(age), 0.0) if known else t
        if wd.state(t_state, float(tm)):
            if self._holding_since is not None:
                self._resume(t)
            if self._state is None:
                self._event(t, "first_state", t_meas=float(tm))
            self._state, self._t_meas, self._t_state, self._age_known = st, float(tm), t_state, known
            self._fresh = True
        return True

    def _check_link(self, t: float) -> bool:
        """Watch the state's age at loop time ``t``; True when the loop must end (watchdog tripped)."""
        wd, conf = self.watchdog, self.config
        if self._holding_since is not None:
            if t - self._holding_since > conf.reconnect_timeout_s:
                wd.trip("state_timeout", f"no vehicle for {t - self._holding_since:.1f} s after the link loss "
                                         f"(reconnect timeout {conf.reconnect_timeout_s:g} s)", t)
                return True
            return False
        why = wd.state_expired(t)
        if not why:
            return wd.check_state_age(t) is not None  # the connect timeout before the first state
        since = (t - self._t_state) * 1e3
        if conf.on_state_timeout == "end":
            self._event(t, "state_timeout", last_state_ms_ago=round(since, 3))
            wd.trip("state_timeout", why, t)
            return True
        # wait mode: STOP now, then wait for the vehicle
        self._send_stop(int(proto.StopReason.STATE_TIMEOUT), self._t_meas, pause=False)
        t_stop = self.clock() - self._t0
        loss = {"t": round(t_stop, 6), "last_state_t": round(self._t_state, 6),
                "stop_after_last_state_ms": round((t_stop - self._t_state) * 1e3, 3),
                "due_after_last_state_ms": round(wd.state_timeout * 1e3, 3), "detail": why}
        self._link_losses.append(loss)
        self._event(t, "link_lost", **{k: v for k, v in loss.items() if k != "t"})
        self._holding_since = t
        self._state = None
        self._fresh = False
        wd.reset_link()
        reset = getattr(self.vehicle, "reset_freshness", None)
        if reset is not None:
            reset()
        self._close_log()
        return False

    def _resume(self, t: float) -> None:
        self._event(t, "resumed", after_s=round(t - self._holding_since, 3))
        self._holding_since = None
        self.controller.reset()
        if self.predictor is not None:
            self.predictor.reset()
        if self._progress is not None:
            self._progress.restart(t)
        self._open_log()

    def _wait_until(self, release: float) -> bool:
        """Sleep until the clock reaches ``release``, waking at the state deadline to stop the car on
        time. False when the loop must end (watchdog trip or a stop request)."""
        clock, t0, wd = self.clock, self._t0, self.watchdog
        while True:
            now = clock()
            if now >= release:
                return True
            wake = release
            dl = wd.state_deadline() if self._holding_since is None else None
            if dl is not None and t0 + dl < wake:
                wake = t0 + dl + 1e-4
            self.sleep(max(wake - now, 0.0))
            if self._stop_status is not None:
                return False
            if wake < release:
                t = clock() - t0
                if not self._poll_link(t) or self._check_link(t):
                    return False

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> DriveResult:
        """Connect, warm up, drive at the fixed rate until the end condition (module docstring), then send STOP
        and close the log. Cyclic garbage collection is off (and what exists is frozen) while the clock runs."""
        rs = _RunStats()
        self._progress = _Progress(self.track) if self.track is not None else None
        self._compensator = self.predictor if self.config.compensate else None
        self._dropped_seen = self.vehicle.stats.dropped
        self._open_log()
        self.vehicle.connect()
        warmup, warm_err = self._warmup()
        self.controller.reset()
        # an anytime controller keeps within the period (fewer samples, not a late command): each act() gets what is
        # left of its tick's period less the reserve for the rest of the tick (send, log) and the OS
        self._budget = budget = getattr(self.controller, "set_time_budget", None)
        self._reserve = (1.0 - ACT_BUDGET) * self.period
        gc_was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()  # what exists now is never scanned again
        gc.disable()  # no cyclic collection inside the fixed-rate loop (a full one can outlast a period)
        self._start_clock(warm_err)
        try:
            status = self._tick_loop(rs)
        except KeyboardInterrupt:
            status = "interrupted"
        except BaseException:
            self.watchdog.stop_supervisor()
            self._send_stop(int(proto.StopReason.ERROR), self._t_meas)
            self._close_log()
            raise
        finally:
            gc.unfreeze()
            if gc_was_enabled:
                gc.enable()
            if budget is not None:
                budget(None)
        return self._finish(rs, status, warmup)

    def _start_clock(self, warm_err: str) -> None:
        """Start the loop clock (``self._t0``), trip ``controller_error`` on a warm-up failure, start the watchdog's
        supervisor thread (real-time priority when asked)."""
        clock, wd = self.clock, self.watchdog
        self._t0 = t0 = clock()
        if warm_err:
            wd.trip("controller_error", warm_err, 0.0)
        now_rel = lambda: clock() - t0  # noqa: E731
        wd.start_supervisor(lambda trip: self._send_stop(int(trip.stop_reason), self._t_meas, pause=False), now_rel)
        if self.supervisor_rt_priority is not None and wd.supervisor_native_id is not None:
            why = boost_thread(wd.supervisor_native_id, self.supervisor_rt_priority)
            if why:
                self._event(0.0, "cpu", note=why)

    def _tick_loop(self, rs: _RunStats):
        """Release tick ``k`` at ``t0 + k * period`` [s] (skipping slots that are already over, no bursts) and run
        it until the run ends. Returns the end status: a stop request's status, ``"completed"``, or None (the
        watchdog tripped, or the wait ended without a stop request)."""
        conf, P, clock, wd, t0 = self.config, self.period, self.clock, self.watchdog, self._t0
        k = 0
        while not wd.tripped:
            if self._stop_status is not None:
                return self._stop_status
            release = t0 + k * P
            now = clock()
            if now >= release + P:  # this slot is over: skip to the current one, do not burst
                k_now = int((now - t0) // P)
                rs.skipped += k_now - k
                k = k_now
                release = t0 + k * P
            if conf.duration_s is not None and k * P >= conf.duration_s - 1e-9:
                return "completed"
            if not self._wait_until(release):
                if self._stop_status is not None and not wd.tripped:
                    return self._stop_status
                return None
            end = self._tick(rs, k, release)
            if end is not _GO:
                return end
            k += 1
        return None

    def _tick(self, rs: _RunStats, k: int, release: float):
        """Tick ``k`` (released at clock time ``release`` [s]): timing records, the newest state and the watchdog
        on it, a HEARTBEAT before the first state or else progress and the controller, deadline bookkeeping.
        Returns :data:`_GO` to go on, else the end status (None: the watchdog tripped)."""
        start = self.clock()
        t = start - self._t0
        rs.ticks += 1
        self._deadline = release + self.period
        rs.late.append(max(start - release, 0.0))
        if rs.prev_start_k is not None and rs.prev_start_k == k - 1:
            rs.jitter.append(abs((t - rs.prev_start) - self.period))
        rs.prev_start_k, rs.prev_start = k, t
        # 1. newest state, 2. watchdog on the state
        if not self._poll_link(t) or self._check_link(t):
            return None
        state = self._state
        if state is None:
            self.vehicle.heartbeat(0.0)
        else:
            fresh, self._fresh = self._fresh, False
            if fresh and self._progress is not None:
                end = self._track_progress(rs, state, t)
                if end is not _GO:
                    return end
            end = self._control(rs, state, t)
            if end is not _GO:
                return end
        return self._tick_done(rs, t, start, release)

    def _track_progress(self, rs: _RunStats, state: np.ndarray, t: float):
        """Laps, off-track excursions and the off-track trip for a fresh ``state[7]`` (x, y [m] used) at loop time
        ``t`` [s]. Returns :data:`_GO`, ``"completed"`` (the asked laps are done) or None (the watchdog tripped)."""
        progress, conf = self._progress, self.config
        s, n, new_laps = progress.update(state[0], state[1], t)
        for lt in new_laps:
            self._event(t, "lap", lap=len(progress.laps), time_s=round(lt, 4))
        wl, wr = self.track.widths_at(np.array([s]))
        wl, wr = float(wl[0]), float(wr[0])
        outside = n > wl or n < -wr  # the car's centre beyond a boundary
        if outside and not rs.was_outside:
            rs.off_track += 1
            self._event(t, "off_track", limit=20, s=round(s, 2), n=round(n, 3))
        rs.was_outside = outside
        margin = conf.watchdog.off_track_margin_m
        if margin is not None and (n > wl + margin or n < -(wr + margin)):
            self.watchdog.trip("off_track", f"lateral offset {n:+.2f} m at s = {s:.1f} m is beyond the boundary "
                                            f"(left {wl:.2f} m, right {wr:.2f} m) by more than {margin:g} m", t)
            return None
        if conf.laps is not None and len(progress.laps) >= conf.laps:
            return "completed"
        return _GO

    def _control(self, rs: _RunStats, state: np.ndarray, t: float):
        """3. latency compensation and ``controller.act`` (timed on the loop clock [s]), the command's checks,
        4. send, 5. the log row, for the newest ``state[7]`` at loop time ``t`` [s]. Returns :data:`_GO` or None
        (the watchdog tripped)."""
        clock, t0, wd, predictor = self.clock, self._t0, self.watchdog, self._compensator
        c0 = clock()
        if self._age_known:
            rs.ages.append(c0 - t0 - self._t_state)
        if predictor is not None:
            delay = self.config.actuation_delay_s
            t_c = c0 - t0 + delay
            try:
                x_c = predictor.predict(state, self._t_state, t_c)
            except Exception as exc:  # noqa: BLE001 - a failed prediction stops the car
                wd.trip("controller_error", f"latency compensation: {type(exc).__name__}: {exc}", t)
                return None
            c0 = clock()
            rs.pred_s.append(c0 - t0 - t_c + delay)
        else:
            t_c, x_c = t, state
        if self._budget is not None:  # a tick that started late leaves act() less time
            self._budget(max(self._deadline - clock() - self._reserve, 1e-4))
        try:
            cmd = self.controller.act(Observation(t_c, x_c), t_c)
        except Exception as exc:  # noqa: BLE001 - any controller failure stops the car
            rs.compute.append(clock() - c0)
            wd.trip("controller_error", f"{type(exc).__name__}: {exc}", t)
            return None
        rs.compute.append(clock() - c0)
        rs.control_ticks += 1
        if wd.tripped:  # the supervisor tripped while act() ran
            return None
        bad = _command_problem(cmd) or self.interface.problem(cmd)
        if bad:
            wd.trip("bad_command", bad, t)
            return None
        self.vehicle.send(cmd, self._t_meas)
        if self.predictor is not None:
            self.predictor.record(cmd, clock() - t0)
        if self._log is not None:
            t_log = t if t > rs.last_log_t else rs.last_log_t + 1e-6
            self._log.write(t_log, state, (cmd.steering_angle, cmd.speed, cmd.acceleration))
            rs.last_log_t = t_log
        return _GO

    def _tick_done(self, rs: _RunStats, t: float, start: float, release: float):
        """6. deadline bookkeeping of the tick that started at clock time ``start`` [s] (loop time ``t``), released
        at ``release``. Returns :data:`_GO` or None (the watchdog tripped)."""
        P = self.period
        end = self.clock()
        rs.work.append(end - start)
        missed = end > release + P
        if missed:
            rs.misses += 1
            self._event(t, "deadline_miss", limit=50, tick_ms=round((end - start) * 1e3, 3),
                        late_ms=round((end - release - P) * 1e3, 3))
        if self.watchdog.tick_done(end - self._t0, missed, end - start) is not None or self.watchdog.tripped:
            return None
        return _GO

    def _finish(self, rs: _RunStats, status, warmup: list) -> DriveResult:
        """Stop the supervisor, send STOP with the reason of the end ``status``, close the log; the result."""
        wd, clock = self.watchdog, self.clock
        wd.stop_supervisor()
        trip = wd.trip_info
        if trip is not None:
            status = f"watchdog:{trip.reason}"
            self._event(trip.t, "watchdog", reason=trip.reason, detail=trip.detail)
            reason = int(trip.stop_reason)
        elif status == "interrupted":
            reason = int(proto.StopReason.INTERRUPTED)
        else:
            status = status or "completed"
            reason = int(proto.StopReason.NORMAL)
        self._send_stop(reason, self._t_meas)
        duration = clock() - self._t0
        self._event(duration, "stop", reason=proto.stop_reason_name(reason), sent=self._stops_sent)
        for kind, n in self._suppressed.items():
            self._events.append({"t": round(duration, 6), "type": "suppressed", "of": kind, "count": n})
        self._close_log()
        final, progress = self._state, self._progress
        return DriveResult(status=status, ticks=rs.ticks, control_ticks=rs.control_ticks, skipped_ticks=rs.skipped,
                           deadline_misses=rs.misses, compute_s=rs.compute, work_s=rs.work, lateness_s=rs.late,
                           duration_s=duration, watchdog=trip, link=self.vehicle.stats.as_dict(), events=self._events,
                           laps=None if progress is None else list(progress.laps),
                           progress_m=None if progress is None else progress.distance, log_path=self.log_path,
                           log_rows=self._log_rows, config={"loop": self.resolved_config()},
                           final_state=None if final is None else final.copy(), warmup_s=warmup,
                           jitter_s=rs.jitter, state_age_s=rs.ages, predict_s=rs.pred_s,
                           link_losses=self._link_losses, logs=list(self._logs),
                           off_track=None if progress is None else rs.off_track,
                           estimates=self.controller.estimates(),
                           compute=getattr(self.controller, "compute_report", dict)())


def _command_problem(cmd) -> str:
    """'' if ``cmd`` is a finite :class:`Command`, else what is wrong with it."""
    if not isinstance(cmd, Command):
        return f"controller returned {type(cmd).__name__}; expected a Command"
    for name in ("steering_angle", "speed", "acceleration"):
        v = getattr(cmd, name)
        try:
            ok = math.isfinite(v)
        except TypeError:
            return f"Command.{name} is {v!r}; expected a finite number"
        if not ok:
            return f"Command.{name} is {v}; expected a finite number"
    return ""


def run_with_signals(loop: RuntimeLoop) -> DriveResult:
    """``loop.run()`` with SIGINT / SIGTERM turned into a graceful stop (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return loop.run()
    previous = {}

    def handler(signum, frame):
        loop.request_stop("interrupted")

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):
            pass
    try:
        return loop.run()
    finally:
        for sig, h in previous.items():
            signal.signal(sig, h)
