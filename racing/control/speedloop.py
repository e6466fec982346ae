r"""Acceleration feedback around a car's own speed controller: the plan's acceleration, delivered.

A controller plans accelerations; the car takes a speed set-point (and, on a ``speed_accel`` interface, a
feed-forward acceleration) and its own speed controller turns that into drive and brake. The model knows that
controller as ``a = a_ff + speed_kp (v_cmd - v_x)``. A real one differs in structure, not only in gain: a PI loop
whose integrator, wound up on a straight, holds back the braking at its end; a gain a fit got 10-30 % wrong; a
drivetrain lag; drag, grade or a brake the model does not know. Planned braking that is not delivered puts the car
into the next corner too fast; on the foreign-car bench (``tools/foreign_bench.py``) every car behind a PI speed
loop left the track at the first braking zone, the true car's data sheet as its model included.

:class:`AccelObserver` estimates what the car adds to the acceleration the model expects, ``b`` [m/s^2], from
the measured speed alone, and sends the command for ``a_plan - b``. Between two control instants (``h`` [s] apart)
the model is ``dv/dt = f + b``: ``f`` the vehicle model's ``v_x'`` (:func:`racing.models.dynamic.body_derivatives`:
drag, the front tyre's cornering drag, ``v_y r``, the power and grip limits) at the measured state under the
acceleration the last command asks of the model's speed loop (``a_ff + speed_kp (v_cmd - v_x)``), ``b`` slowly
varying; a two-state observer with a double pole at ``-1 / tau``::

    e = v_meas - (v_hat + h (f + b_hat))          (the speed innovation [m/s])
    v_hat <- v_hat + h (f + b_hat) + 2 h / tau e
    b_hat <- b_hat + h / tau^2 e                  (frozen while the request is at a limit, below; |b_hat| bounded)

The bias is frozen where a mismatch says nothing about the speed loop: while the request is at the drive limit of
the model (motor power, ``accel_max``: a car that accelerates less there is short of power, and a bias learnt there
would cut the braking that follows) and below ``V_MIN``. It is not frozen at ``decel_max``: that is the planner's
clamp, not the car's brake (a plan braking at ``decel_max`` into the first hairpin of Norisring behind a PI loop
got 4-6.5 m/s^2 of its 6.8 with the bias frozen there, and left the track); the command's acceleration may pass it
by the bias, and the model's tyre saturates what the brake cannot deliver. It is bounded by ``BIAS_SHARE`` of the
car's larger acceleration limit. White speed noise of 0.2 m/s at 50 Hz moves
``b_hat`` by 0.04 m/s^2 (standard deviation, ``tau`` 0.5 s; 0.17 m/s^2 at 0.2 s).

**A PI loop** (the car file's ``speed_ki`` > 0, identified by ``racing fit``: :mod:`racing.sysid.speedloop`) adds
``speed_ki I`` to its output, ``I`` the integral of its speed error. The observer keeps a shadow of it, advanced
between two control instants by the error of the set-point sent against the mean measured speed and held where
the car's would be (:func:`racing.models.actuators.speed_integral_rate`, at the loop's output at the period's
midpoint: a loop asked for exactly its limit leaves it as the car gains speed, and integrates),
and asks the loop for ``a - speed_ki I``: the integral wound up on a power-limited straight, where a P loop's
set-point leads the speed the car cannot reach, no longer holds back the braking at its end (on the foreign-car
bench a PI loop so wound delivered -0.9 m/s^2 of a planned -7 in the first 0.2 s of braking). The bias then
takes what the shadow misses. With ``learn=False`` (a controller's ``accel_feedback: false``) only the shadow
integral is applied.
"""
from __future__ import annotations

import math

from racing.interfaces import Command, DriveInterface
from racing.models import sops
from racing.models.actuators import speed_integral_rate
from racing.models.dynamic import body_derivatives

#: time constant of the observer's double pole [s]: 0.2 s followed a wound-up PI integrator more closely (on the
#: straight-line test 0.8 m/s over-shed instead of 1.3 m/s) but cost MPPI 2-5 % of lap time on lab_loop and
#: garage_gp under ``--noise 1 --delay 0.02`` (3 seeds each); 0.5 s did not (docs/results.md, 2026-12-07)
TAU = 0.5
#: below this speed [m/s] the bias is not learnt (a car at rest cannot show its braking)
V_MIN = 1.0
#: the bias is bounded by this share of max(accel_max, decel_max)
BIAS_SHARE = 0.3
#: a request within this much [m/s^2] of the model's drive limit counts as at the limit
AT_LIMIT = 0.1


