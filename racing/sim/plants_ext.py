"""The richer plant ``dynamic_ext`` (the simulator's default): the car of :mod:`racing.models.dynamic` -- load
transfer, combined slip, drive and brake distribution and downforce as the car file states them -- plus effects
no controller here plans with, so that every race shows model mismatch, as a real car does:

* **tyre relaxation**: each axle's lateral force follows its steady-state value (``axle_forces`` and Pacejka of
  :mod:`racing.models.dynamic`, the one source) through a first-order lag over the relaxation length ``sigma``
  [m]: ``F_yi' = (F_yi,ss - F_yi) max(v_x, 1) / sigma`` (default ``sigma = 0.15 L``: 0.44 m for a 2.9 m wheelbase,
  5 cm for an F1TENTH car);
* **drivetrain lag**: the acceleration the motor and brakes deliver follows the speed-loop output ``a_cmd``
  through ``a' = (a_cmd - a) / tau_drive`` (``tau_drive`` [s], default 0.08 s);
* **actuator dead time** (an option, default 0): each command reaches the actuators ``dead_time`` [s] after the
  plant got it (on top of the simulator's ``--delay``). With 20 ms by default, pure pursuit left lab_loop and MPPI
  harbour_circuit: neither compensates a dead time, so it is left to ``--delay`` (the same effect,
  chosen per run) rather than built into every race.

``load_transfer`` scales the car's ``h_cg`` (1 = as stated, 0 = none).

State ``x[10]`` inside the plant = the 7 dynamic states + the delivered acceleration ``a`` [m/s^2] + the lagged
lateral forces ``F_yf, F_yr`` [N]; the plant reports the usual ``float64[7]``. Same interface as
:class:`racing.sim.plant.NumbaPlant`: ``reset(x0[7])``, ``step(command, dt) -> x[7]``, ``state``.
"""
from __future__ import annotations

import math
from collections import deque

import numpy as np
from numba import njit

from racing.models.fastmath import scalar
from racing.models import sops
from racing.models.actuators import actuator_inputs_pi
from racing.models.dynamic import blend_weight, body_derivatives_from_forces, tyre_force_set
from racing.models.numba_backend import make_rk4
from racing.models.params import N_PARAMS, P_HCG, VehicleParams

NX_EXT = 10
#: extra parameters after the car's N_PARAMS: drivetrain time constant tau_drive [s], relaxation length sigma [m]
PE_TAU, PE_SIGMA = N_PARAMS, N_PARAMS + 1


@scalar
def dynamic_ext_rhs_s(x, u, pe, out):
    """``out[10] = f(x[10], u[2], pe)``: the dynamic model's forces (:mod:`racing.models.dynamic`) with drivetrain
    lag and tyre relaxation (``pe`` = the car's flat parameters + (tau_drive, sigma)).

    ``u = (steering rate [rad/s], speed-loop acceleration command [m/s^2])``; ``x[7]`` is the delivered
    acceleration [m/s^2], ``x[8], x[9]`` the axles' lateral forces [N].
    """
    yaw, vx, vy, r, delta, a_del = x[2], x[3], x[4], x[5], x[6], x[7]
    fyf, fyr, fx = tyre_force_set(vx, vy, r, delta, a_del, pe, sops)  # the lateral forces' steady values
    dvx, dvy, dr = body_derivatives_from_forces(vx, vy, r, math.sin(delta), math.cos(delta), u[0], x[8], x[9], fx,
                                                blend_weight(vx, pe, sops), pe)
    rate = max(abs(vx), 1.0) / pe[PE_SIGMA]
    out[0] = vx * math.cos(yaw) - vy * math.sin(yaw)
    out[1] = vx * math.sin(yaw) + vy * math.cos(yaw)
    out[2] = r
    out[3] = dvx
    out[4] = dvy
    out[5] = dr
    out[6] = u[0]
    out[7] = (u[1] - a_del) / pe[PE_TAU]
    out[8] = (fyf - x[8]) * rate
    out[9] = (fyr - x[9]) * rate


@njit(cache=True)
def steady_lateral_forces(x, pe):
    """The steady-state lateral forces (F_yf, F_yr) [N] at state ``x[10]`` (the relaxation states' targets)."""
    fyf, fyr, _ = tyre_force_set(x[3], x[4], x[5], x[6], x[7], pe, sops)
    return fyf, fyr


rk4_ext = make_rk4(dynamic_ext_rhs_s)


