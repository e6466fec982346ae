"""The state a controller plans from, when its measurements are noisy: a predictor-corrector filter whose gains
follow the noise it measures.

Each control tick the previous estimate is carried to the new measurement's time by the controller's own model
(:func:`racing.models.discrete.dynamic_step_c`, driven by the command last sent through the car's actuator model,
:func:`racing.models.actuators.actuator_inputs`: the one source the plants and the controllers use; on a car with a
dead time, by the commands in force, :meth:`racing.control.latency.DeadTime.carry`) and corrected
per state: ``x = x_pred + K (x_meas - x_pred)``. The gains are those of a steady-state scalar Kalman filter,
``K = 1 - R / S``, from two running estimates per state (forgetting time ``memory_s``):

* ``R``, the measurement noise's variance, bounded from above twice and taken as the smaller bound: by the
  measurements' third differences ``y_k - 3 y_{k-1} + 3 y_{k-2} - y_{k-3}`` (white noise of variance ``R`` gives
  ``20 R``; the car's own motion adds its jerk: a sampling controller's steering is not smooth at the control
  rate) and by the model's one-tick prediction error from the last *measurement*, ``e_k``: white noise enters it
  twice, ``e_k = n_k - n_{k-1} + m_k``, so its mean square ``V = 2 R + M`` and its lag-one mean product ``C = -R +
  M`` where the model's own error ``m`` changes slowly (the same commands, a smooth trajectory): ``R = (V - C) /
  3`` (the adaptive filters' innovation correlations, Mehra 1970, in their simplest form). A car measured
  without noise gets ``R`` near 0, ``K`` near 1, and plans from its measurements as before;
* ``S``, the innovations' mean square (``x_meas - x_pred``): the noise plus what the model mispredicts (an
  actuator, a tyre or a delay the model does not know), so a poor prediction raises ``K`` towards the
  measurement by itself.

``K`` is held in ``[k_min, 1]``; an innovation beyond ``gate`` standard deviations of ``S`` is taken whole (a car
that was pushed, a reset: the measurement, not the filter). Until ``warm`` measurements have been seen the
measurement passes through. The filter never feeds the controllers' own estimators (grip, steering, speed loop):
they replay the raw measurements, whose noise they model; a filtered state would pull them to the model's own
values. Allocates nothing per tick.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.models import sops
from racing.models.actuators import actuator_inputs
from racing.models.discrete import dynamic_step_c
from racing.models.fastmath import FM

NX = 7
YAW = 2


@njit(cache=True, fastmath=FM, error_model="numpy")
def predict_nb(x, cmd_steer, cmd_speed, cmd_accel, p, h, nsub, out):
    """``out[7]``: the state ``x[7]`` carried over ``h`` [s] in ``nsub`` sub-steps of the model ``p[N_PARAMS]``
    under the command (steering [rad], speed [m/s], acceleration [m/s^2]) through the actuator model."""
    hs = h / nsub
    x0, x1, x2, vx, vy, r, d = x[0], x[1], x[2], x[3], x[4], x[5], x[6]
    c, s = math.cos(x2), math.sin(x2)
    for _ in range(nsub):
        rate, a = actuator_inputs(d, vx, cmd_steer, cmd_speed, cmd_accel, p, hs, False, sops)
        x0, x1, x2, vx, vy, r, d, c, s = dynamic_step_c(x0, x1, x2, vx, vy, r, d, c, s, rate, a, p, hs, sops)
    out[0], out[1], out[2], out[3], out[4], out[5], out[6] = x0, x1, x2, vx, vy, r, d


@njit(cache=True, fastmath=FM, error_model="numpy")
def _wrap(a):
    """``a`` [rad] wrapped to [-pi, pi)."""
    return a - 2.0 * math.pi * math.floor(a / (2.0 * math.pi) + 0.5)


@njit(cache=True, fastmath=FM, error_model="numpy")
def correct_nb(z, pred, pred_m, last, hist, R, V, S, K, x, alpha, k_min, gate, noise_on, filter_on, E, N):
    """One correction (module doc), in place: the measurement ``z[7]``, the prediction ``pred[7]`` (from the last
    estimate) and ``pred_m[7]`` (from the last measurement); ``last[7]`` the previous measurement and ``hist[3, 7]``
    its last three first differences (newest first) move on; ``R``, ``V``, ``S``, ``K`` [7] the noise, the
    measurement-to-measurement prediction error's mean square, the innovation and the gain; ``E[2, 7]``: that
    error's last value and its lag-one mean product; ``N[7]`` the noise's variance with both bounds applied; ``x[7]``
    the estimate (``z`` itself unless ``filter_on`` and the
    prediction is finite). ``noise_on``: three differences of real measurements are held."""
    finite = True
    for i in range(NX):
        if not math.isfinite(pred[i]):
            finite = False
    for i in range(NX):
        d, inn, em = z[i] - last[i], z[i] - pred[i], z[i] - pred_m[i]
        if i == YAW:
            d, inn, em = _wrap(d), _wrap(inn), _wrap(em)
        hist[2, i], hist[1, i], hist[0, i] = hist[1, i], hist[0, i], d
        last[i] = z[i]
        if noise_on:
            d3 = hist[0, i] - 2.0 * hist[1, i] + hist[2, i]
            R[i] += alpha * (d3 * d3 / 20.0 - R[i])
        S[i] += alpha * (inn * inn - S[i])
        V[i] += alpha * (em * em - V[i])
        if noise_on:
            E[1, i] += alpha * (em * E[0, i] - E[1, i])
        E[0, i] = em
        N[i] = min(R[i], max((V[i] - E[1, i]) / 3.0, 0.0))  # bounded by the jerk; and by the model's errors
        k = 1.0 - N[i] / S[i] if S[i] > 0.0 else 1.0
        k = min(max(k, k_min), 1.0)
        if inn * inn > gate * gate * S[i] or not (filter_on and finite):
            k = 1.0
        K[i] = k
        x[i] = z[i] if k == 1.0 else pred[i] + k * inn
    x[YAW] = _wrap(x[YAW])


class StateObserver:
    """The filter of the module doc for the model ``p[N_PARAMS]`` (the controller's array, read at every tick: an
    online grip estimate that rewrites it is followed). :meth:`update` with each measurement gives the state to plan
    from; :meth:`record` the command sent after it.

    memory_s : forgetting time of the noise estimates [s]; k_min : the smallest
    gain; gate : innovations beyond this many standard deviations are taken whole; warm : measurements before the
    filter acts; substep_s : the prediction's longest sub-step [s]."""

    def __init__(self, p: np.ndarray, memory_s: float = 2.0, k_min: float = 0.1, gate: float = 5.0,
                 warm: int = 25, substep_s: float = 0.005):
        self.p = p
        self.memory_s = float(memory_s)
        self.k_min, self.gate, self.warm, self.substep_s = float(k_min), float(gate), int(warm), float(substep_s)
        self.x, self.pred, self.pred_m = np.zeros(NX), np.zeros(NX), np.zeros(NX)
        self.hist = np.zeros((3, NX))  # the last three first differences of the measurements, newest first
        self.last = np.zeros(NX)  # the last measurement
        self.R, self.V, self.S, self.K = np.zeros(NX), np.zeros(NX), np.zeros(NX), np.ones(NX)
        self.E, self.N = np.zeros((2, NX)), np.zeros(NX)
        self.cmd = (0.0, 0.0, 0.0)
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new race)."""
        self.n = 0
        self.t = -math.inf
        self.R[:], self.V[:], self.S[:], self.K[:] = 0.0, 0.0, 0.0, 1.0
        self.E[:], self.N[:] = 0.0, 0.0
        self.cmd = (0.0, 0.0, 0.0)

    def record(self, steering: float, speed: float, acceleration: float) -> None:
        """The command sent after the last :meth:`update` (what acts on the car until the next one)."""
        self.cmd = (float(steering), float(speed), float(acceleration))

    def update(self, t: float, z: np.ndarray, carry=None) -> np.ndarray:
        """The state to plan from at ``t`` [s] given the measurement ``z[7]``: a view of a buffer made once (copy
        it to keep it). A measurement with a non-finite value, or one not after the last, passes through.
        ``carry(x, t0, t1, out)``: how a state is carried between measurements when the car has a dead time
        (:meth:`racing.control.latency.DeadTime.carry`: the commands in force, not the last one sent)."""
        h = t - self.t
        if not (np.all(np.isfinite(z)) and h > 0.0 and math.isfinite(h)) or self.n == 0:
            self._restart(t, z)
            return self.x
        if carry is not None:
            carry(self.x, self.t, t, self.pred)
            carry(self.last, self.t, t, self.pred_m)
        else:
            nsub = max(1, int(math.ceil(h / self.substep_s - 1e-9)))
            predict_nb(self.x, self.cmd[0], self.cmd[1], self.cmd[2], self.p, h, nsub, self.pred)
            predict_nb(self.last, self.cmd[0], self.cmd[1], self.cmd[2], self.p, h, nsub, self.pred_m)
        self.n += 1
        self.t = t
        alpha = 1.0 - math.exp(-h / self.memory_s)
        correct_nb(z, self.pred, self.pred_m, self.last, self.hist, self.R, self.V, self.S, self.K, self.x, alpha,
                   self.k_min, self.gate, self.n >= 4, self.n >= self.warm, self.E, self.N)
        return self.x

    def warm_up(self) -> None:
        """Compile or load the filter's kernels now (not in a race's first ticks); then :meth:`reset`."""
        z = np.zeros(NX)
        z[3] = 1.0
        for k in range(3):
            self.update(0.02 * k, z)
        self.reset()

    def _restart(self, t: float, z: np.ndarray) -> None:
        self.x[:] = z
        self.last[:] = z
        self.hist[:] = 0.0
        self.t = t if math.isfinite(t) else self.t
        self.n = 1 if np.all(np.isfinite(z)) else 0

    def summary(self) -> dict:
        """``{"filter_noise_std": [7], "filter_gain": [7]}``: the measurement noise it measured per state (x, y [m],
        yaw [rad], v_x, v_y [m/s], r [rad/s], steering [rad]; ``R`` with both bounds applied) and the gains last
        applied."""
        return {"filter_noise_std": [round(float(v), 6) for v in np.sqrt(self.N)],
                "filter_gain": [round(float(v), 4) for v in self.K]}


__all__ = ["StateObserver", "correct_nb", "predict_nb"]
