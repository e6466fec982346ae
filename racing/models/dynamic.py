r"""Dynamic single-track model with Pacejka lateral tyre forces, numpy/torch/casadi from one source.

State ``x[..., 7]`` (indices ``X, Y, YAW, VX, VY, YAW_RATE, STEER``):
    x, y [m] CoG position (world); yaw psi [rad]; v_x, v_y [m/s] body-frame CoG velocity
    (x forward, y left); yaw rate r [rad/s]; delta [rad] front road-wheel steering angle.
Input ``u[..., 2]`` (indices ``U_STEER_RATE, U_ACCEL``):
    steering rate [rad/s]; longitudinal acceleration command a [m/s^2] (drive > 0, brake < 0).

Forces (g = 9.81 m/s^2, L = l_f + l_r, static axle loads F_zf = m g l_r / L, F_zr = m g l_f / L)::

    alpha_f = delta - atan2(v_y + l_f r, v_x~),   alpha_r = -atan2(v_y - l_r r, v_x~),  v_x~ = max(v_x, v_blend_low/2)
    F_yi    = F_zi D_i sin(C_i atan(B_i alpha_i - E_i (B_i alpha_i - atan(B_i alpha_i))))      (Pacejka)
    F_drive = min(m a, power_max / max(v_x, 1))                                                (motor power)
    F_x     = clip(F_drive, -mu m g, mu m g) - c_roll m g tanh(v_x / v_blend_low) - c_drag v_x |v_x|

Dynamic equations (body frame)::

    v_x' = (F_x - F_yf sin delta) / m + v_y r
    v_y' = (F_yr + F_yf cos delta) / m - v_x r
    r'   = (l_f F_yf cos delta - l_r F_yr) / I_z

At low speed the slip angles are ill-conditioned, so v_y' and r' are blended with the
kinematic bicycle expressed in body velocities (v_y = l_r r, r = v_x tan(delta) / L)::

    v_x'_kin = F_x / m,   v_y'_kin = l_r / L (delta' v_x / cos^2 delta + v_x' tan delta),   r'_kin = v_y'_kin / l_r
    w = smoothstep((v_x - v_blend_low) / (v_blend_high - v_blend_low))    (0 below v_blend_low, 1 above v_blend_high, C1)
    f = w f_dyn + (1 - w) f_kin     for v_x', v_y', r'

Kinematics: x' = v_x cos psi - v_y sin psi, y' = v_x sin psi + v_y cos psi, psi' = r, delta' = u_steer_rate.
The function is pure and smooth apart from the min/clip force limits; command limits are the caller's job.
"""
from __future__ import annotations

from racing.models.ops import NUMPY
from racing.models.params import (G, P_BF, P_BR, P_CDRAG, P_CF, P_CR, P_CROLL, P_DF, P_DR, P_EF, P_ER, P_IZ, P_LF,
                                  P_LR, P_MASS, P_MU, P_POWER_MAX, P_VBLEND_HIGH, P_VBLEND_LOW)

X, Y, YAW, VX, VY, YAW_RATE, STEER = 0, 1, 2, 3, 4, 5, 6
NX = 7
U_STEER_RATE, U_ACCEL = 0, 1
NU = 2
STATE_NAMES = ("x", "y", "yaw", "vx", "vy", "yaw_rate", "steer")
STATE_UNITS = ("m", "m", "rad", "m/s", "m/s", "rad/s", "rad")
INPUT_NAMES = ("steer_rate", "accel")


def pacejka(alpha, B, C, D, E, ops=NUMPY):
    """Normalised lateral force F_y / F_z [-] of the magic formula at slip angle ``alpha`` [rad]."""
    ba = B * alpha
    return D * ops.sin(C * ops.atan(ba - E * (ba - ops.atan(ba))))


