"""Latency compensation: predict the measured state forward to the instant the next command acts.

A state measured at loop time ``t_s`` reaches the controller ``age`` seconds later, and the
command computed from it acts on the car ``actuation_delay`` seconds after it is sent. The
controller therefore plans from the state predicted to ``t_now + actuation_delay``::

    x(t_now + d) = rk4(dynamic_rhs)( x(t_s), commands in force on the car over [t_s, t_now + d] )

with the same model the planner uses (:func:`racing.models.dynamic.dynamic_rhs`, numpy, through
:func:`racing.models.integrators.rk4`, the controller's parameter set). The commands in force are
those this computer sent: command ``i`` sent at loop time ``s_i`` acts from ``s_i + d`` on
(zero-order hold; before the first one the car holds still). Each command becomes the model's
inputs (steering rate [rad/s], acceleration [m/s^2]) through the car's actuator model
(:func:`racing.models.actuators.actuator_inputs_pi`, the plants' and the controllers' one source: the servo and
the speed loop, with its integrator where the car has one), re-evaluated at every integration step of at most
``step_s``. For a car whose speed loop integrates (``speed_ki > 0``) the predictor keeps a shadow of the car's
integral, advanced from one measured state to the next with the measured speed and the command in force
(:func:`racing.models.actuators.speed_integral_rate`, anti-windup included), and carries it through the
prediction; a P loop (``speed_ki = 0``) has none.
"""
from __future__ import annotations

import bisect
import math

import numpy as np

from racing.control.base import Command
from racing.models.actuators import actuator_inputs_pi
from racing.models.dynamic import dynamic_rhs
from racing.models.integrators import rk4
from racing.models.ops import NUMPY

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
        self.ki = float(params.speed_ki)
        #: the shadow of the car's speed-loop integral [m] at loop time ``_t_integ`` (None: no state seen yet)
        self.integral = 0.0
        self._t_integ: float | None = None

    def reset(self) -> None:
        """Forget the commands sent and the integral's shadow (a new run or a new vehicle session)."""
        self._sent_t.clear()
        self._sent_cmd.clear()
        self.integral = 0.0
        self._t_integ = None

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

    def inputs(self, x: np.ndarray, cmd: tuple[float, float, float], h: float, integral: float = 0.0):
        """Model inputs u[2] = (steering rate [rad/s], acceleration [m/s^2]) of the actuators for ``cmd``
        from state ``x[7]`` over a step of ``h`` [s], with the speed loop's integral ``integral`` [m]; and the
        integral advanced over the step."""
        rate, a, integ = actuator_inputs_pi(float(x[STEER]), float(x[VX]), cmd[0], cmd[1], cmd[2], self.p, h, False,
                                            self.ki, integral, NUMPY)
        return np.array([float(rate), float(a)]), float(integ)

    def _advance_integral(self, x: np.ndarray, t_state: float) -> None:
        """The integral's shadow moved to the measured state ``x`` at ``t_state`` [s]: the speed error then,
        held since the previous state (at most ``max_horizon_s``), with the loop's anti-windup."""
        if self.ki == 0.0:
            return
        if self._t_integ is not None and t_state > self._t_integ:
            dt = min(t_state - self._t_integ, self.max_horizon_s)
            self.integral = self.inputs(x, self.command_at(t_state), dt, self.integral)[1]
        if self._t_integ is None or t_state > self._t_integ:
            self._t_integ = t_state

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
        if np.all(np.isfinite(x)):
            self._advance_integral(x, t_state)
        horizon = min(t_target - t_state, self.max_horizon_s)
        if not horizon > 0.0:
            return x
        t, t_end = t_state, t_state + horizon
        changes = [s + self.delay for s in self._sent_t if t < s + self.delay < t_end]
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging prediction returns the measurement
            y = self._integrate(x.copy(), t, t_end, changes)
        if not np.all(np.isfinite(y)):
            return x
        y[2] = math.remainder(float(y[2]), 2.0 * math.pi)
        return y

    def _integrate(self, y: np.ndarray, t: float, t_end: float, changes: list[float]) -> np.ndarray:
        """``y`` from loop time ``t`` to ``t_end`` [s], the integration broken at ``changes`` (command changes)."""
        integ = self.integral
        for seg_end in changes + [t_end]:
            span = seg_end - t
            if span <= 1e-9:
                continue
            n = max(1, math.ceil(span / self.step_s - 1e-9))
            h = span / n
            step = self._step(h)
            cmd = self.command_at(t + 1e-9)
            for _ in range(n):
                u, integ = self.inputs(y, cmd, h, integ)
                y = step(y, u, self.p)
            t = seg_end
        return y
