"""Latency compensation: predict the measured state forward to the instant the next command acts.

A state measured at loop time ``t_s`` reaches the controller ``age`` seconds later, and the
command computed from it acts on the car ``actuation_delay`` seconds after it is sent. The
controller therefore plans from the state predicted to ``t_now + actuation_delay``::

    x(t_now + d) = rk4(dynamic_rhs)( x(t_s), commands in force on the car over [t_s, t_now + d] )

with the same model the planner uses (:func:`racing.models.dynamic.dynamic_rhs`, numpy, through
:func:`racing.models.integrators.rk4`, the controller's parameter set). The commands in force are
those this computer sent: command ``i`` sent at loop time ``s_i`` acts from ``s_i + d`` on
(zero-order hold; before the first one the car holds still). Each command becomes the model's
inputs (steering rate [rad/s], acceleration [m/s^2]) through the car's actuator model - steering
target ``steer_gain * cmd + steer_offset`` clipped to ``steer_max``, first-order servo with
``steer_tau`` under ``steer_rate_max``; speed loop ``a = a_ff + speed_kp (v_cmd - v_x)`` clipped to
``[-decel_max, accel_max]`` - re-evaluated at every integration step of at most ``step_s``.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from racing.control.base import Command
from racing.models.dynamic import dynamic_rhs
from racing.models.integrators import rk4

STEER = 6  # state index of the road-wheel angle (dynamic layout)
VX = 3


class StatePredictor:
    """Forward prediction of the dynamic state over a short horizon with the commands in flight.

    Parameters
    ----------
    params : :class:`racing.models.params.VehicleParams` (the controller's own model parameters)
    actuation_delay_s : time [s] from sending a command to its taking effect on the car
    step_s : longest integration step [s] (default 5 ms)
    max_horizon_s : predictions are capped at this horizon [s] (a very old state is not
        extrapolated for seconds; the watchdog deals with it)
    history : commands kept (bounded memory)
    """

    def __init__(self, params, actuation_delay_s: float = 0.0, step_s: float = 0.005, max_horizon_s: float = 0.25,
                 history: int = 64):
        if not (math.isfinite(actuation_delay_s) and actuation_delay_s >= 0):
            raise ValueError(f"actuation delay {actuation_delay_s}: expected >= 0 s")
        if not (math.isfinite(step_s) and step_s > 0):
            raise ValueError(f"prediction step {step_s}: expected > 0 s")
        self.params = params
        self.p = params.to_array()
        self.delay = float(actuation_delay_s)
        self.step_s = float(step_s)
        self.max_horizon_s = float(max_horizon_s)
        self.history = int(history)
        self._steps: dict[int, object] = {}
        self._sent_t: list[float] = []
        self._sent_cmd: list[tuple[float, float, float]] = []

    def reset(self) -> None:
        """Forget the commands sent (a new run or a new vehicle session)."""
        self._sent_t.clear()
        self._sent_cmd.clear()

    def record(self, command: Command, t_sent: float) -> None:
        """``command`` was sent at loop time ``t_sent`` [s]."""
        if self._sent_t and t_sent < self._sent_t[-1]:
            t_sent = self._sent_t[-1]
        self._sent_t.append(float(t_sent))
        self._sent_cmd.append((float(command.steering_angle), float(command.speed), float(command.acceleration)))
        if len(self._sent_t) > self.history:
            del self._sent_t[0]
            del self._sent_cmd[0]

    def command_at(self, t: float) -> tuple[float, float, float]:
        """(steering [rad], speed [m/s], acceleration [m/s^2]) acting on the car at loop time ``t`` [s]."""
        i = bisect.bisect_right(self._sent_t, t - self.delay) - 1
        return self._sent_cmd[i] if i >= 0 else (0.0, 0.0, 0.0)

    def inputs(self, x: np.ndarray, cmd: tuple[float, float, float], h: float) -> np.ndarray:
        """Model inputs u[2] = (steering rate [rad/s], acceleration [m/s^2]) of the actuators for ``cmd``
        from state ``x[7]`` over a step of ``h`` [s]."""
        pr = self.params
        smax = pr.steer_max
        target = min(max(pr.steer_gain * cmd[0] + pr.steer_offset, -smax), smax)
        err = target - float(x[STEER])
        rate = err / pr.steer_tau if pr.steer_tau > 0 else err / h
        rate = min(max(rate, -pr.steer_rate_max), pr.steer_rate_max)
        if abs(rate * h) > abs(err):  # never pass the target within one step
            rate = err / h
        a = cmd[2] + pr.speed_kp * (cmd[1] - float(x[VX]))
        return np.array([rate, min(max(a, -pr.decel_max), pr.accel_max)])

    def _step(self, h: float):
        key = round(h * 1e9)
        f = self._steps.get(key)
        if f is None:
            if len(self._steps) > 64:
                self._steps.clear()
            f = self._steps[key] = rk4(dynamic_rhs, h)
        return f

    def predict(self, x: np.ndarray, t_state: float, t_target: float) -> np.ndarray:
        """The state at loop time ``t_target`` [s] from the state ``x[7]`` measured at ``t_state`` [s].

        Integration breaks at every instant a command starts acting, and steps at most ``step_s``.
        Returns a new float64[7] (yaw wrapped to (-pi, pi]); ``x`` itself when the horizon is <= 0.
        """
        x = np.asarray(x, dtype=np.float64)
        horizon = min(t_target - t_state, self.max_horizon_s)
        if not horizon > 0.0:
            return x
        t, t_end = t_state, t_state + horizon
        changes = [s + self.delay for s in self._sent_t if t < s + self.delay < t_end]
        y = x.copy()
        for seg_end in changes + [t_end]:
            span = seg_end - t
            if span <= 1e-9:
                continue
            n = max(1, math.ceil(span / self.step_s - 1e-9))
            h = span / n
            step = self._step(h)
            cmd = self.command_at(t + 1e-9)
            for _ in range(n):
                y = step(y, self.inputs(y, cmd, h), self.p)
            t = seg_end
        y[2] = math.remainder(float(y[2]), 2.0 * math.pi)
        if not np.all(np.isfinite(y)):
            return x
        return y
