"""numba kernels of the vehicle models: scalar transcriptions of the numpy reference.

Every kernel takes flat arrays only (state ``x[nx]``, input ``u[2]``, parameters
``p[N_PARAMS]``) and writes into caller-owned buffers, so hot loops allocate nothing.
``model`` selects the equations at run time: ``MODEL_KINEMATIC`` (nx = 5) or
``MODEL_DYNAMIC`` (nx = 7), see :mod:`racing.models.kinematic` / :mod:`racing.models.dynamic`
for states, inputs, units and equations. Compiled functions are cached on disk.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from racing.models.params import (G, P_BF, P_BR, P_CDRAG, P_CF, P_CR, P_CROLL, P_DF, P_DR, P_EF, P_ER, P_IZ, P_LF,
                                  P_LR, P_MASS, P_MU, P_POWER_MAX, P_VBLEND_HIGH, P_VBLEND_LOW)

MODEL_KINEMATIC = 0
MODEL_DYNAMIC = 1
MODEL_NX = (5, 7)
MODEL_NAMES = ("kinematic", "dynamic")
MAX_NX = 7


def model_id(name: str) -> int:
    """'kinematic' -> 0, 'dynamic' -> 1 (ValueError naming the choices otherwise)."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; expected one of {list(MODEL_NAMES)}")
    return MODEL_NAMES.index(name)


@njit(cache=True, fastmath=False, inline="always")
def kinematic_rhs_nb(x, u, p, out):
    """Kinematic bicycle: ``out[5] = f(x[5], u[2], p)``."""
    L = p[P_LF] + p[P_LR]
    td = math.tan(x[4])
    beta = math.atan(p[P_LR] * td / L)
    v = x[3]
    out[0] = v * math.cos(x[2] + beta)
    out[1] = v * math.sin(x[2] + beta)
    out[2] = v * math.cos(beta) * td / L
    out[3] = u[1]
    out[4] = u[0]


@njit(cache=True, fastmath=False, inline="always")
def _pacejka(alpha, B, C, D, E):
    ba = B * alpha
    return D * math.sin(C * math.atan(ba - E * (ba - math.atan(ba))))


@njit(cache=True, fastmath=False, inline="always")
def dynamic_rhs_nb(x, u, p, out):
    """Dynamic single-track with Pacejka tyres and low-speed blend: ``out[7] = f(x[7], u[2], p)``."""
    yaw, vx, vy, r, delta = x[2], x[3], x[4], x[5], x[6]
    m, iz, lf, lr = p[P_MASS], p[P_IZ], p[P_LF], p[P_LR]
    L = lf + lr
    vlo, vhi = p[P_VBLEND_LOW], p[P_VBLEND_HIGH]
    vx_s = max(vx, 0.5 * vlo)
    alpha_f = delta - math.atan2(vy + lf * r, vx_s)
    alpha_r = -math.atan2(vy - lr * r, vx_s)
    fyf = m * G * lr / L * _pacejka(alpha_f, p[P_BF], p[P_CF], p[P_DF], p[P_EF])
    fyr = m * G * lf / L * _pacejka(alpha_r, p[P_BR], p[P_CR], p[P_DR], p[P_ER])
    f_drive = min(m * u[1], p[P_POWER_MAX] / max(vx, 1.0))
    f_grip = p[P_MU] * m * G
    fx = (max(min(f_drive, f_grip), -f_grip) - p[P_CROLL] * m * G * math.tanh(vx / vlo)
          - p[P_CDRAG] * vx * abs(vx))
    sd = math.sin(delta)
    cd = math.cos(delta)
    dvx_dyn = (fx - fyf * sd) / m + vy * r
    dvy_dyn = (fyr + fyf * cd) / m - vx * r
    dr_dyn = (lf * fyf * cd - lr * fyr) / iz
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


@njit(cache=True, inline="always")
def rhs_nb(model, x, u, p, out):
    """Dispatch on ``model`` (MODEL_KINEMATIC | MODEL_DYNAMIC)."""
    if model == MODEL_KINEMATIC:
        kinematic_rhs_nb(x, u, p, out)
    else:
        dynamic_rhs_nb(x, u, p, out)


@njit(cache=True)
def rk4_step_nb(model, x, u, p, dt, out, work):
    """One RK4 step of ``dt`` [s]: ``out[nx] = x + dt/6 (k1 + 2k2 + 2k3 + k4)``.

    ``work[5, >= nx]`` is scratch (k1..k4, stage state). ``out`` may alias ``x``.
    """
    nx = x.shape[0]
    k1, k2, k3, k4, xs = work[0], work[1], work[2], work[3], work[4]
    rhs_nb(model, x, u, p, k1)
    for i in range(nx):
        xs[i] = x[i] + 0.5 * dt * k1[i]
    rhs_nb(model, xs[:nx], u, p, k2)
    for i in range(nx):
        xs[i] = x[i] + 0.5 * dt * k2[i]
    rhs_nb(model, xs[:nx], u, p, k3)
    for i in range(nx):
        xs[i] = x[i] + dt * k3[i]
    rhs_nb(model, xs[:nx], u, p, k4)
    for i in range(nx):
        out[i] = x[i] + dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i])


@njit(cache=True, parallel=True)
def rhs_batch(model, X, U, p, out):
    """Batched derivative: ``out[B, nx] = f(X[B, nx], U[B, 2], p)``, parallel over B."""
    for b in prange(X.shape[0]):
        rhs_nb(model, X[b], U[b], p, out[b])


@njit(cache=True, parallel=True)
def rk4_batch(model, X, U, p, dt, substeps, out):
    """Batched RK4 step of ``dt`` [s] in ``substeps`` sub-steps: ``out[B, nx]`` from ``X[B, nx]``, ``U[B, 2]``."""
    h = dt / substeps
    nx = X.shape[1]
    for b in prange(X.shape[0]):
        work = np.empty((5, nx))
        xb = out[b]
        for i in range(nx):
            xb[i] = X[b, i]
        for _ in range(substeps):
            rk4_step_nb(model, xb, U[b], p, h, xb, work)


def rhs(model: str, X: np.ndarray, U: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Convenience wrapper: batched derivative ``[B, nx]`` (allocates the output)."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    U = np.ascontiguousarray(U, dtype=np.float64)
    out = np.empty_like(X)
    rhs_batch(model_id(model), X, U, np.ascontiguousarray(p, dtype=np.float64), out)
    return out
