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
Written once against ``ops`` (:mod:`racing.models.ops`; ``racing.models.sops`` in compiled code), like the
dynamic model.
"""
from __future__ import annotations

import math


from racing.models.fastmath import scalar
from racing.models import sops
from racing.models.ops import NUMPY
from racing.models.params import P_LF, P_LR

KX, KY, KYAW, KV, KSTEER = 0, 1, 2, 3, 4
KIN_NX = 5
U_STEER_RATE, U_ACCEL = 0, 1
NU = 2
KIN_STATE_NAMES = ("x", "y", "yaw", "v", "steer")


@scalar
def slip_and_yaw_rate(v, delta, p, ops):
    """(sin beta, cos beta, psi' [rad/s]) of the kinematic bicycle: tan beta = l_r tan(delta) / L,
    psi' = v cos(beta) tan(delta) / L (cos beta = 1 / sqrt(1 + tan^2 beta): no inverse trigonometry)."""
    L = p[P_LF] + p[P_LR]
    sd, cd = ops.sincos(delta)
    td = sd / cd
    tb = p[P_LR] * td / L
    cb = 1.0 / ops.sqrt(1.0 + tb * tb)
    return tb * cb, cb, v * cb * td / L


@scalar
def body_velocities(v, delta, p, ops):
    """The kinematic state's body-frame CoG velocities (v_x, v_y [m/s], r [rad/s]): the map from the kinematic
    to the dynamic state layout (``v_x = v cos beta``, ``v_y = v sin beta``, ``r = v_x tan(delta) / L``)."""
    sb, cb, om = slip_and_yaw_rate(v, delta, p, ops)
    return v * cb, v * sb, om


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
    yaw, v = ops.get(x, KYAW), ops.get(x, KV)
    sb, cb, dpsi = slip_and_yaw_rate(v, ops.get(x, KSTEER), p, ops)
    cy, sy = ops.cos(yaw), ops.sin(yaw)
    return ops.stack([
        v * (cy * cb - sy * sb),
        v * (sy * cb + cy * sb),
        dpsi,
        ops.get(u, U_ACCEL) + 0.0 * v,
        ops.get(u, U_STEER_RATE) + 0.0 * v,
    ])


@scalar
def kinematic_rhs_s(x, u, p, out):
    """Scalar form of :func:`kinematic_rhs` for compiled code: ``out[5] = f(x[5], u[2], p)``."""
    sb, cb, dpsi = slip_and_yaw_rate(x[KV], x[KSTEER], p, sops)
    cy, sy = math.cos(x[KYAW]), math.sin(x[KYAW])
    out[0] = x[KV] * (cy * cb - sy * sb)
    out[1] = x[KV] * (sy * cb + cy * sb)
    out[2] = dpsi
    out[3] = u[U_ACCEL]
    out[4] = u[U_STEER_RATE]