@njit(cache=True)
def advance_ext(x, pe, cmd_steer, cmd_speed, cmd_accel, h, nsub, k, u, ki, integ):
    """``nsub`` RK4 sub-steps of ``h`` [s] in place, actuators as in the base plant (the speed loop's integral
    ``integ[0]`` [m], gain ``ki`` [1/s^2]); False if non-finite."""
    for _ in range(nsub):
        u[0], u[1], integ[0] = actuator_inputs_pi(x[6], x[3], cmd_steer, cmd_speed, cmd_accel, pe, h, False, ki,
                                                  integ[0], sops)
        rk4_ext(x, u, pe, h, x, k)
        for i in range(NX_EXT):
            if not math.isfinite(x[i]):
                return False
    return True


class DynamicExtPlant:
    """The car's dynamic model + tyre relaxation + drivetrain lag + actuator dead time (module doc)."""

    def __init__(self, params: VehicleParams, plant_hz: float = 1000.0, tau_drive: float = 0.08,
                 load_transfer: float = 1.0, sigma: float | None = None, dead_time: float = 0.0):
        if plant_hz < 500:
            raise ValueError(f"plant_hz must be >= 500 Hz, got {plant_hz}")
        if not tau_drive > 0:
            raise ValueError(f"tau_drive must be > 0 s, got {tau_drive}")
        if load_transfer < 0:
            raise ValueError(f"load_transfer must be >= 0, got {load_transfer}")
        sigma = 0.15 * params.wheelbase if sigma is None else float(sigma)
        if not sigma > 0:
            raise ValueError(f"sigma (tyre relaxation length) must be > 0 m, got {sigma}")
        if not dead_time >= 0:
            raise ValueError(f"dead_time must be >= 0 s, got {dead_time}")
        self.params = params
        self.p = params.to_array()
        self.pe = np.concatenate([self.p, [float(tau_drive), sigma]])
        self.pe[P_HCG] *= load_transfer
        self.tau_drive, self.load_transfer, self.sigma, self.dead_time = float(tau_drive), float(load_transfer), \
            sigma, float(dead_time)
        self.h_max = 1.0 / plant_hz
        self.x = np.zeros(NX_EXT)
        self._k = np.zeros((5, NX_EXT))
        self._u = np.zeros(2)
        self._integ = np.zeros(1)  # the speed loop's integral [m] (a car with speed_ki > 0)
        self._queue: deque = deque()  # (time the command takes effect [s], steer, speed, accel)
        self._now = 0.0
        self._active = (0.0, 0.0, 0.0)

    def reset(self, x0: np.ndarray) -> None:
        x0 = np.asarray(x0, dtype=float)
        if x0.shape != (7,):
            raise ValueError(f"x0 must have shape (7,), got {x0.shape}")
        self.x[:7] = x0
        self.x[7] = 0.0
        self.x[8], self.x[9] = steady_lateral_forces(self.x, self.pe)
        self._queue.clear()
        self._integ[0] = 0.0
        self._now = 0.0
        self._active = (float(x0[6]), math.hypot(x0[3], x0[4]), 0.0)  # hold the start until a command arrives

    @property
    def state(self) -> np.ndarray:
        """True state in the dynamic layout, float64[7]."""
        return self.x[:7].copy()

    def _advance(self, cmd, dt):
        nsub = max(1, int(math.ceil(dt / self.h_max - 1e-9)))
        if not advance_ext(self.x, self.pe, cmd[0], cmd[1], cmd[2], dt / nsub, nsub, self._k, self._u,
                           self.params.speed_ki, self._integ):
            raise FloatingPointError("plant state became non-finite")

    def step(self, command, dt: float) -> np.ndarray:
        if dt <= 0:
            return self.state
        self._queue.append((self._now + self.dead_time, float(command.steering_angle), float(command.speed),
                            float(command.acceleration)))
        end = self._now + dt
        while True:
            nxt = self._queue[0][0] if self._queue else math.inf
            seg_end = min(nxt, end)
            if seg_end > self._now + 1e-12:
                self._advance(self._active, seg_end - self._now)
                self._now = seg_end
            if self._queue and self._queue[0][0] <= self._now + 1e-12:
                self._active = self._queue.popleft()[1:]
                continue
            if self._now >= end - 1e-12:
                break
        self._now = end
        return self.state


def make_dynamic_ext(params: VehicleParams, plant_hz: float = 1000.0, tau_drive: float = 0.08,
                     load_transfer: float = 1.0, sigma: float | None = None,
                     dead_time: float = 0.0) -> DynamicExtPlant:
    """Factory of the ``dynamic_ext`` plant (options: ``tau_drive`` [s], ``load_transfer`` [-], ``sigma`` [m],
    ``dead_time`` [s])."""
    return DynamicExtPlant(params, plant_hz, tau_drive, load_transfer, sigma, dead_time)
