"""Extra plant variants, registered with :func:`racing.sim.plant.register_plant` on import.

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

from racing.models.numba_backend import _pacejka
from racing.models.params import (G, P_BF, P_BR, P_CDRAG, P_CF, P_CR, P_CROLL, P_DF, P_DR, P_EF, P_ER, P_HCG, P_IZ,
                                  P_LF, P_LR, P_MASS, P_MU, P_POWER_MAX, P_VBLEND_HIGH, P_VBLEND_LOW, VehicleParams)
from racing.sim.plant import actuator_inputs, register_plant

NX_EXT = 8


@njit(cache=True)
def dynamic_ext_rhs_nb(x, u, p, tau_drive, lt_scale, out):
    """``out[8] = f(x[8], u[2], p)``: dynamic model + load transfer + drivetrain lag.

    ``u = (steering rate [rad/s], speed-loop acceleration command [m/s^2])``; ``x[7]`` is the
    delivered acceleration [m/s^2].
    """
    yaw, vx, vy, r, delta, a_del = x[2], x[3], x[4], x[5], x[6], x[7]
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    L = lf + lr
    vlo, vhi = p[P_VBLEND_LOW], p[P_VBLEND_HIGH]
    f_drive = min(m * a_del, p[P_POWER_MAX] / max(vx, 1.0))
    f_grip = p[P_MU] * m * G
    fx = (max(min(f_drive, f_grip), -f_grip) - p[P_CROLL] * m * G * math.tanh(vx / vlo)
          - p[P_CDRAG] * vx * abs(vx))
    ax = fx / m
    dz = m * ax * p[P_HCG] * lt_scale / L
    fzf = max(m * G * lr / L - dz, 0.05 * m * G * lr / L)
    fzr = max(m * G * lf / L + dz, 0.05 * m * G * lf / L)
    vx_s = max(vx, 0.5 * vlo)
    alpha_f = delta - math.atan2(vy + lf * r, vx_s)
    alpha_r = -math.atan2(vy - lr * r, vx_s)
    fyf = fzf * _pacejka(alpha_f, p[P_BF], p[P_CF], p[P_DF], p[P_EF])
    fyr = fzr * _pacejka(alpha_r, p[P_BR], p[P_CR], p[P_DR], p[P_ER])
    sd = math.sin(delta)
    cd = math.cos(delta)
    dvx_dyn = (fx - fyf * sd) / m + vy * r
    dvy_dyn = (fyr + fyf * cd) / m - vx * r
    dr_dyn = (lf * fyf * cd - lr * fyr) / iz
    # the same low-speed blend as racing.models.dynamic (C1 smooth-step, v_x' included)
    tb = min(max((vx - vlo) / (vhi - vlo), 0.0), 1.0)
    w = tb * tb * (3.0 - 2.0 * tb)
    dvx = w * dvx_dyn + (1.0 - w) * fx / m
    dr_kin = (u[0] * vx / (cd * cd) + dvx * math.tan(delta)) / L
    dvy_kin = lr * dr_kin
    cy = math.cos(yaw)
    sy = math.sin(yaw)
    out[0] = vx * cy - vy * sy
    out[1] = vx * sy + vy * cy
    out[2] = r
    out[3] = dvx
    out[4] = w * dvy_dyn + (1.0 - w) * dvy_kin
    out[5] = w * dr_dyn + (1.0 - w) * dr_kin
    out[6] = u[0]
    out[7] = (u[1] - a_del) / tau_drive


@njit(cache=True)
def advance_ext(x, p, tau_drive, lt_scale, cmd_steer, cmd_speed, cmd_accel, h, nsub, k, u):
    """``nsub`` RK4 sub-steps of ``h`` [s] in place, actuators as in the base plant; False if non-finite."""
    k1, k2, k3, k4, xs = k[0], k[1], k[2], k[3], k[4]
    for _ in range(nsub):
        actuator_inputs(x, 6, p, cmd_steer, cmd_speed, cmd_accel, h, u)
        dynamic_ext_rhs_nb(x, u, p, tau_drive, lt_scale, k1)
        for i in range(NX_EXT):
            xs[i] = x[i] + 0.5 * h * k1[i]
        dynamic_ext_rhs_nb(xs, u, p, tau_drive, lt_scale, k2)
        for i in range(NX_EXT):
            xs[i] = x[i] + 0.5 * h * k2[i]
        dynamic_ext_rhs_nb(xs, u, p, tau_drive, lt_scale, k3)
        for i in range(NX_EXT):
            xs[i] = x[i] + h * k3[i]
        dynamic_ext_rhs_nb(xs, u, p, tau_drive, lt_scale, k4)
        for i in range(NX_EXT):
            x[i] = x[i] + h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])
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
        ok = advance_ext(self.x, self.p, self.tau_drive, self.load_transfer, float(command.steering_angle),
                         float(command.speed), float(command.acceleration), dt / nsub, nsub, self._k, self._u)
        if not ok:
            raise FloatingPointError("plant state became non-finite")
        return self.state


def make_dynamic_ext(params: VehicleParams, plant_hz: float = 1000.0, tau_drive: float = 0.08,
                     load_transfer: float = 1.0) -> DynamicExtPlant:
    """Factory of the ``dynamic_ext`` plant (options: ``tau_drive`` [s], ``load_transfer`` [-])."""
    return DynamicExtPlant(params, plant_hz, tau_drive, load_transfer)


register_plant("dynamic_ext", make_dynamic_ext)
