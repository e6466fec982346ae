r"""Kinematic bicycle model (reference CoG), numpy/torch/casadi from one source.

State ``x[..., 5]`` (indices ``KX, KY, KYAW, KV, KSTEER``):
    x, y [m] CoG position in the world frame; yaw psi [rad]; v [m/s] CoG speed;
    delta [rad] front road-wheel steering angle.
Input ``u[..., 2]`` (indices ``U_STEER_RATE, U_ACCEL``):
    steering rate d delta/dt [rad/s]; longitudinal acceleration a [m/s^2].

Equations (slip angle beta = atan(l_r tan(delta) / L), L = l_f + l_r)::

    x'     = v cos(psi + beta)
    y'     = v sin(psi + beta)
    psi'   = v cos(beta) tan(delta) / L
    v'     = a
    delta' = u_steer_rate

The function is pure: input limits are the caller's job (actuator layer, controller clamps).
"""
from __future__ import annotations

from racing.models.ops import NUMPY
from racing.models.params import P_LF, P_LR

KX, KY, KYAW, KV, KSTEER = 0, 1, 2, 3, 4
KIN_NX = 5
U_STEER_RATE, U_ACCEL = 0, 1
NU = 2
KIN_STATE_NAMES = ("x", "y", "yaw", "v", "steer")


def kinematic_rhs(x, u, p, ops=NUMPY):
    """Time derivative of the kinematic bicycle.

    Parameters
    ----------
    x : array[..., 5]   state (x [m], y [m], yaw [rad], v [m/s], delta [rad])
    u : array[..., 2]   input (steering rate [rad/s], acceleration [m/s^2])
    p : array[N_PARAMS] flat parameters, ``VehicleParams.to_array()``
    ops : array namespace (numpy default; ``ops.torch_ops()``, ``ops.casadi_ops()``)

    Returns
    -------
    xdot : array[..., 5]
    """
    yaw, v, delta = ops.get(x, KYAW), ops.get(x, KV), ops.get(x, KSTEER)
    lf, lr = p[P_LF], p[P_LR]
    L = lf + lr
    beta = ops.atan(lr * ops.tan(delta) / L)
    return ops.stack([
        v * ops.cos(yaw + beta),
        v * ops.sin(yaw + beta),
        v * ops.cos(beta) * ops.tan(delta) / L,
        ops.get(u, U_ACCEL) + 0.0 * v,
        ops.get(u, U_STEER_RATE) + 0.0 * v,
    ])