def tyre_forces(x, u, p, ops=NUMPY):
    """Slip angles [rad] and forces [N] of the single-track model.

    Returns ``(alpha_f, alpha_r, F_yf, F_yr, F_x)`` each shaped like ``x[..., 0]``.
    """
    vx, vy, r, delta = ops.get(x, VX), ops.get(x, VY), ops.get(x, YAW_RATE), ops.get(x, STEER)
    m, lf, lr = p[P_MASS], p[P_LF], p[P_LR]
    L = lf + lr
    vx_s = ops.maximum(vx, 0.5 * p[P_VBLEND_LOW])
    alpha_f = delta - ops.atan2(vy + lf * r, vx_s)
    alpha_r = -ops.atan2(vy - lr * r, vx_s)
    fyf = m * G * lr / L * pacejka(alpha_f, p[P_BF], p[P_CF], p[P_DF], p[P_EF], ops)
    fyr = m * G * lf / L * pacejka(alpha_r, p[P_BR], p[P_CR], p[P_DR], p[P_ER], ops)
    f_drive = ops.minimum(m * ops.get(u, U_ACCEL), p[P_POWER_MAX] / ops.maximum(vx, 1.0))
    f_grip = p[P_MU] * m * G
    f_x = (ops.maximum(ops.minimum(f_drive, f_grip), -f_grip)
           - p[P_CROLL] * m * G * ops.tanh(vx / p[P_VBLEND_LOW])
           - p[P_CDRAG] * vx * ops.abs(vx))
    return alpha_f, alpha_r, fyf, fyr, f_x


def dynamic_rhs(x, u, p, ops=NUMPY):
    """Time derivative of the dynamic single-track model.

    Parameters
    ----------
    x : array[..., 7]   (x [m], y [m], yaw [rad], v_x [m/s], v_y [m/s], r [rad/s], delta [rad])
    u : array[..., 2]   (steering rate [rad/s], acceleration command [m/s^2])
    p : array[N_PARAMS] ``VehicleParams.to_array()``
    ops : array namespace (numpy default)

    Returns
    -------
    xdot : array[..., 7]
    """
    yaw, vx, vy = ops.get(x, YAW), ops.get(x, VX), ops.get(x, VY)
    r, delta = ops.get(x, YAW_RATE), ops.get(x, STEER)
    ddelta = ops.get(u, U_STEER_RATE)
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    L = lf + lr
    _, _, fyf, fyr, fx = tyre_forces(x, u, p, ops)
    sd, cd = ops.sin(delta), ops.cos(delta)
    dvx_dyn = (fx - fyf * sd) / m + vy * r
    dvy_dyn = (fyr + fyf * cd) / m - vx * r
    dr_dyn = (lf * fyf * cd - lr * fyr) / iz
    vlo, vhi = p[P_VBLEND_LOW], p[P_VBLEND_HIGH]
    tb = ops.minimum(ops.maximum((vx - vlo) / (vhi - vlo), 0.0), 1.0)
    w = tb * tb * (3.0 - 2.0 * tb)
    # kinematic bicycle in body velocities, for low speed
    dvx = w * dvx_dyn + (1.0 - w) * fx / m
    dr_kin = (ddelta * vx / (cd * cd) + dvx * ops.tan(delta)) / L
    dvy_kin = lr * dr_kin
    return ops.stack([
        vx * ops.cos(yaw) - vy * ops.sin(yaw),
        vx * ops.sin(yaw) + vy * ops.cos(yaw),
        r,
        dvx,
        w * dvy_dyn + (1.0 - w) * dvy_kin,
        w * dr_dyn + (1.0 - w) * dr_kin,
        ddelta + 0.0 * vx,
    ])


def kinematic_state_from_dynamic(x):
    """Map dynamic states ``x[..., 7]`` to kinematic ones ``[..., 5]`` (speed = |(v_x, v_y)|)."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    return np.stack([x[..., X], x[..., Y], x[..., YAW], np.hypot(x[..., VX], x[..., VY]), x[..., STEER]], axis=-1)


def dynamic_state_from_kinematic(xk, p):
    """Map kinematic states ``[..., 5]`` to dynamic ones ``[..., 7]`` on the kinematic manifold."""
    import numpy as np

    xk = np.asarray(xk, dtype=float)
    lf, lr = p[P_LF], p[P_LR]
    beta = np.arctan(lr * np.tan(xk[..., 4]) / (lf + lr))
    v = xk[..., 3]
    vx, vy = v * np.cos(beta), v * np.sin(beta)
    r = vx * np.tan(xk[..., 4]) / (lf + lr)
    return np.stack([xk[..., 0], xk[..., 1], xk[..., 2], vx, vy, r, xk[..., 4]], axis=-1)
