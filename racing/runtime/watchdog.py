"""The runtime watchdog: decides when the computer must stop the car.

The loop feeds it every tick; it trips (once; the first reason wins) when

* ``state_timeout``   - no fresh state (vehicle time ``t`` strictly increasing) for
  ``state_timeout_s`` (default 1.5 periods, so that STOP leaves within two periods of the last
  state; the vehicle must publish at least twice per period), counted from the state's
  measurement instant when the link can tell its age, else from when it was read; or no first
  state within ``connect_timeout_s``. (With ``LoopConfig.on_state_timeout = "wait"`` the loop
  sends STOP and waits for the vehicle instead of tripping, see :mod:`racing.runtime.loop`.)
* ``deadline_misses`` - ``max_consecutive_misses`` ticks in a row finished after their deadline;
* ``controller_error`` - the controller raised;
* ``bad_command``     - the controller returned something that is not a finite :class:`Command`;
* ``bad_state``       - the vehicle handed over a non-finite state;
* ``off_track``       - the car's centre is beyond a track boundary by more than ``off_track_margin_m``
  (only with a track);
* ``loop_hang``       - the optional supervisor thread saw no completed tick for ``hang_timeout_s``
  (wall clock), e.g. a controller stuck inside one call. It sends STOP itself, from its thread.

On a trip the loop sends STOP ``stop_repeats`` times and ends with status ``watchdog:<reason>``.
The vehicle has its own command timeout as a last line of defence (see ``vehicle_sim``).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from racing.runtime.protocol import StopReason

REASONS = ("state_timeout", "deadline_misses", "controller_error", "bad_command", "bad_state", "off_track",
           "loop_hang")
STOP_REASON = {
    "state_timeout": StopReason.STATE_TIMEOUT,
    "deadline_misses": StopReason.DEADLINE_MISSES,
    "controller_error": StopReason.CONTROLLER_ERROR,
    "bad_command": StopReason.BAD_COMMAND,
    "bad_state": StopReason.BAD_STATE,
    "off_track": StopReason.OFF_TRACK,
    "loop_hang": StopReason.LOOP_HANG,
}


@dataclass(frozen=True)
class WatchdogConfig:
    """Watchdog limits (None = the documented default / check disabled)."""

    state_timeout_s: float | None = field(default=None, metadata={
        "unit": "s", "gt": 0.0, "doc": "no fresh state for this long trips (default 1.5 periods)"})
    connect_timeout_s: float = field(default=5.0, metadata={
        "unit": "s", "gt": 0.0, "doc": "the first state must arrive within this time of the start"})
    max_consecutive_misses: int = field(default=5, metadata={"min": 1})
    off_track_margin_m: float | None = field(default=None, metadata={
        "unit": "m", "min": 0.0, "doc": "trip beyond boundary + margin (None = no check)"})
    hang_timeout_s: float | None = field(default=0.5, metadata={
        "unit": "s", "gt": 0.0, "doc": "supervisor thread: no completed tick for this long (None = off)"})
    stop_repeats: int = field(default=3, metadata={"min": 1, "doc": "STOP datagrams sent on a trip / at the end"})

    def resolved_state_timeout(self, period: float) -> float:
        return self.state_timeout_s if self.state_timeout_s is not None else 1.5 * period


@dataclass(frozen=True)
class Trip:
    """Why and when (loop time [s]) the watchdog tripped."""

    reason: str
    detail: str
    t: float

    @property
    def stop_reason(self) -> StopReason:
        return STOP_REASON.get(self.reason, StopReason.ERROR)

    def as_dict(self) -> dict:
        return {"reason": self.reason, "detail": self.detail, "t": round(self.t, 6)}


class Watchdog:
    """State of the checks; ``t`` arguments are loop time [s] (the loop's clock minus its start)."""

    def __init__(self, config: WatchdogConfig, period: float):
        self.config = config
        self.period = period
        self.state_timeout = config.resolved_state_timeout(period)
        self.trip_info: Trip | None = None
        self.consecutive_misses = 0
        self.last_fresh: float | None = None
        self._last_state_t: float | None = None
        self._lock = threading.Lock()
        self._kick_wall = time.monotonic()
        self._sup: threading.Thread | None = None
        self._sup_stop = threading.Event()

    @property
    def tripped(self) -> bool:
        return self.trip_info is not None

    def trip(self, reason: str, detail: str, t: float) -> Trip:
        """Trip with ``reason`` (one of :data:`REASONS`) unless already tripped; the first trip wins."""
        if reason not in REASONS:
            raise ValueError(f"unknown watchdog reason {reason!r}; expected one of {', '.join(REASONS)}")
        with self._lock:
            if self.trip_info is None:
                self.trip_info = Trip(reason, detail, t)
            return self.trip_info

    # --- per-tick inputs --------------------------------------------------------------------
    def state(self, t: float, t_meas: float) -> bool:
        """A state measured at vehicle time ``t_meas`` [s]; ``t`` = its measurement instant on the loop
        clock when known, else when it was read [s]. True if fresh (``t_meas`` newer than the last)."""
        if self._last_state_t is None or t_meas > self._last_state_t:
            self._last_state_t = t_meas
            self.last_fresh = t if self.last_fresh is None else max(self.last_fresh, t)
            return True
        return False

    def state_deadline(self) -> float | None:
        """Loop time [s] at which the newest state expires (None before the first state)."""
        return None if self.last_fresh is None else self.last_fresh + self.state_timeout

    def state_expired(self, t: float) -> str:
        """'' while the state is fresh at loop time ``t`` [s] (or none has come yet), else why not."""
        if self.last_fresh is None:
            return ""
        age = t - self.last_fresh
        if age > self.state_timeout:
            return f"no fresh state for {age * 1e3:.0f} ms (limit {self.state_timeout * 1e3:.0f} ms)"
        return ""

    def reset_link(self) -> None:
        """Forget the vehicle's clock and the last fresh state (after a link loss: a restarted
        vehicle may begin its clock again)."""
        self.last_fresh = None
        self._last_state_t = None

    def check_state_age(self, t: float) -> Trip | None:
        if self.last_fresh is None:
            if t > self.config.connect_timeout_s:
                return self.trip("state_timeout", f"no state received within {self.config.connect_timeout_s:g} s "
                                                  f"of the start", t)
            return None
        why = self.state_expired(t)
        return self.trip("state_timeout", why, t) if why else None

    def tick_done(self, t: float, missed: bool, work_s: float) -> Trip | None:
        """Record the end of a tick; ``missed`` = it finished after its deadline."""
        self._kick_wall = time.monotonic()
        if not missed:
            self.consecutive_misses = 0
            return None
        self.consecutive_misses += 1
        if self.consecutive_misses >= self.config.max_consecutive_misses:
            detail = (f"{self.consecutive_misses} consecutive deadline misses "
                      f"(last tick {work_s * 1e3:.1f} ms, period {self.period * 1e3:.1f} ms)")
            return self.trip("deadline_misses", detail, t)
        return None

    # --- supervisor thread ------------------------------------------------------------------
    def start_supervisor(self, on_trip, loop_time) -> None:
        """Watch for a hung loop on the wall clock; on a hang trip ``loop_hang`` and call ``on_trip(trip)``.

        ``loop_time()`` gives the loop time for the record. No-op when ``hang_timeout_s`` is None.
        """
        limit = self.config.hang_timeout_s
        if limit is None or self._sup is not None:
            return
        self._kick_wall = time.monotonic()
        self._sup_stop.clear()

        def watch():
            while not self._sup_stop.wait(min(limit / 5.0, 0.05)):
                if self.trip_info is not None:
                    return
                stalled = time.monotonic() - self._kick_wall
                if stalled > limit:
                    trip = self.trip("loop_hang", f"no tick completed for {stalled * 1e3:.0f} ms "
                                                  f"(limit {limit * 1e3:.0f} ms)", loop_time())
                    on_trip(trip)
                    return

        self._sup = threading.Thread(target=watch, name="watchdog-supervisor", daemon=True)
        self._sup.start()

    @property
    def supervisor_native_id(self) -> int | None:
        """Kernel thread id of the running supervisor thread (for CPU settings), else None."""
        return None if self._sup is None else self._sup.native_id

    def stop_supervisor(self) -> None:
        self._sup_stop.set()
        if self._sup is not None:
            self._sup.join(2.0)
            self._sup = None
