r"""The actuator model: how a car turns Ackermann commands into the models' inputs (one source).

Commands (``cmd_steer`` [rad], ``cmd_speed`` [m/s], ``cmd_accel`` [m/s^2]) become the model inputs
(steering rate [rad/s], acceleration [m/s^2]), recomputed at every integration sub-step ``h`` [s]:

* steering: target ``steer_gain * cmd_steer + steer_offset`` clipped to ``+-steer_max``, reached by a
  first-order servo with time constant ``steer_tau`` and rate limit ``steer_rate_max``; the rate never carries
  the angle past the target within one sub-step. The lag is discretised either by explicit Euler
  (``rate = err / tau``; the simulator's plant at >= 500 Hz) or exactly over the sub-step (``exact``:
  the rate that reaches ``target + (delta - target) exp(-h / tau)`` at its end; the log predictions of system
  identification, accurate with sub-steps of several milliseconds); ``tau = 0`` is an ideal servo;
* speed: ``a = cmd_accel + speed_kp (cmd_speed - v_x)`` clipped to ``[-decel_max, accel_max]`` (motor power
  and tyre grip are limited inside the vehicle model). A car whose loop has an integrator (``speed_ki`` [1/s^2],
  outside the parameter array: the controllers plan with the P loop) adds ``speed_ki I`` to ``cmd_accel``, the
  integral ``I`` [m] of the speed error advancing at :func:`speed_integral_rate` (the plants, the controllers'
  shadow of the car's integrator, the speed loop's identification).

Written once against ``ops`` (numpy / torch / casadi, or :mod:`racing.models.sops` in compiled code).
"""
from __future__ import annotations


from racing.models.fastmath import scalar
from racing.models.params import (P_ACCEL_MAX, P_DECEL_MAX, P_SPEED_KP, P_STEER_GAIN, P_STEER_MAX, P_STEER_OFFSET,
                                  P_STEER_RATE_MAX, P_STEER_TAU)


@scalar
def actuator_inputs(delta, vx, cmd_steer, cmd_speed, cmd_accel, p, h, exact, ops):
    """Model inputs (steering rate [rad/s], acceleration [m/s^2]) held over a sub-step ``h`` [s] from the
    current steering angle ``delta`` [rad] and speed ``vx`` [m/s]; ``exact`` selects the servo discretisation
    (module doc)."""
    smax = p[P_STEER_MAX]
    target = ops.minimum(ops.maximum(p[P_STEER_GAIN] * cmd_steer + p[P_STEER_OFFSET], -smax), smax)
    tau = p[P_STEER_TAU]
    err = target - delta
    tau_s = ops.maximum(tau, 1e-12)
    if exact:
        gain = (1.0 - ops.exp(-h / tau_s)) / h
    else:
        gain = 1.0 / tau_s
    rate = ops.where(tau > 0.0, err * gain, err / h)
    rmax = p[P_STEER_RATE_MAX]
    rate = ops.minimum(ops.maximum(rate, -rmax), rmax)
    rate = ops.where(ops.abs(rate * h) > ops.abs(err), err / h, rate)  # never past the target in one sub-step
    a = cmd_accel + p[P_SPEED_KP] * (cmd_speed - vx)
    return rate, ops.minimum(ops.maximum(a, -p[P_DECEL_MAX]), p[P_ACCEL_MAX])


@scalar
def actuator_inputs_pi(delta, vx, cmd_steer, cmd_speed, cmd_accel, p, h, exact, ki, integ, ops):
    """:func:`actuator_inputs` for a speed loop with an integral ``integ`` [m] of gain ``ki`` [1/s^2]: returns the
    model inputs and the integral advanced over ``h`` [s] (:func:`speed_integral_rate`; ``ki = 0``: the P loop)."""
    rate, a = actuator_inputs(delta, vx, cmd_steer, cmd_speed, cmd_accel + ki * integ, p, h, exact, ops)
    return rate, a, integ + h * speed_integral_rate(a, cmd_speed - vx, p)


@scalar
def speed_integral_rate(a, err, p):
    """d/dt of the speed loop's integral [m/s] at its output ``a`` [m/s^2] (clipped, as :func:`actuator_inputs`
    returns it) and speed error ``err = cmd_speed - v_x`` [m/s]: the error, or 0 where the output sits at a limit
    (``accel_max``, ``-decel_max``) and the error would drive it further (anti-windup by clamping)."""
    held = (a >= p[P_ACCEL_MAX] and err > 0.0) or (a <= -p[P_DECEL_MAX] and err < 0.0)
    return 0.0 if held else err
