r"""The car's steering chain, identified while it races: from the commanded and the measured steering angle.

A fit from a command-only log cannot see the steering servo on its own: a slow servo and a large yaw inertia make
the same yaw response, and the fit trades one for the other (the foreign-car bench's fits with I_z 60-130 % too
large chose servo lags 2-3 times too short, docs/results.md 2026-12-08). A controller that commands a servo slower
than it believes (a dead time, a rate limit, a gain) steers late and too little or too much: on the bench's cars,
which CommonRoad makes yaw-unstable under braking, that is a spin at the first braking zone. On the car the
steering angle is measured (``Observation.state[6]``); the chain from command to angle is a single-input
single-output system and is identified from the two directly.

**The model** of a hypothesis ``j`` (the project's servo, :func:`racing.models.actuators.actuator_inputs`, with a
dead time): the angle follows ``g_j u(t - d_j) + o`` with the first-order lag ``tau_j``, its rate saturated at
``R_j``; ``u`` the command sent (held until the next one), ``o`` the car file's ``steer_offset``, ``g_j`` a
multiple of the car file's ``steer_gain``. The bank (:data:`DELAYS` x :data:`TAUS` x :data:`GAINS` x
:data:`RATES`, about 2300 servos) replays every ``update_s`` the last ``window_s`` of the race from the measured
angle at the window's start, driven by the commands sent (a replay: output error, so white noise on the measured
angle does not bias it), and adds each hypothesis' sum of squared errors to a forgetting sum (memory
``memory_s``). A window in which neither the command nor the angle moved more than ``still`` [rad] says nothing
and is skipped.

**The estimate** is the hypothesis of least forgetting sum; among those within a relative ``1e-3`` of it (that the
data cannot tell apart: a rate limit never reached, a lag the window cannot resolve) the one closest to the car
file. It is *used* (:class:`OnlineSteer`) once ``min_windows`` informative windows are in and only where it differs
from the car file by more than the bank's resolution (the lead ``d + tau`` by more than :data:`LEAD_STEP`, the
gain by more than :data:`GAIN_STEP`, the rate limit when it is below the car file's by more than
:data:`RATE_STEP`; a servo seen to be faster than its car file says does not make the plans steer faster): on a car
whose servo is what its car file says, nothing changes.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.control.window import SampleWindow
from racing.models.params import P_STEER_RATE_MAX, VehicleParams

#: the bank's dead times [s], lag time constants [s], gains (x the car file's) and rate limits (x the car file's)
DELAYS = np.array([0.0, 0.02, 0.04, 0.06, 0.08])
TAUS = np.array([0.02, 0.04, 0.07, 0.1, 0.14, 0.2])
GAINS = np.round(np.arange(0.7, 1.3001, 0.05), 3)
RATES = np.array([0.4, 0.55, 0.7, 0.85, 1.0, 1.25])
#: the smallest changes applied: the lead [s], the gain and the rate limit (relative)
LEAD_STEP, GAIN_STEP, RATE_STEP = 0.015, 0.06, 0.2
#: the replay's sub-step [s]
SUB_H = 0.005


def bank(params: VehicleParams) -> np.ndarray:
    """The hypotheses ``H[J, 4]``: (dead time [s], lag [s], gain [rad/rad], rate limit [rad/s]); the car file's
    own dead time and lag are in the grid (so that a servo that is what the car file says is found exactly)."""
    delays = np.unique(np.append(DELAYS, params.steer_delay))
    taus = np.unique(np.append(TAUS, max(params.steer_tau, 1e-3)))
    d, tau, g, r = np.meshgrid(delays, taus, GAINS * params.steer_gain, RATES * params.steer_rate_max,
                               indexing="ij")
    return np.ascontiguousarray(np.stack([d.ravel(), tau.ravel(), g.ravel(), r.ravel()], axis=1))


@njit(cache=True)
def steer_replay_nb(T, D, U, i0, H, offset, smax, e):
    """Each hypothesis ``H[j]``'s squared error over the window ``T[i0:]``, ``D[i0:]`` (measured angles [rad],
    oldest first) replayed from ``D[i0]`` with the commands ``U[k]`` sent at ``T[k]`` (``U[k]`` held until
    ``T[k+1]``; the buffer reaches back at least the largest dead time before ``T[i0]``); the servo's target
    held within ``+-smax`` [rad]. Into ``e[J]``."""
    n = T.size
    for j in range(H.shape[0]):
        d, tau, g, rmax = H[j, 0], H[j, 1], H[j, 2], H[j, 3]
        x = D[i0]
        c = 0  # the command in force at the delayed time: the last k with T[k] <= t - d
        acc = 0.0
        for i in range(i0, n - 1):
            h = T[i + 1] - T[i]
            m = max(1, int(math.ceil(h / 0.005 - 1e-9)))
            hs = h / m
            a = math.exp(-hs / tau)
            dmax = rmax * hs
            for s in range(m):
                ts = T[i] + s * hs - d
                while c + 1 < n and T[c + 1] <= ts + 1e-12:
                    c += 1
                target = min(max(g * U[c] + offset, -smax), smax)
                dx = (target - x) * (1.0 - a)
                x += min(max(dx, -dmax), dmax)
            r = x - D[i + 1]
            acc += r * r
        e[j] = acc


class SteerEstimator:
    """Online identification of the steering chain (module doc): :meth:`observe` each measured angle,
    :meth:`sent` each command; read :attr:`estimate` (``(dead time, lag, gain, rate)`` or None before
    ``informed``).

    params : the controller's car (its ``steer_gain``, ``steer_rate_max``, ``steer_offset``, lag and dead time are
    the prior); window_s, update_s, memory_s [s]; min_windows : informative windows before ``informed``; still
    [rad]: a window whose command and angle moved less is skipped; rate_hz : the rate the buffers are made for."""

    def __init__(self, params: VehicleParams, window_s: float = 0.4, update_s: float = 0.2, memory_s: float = 30.0,
                 min_windows: int = 15, still: float = 0.004, rate_hz: float = 50.0):
        self.params = params
        self.H = bank(params)
        prior = np.array([params.steer_delay, params.steer_tau, params.steer_gain, params.steer_rate_max])
        scale = np.array([0.02, 0.03, 0.05 * params.steer_gain, 0.15 * params.steer_rate_max])
        self.dist = np.sum(((self.H - prior) / scale) ** 2, axis=1)  # closeness to the car file
        self.window_s, self.update_s = float(window_s), float(update_s)
        self.forget = math.exp(-self.update_s / float(memory_s))
        self.min_windows, self.still = int(min_windows), float(still)
        self.offset, self.smax = float(params.steer_offset), float(params.steer_max)
        n = max(math.ceil((self.window_s + float(self.H[:, 0].max()) + 0.1) * rate_hz) + 1, 8)
        self.win = SampleWindow(n, 2)  # (measured angle, command sent) [rad]
        self._row = np.zeros(2)
        self._T, self._D, self._U = self.win.T, self.win.V[:, 0], self.win.V[:, 1]  # the window, oldest first
        self.d_max = float(self.H[:, 0].max())
        self.e = np.zeros(self.H.shape[0])
        self.reset()

    def reset(self) -> None:
        self.C = np.zeros(self.H.shape[0])
        self.windows = 0
        self.win.reset()
        self.t_next = -np.inf
        self.best = None

    @property
    def informed(self) -> bool:
        return self.windows >= self.min_windows

    @property
    def estimate(self):
        """``(dead time [s], lag [s], gain [rad/rad], rate limit [rad/s])`` once informed, else None."""
        return None if (self.best is None or not self.informed) else tuple(float(v) for v in self.H[self.best])

    def observe(self, t: float, delta: float) -> bool:
        """Store the angle ``delta`` [rad] measured at ``t`` [s] (before the command of ``t`` is sent); replay a
        window when one is due. True when the estimate was updated."""
        win, row = self.win, self._row
        row[0], row[1] = delta, math.nan  # the command is filled in by sent()
        win.push(t, row)
        if t < self.t_next or not win.full:
            return False
        self.t_next = t + self.update_s
        win.ordered()  # into self._T, self._D, self._U
        i0 = int(np.searchsorted(self._T, t - self.window_s - 1e-9))
        if i0 < 1 or self._T[i0] - self._T[0] < self.d_max or not np.all(np.isfinite(self._U[:-1])) \
                or not np.all(np.diff(self._T) > 0.0):
            return False
        moved = max(np.ptp(self._D[i0:]), np.ptp(self._U[max(i0 - 5, 0):-1]) * self.params.steer_gain)
        if moved < self.still:
            return False
        steer_replay_nb(self._T, self._D, self._U, i0, self.H, self.offset, self.smax, self.e)
        self.C *= self.forget
        self.C += self.e
        self.windows += 1
        cmin = float(self.C.min())
        tied = np.flatnonzero(self.C <= cmin * (1.0 + 1e-3) + 1e-15)
        self.best = int(tied[np.argmin(self.dist[tied])])
        return True

    def sent(self, u: float) -> None:
        """The steering command [rad] sent at the last observed instant."""
        self.win.Vb[(self.win.k - 1) % self.win.size, 1] = u

    def summary(self) -> dict:
        est = self.estimate
        if est is None:
            return {"steer_informed": False, "steer_windows": self.windows}
        d, tau, g, r = est
        return {"steer_informed": True, "steer_windows": self.windows, "steer_delay_s": d, "steer_tau_s": tau,
                "steer_gain": round(g, 4), "steer_rate_max": round(r, 4)}


class OnlineSteer:
    """What a receding-horizon controller does with the estimate: the command's lead (dead time + lag + half a
    period), its gain, and the rollouts' steering-rate limit (``p[P_STEER_RATE_MAX]``, written in place; also in
    ``base`` -- e.g. the online grip's unscaled parameters -- when given) follow it where it differs from the car
    file by more than the bank's resolution (module doc); ``on_params(p)`` after ``p`` changed.

    ``lead(period)`` [s] and ``gain`` are what :func:`racing.control.plan.command_from_plan` takes; ``lead0``: the
    controller's configured lead less half a period (None: the car file's lag + dead time)."""

    def __init__(self, params: VehicleParams, p: np.ndarray, bases=(), on_params=None, lead0: float | None = None):
        self.params, self.p, self.bases, self.on_params = params, p, tuple(bases), on_params
        self.estimator = SteerEstimator(params)
        self.lead0 = params.steer_tau + params.steer_delay if lead0 is None else float(lead0)
        self.applied = (self.lead0, float(params.steer_gain), float(params.steer_rate_max))  # the car file's
        self.reset()

    def reset(self) -> None:
        self.estimator.reset()
        moved = self.applied[2] != self.params.steer_rate_max
        self.applied = (self.lead0, float(self.params.steer_gain), float(self.params.steer_rate_max))
        self._write_rate(self.applied[2])
        if moved and self.on_params is not None:
            self.on_params(self.p)
        self.changes = 0

    def warm_up(self) -> None:
        """One replay of a dummy window (numba's cache loads, or compiles, here and not in a race); the estimate
        is untouched."""
        est = self.estimator
        T = np.linspace(0.0, 0.2, 11)
        steer_replay_nb(T, np.zeros(11), np.zeros(11), 5, est.H[:2], 0.0, 1.0, est.e[:2])

    def _write_rate(self, r: float) -> None:
        for arr in (self.p, *self.bases):
            arr[P_STEER_RATE_MAX] = r

    def observe(self, t: float, delta: float) -> None:
        est = self.estimator
        if not est.observe(t, delta) or est.estimate is None:
            return
        d, tau, g, r = est.estimate
        q = self.params
        want = (d + tau if abs(d + tau - self.lead0) > LEAD_STEP else self.lead0,
                g if abs(g / q.steer_gain - 1.0) > GAIN_STEP else float(q.steer_gain),
                r if r < (1.0 - RATE_STEP) * q.steer_rate_max else float(q.steer_rate_max))
        if want != self.applied:
            if want[2] != self.applied[2]:
                self._write_rate(want[2])
                if self.on_params is not None:
                    self.on_params(self.p)
            self.applied = want
            self.changes += 1

    def lead(self, period: float) -> float:
        return self.applied[0] + 0.5 * period

    @property
    def gain(self) -> float:
        return self.applied[1]

    def sent(self, u: float) -> None:
        self.estimator.sent(u)

    def summary(self) -> dict:
        return {**self.estimator.summary(), "steer_changes": self.changes}


__all__ = ["OnlineSteer", "SteerEstimator", "bank", "steer_replay_nb"]
