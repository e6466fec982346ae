r"""Dead-time compensation: plan from the state the car will be in when the command acts.

A command computed at ``t`` reaches the tyres ``d`` seconds later (the computation itself, a bus, a servo's
firmware: a transport delay). A receding-horizon plan that starts from the state measured at ``t`` plans the first
``d`` seconds as if its command acted at once; at the limit, where the car's yaw answers within tens of
milliseconds, that is a late car every tick (on lab_loop a 20 ms delay the controller did not know cost iLQR three
points of lap time, nearly all in the hairpin it entered too fast and left at full lock, docs/results.md
2026-12-07). The classic remedy (a Smith predictor, as a model-predictive controller's delay compensation,
e.g. Kamel et al. 2017 for MPC) is to carry the measured state over the dead time with the commands already sent,
which act in it, and plan from there::

    x(t + d) = model( x(t), the commands sent at t_i < t acting from t_i + d on )

with the controller's own model and actuators (:func:`racing.control.observer.predict_nb`: the same discrete step
and actuator model the plans and the state filter use). ``d`` is the dead time identified from the measured
steering angle (:class:`racing.control.steering.SteerEstimator`: commanded against measured angle, a bank of dead
times, lags, gains and rate limits; the dead time it sees includes the controller's own compute time and whatever
delays the car adds) once it is informed; before that, the car file's ``steer_delay``. A car without a dead time
gets ``d = 0`` and plans from its measurement as without this. Allocates nothing per tick.
"""
from __future__ import annotations

import math

import numpy as np

from racing.control.observer import predict_nb
from racing.control.steering import SteerEstimator
from racing.models.params import VehicleParams

#: the prediction's longest sub-step [s] (the actuators' rates are held over one: at 5 ms the yaw rate carried
#: over 20 ms was 1 % off the runtime predictor's, at 1 ms 0.1 %, tests/control/test_latency.py)
SUBSTEP_S = 0.001


class DeadTime:
    """The dead time of the car's actuation and the state carried over it (module doc).

    params : the controller's car (its ``steer_delay`` is the prior); p : its flat parameters (read at every
    prediction: an online grip estimate that rewrites them is followed); estimator : a
    :class:`~racing.control.steering.SteerEstimator` already fed by the caller (an online steering identification),
    else one of its own, fed through :meth:`observe` and :meth:`sent`; history : commands kept (64: the bank's
    longest dead time, 80 ms, at up to 500 Hz)."""

    def __init__(self, params: VehicleParams, p: np.ndarray, estimator: SteerEstimator | None = None,
                 history: int = 64):
        self.params, self.p = params, p
        self.own = estimator is None
        self.estimator = SteerEstimator(params) if estimator is None else estimator
        self.T = np.full(history, -np.inf)  # times the commands were sent [s], oldest first
        self.C = np.zeros((history, 3))  # (steering [rad], speed [m/s], acceleration [m/s^2])
        self.x, self.tmp = np.zeros(7), np.zeros(7)
        self.carry_fn = self.carry  # bound once: start_state hands it to the state filter every tick
        self.reset()

    def reset(self) -> None:
        if self.own:
            self.estimator.reset()
        self.T[:] = -np.inf
        self.n = 0

    def warm_up(self) -> None:
        """Compile or load the prediction kernel now (not in a race's first ticks); then :meth:`reset`."""
        self.x[:] = 0.0
        self.x[3] = 1.0
        predict_nb(self.x, 0.0, 1.0, 0.0, self.p, 0.01, 2, self.tmp)
        self.reset()

    @property
    def delay(self) -> float:
        """The dead time [s] compensated now: the identified one once informed, else the car file's."""
        est = self.estimator  # read in place: no estimate tuple built a few times a tick
        return float(self.params.steer_delay if (est.best is None or not est.informed) else est.H[est.best, 0])

    def observe(self, t: float, delta: float) -> None:
        """The steering angle [rad] measured at ``t`` [s] (before the command of ``t`` is sent)."""
        if self.own:
            self.estimator.observe(t, delta)

    def sent(self, t: float, steering: float, speed: float, acceleration: float) -> None:
        """The command sent at ``t`` [s]."""
        T, C = self.T, self.C
        T[:-1] = T[1:]
        C[:-1] = C[1:]
        T[-1] = t
        C[-1, 0], C[-1, 1], C[-1, 2] = steering, speed, acceleration
        self.n = min(self.n + 1, T.size)
        if self.own:
            self.estimator.sent(steering)

    def carry(self, x: np.ndarray, t0: float, t1: float, out: np.ndarray) -> np.ndarray:
        """``out[7]``: the state ``x[7]`` at ``t0`` carried to ``t1`` [s] with the commands in force (each sent at
        ``t_i`` acts from ``t_i + delay`` on; before the first one, the angle and speed held); ``out`` must not be
        ``x``. The state filter carries its estimate with it (:meth:`StateObserver.update`'s ``carry``)."""
        d, T, C, tmp = self.delay, self.T, self.C, self.tmp
        out[:] = x
        tau = t0
        k = int(np.searchsorted(T, tau - d, side="right")) - 1  # the command in force at tau
        while tau < t1 - 1e-9:
            seg_end = min(T[k + 1] + d, t1) if k + 1 < T.size else t1
            h = seg_end - tau
            if h > 1e-9:
                if k >= 0 and math.isfinite(T[k]):
                    steer, speed, accel = C[k, 0], C[k, 1], C[k, 2]
                else:
                    steer, speed, accel = out[6], out[3], 0.0
                predict_nb(out, steer, speed, accel, self.p, h, max(1, math.ceil(h / SUBSTEP_S - 1e-9)), tmp)
                out[:] = tmp
            tau = seg_end
            k += 1
        return out

    def predict(self, t: float, x: np.ndarray) -> np.ndarray:
        """The state ``x[7]`` measured (or filtered) at ``t`` [s] carried over the dead time with the commands in
        force (a view of a buffer made once); ``x`` itself when there is no dead time or no command yet, or when
        the prediction is not finite."""
        d = self.delay
        if not d > 0.0 or self.n == 0:
            return x
        out = self.carry(x, t, t + d, self.x)
        if not np.all(np.isfinite(out)):
            return x
        out[2] = math.remainder(float(out[2]), 2.0 * math.pi)
        return out

    def summary(self) -> dict:
        return {"dead_time_s": round(self.delay, 4), **(self.estimator.summary() if self.own else {})}


