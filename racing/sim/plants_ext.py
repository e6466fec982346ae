"""Extra plant variants (registered by name in :mod:`racing.sim.plant`).

``dynamic_ext`` - the dynamic single-track model of :mod:`racing.models.dynamic` plus two effects
the controller's bicycle model lacks (used to test the semi-parametric residual):

* **longitudinal load transfer**: the axle loads follow the longitudinal acceleration
  ``a_x = F_x / m`` [m/s^2]::

      F_zf = m (g l_r - a_x h_cg) / L,   F_zr = m (g l_f + a_x h_cg) / L

  (clipped at 5% of the static load), so braking loads the front tyres and accelerating the
  rear ones; the lateral forces ``F_yi = F_zi D_i sin(...)`` scale with them;
* **drivetrain lag**: the acceleration the motor delivers follows the speed-loop output ``a_cmd``
  through a first-order lag ``a' = (a_cmd - a) / tau_drive`` (``tau_drive`` [s], factory option,
  default 0.08 s).

Load transfer can be scaled with ``load_transfer`` (1 = physical ``h_cg``, 0 = none).

State ``x[8]`` inside the plant = the 7 dynamic states + the delivered acceleration ``a`` [m/s^2];
the plant reports the usual ``float64[7]``. Same interface as :class:`racing.sim.plant.NumbaPlant`:
``reset(x0[7])``, ``step(command, dt) -> x[7]``, ``state``.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from racing.models.fastmath import compiled
from racing.models import sops
from racing.models.actuators import actuator_inputs
from racing.models.dynamic import (axle_loads, blend_weight, body_derivatives_from_forces, lateral_forces_at,
                                   longitudinal_force, slip_angles)
from racing.models.numba_backend import make_rk4
from racing.models.params import N_PARAMS, P_MASS, VehicleParams

NX_EXT = 8
#: extra parameters after the car's N_PARAMS: drivetrain time constant tau_drive [s], load-transfer scale [-]
PE_TAU, PE_LT = N_PARAMS, N_PARAMS + 1


@compiled
def dynamic_ext_rhs_s(x, u, pe, out):
    """``out[8] = f(x[8], u[2], pe)``: dynamic model + load transfer + drivetrain lag, from the components of
    :mod:`racing.models.dynamic` (``pe`` = the car's flat parameters + (tau_drive, load_transfer)).

    ``u = (steering rate [rad/s], speed-loop acceleration command [m/s^2])``; ``x[7]`` is the
    delivered acceleration [m/s^2].
    """
    yaw, vx, vy, r, delta, a_del = x[2], x[3], x[4], x[5], x[6], x[7]
    fx = longitudinal_force(vx, a_del, pe, sops)
    fzf, fzr = axle_loads(fx / pe[P_MASS], pe[PE_LT], pe, sops)
    af, ar = slip_angles(vx, vy, r, delta, pe, sops)
    fyf, fyr = lateral_forces_at(af, ar, fzf, fzr, pe, sops)
    dvx, dvy, dr = body_derivatives_from_forces(vx, vy, r, math.sin(delta), math.cos(delta), u[0], fyf, fyr, fx,
                                                blend_weight(vx, pe, sops), pe)
    out[0] = vx * math.cos(yaw) - vy * math.sin(yaw)
    out[1] = vx * math.sin(yaw) + vy * math.cos(yaw)
    out[2] = r
    out[3] = dvx
    out[4] = dvy
    out[5] = dr
    out[6] = u[0]
    out[7] = (u[1] - a_del) / pe[PE_TAU]


rk4_ext = make_rk4(dynamic_ext_rhs_s)


@njit(cache=True)
def advance_ext(x, pe, cmd_steer, cmd_speed, cmd_accel, h, nsub, k, u):
    """``nsub`` RK4 sub-steps of ``h`` [s] in place, actuators as in the base plant; False if non-finite."""
    for _ in range(nsub):
        u[0], u[1] = actuator_inputs(x[6], x[3], cmd_steer, cmd_speed, cmd_accel, pe, h, False, sops)
        rk4_ext(x, u, pe, h, x, k)
        for i in range(NX_EXT):
            if not math.isfinite(x[i]):
                return False
    return True


class DynamicExtPlant:
    """Dynamic model + longitudinal load transfer + first-order drivetrain lag (see module doc)."""

    def __init__(self, params: VehicleParams, plant_hz: float = 1000.0, tau_drive: float = 0.08,
                 load_transfer: float = 1.0):
        if plant_hz < 500:
            raise ValueError(f"plant_hz must be >= 500 Hz, got {plant_hz}")
        if not tau_drive > 0:
            raise ValueError(f"tau_drive must be > 0 s, got {tau_drive}")
        if load_transfer < 0:
            raise ValueError(f"load_transfer must be >= 0, got {load_transfer}")
        self.params = params
        self.p = params.to_array()
        self.pe = np.concatenate([self.p, [float(tau_drive), float(load_transfer)]])
        self.tau_drive = float(tau_drive)
        self.load_transfer = float(load_transfer)
        self.h_max = 1.0 / plant_hz
        self.x = np.zeros(NX_EXT)
        self._k = np.zeros((5, NX_EXT))
        self._u = np.zeros(2)

    def reset(self, x0: np.ndarray) -> None:
        x0 = np.asarray(x0, dtype=float)
        if x0.shape != (7,):
            raise ValueError(f"x0 must have shape (7,), got {x0.shape}")
        self.x[:7] = x0
        self.x[7] = 0.0

    @property
    def state(self) -> np.ndarray:
        """True state in the dynamic layout, float64[7]."""
        return self.x[:7].copy()

    def step(self, command, dt: float) -> np.ndarray:
        if dt <= 0:
            return self.state
        nsub = max(1, int(math.ceil(dt / self.h_max - 1e-9)))
        ok = advance_ext(self.x, self.pe, float(command.steering_angle),
                         float(command.speed), float(command.acceleration), dt / nsub, nsub, self._k, self._u)
        if not ok:
            raise FloatingPointError("plant state became non-finite")
        return self.state


def make_dynamic_ext(params: VehicleParams, plant_hz: float = 1000.0, tau_drive: float = 0.08,
                     load_transfer: float = 1.0) -> DynamicExtPlant:
    """Factory of the ``dynamic_ext`` plant (options: ``tau_drive`` [s], ``load_transfer`` [-])."""
    return DynamicExtPlant(params, plant_hz, tau_drive, load_transfer)