class AccelObserver:
    """The acceleration bias of a car's speed loop, observed and compensated (module doc).

    params : VehicleParams  the controller's car (``speed_kp`` [1/s], ``accel_max``, ``decel_max`` [m/s^2],
             ``v_max`` [m/s])
    tau    : float          the observer's time constant [s]
    learn  : bool           learn the bias (False: only the shadow of a PI loop's integral, for ``speed_ki`` > 0)
    """

    def __init__(self, params, tau: float = TAU, learn: bool = True):
        if not (math.isfinite(tau) and tau > 0.0):
            raise ValueError(f"AccelObserver tau = {tau!r}: expected a positive time [s]")
        self.kp, self.v_max = float(params.speed_kp), float(params.v_max)
        self.ki, self.learn_bias = float(params.speed_ki), bool(learn)
        self.lo, self.hi = -float(params.decel_max), float(params.accel_max)
        self.bias_max = BIAS_SHARE * max(float(params.accel_max), float(params.decel_max))
        self.tau = float(tau)
        self.p = params.to_array()
        self.reset()

    def reset(self) -> None:
        self.bias = 0.0
        self._v = math.nan  # the observer's speed [m/s]; NaN until the first measurement
        self._t = math.nan
        self._f = 0.0       # the model's v_x' under the last command [m/s^2]
        self._learn = False
        self.integral = 0.0  # the shadow of the car's speed-loop integral [m] (speed_ki > 0)
        self._sent = math.nan  # the last set-point [m/s], the speed it was sent at [m/s], the loop's output then
        # (unclipped [m/s^2])
        self._v_sent = 0.0
        self._u_sent = 0.0

    def update(self, v_meas: float, t: float) -> float:
        """Take the speed ``v_meas`` [m/s] measured at ``t`` [s]; return the bias estimate [m/s^2]."""
        h = t - self._t
        if not (h > 0.0 and h < 1.0) or math.isnan(self._v):  # first call, a reset clock or a long gap: restart
            self._v, self._t = v_meas, t
            return self.bias
        if self.ki > 0.0 and not math.isnan(self._sent):  # the car's integral over the period, at its midpoint
            dv = 0.5 * (v_meas - self._v_sent)
            u_mid = min(max(self._u_sent - self.kp * dv, self.lo), self.hi)
            self.integral += h * speed_integral_rate(u_mid, self._sent - self._v_sent - dv, self.p)
        pred = self._v + h * (self._f + self.bias)
        e = v_meas - pred
        self._v = pred + 2.0 * h / self.tau * e
        if self._learn and v_meas > V_MIN:
            b = self.bias + h / (self.tau * self.tau) * e
            self.bias = min(max(b, -self.bias_max), self.bias_max)
        self._t = t
        return self.bias

    def command(self, iface: DriveInterface, steering_angle: float, speed: float, acceleration: float, state,
                hi: float) -> Command:
        """The command of ``iface`` for the plan (``steering_angle`` [rad], ``speed`` [m/s], ``acceleration``
        [m/s^2]) at the measured ``state[7]`` (observation layout), its acceleration corrected by the bias; ``hi``
        [m/s^2]: the model's drive limit at the state's ``v_x`` (:func:`racing.models.dynamic.accel_limits`).
        Remembers what the model expects of it."""
        v_x = float(state[3])
        at_drive_limit = acceleration >= hi - AT_LIMIT
        a = acceleration if at_drive_limit else acceleration - self.bias
        pi = self.ki * self.integral
        cmd = iface.command(steering_angle, speed, a - pi, v_x, self.kp, self.v_max)
        u = cmd.acceleration + self.kp * (cmd.speed - v_x) + pi  # not clipped: the planner's limits
        self._f = body_derivatives(v_x, float(state[4]), float(state[5]), float(state[6]), 0.0, u, self.p, sops)[0]
        self._learn = self.learn_bias and not at_drive_limit and u < hi - AT_LIMIT
        self._sent, self._v_sent, self._u_sent = cmd.speed, v_x, u
        return cmd


def speed_observer(params, accel_feedback: bool) -> AccelObserver | None:
    """A controller's observer of the car's speed loop: one that learns the bias with ``accel_feedback``, one that
    only shadows the integral of a PI loop (``params.speed_ki`` > 0) without it, else None."""
    if accel_feedback or params.speed_ki > 0.0:
        return AccelObserver(params, learn=accel_feedback)
    return None


__all__ = ["AccelObserver", "speed_observer"]