def start_state(t: float, z: np.ndarray, observer, dead: DeadTime | None) -> np.ndarray:
    """``x[7]``: the state a controller plans from at ``t`` [s] given the measurement ``z[7]``: filtered by
    ``observer`` (:class:`~racing.control.observer.StateObserver`, or None; on a car with a dead time it carries its
    estimate with the commands in force), then carried over the dead time by ``dead`` (or None)."""
    if dead is None:
        return z if observer is None else observer.update(t, z)
    dead.observe(t, float(z[6]))
    carry = dead.carry_fn if (dead.delay > 0.0 and dead.n > 0) else None
    x = z if observer is None else observer.update(t, z, carry)
    return dead.predict(t, x)


def steering_lead(dead: DeadTime | None, steer, params: VehicleParams, period: float,
                  steer_lead: float | None) -> float | None:
    """The steering lead [s] to command a plan that starts from :func:`start_state`'s state: ``steer_lead`` when set
    (counted from the instant the command acts), else the servo's lag and half a ``period`` [s] (``steer``'s
    identified lag, an :class:`~racing.control.steering.OnlineSteer`, when given); without ``dead``, ``steer_lead`` as
    given (None: :func:`~racing.control.plan.command_from_plan`'s default, dead time included)."""
    if dead is None or steer_lead is not None:
        return steer_lead
    return max(steer.lead(period) - dead.delay, 0.0) if steer is not None else params.steer_tau + 0.5 * period


def record_sent(t: float, cmd, observer, dead: DeadTime | None) -> None:
    """Tell the state filter and the dead-time predictor (either may be None) the command sent at ``t`` [s]."""
    if observer is not None:
        observer.record(cmd.steering_angle, cmd.speed, cmd.acceleration)
    if dead is not None:
        dead.sent(t, cmd.steering_angle, cmd.speed, cmd.acceleration)


__all__ = ["DeadTime", "SUBSTEP_S", "record_sent", "start_state", "steering_lead"]
