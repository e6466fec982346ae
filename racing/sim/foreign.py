"""Actuators the project's model does not have, to put in front of a plant nobody here wrote (CommonRoad's cars).

The project's one actuator model (:func:`racing.models.actuators.actuator_inputs`: a first-order steering servo with a
rate limit, a speed loop ``a = a_ff + k (v_cmd - v_x)``) is what every fit and controller assumes. A car's own
actuators differ; :class:`ForeignActuators` is one such car, built to differ in structure, not only in values:

* steering: the command reaches the servo after a dead time (``dead_time`` [s], a transport delay: CAN bus, servo
  firmware), scaled by ``steer_gain``; the servo is proportional (``servo="p"``: rate ``steer_kp`` [1/s] x the angle
  error) or second order (``servo="second_order"``: the rate accelerates by ``servo_wn^2`` x the angle error minus
  ``2 servo_zeta servo_wn`` x the rate, an overshooting position loop with inertia), and saturates at the rate limit
  (``rate_max`` [rad/s]) and the angle limit (``steer_max`` [rad]);
* speed: a PI loop on the speed set-point (``speed_kp`` [1/s], ``speed_ki`` [1/s^2]; ``speed_ki = 0``: a P loop) with
  the integrator clamped while the output saturates (anti-windup), clipped to ``[-decel_max, accel_max]`` [m/s^2];
  the command's acceleration field is ignored (a speed-only drive-by-wire, ``drive_interface: speed``) unless
  ``accel_ff`` (it is added to the loop's output: ``drive_interface: speed_accel``).

``inputs(delta, v_x, cmd_steer, cmd_speed, cmd_accel, h)`` returns the model inputs (steering rate [rad/s],
acceleration [m/s^2]) for a sub-step of ``h`` [s] and advances the actuators' own states (the delay line, the
integrator) by it; ``reset()`` empties them.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass
class ForeignActuators:
    """A steering servo with dead time and a PI speed loop (module doc); the defaults are a full-size car's."""

    steer_kp: float = 10.0
    dead_time: float = 0.04
    steer_gain: float = 0.95
    rate_max: float = 0.4
    steer_max: float = 0.5
    speed_kp: float = 0.6
    speed_ki: float = 0.25
    accel_max: float = 4.0
    decel_max: float = 8.0
    servo: str = "p"
    servo_wn: float = 12.0
    servo_zeta: float = 0.7
    accel_ff: bool = False

    def __post_init__(self):
        if self.servo not in ("p", "second_order"):
            raise ValueError(f"ForeignActuators.servo = {self.servo!r}: expected 'p' or 'second_order'")
        for name in ("steer_kp", "rate_max", "steer_max", "accel_max", "decel_max", "servo_wn", "servo_zeta"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0.0):
                raise ValueError(f"ForeignActuators.{name} = {v!r}: expected a positive number")
        for name in ("dead_time", "speed_kp", "speed_ki", "steer_gain"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0.0):
                raise ValueError(f"ForeignActuators.{name} = {v!r}: expected a number >= 0")
        self.reset()

    def reset(self) -> None:
        self._t = 0.0
        self._line: deque = deque()
        self._cmd = 0.0
        self._integral = 0.0
        self._rate = 0.0

    @property
    def drive_interface(self) -> str:
        """What this drive-by-wire takes (a key of :data:`racing.interfaces.DRIVE_INTERFACES`)."""
        return "speed_accel" if self.accel_ff else "speed"

    def _delayed(self, cmd_steer: float, h: float) -> float:
        """The steering command the servo sees now: the one sent ``dead_time`` ago (the first one until then)."""
        if self._t == 0.0:  # until the dead time has passed the servo holds the first command
            self._cmd = cmd_steer
        self._t += h
        self._line.append((self._t, cmd_steer))
        while self._line and self._line[0][0] <= self._t - self.dead_time + 1e-12:
            self._cmd = self._line.popleft()[1]
        return self._cmd

    def inputs(self, delta: float, vx: float, cmd_steer: float, cmd_speed: float, cmd_accel: float,
               h: float) -> tuple[float, float]:
        target = min(max(self.steer_gain * self._delayed(cmd_steer, h), -self.steer_max), self.steer_max)
        if self.servo == "p":
            rate = self.steer_kp * (target - delta)
        else:
            wn = self.servo_wn
            rate = self._rate + h * (wn * wn * (target - delta) - 2.0 * self.servo_zeta * wn * self._rate)
        rate = min(max(rate, -self.rate_max), self.rate_max)
        self._rate = rate
        err = cmd_speed - vx
        a = self.speed_kp * err + self.speed_ki * self._integral + (cmd_accel if self.accel_ff else 0.0)
        sat = min(max(a, -self.decel_max), self.accel_max)
        if sat == a or (a > sat) != (err > 0.0):  # integrate unless that drives the saturation deeper
            self._integral += err * h
        return rate, sat


__all__ = ["ForeignActuators"]
